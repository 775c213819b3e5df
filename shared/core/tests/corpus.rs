//! Runs every message of `tests/fixtures/eml` through `parse`, as LF and as CRLF, and compares
//! with the expected JSON beside it. Fields listed in `lenient` are not compared (genuinely
//! ambiguous input); everything else must match exactly.

mod common;

use std::path::{Path, PathBuf};

use mailroom_core::model::MailAddr;
use mailroom_core::parse::{parse, ParsedEmail};
use serde_json::{json, Value};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/eml")
}

fn files() -> Vec<PathBuf> {
    let mut out = vec![];
    for group in std::fs::read_dir(corpus_dir()).expect("corpus exists") {
        let group = group.unwrap().path();
        if !group.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&group).unwrap() {
            let f = f.unwrap().path();
            if f.extension().is_some_and(|e| e == "eml") {
                out.push(f);
            }
        }
    }
    out.sort();
    out
}

fn addr(a: &MailAddr) -> Value {
    json!({"name": a.name, "address": a.address})
}

fn actual(p: &ParsedEmail) -> Value {
    json!({
        "outcome": "ok",
        "message_id": if p.synthetic_id { Value::Null } else { json!(p.message_id) },
        "subject": p.subject,
        "from": p.from.as_ref().map(addr),
        "to": p.to.iter().map(addr).collect::<Vec<_>>(),
        "cc": p.cc.iter().map(addr).collect::<Vec<_>>(),
        "reply_to": p.reply_to.iter().map(addr).collect::<Vec<_>>(),
        "date": p.date.map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
        "in_reply_to": p.in_reply_to,
        "references": p.references,
        "auto_submitted": p.auto_submitted,
        "list": p.list,
        "bounce": p.bounce,
        "has_html": p.html.is_some(),
        "attachments": p.attachments.iter().map(|a| json!({
            "filename": a.filename,
            "content_type": a.content_type,
            "size": a.data.len(),
            "inline": a.inline,
            "content_id": a.content_id,
        })).collect::<Vec<_>>(),
    })
}

/// A `message/*` part is not transfer-encoded, so CRLF input makes it longer by one byte per
/// line; every other size must match exactly.
fn sizes_match(expected: &Value, actual: &Value, crlf: bool) -> bool {
    let (Some(e), Some(a)) = (expected.as_array(), actual.as_array()) else {
        return false;
    };
    e.len() == a.len()
        && e.iter().zip(a).all(|(e, a)| {
            let same_meta = ["filename", "content_type", "inline", "content_id"]
                .iter()
                .all(|k| e[k] == a[k]);
            let (es, as_) = (e["size"].as_u64().unwrap(), a["size"].as_u64().unwrap());
            let size_ok = es == as_
                || (crlf
                    && e["content_type"]
                        .as_str()
                        .unwrap_or("")
                        .starts_with("message/")
                    && as_ > es
                    && as_ - es <= es / 20 + 2);
            same_meta && size_ok
        })
}

#[test]
fn corpus_parses_as_expected_with_lf_and_crlf() {
    let files = files();
    assert!(files.len() >= 30, "corpus too small: {}", files.len());
    let mut failures = vec![];
    let mut checked = 0;
    for file in &files {
        let expected: Value =
            serde_json::from_str(&std::fs::read_to_string(file.with_extension("json")).unwrap())
                .unwrap();
        let lenient: Vec<String> = expected["lenient"]
            .as_array()
            .map(|l| l.iter().map(|v| v.as_str().unwrap().to_string()).collect())
            .unwrap_or_default();
        let lf = std::fs::read(file).unwrap();
        for (variant, raw) in [("lf", lf.clone()), ("crlf", common::to_crlf(&lf))] {
            checked += 1;
            let name = format!("{} ({variant})", file.display());
            match parse(&raw) {
                Err(reason) => {
                    if expected["outcome"] != "quarantine" {
                        failures.push(format!("{name}: quarantined ({reason}) but expected ok"));
                    }
                }
                Ok(p) => {
                    if expected["outcome"] == "quarantine" {
                        failures.push(format!("{name}: parsed but expected quarantine"));
                        continue;
                    }
                    let got = actual(&p);
                    for (key, want) in expected.as_object().unwrap() {
                        if key == "lenient" || key == "text_contains" || lenient.contains(key) {
                            continue;
                        }
                        let ok = if key == "attachments" {
                            sizes_match(want, &got[key], variant == "crlf")
                        } else {
                            got[key] == *want
                        };
                        if !ok {
                            failures
                                .push(format!("{name}: {key}: expected {want}, got {}", got[key]));
                        }
                    }
                    if !lenient.iter().any(|l| l == "text_contains") {
                        let text = p.text.replace("\r\n", "\n");
                        for phrase in expected["text_contains"].as_array().unwrap() {
                            let phrase = phrase.as_str().unwrap();
                            if !text.contains(phrase) {
                                failures.push(format!(
                                    "{name}: text lacks {phrase:?}; text starts {:?}",
                                    text.chars().take(200).collect::<String>()
                                ));
                            }
                        }
                    }
                }
            }
        }
    }
    assert!(checked >= 60);
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
