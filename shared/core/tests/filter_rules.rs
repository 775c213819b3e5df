//! Table-driven filter rules from `tests/fixtures/filters/*.test` (format in its README).

use std::path::Path;

use mailroom_core::filters::{evaluate, Action, Filter, FilterInput, Pattern, Scope, Verdict};
use mailroom_core::parse::parse;

struct Case {
    file: String,
    title: String,
    filters: Vec<(String, Vec<(String, String)>)>,
    message: String,
    expect: String,
}

fn cases() -> Vec<Case> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/filters");
    let mut out = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("rule specs exist")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "test"))
        .collect();
    files.sort();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        let mut current: Option<Case> = None;
        let mut in_message = false;
        for line in text.lines() {
            if let Some(title) = line.strip_prefix("=== ") {
                out.extend(current.take());
                current = Some(Case {
                    file: file.clone(),
                    title: title.trim().into(),
                    filters: vec![],
                    message: String::new(),
                    expect: String::new(),
                });
                in_message = false;
                continue;
            }
            let Some(case) = current.as_mut() else {
                continue;
            };
            if in_message && (line.starts_with("  ") || line.is_empty()) {
                case.message.push_str(line.strip_prefix("  ").unwrap_or(""));
                case.message.push_str("\r\n");
                continue;
            }
            in_message = false;
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            if let Some(name) = line.strip_prefix("filter ") {
                case.filters.push((name.trim().into(), vec![]));
            } else if line == "message" {
                in_message = true;
            } else if let Some(e) = line.strip_prefix("expect ") {
                case.expect = e.trim().into();
            } else if let Some((k, v)) = line.trim().split_once(':') {
                let f = case
                    .filters
                    .last_mut()
                    .expect("criterion after a filter line");
                f.1.push((k.trim().into(), v.trim().into()));
            } else {
                panic!("{file}: cannot read line {line:?}");
            }
        }
        out.extend(current.take());
    }
    out
}

fn build(name: &str, criteria: &[(String, String)]) -> Filter {
    let mut f = Filter {
        v: 1,
        name: name.into(),
        scope: Scope::Global,
        from: None,
        to: None,
        subject: None,
        body_any: vec![],
        body_all: vec![],
        action: Action::Skip,
        folder: None,
    };
    for (k, v) in criteria {
        match k.as_str() {
            "from" => f.from = Some(Pattern::new(v).unwrap()),
            "to" => f.to = Some(Pattern::new(v).unwrap()),
            "subject" => f.subject = Some(Pattern::new(v).unwrap()),
            "body-any" => f.body_any.push(v.clone()),
            "body-all" => f.body_all.push(v.clone()),
            other => panic!("unknown criterion {other}"),
        }
    }
    f
}

#[test]
fn filter_rule_specs() {
    let cases = cases();
    assert!(cases.len() >= 15, "too few rule cases: {}", cases.len());
    let mut failures = vec![];
    for c in &cases {
        let raw = c.message.trim_start().to_string();
        let parsed =
            parse(raw.as_bytes()).unwrap_or_else(|e| panic!("{}: {}: {e}", c.file, c.title));
        let input = FilterInput::from_parsed(&parsed);
        // Header-only view must agree with the parsed view on everything but the body.
        let headers = FilterInput::from_headers(raw.as_bytes());
        assert_eq!(headers.subject, input.subject, "{}: {}", c.file, c.title);
        assert_eq!(headers.from, input.from, "{}: {}", c.file, c.title);

        if let Some(name) = c.expect.strip_prefix("refused ") {
            let (n, crit) = c
                .filters
                .iter()
                .find(|f| f.0 == name)
                .expect("named filter");
            if build(n, crit).validate().is_ok() {
                failures.push(format!("{}: {}: {name} should be refused", c.file, c.title));
            }
            continue;
        }
        let mut matched: Vec<String> = c
            .filters
            .iter()
            .map(|(n, crit)| build(n, crit))
            .filter(|f| matches!(evaluate(f, &input), Verdict::Match(_)))
            .map(|f| f.name)
            .collect();
        matched.sort();
        let mut want: Vec<String> = if c.expect == "none" {
            vec![]
        } else {
            c.expect.split_whitespace().map(str::to_string).collect()
        };
        want.sort();
        if matched != want {
            failures.push(format!(
                "{}: {}: expected {want:?}, matched {matched:?}",
                c.file, c.title
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
