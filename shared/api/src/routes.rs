//! The route table: every (method, path template, operationId) the API serves. The OpenAPI
//! document (`docs/openapi.yaml`) is checked against this table both ways
//! (`tests/integration/api_openapi.rs`), so neither can gain a route the other lacks.

use std::collections::HashMap;

use crate::handlers::Module;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub method: &'static str,
    /// `/v1/emails/{id}`: `{name}` matches one non-empty path segment.
    pub path: &'static str,
    /// The OpenAPI operationId, unique.
    pub operation: &'static str,
    pub module: Module,
}

impl Route {
    pub const fn new(
        method: &'static str,
        path: &'static str,
        operation: &'static str,
        module: Module,
    ) -> Self {
        Route {
            method,
            path,
            operation,
            module,
        }
    }

    /// The path parameters when `path` fits the template.
    pub fn matches(&self, path: &str) -> Option<HashMap<String, String>> {
        let mut params = HashMap::new();
        let mut want = self.path.trim_matches('/').split('/');
        let mut got = path
            .trim_end_matches('/')
            .trim_start_matches('/')
            .split('/');
        loop {
            match (want.next(), got.next()) {
                (None, None) => return Some(params),
                (Some(w), Some(g)) if w.starts_with('{') && w.ends_with('}') => {
                    if g.is_empty() {
                        return None;
                    }
                    params.insert(w[1..w.len() - 1].to_string(), percent_decode(g));
                }
                (Some(w), Some(g)) if w == g => {}
                _ => return None,
            }
        }
    }
}

/// Path segments are percent-decoded (`%40` in a record id that is an address).
fn percent_decode(s: &str) -> String {
    crate::request::parse_query(&format!("x={}", s.replace('+', "%2B")))
        .pop()
        .map(|(_, v)| v)
        .unwrap_or_default()
}

/// Every route, from each handler module's own table.
pub fn all() -> Vec<Route> {
    crate::handlers::ROUTES
        .iter()
        .flat_map(|r| r.iter().copied())
        .collect()
}

pub enum Found {
    Route(Route, HashMap<String, String>),
    /// The path exists, with other methods.
    WrongMethod(Vec<&'static str>),
    None,
}

pub fn find(method: &str, path: &str) -> Found {
    let mut methods = Vec::new();
    for r in all() {
        if let Some(params) = r.matches(path) {
            if r.method == method {
                return Found::Route(r, params);
            }
            methods.push(r.method);
        }
    }
    if methods.is_empty() {
        Found::None
    } else {
        Found::WrongMethod(methods)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_whole_segments() {
        let r = Route::new("GET", "/v1/emails/{id}", "getEmail", Module::Cases);
        assert_eq!(r.matches("/v1/emails/e1").unwrap()["id"], "e1");
        assert_eq!(r.matches("/v1/emails/a%40b.c").unwrap()["id"], "a@b.c");
        assert!(r.matches("/v1/emails/").is_none());
        assert!(r.matches("/v1/emails/e1/x").is_none());
        assert!(r.matches("/v1/emailsx/e1").is_none());
    }

    #[test]
    fn operations_and_routes_are_unique() {
        let all = all();
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a.operation, b.operation);
                assert!(!(a.method == b.method && a.path == b.path), "{a:?}");
            }
        }
    }
}
