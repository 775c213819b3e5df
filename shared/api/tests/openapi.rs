//! `docs/openapi.yaml` against the route table, both ways: every (method, path, operationId)
//! the code serves is documented, and every documented operation is served, so neither can
//! gain a route the other lacks. Runs without the stack.

use std::collections::BTreeSet;

use mailroom_api::routes;
use serde_norway::Value;

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "patch", "head", "options", "trace",
];

/// Documented operations whose handlers are being built on other branches (sending; the
/// admin and account resources). Each must not be served yet: once its route is merged the
/// test fails until it leaves this list, so the check ends up exact both ways.
const PENDING: &[&str] = &[];

type Op = (String, String, String);

fn document() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.yaml");
    let text = std::fs::read_to_string(path).expect("docs/openapi.yaml is readable");
    serde_norway::from_str(&text).expect("docs/openapi.yaml is YAML")
}

/// Follows a local `$ref` (`#/components/...`); `Null` when it names nothing.
fn lookup<'d>(doc: &'d Value, reference: &str) -> &'d Value {
    let mut at = doc;
    for part in reference.trim_start_matches("#/").split('/') {
        at = &at[part];
    }
    at
}

/// Every operation of the document: (METHOD, path, operationId).
fn documented(doc: &Value) -> Vec<Op> {
    let paths = doc["paths"].as_mapping().expect("the document has paths");
    let mut out = Vec::new();
    for (path, item) in paths {
        let path = path.as_str().expect("paths are strings");
        let item = item.as_mapping().expect("a path item is a mapping");
        for (method, op) in item {
            let method = method.as_str().unwrap_or_default();
            if !METHODS.contains(&method) {
                continue; // parameters, summary
            }
            let id = op["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path} has no operationId"));
            out.push((method.to_uppercase(), path.to_string(), id.to_string()));
        }
    }
    out
}

fn served() -> Vec<Op> {
    routes::all()
        .iter()
        .map(|r| {
            (
                r.method.to_string(),
                r.path.to_string(),
                r.operation.to_string(),
            )
        })
        .collect()
}

/// What is missing from each side: (served but undocumented, documented but not served and
/// not pending).
fn differences(doc: &[Op], code: &[Op]) -> (Vec<Op>, Vec<Op>) {
    let doc_set: BTreeSet<&Op> = doc.iter().collect();
    let code_set: BTreeSet<&Op> = code.iter().collect();
    let undocumented = code
        .iter()
        .filter(|o| !doc_set.contains(o))
        .cloned()
        .collect();
    let unserved = doc
        .iter()
        .filter(|o| !code_set.contains(o) && !PENDING.contains(&o.2.as_str()))
        .cloned()
        .collect();
    (undocumented, unserved)
}

#[test]
fn the_document_and_the_routes_agree_both_ways() {
    let doc = document();
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "an OpenAPI 3.1 document"
    );
    let ops = documented(&doc);
    let code = served();
    assert!(code.len() >= 10 && ops.len() >= code.len(), "{ops:?}");
    let (undocumented, unserved) = differences(&ops, &code);
    assert!(
        undocumented.is_empty(),
        "served but not in docs/openapi.yaml: {undocumented:?}"
    );
    assert!(
        unserved.is_empty(),
        "in docs/openapi.yaml but not served: {unserved:?}"
    );
    for p in PENDING {
        assert!(
            ops.iter().any(|o| o.2 == *p),
            "{p} is pending but not documented"
        );
        assert!(
            !code.iter().any(|o| o.2 == *p),
            "{p} is served now: take it out of PENDING, so the document is held to it"
        );
    }
    let ids: BTreeSet<&str> = ops.iter().map(|o| o.2.as_str()).collect();
    assert_eq!(ids.len(), ops.len(), "operationIds are unique");
}

/// The check itself: a route dropped from either side, or served under another path, is
/// found.
#[test]
fn a_route_missing_on_either_side_is_found() {
    let ops = documented(&document());
    let code = served();
    let mut fewer_docs = ops.clone();
    fewer_docs.retain(|o| o.2 != "getAttachment");
    let (u, s) = differences(&fewer_docs, &code);
    assert_eq!((u.len(), s.len()), (1, 0), "{u:?}");
    let mut fewer_routes = code.clone();
    fewer_routes.retain(|o| o.2 != "updateCase");
    let (u, s) = differences(&ops, &fewer_routes);
    assert_eq!((u.len(), s.len()), (0, 1), "{s:?}");
    let mut moved = code.clone();
    for o in &mut moved {
        if o.2 == "getEmail" {
            o.1 = "/v1/email/{id}".into();
        }
    }
    let (u, s) = differences(&ops, &moved);
    assert_eq!((u.len(), s.len()), (1, 1));
}

/// Every `$ref` points at something the document defines, and every operation declares
/// exactly the parameters of its path template (a fuzzer reads the document, not the code).
#[test]
fn references_resolve_and_path_parameters_are_declared() {
    let doc = document();
    fn walk(v: &Value, refs: &mut Vec<String>) {
        match v {
            Value::Mapping(m) => {
                for (k, v) in m {
                    if k.as_str() == Some("$ref") {
                        refs.push(v.as_str().unwrap_or_default().to_string());
                    }
                    walk(v, refs);
                }
            }
            Value::Sequence(s) => s.iter().for_each(|v| walk(v, refs)),
            _ => {}
        }
    }
    let mut refs = Vec::new();
    walk(&doc, &mut refs);
    assert!(refs.len() > 20);
    for r in &refs {
        assert!(!lookup(&doc, r).is_null(), "{r} resolves to nothing");
    }
    for (path, item) in doc["paths"].as_mapping().unwrap() {
        let path = path.as_str().unwrap();
        let wanted: BTreeSet<String> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(str::to_string)
            .collect();
        for (method, op) in item.as_mapping().unwrap() {
            if !METHODS.contains(&method.as_str().unwrap_or_default()) {
                continue;
            }
            let mut declared = BTreeSet::new();
            for list in [&item["parameters"], &op["parameters"]] {
                for p in list.as_sequence().into_iter().flatten() {
                    let p = match p["$ref"].as_str() {
                        Some(r) => lookup(&doc, r),
                        None => p,
                    };
                    if p["in"].as_str() == Some("path") {
                        assert_eq!(p["required"].as_bool(), Some(true), "{path}");
                        declared.insert(p["name"].as_str().unwrap_or_default().to_string());
                    }
                }
            }
            assert_eq!(declared, wanted, "{method:?} {path}");
        }
    }
}
