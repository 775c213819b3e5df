//! The sample events in `events/<function>/`, each beside its expected answer
//! (`<name>.expected.json`, format in events/README.md), for the tests that run them: through
//! each handler on fakes (unit tests of the functions) and through each function binary on a
//! local Lambda runtime (the integration test).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// One event file and its expected answer.
pub struct Sample {
    pub path: PathBuf,
    /// `events/<function>/<name>.json`, for messages.
    pub name: String,
    pub expected: Value,
}

/// Every event by function folder, in name order.
pub fn sample_events(root: &Path) -> BTreeMap<String, Vec<Sample>> {
    let mut out = BTreeMap::new();
    for dir in std::fs::read_dir(root).unwrap() {
        let dir = dir.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        let folder = dir.file_name().unwrap().to_string_lossy().into_owned();
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|f| f.unwrap().path())
            .filter(|f| {
                let name = f.file_name().unwrap().to_string_lossy();
                name.ends_with(".json") && !name.ends_with(".expected.json")
            })
            .collect();
        files.sort();
        let events = files
            .into_iter()
            .map(|path| {
                let file = path.file_name().unwrap().to_string_lossy();
                let name = format!("events/{folder}/{file}");
                let expected = path.with_extension("expected.json");
                let text = std::fs::read_to_string(&expected)
                    .unwrap_or_else(|e| panic!("{name}: no expected answer beside it ({e})"));
                let expected = serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("{}: {e}", expected.display()));
                Sample {
                    path,
                    name,
                    expected,
                }
            })
            .collect();
        out.insert(folder, events);
    }
    out
}

/// `want` matches `got`: objects as subsets, arrays element by element with equal lengths,
/// anything else by equality (events/README.md).
pub fn compare(want: &Value, got: &Value, path: &str, problems: &mut Vec<String>) {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            for (k, wv) in w {
                match g.get(k) {
                    Some(gv) => compare(wv, gv, &format!("{path}.{k}"), problems),
                    None => problems.push(format!("{path}.{k}: missing in {got}")),
                }
            }
        }
        (Value::Array(w), Value::Array(g)) if w.len() == g.len() => {
            for (i, (wv, gv)) in w.iter().zip(g).enumerate() {
                compare(wv, gv, &format!("{path}[{i}]"), problems);
            }
        }
        _ if want == got => {}
        _ => problems.push(format!("{path}: expected {want}, got {got}")),
    }
}

/// The sample events of one function (`events/<function>/`), for its unit tests; panics when
/// there are none, so a moved folder cannot make those tests pass by running nothing.
pub fn of(function: &str) -> Vec<Sample> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events");
    let samples = sample_events(&root).remove(function).unwrap_or_default();
    assert!(!samples.is_empty(), "no sample events for {function}");
    samples
}

/// The problems of an answer against a sample's expected `response` (none when it matches).
pub fn check_response(sample: &Sample, got: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    match sample.expected.get("response") {
        Some(want) => compare(want, got, "response", &mut problems),
        None => problems.push(format!(
            "{}: its expected file has no response",
            sample.name
        )),
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_answers_match_as_subsets_with_arrays_of_equal_length() {
        let check = |want: Value, got: Value| {
            let mut problems = Vec::new();
            compare(&want, &got, "response", &mut problems);
            problems
        };
        let got = serde_json::json!({"cycle": "c", "accounts": 2, "queued": ["a", "b"]});
        assert!(check(serde_json::json!({"cycle": "c"}), got.clone()).is_empty());
        assert!(check(serde_json::json!({"queued": ["a", "b"]}), got.clone()).is_empty());
        assert_eq!(
            check(serde_json::json!({"queued": ["a"]}), got.clone()).len(),
            1
        );
        assert_eq!(
            check(serde_json::json!({"cycle": "d"}), got.clone()).len(),
            1
        );
        assert_eq!(check(serde_json::json!({"missing": 1}), got).len(), 1);
        let none = serde_json::json!({"batchItemFailures": []});
        let one = serde_json::json!({"batchItemFailures": [{"itemIdentifier": "x"}]});
        assert_eq!(check(none.clone(), one.clone()).len(), 1);
        assert_eq!(check(one, none).len(), 1);
    }
}
