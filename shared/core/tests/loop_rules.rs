//! Loop safety (R-A2) and bounce facts (R-A4) over the real-shaped messages of
//! `tests/fixtures/loops` (format in its README): each `.eml` goes through the real ingest
//! (parse, bounds, the stored record) on the in-memory fakes, as LF and as CRLF, and
//! `dispatch::loops` must give exactly the reasons, reply address and bounce facts that
//! `loops.test` lists for it.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use mailroom_core::dispatch::loops::{
    auto_reply_suppression, bounced_addresses, reply_address, suppressions, Suppression,
};
use mailroom_core::ingest::IngestService;
use mailroom_core::limits::Limits;
use mailroom_core::memory::{MemoryBlobs, MemoryStore};
use mailroom_core::messages::IngestPointer;
use mailroom_core::model::EmailRecord;
use mailroom_core::ports::BlobStore;
use mailroom_core::signals::ReturnPath;

/// Mailroom's own addresses in every case (as a deployment lists its group accounts).
const OWN: [&str; 2] = ["support@example.test", "sales@example.test"];

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/loops")
}

struct Case {
    file: String,
    line: usize,
    /// (reason, fires)
    rules: Vec<(Suppression, bool)>,
    expects: Vec<(usize, String)>,
}

fn cases() -> Vec<Case> {
    let text = std::fs::read_to_string(dir().join("loops.test")).expect("loops.test exists");
    let mut out: Vec<Case> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(file) = line.strip_prefix("=== ") {
            out.push(Case {
                file: file.trim().into(),
                line: n,
                rules: vec![],
                expects: vec![],
            });
            continue;
        }
        let case = out
            .last_mut()
            .unwrap_or_else(|| panic!("loops.test:{n}: a line before the first ==="));
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["rule", r, how] => {
                let fires = match *how {
                    "fires" => true,
                    "does-not-fire" => false,
                    _ => panic!("loops.test:{n}: write `rule <reason> fires|does-not-fire`"),
                };
                let r: Suppression = r.parse().unwrap_or_else(|e| panic!("loops.test:{n}: {e}"));
                case.rules.push((r, fires));
            }
            ["expect", ..] => case.expects.push((n, line[7..].trim().to_string())),
            _ => panic!("loops.test:{n}: cannot read {line:?}"),
        }
    }
    out
}

/// The record ingest stores for `raw`.
async fn ingest(raw: Vec<u8>) -> EmailRecord {
    let (store, blobs, limits) = (
        MemoryStore::default(),
        MemoryBlobs::default(),
        Limits::default(),
    );
    let now: DateTime<Utc> = "2026-03-12T12:00:00Z".parse().unwrap();
    let size = raw.len() as u64;
    blobs.put("raw/1", raw, "message/rfc822").await.unwrap();
    let pointer = IngestPointer {
        v: 1,
        account: "support".into(),
        folder: "INBOX".into(),
        uidvalidity: 1,
        uid: 1,
        key: "raw/1".into(),
        size,
        arrived: Some(now),
        truncated: false,
        quarantine_id: None,
        fetch_error: None,
    };
    let ingest = IngestService {
        emails: &store,
        blobs: &blobs,
        limits: &limits,
        filters: &[],
        skips: &store,
    };
    let (outcome, email) = ingest.ingest_with_record(&pointer, now).await.unwrap();
    email.unwrap_or_else(|| panic!("not imported: {outcome:?}"))
}

fn names(list: &[Suppression]) -> String {
    match list.is_empty() {
        true => "none".into(),
        false => list
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// What the email says, in the words of the expect lines.
fn facts(e: &EmailRecord, own: &[String]) -> BTreeMap<&'static str, String> {
    let opt = |v: Option<&str>| v.unwrap_or("none").to_string();
    let mut f = BTreeMap::new();
    f.insert("reasons", names(&suppressions(e, own)));
    f.insert("reply-address", opt(reply_address(e).as_deref()));
    let flags: Vec<&str> = [
        ("auto_submitted", e.auto_submitted),
        ("list", e.list),
        ("bounce", e.bounce),
        ("dmarc_fail", e.dmarc_fail),
    ]
    .iter()
    .filter(|(_, on)| *on)
    .map(|(n, _)| *n)
    .collect();
    f.insert(
        "flags",
        match flags.is_empty() {
            true => "none".into(),
            false => flags.join(" "),
        },
    );
    f.insert(
        "bounce",
        match &e.bounce_of {
            None => "none".into(),
            Some(b) => format!(
                "{} original={}",
                serde_json::to_value(b.source).unwrap().as_str().unwrap(),
                opt(b.original_message_id.as_deref())
            ),
        },
    );
    let bounce = e.bounce_of.as_ref();
    f.insert(
        "original-mailroom-id",
        opt(bounce.and_then(|b| b.original_mailroom_id.as_deref())),
    );
    f.insert("ses-id", opt(bounce.and_then(|b| b.ses_message_id())));
    f.insert(
        "dropped",
        bounce.map_or(0, |b| b.recipients_dropped).to_string(),
    );
    let failed: Vec<String> = bounced_addresses(e)
        .iter()
        .map(|(a, p)| format!("{a} {}", if *p { "permanent" } else { "transient" }))
        .collect();
    f.insert("failed", failed.join(", "));
    f.insert("failed-count", failed.len().to_string());
    f.insert(
        "return-path",
        match &e.signals.return_path {
            ReturnPath::Missing => "missing".into(),
            ReturnPath::Empty => "empty".into(),
            ReturnPath::Address(a) => a.clone(),
        },
    );
    f.insert(
        "spam",
        match e.signals.spam.is_empty() {
            true => "none".into(),
            false => e
                .signals
                .spam
                .iter()
                .map(|v| {
                    serde_json::to_value(v)
                        .unwrap()
                        .as_str()
                        .unwrap()
                        .to_string()
                })
                .collect::<Vec<_>>()
                .join(" "),
        },
    );
    f.insert("mailroom-id", opt(e.signals.mailroom_id.as_deref()));
    f
}

/// Checks one variant; returns the failures.
fn check(case: &Case, e: &EmailRecord, variant: &str) -> Vec<String> {
    let own: Vec<String> = OWN.iter().map(|s| s.to_string()).collect();
    let got = facts(e, &own);
    let reasons = suppressions(e, &own);
    let mut failures = Vec::new();
    let mut fail = |line: usize, msg: String| {
        failures.push(format!("{} ({variant}) line {line}: {msg}", case.file))
    };
    // The first reason is the one recorded: auto_reply_suppression must agree.
    if auto_reply_suppression(e, &own) != reasons.first().copied() {
        fail(
            case.line,
            "auto_reply_suppression is not the first reason".into(),
        );
    }
    for (r, fires) in &case.rules {
        if reasons.contains(r) != *fires {
            fail(
                case.line,
                format!(
                    "rule {r} {}, but the reasons are {}",
                    if *fires { "fires" } else { "does-not-fire" },
                    names(&reasons)
                ),
            );
        }
    }
    // Failed recipients are listed one line each; all of them, in order.
    let failed: Vec<&str> = case
        .expects
        .iter()
        .filter_map(|(_, l)| l.strip_prefix("failed "))
        .collect();
    if failed.join(", ") != got["failed"] {
        fail(
            case.line,
            format!(
                "failed recipients: expected [{}], got [{}]",
                failed.join(", "),
                got["failed"]
            ),
        );
    }
    for (n, line) in &case.expects {
        if line.starts_with("failed ") {
            continue;
        }
        let (key, want) = line.split_once(' ').unwrap_or((line, ""));
        match got.get(key) {
            None => fail(*n, format!("unknown expect {key:?}")),
            Some(v) if v != want.trim() => fail(*n, format!("expect {line}: got {v}")),
            Some(_) => {}
        }
    }
    failures
}

#[tokio::test]
async fn loop_rules_over_the_fixtures() {
    let cases = cases();
    let mut failures = Vec::new();
    let mut seen: BTreeSet<(Suppression, bool)> = BTreeSet::new();
    let mut files: BTreeSet<String> = BTreeSet::new();
    for case in &cases {
        if !files.insert(case.file.clone()) {
            failures.push(format!("{}: listed twice", case.file));
        }
        for required in ["reasons", "reply-address", "flags", "bounce"] {
            if !case
                .expects
                .iter()
                .any(|(_, l)| l.split_whitespace().next() == Some(required))
            {
                failures.push(format!("{}: no `expect {required}` line", case.file));
            }
        }
        if case.rules.is_empty() {
            failures.push(format!("{}: no `rule` line", case.file));
        }
        seen.extend(case.rules.iter().copied());
        let lf =
            std::fs::read(dir().join(&case.file)).unwrap_or_else(|e| panic!("{}: {e}", case.file));
        for (variant, raw) in [("lf", lf.clone()), ("crlf", common::to_crlf(&lf))] {
            let email = ingest(raw).await;
            failures.extend(check(case, &email, variant));
        }
    }
    // Every fixture has its expectations, and every reason is seen firing and not firing.
    for f in std::fs::read_dir(dir()).unwrap() {
        let name = f.unwrap().file_name().to_string_lossy().to_string();
        if name.ends_with(".eml") && !files.contains(&name) {
            failures.push(format!("{name}: not in loops.test"));
        }
    }
    for r in Suppression::ALL {
        for fires in [true, false] {
            if !seen.contains(&(r, fires)) {
                let how = if fires { "fires" } else { "does-not-fire" };
                failures.push(format!("no fixture where {r} {how}"));
            }
        }
    }
    assert!(cases.len() >= 40, "too few loop fixtures: {}", cases.len());
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    println!("checked {} loop fixtures, LF and CRLF", cases.len());
}
