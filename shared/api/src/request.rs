//! A request as the handlers see it: method, path, path parameters, query and body, whatever
//! front door it came through (API Gateway through lambda_http, or the local server).

use std::collections::HashMap;

use serde::de::DeserializeOwned;

use crate::error::{ApiError, ApiResult};

/// At most this many bytes of request body (attachments travel base64 inside JSON; see
/// `MAX_ATTACHMENTS_BYTES` in the sending module). API Gateway's own limit is 10 MB.
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct ApiRequest {
    pub method: http::Method,
    pub path: String,
    /// Path parameters by the name in the route's template (`{id}` is `id`).
    pub params: HashMap<String, String>,
    pub query: Vec<(String, String)>,
    pub body: bytes::Bytes,
}

impl ApiRequest {
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A path parameter; the router guarantees the ones in the route's template.
    pub fn param(&self, name: &str) -> &str {
        self.params.get(name).map(String::as_str).unwrap_or("")
    }

    /// A numeric path parameter (a case number): 404 when it is not one, as for an unknown id.
    pub fn number_param(&self, name: &str, what: &str) -> ApiResult<u64> {
        self.param(name)
            .parse()
            .map_err(|_| ApiError::not_found(format!("{what} {}", self.param(name))))
    }

    /// The JSON body as `T`, the field at fault named (`to[1]`, `parent.number`).
    pub fn json<T: DeserializeOwned>(&self) -> ApiResult<T> {
        if self.body.is_empty() {
            return Err(ApiError::bad_request("body", "a JSON body is required"));
        }
        let mut de = serde_json::Deserializer::from_slice(&self.body);
        serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let message = inner.to_string();
            // serde names a missing or unknown field only in its message.
            let named = ["missing field `", "unknown field `"]
                .iter()
                .find_map(|p| message.split_once(p))
                .and_then(|(_, rest)| rest.split_once('`'))
                .map(|(f, _)| f.to_string());
            let field = match (path.as_str(), named) {
                (".", Some(f)) | ("", Some(f)) => f,
                (p, Some(f)) if message.starts_with("missing") => format!("{p}.{f}"),
                (".", None) | ("", None) => "body".to_string(),
                (p, _) => p.to_string(),
            };
            let code_400 = inner.is_syntax() || inner.is_eof();
            if code_400 {
                ApiError::bad_request("body", format!("the body is not valid JSON: {message}"))
            } else {
                ApiError::invalid(field, message)
            }
        })
    }
}

/// Splits a query string into decoded pairs (`+` is a space).
pub fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16);
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'+' {
            out.push(b' ');
        } else if b == b'%' && i + 2 < bytes.len() {
            match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            }
        } else {
            out.push(b);
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_decode_percent_and_plus() {
        assert_eq!(
            parse_query("a=1&cursor=x%2By+z&bad=%zz&end=%4"),
            vec![
                ("a".into(), "1".into()),
                ("cursor".into(), "x+y z".into()),
                ("bad".into(), "%zz".into()),
                ("end".into(), "%4".into()),
            ]
        );
    }
}
