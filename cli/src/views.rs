//! Everything the CLI prints, in one place: stdout, text and JSON, and the one-line notes on
//! stderr (`note`). Polling progress (`cycle`) and the final `error:` line are the exceptions.
//!
//! The JSON shapes of `--json` output are a contract other checks use: add fields freely,
//! never rename or remove one. The text forms are for people; they are built here too, so a
//! command only gathers data and picks one of the two.

use std::collections::HashMap;

use mailroom_aws::config::Resources;
use mailroom_core::filters::{Filter, InboxCopy, SkippedRecord};
use mailroom_core::model::{Account, Body, EmailRecord, QuarantineRecord};
use mailroom_core::records::{Case, RecordKind, RecordRef, StreamEntry, User};
use serde::Serialize;
use serde_json::{json, Value};

pub use mailroom_core::views::{account, filter, quarantine, status};

use crate::cycle::AccountCycle;
use crate::local::{LocalMailbox, StackInfo};
use crate::samples::Prepared;

fn body_len(b: &Option<Body>) -> u64 {
    match b {
        None => 0,
        Some(Body::Inline(s)) => s.len() as u64,
        Some(Body::Stored { bytes, .. }) => *bytes,
    }
}

/// `names` maps contact and lead addresses to their names, for `parent.name`.
pub fn email(e: &EmailRecord, names: &HashMap<String, String>) -> Value {
    json!({
        "email_id": e.email_id,
        "message_id": e.message_id,
        "synthetic_message_id": e.synthetic_id,
        "subject": e.subject,
        "from": e.from.as_ref().map(|f| f.address.clone()),
        "from_name": e.from.as_ref().and_then(|f| f.name.clone()),
        "to": e.to.iter().map(|a| a.address.clone()).collect::<Vec<_>>(),
        "cc": e.cc.iter().map(|a| a.address.clone()).collect::<Vec<_>>(),
        "date": e.date,
        "in_reply_to": e.in_reply_to,
        "references": e.references,
        "accounts": e.accounts,
        "auto_submitted": e.auto_submitted,
        "list": e.list,
        "bounce": e.bounce,
        "size": e.size,
        "attachments_skipped": e.attachments_skipped,
        "text_bytes": body_len(&e.text),
        "html_bytes": body_len(&e.html),
        "attachments": e.attachments.iter().map(|a| json!({
            "filename": a.filename,
            "content_type": a.content_type,
            "size": a.size,
            "inline": a.inline,
            "content_id": a.content_id,
        })).collect::<Vec<_>>(),
        "received_at": e.received_at,
        "parent": e.parent.as_ref().map(|p| {
            let mut v = record_ref(p);
            if let Some(name) = names.get(&p.id) {
                v["name"] = json!(name);
            }
            v
        }),
        "case": e.case,
        "teams": e.teams,
    })
}

/// `{"type": "case", "id": "42", "number": 42}`, `{"type": "account", "id": "Acme", "name": "Acme"}`.
pub fn record_ref(r: &RecordRef) -> Value {
    let mut v = json!({"type": r.kind.as_str(), "id": r.id});
    match r.kind {
        RecordKind::Case => v["number"] = json!(r.id.parse::<u64>().ok()),
        RecordKind::Contact | RecordKind::Lead => v["email"] = json!(r.id),
        _ => v["name"] = json!(r.id),
    }
    v
}

/// A CRM record as stored, with its `type` (`records list`).
pub fn record(kind: RecordKind, mut r: Value) -> Value {
    r["type"] = json!(kind.as_str());
    r
}

pub fn skipped(r: &SkippedRecord) -> Value {
    json!({
        "message_id": r.message_id,
        "account": r.account,
        "subject": r.subject,
        "from": r.from,
        "filter": r.filter,
        "reasons": r.reasons,
        "stage": r.stage,
        "folder": r.folder,
        "uid": r.uid,
        "at": r.at,
    })
}

/// `mailroom local up --json`: the stack, the prefix's resources and the local mailboxes.
pub fn local_up(
    info: &StackInfo,
    prefix: &str,
    mailboxes: &[LocalMailbox],
    r: &Resources,
    api_url: &str,
) -> Value {
    json!({
        "aws_endpoint": info.aws_endpoint,
        "api_url": api_url,
        "imap_host": info.imap_host,
        "imap_port": info.imap_port,
        "imaps_port": info.imaps_port,
        "lmtp_port": info.lmtp_port,
        "ca_file": info.ca_file,
        "local_dir": info.local_dir,
        "prefix": prefix,
        "mailboxes": mailboxes,
        "resources": {
            "table": r.table,
            "bucket": r.bucket,
            "poll_queue_url": r.poll_queue_url,
            "ingest_queue_url": r.ingest_queue_url,
            "dispatch_queue_url": r.dispatch_queue_url,
            "kms_key_id": r.kms_key_id,
        },
    })
}

/// `contact` is the contact's name when known, else its address.
pub fn case(c: &Case, contact: Option<String>, emails: &[String]) -> Value {
    json!({
        "number": c.number,
        "name": c.name,
        "status": format!("{:?}", c.status),
        "assigned_user": c.assigned_user,
        "account": c.account,
        "contact": contact,
        "contact_email": c.contact,
        "lead": c.lead,
        "teams": c.teams,
        "mail_account": c.mail_account,
        "emails": emails,
        "created_at": c.created_at,
    })
}

/// One filter's verdict on a message (`mailroom filters test`).
pub fn filter_test(f: &Filter, matches: bool, reasons: &[String]) -> Value {
    json!({"filter": f.name, "scope": f.scope.to_string(), "action": f.action,
    "folder": f.folder, "matches": matches, "reasons": reasons})
}

/// `mailroom quarantine replay`: `reason` is set while the message is still quarantined.
pub fn replay(
    id: &str,
    t: &AccountCycle,
    account: &str,
    reason: Option<String>,
    still: bool,
) -> Value {
    json!({
        "id": id,
        "account": account,
        "imported": t.imported,
        "duplicates": t.duplicates,
        "quarantined": still,
        "reason": reason,
    })
}

// ---- Printing: each command's output, as JSON (`--json`) or as text.

/// Prints one JSON document on stdout: all that `--json` puts there.
pub fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).expect("serialises"));
}

/// Prints a value's own serde form (users, inbox copies, stream entries, local mailboxes).
pub fn print_serialized(v: &impl Serialize) -> anyhow::Result<()> {
    print_json(&serde_json::to_value(v)?);
    Ok(())
}

/// A confirmation or count for people: stderr, so `--json` stdout stays one document.
pub fn note(msg: impl std::fmt::Display) {
    eprintln!("{msg}");
}

fn opt(v: &Option<impl std::fmt::Display>) -> String {
    v.as_ref()
        .map(|x| x.to_string())
        .unwrap_or_else(|| "-".into())
}

fn first_chars(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

pub fn print_local_up(
    info: &StackInfo,
    prefix: &str,
    mailboxes: &[LocalMailbox],
    resources: &Resources,
    api_url: &str,
    json: bool,
) {
    if json {
        print_json(&local_up(info, prefix, mailboxes, resources, api_url));
    } else {
        println!(
            "local stack up: AWS at {}, IMAP at {}:{} (TLS {}), prefix {}, API at {}",
            info.aws_endpoint, info.imap_host, info.imap_port, info.imaps_port, prefix, api_url
        );
        for m in mailboxes {
            println!("  mailbox {} (password {})", m.user, m.password);
        }
    }
}

/// `local prepare-events`: what the sample events will find.
pub fn print_prepared_events(prepared: &Prepared, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(prepared)?);
        return Ok(());
    }
    println!("sample events ready (prefix {}):", prepared.prefix);
    for a in &prepared.accounts {
        println!(
            "  account {}: {}; mailbox {} holds {} message(s), {} delivered now",
            a.name,
            if a.created { "created" } else { "kept" },
            a.mailbox,
            a.messages,
            a.delivered
        );
    }
    for o in &prepared.objects {
        println!("  s3://{}/{} <- {}", o.bucket, o.key, o.fixture);
    }
    Ok(())
}

pub fn print_mailboxes(list: &[LocalMailbox], json: bool) -> anyhow::Result<()> {
    if json {
        print_serialized(&list)?;
    } else {
        for m in list {
            println!("{}", m.user);
        }
    }
    Ok(())
}

pub fn print_accounts(list: &[Account], json: bool) {
    if json {
        print_json(&Value::Array(list.iter().map(account).collect()));
    } else {
        for a in list {
            println!(
                "{:<24} {:<8} {}@{}:{} {:?}",
                a.name,
                format!("{:?}", a.kind).to_lowercase(),
                a.imap.user,
                a.imap.host,
                a.imap.port,
                a.folders
            );
        }
    }
}

/// The per-account table of one polling cycle (`poll`, `dlq redrive`, `demo`).
pub fn print_cycle(totals: &[AccountCycle]) {
    println!(
        "{:<28} {:>7} {:>8} {:>10} {:>11} {:>7} {:>5} {:>7} {:>10} {:>8} {:>6}",
        "account",
        "fetched",
        "imported",
        "duplicates",
        "quarantined",
        "skipped",
        "cases",
        "replies",
        "suppressed",
        "notified",
        "errors"
    );
    for t in totals {
        println!(
            "{:<28} {:>7} {:>8} {:>10} {:>11} {:>7} {:>5} {:>7} {:>10} {:>8} {:>6}{}",
            t.account,
            t.fetched,
            t.imported,
            t.duplicates,
            t.quarantined,
            t.skipped,
            t.cases_created,
            t.auto_replies,
            t.suppressed,
            t.notifications,
            t.errors,
            t.error
                .as_ref()
                .map(|e| format!("  ({}: {e})", opt(&t.error_kind)))
                .unwrap_or_default()
        );
    }
}

pub fn print_poll(totals: &[AccountCycle], json: bool) -> anyhow::Result<()> {
    if json {
        print_serialized(&totals)?;
    } else {
        print_cycle(totals);
    }
    Ok(())
}

pub fn print_redrive(queue: &str, moved: usize, totals: &[AccountCycle], json: bool) {
    if json {
        print_json(&json!({"queue": queue, "moved": moved, "accounts": totals}));
    } else {
        note(format!(
            "moved {moved} message(s) from the {queue} dead-letter queue"
        ));
        print_cycle(totals);
    }
}

pub fn print_emails(emails: &[EmailRecord], names: &HashMap<String, String>, json: bool) {
    if json {
        print_json(&Value::Array(
            emails.iter().map(|e| email(e, names)).collect(),
        ));
    } else {
        for e in emails {
            println!(
                "{}  {:<40}  {:<30}  [{}]",
                e.date
                    .map(|d| d.format("%Y-%m-%d %H:%M").to_string())
                    .unwrap_or_else(|| "-".repeat(16)),
                first_chars(e.subject.as_deref().unwrap_or("(no subject)"), 40),
                e.from.as_ref().map(|f| f.address.as_str()).unwrap_or("-"),
                e.accounts.join(", ")
            );
        }
        note(format!("{} email(s)", emails.len()));
    }
}

pub fn print_status(accounts: &[Account], json: bool) {
    if json {
        print_json(&Value::Array(accounts.iter().map(status).collect()));
    } else {
        for a in accounts {
            let s = &a.status;
            println!(
                "{:<24} last success {}  failures {}  last error {} {}",
                a.name,
                opt(&s.last_success.map(|t| t.format("%Y-%m-%d %H:%M:%S"))),
                s.consecutive_failures,
                opt(&s.last_error_kind),
                s.last_error.as_deref().unwrap_or("")
            );
            if let Some(e) = &a.send_error {
                println!("{:<24} sending refused: {e}", "");
            }
        }
    }
}

pub fn print_quarantine(list: &[QuarantineRecord], json: bool) {
    if json {
        print_json(&Value::Array(list.iter().map(quarantine).collect()));
    } else {
        for q in list {
            println!(
                "{}  {:<20}  {:<30}  {}",
                q.id,
                q.account,
                q.message_id.as_deref().unwrap_or("-"),
                q.reason
            );
        }
        note(format!("{} quarantined message(s)", list.len()));
    }
}

pub fn print_replay(
    id: &str,
    t: &AccountCycle,
    account: &str,
    reason: Option<String>,
    still: bool,
    json: bool,
) {
    let out = replay(id, t, account, reason, still);
    if json {
        print_json(&out);
    } else if still {
        println!(
            "{id} is still quarantined: {}",
            out["reason"].as_str().unwrap_or("")
        );
    } else {
        println!("{id} imported");
    }
}

pub fn print_teams(teams: &[String], json: bool) {
    if json {
        print_json(&json!(teams
            .iter()
            .map(|t| json!({"name": t}))
            .collect::<Vec<_>>()));
    } else {
        teams.iter().for_each(|t| println!("{t}"));
    }
}

pub fn print_roles(roles: &[mailroom_core::access::Role], json: bool) -> anyhow::Result<()> {
    if json {
        print_serialized(&roles)?;
    } else {
        for r in roles {
            println!(
                "{:<20} group accounts: {}",
                r.name,
                r.group_account_permission.as_str()
            );
        }
    }
    Ok(())
}

pub fn print_users(users: &[User], json: bool) -> anyhow::Result<()> {
    if json {
        print_serialized(&users)?;
    } else {
        for u in users {
            println!(
                "{:<20} {:<30} {}{}",
                u.name,
                u.emails.join(","),
                u.teams
                    .iter()
                    .map(|t| match &t.position {
                        Some(p) => format!("{}:{p}", t.team),
                        None => t.team.clone(),
                    })
                    .collect::<Vec<_>>()
                    .join(","),
                if u.active { "" } else { " (inactive)" }
            );
        }
    }
    Ok(())
}

/// Records in their JSON form (see [`record`]).
pub fn print_records(all: Vec<Value>, json: bool) {
    if json {
        print_json(&Value::Array(all));
    } else {
        for r in all {
            println!(
                "{:<12} {:<30} {}",
                r["type"].as_str().unwrap_or(""),
                r["name"]
                    .as_str()
                    .map(str::to_string)
                    .or_else(|| r["number"].as_u64().map(|n| n.to_string()))
                    .unwrap_or_default(),
                r["email"].as_str().unwrap_or("")
            );
        }
    }
}

/// Cases in their JSON form (see [`case`]).
pub fn print_cases(out: Vec<Value>, json: bool) {
    if json {
        print_json(&Value::Array(out));
    } else {
        for c in out {
            println!(
                "#{:<5} {:<9} {:<12} {:<40} {} email(s)",
                c["number"],
                c["status"].as_str().unwrap_or(""),
                c["assigned_user"].as_str().unwrap_or("-"),
                c["name"].as_str().unwrap_or(""),
                c["emails"].as_array().map(|a| a.len()).unwrap_or(0)
            );
        }
    }
}

pub fn print_filters(list: &[Filter], json: bool) {
    if json {
        print_json(&Value::Array(list.iter().map(filter).collect()));
    } else {
        for f in list {
            println!("{:<24} {:<22} {:?}", f.name, f.scope.to_string(), f.action);
        }
    }
}

/// Verdicts in their JSON form (see [`filter_test`]).
pub fn print_filter_test(out: Vec<Value>, json: bool) {
    if json {
        print_json(&Value::Array(out));
    } else {
        for o in &out {
            println!(
                "{:<24} {:<9} {}",
                o["filter"].as_str().unwrap_or(""),
                if o["matches"] == true {
                    "MATCH"
                } else {
                    "no match"
                },
                o["reasons"]
                    .as_array()
                    .map(|r| r
                        .iter()
                        .filter_map(|x| x.as_str())
                        .collect::<Vec<_>>()
                        .join("; "))
                    .unwrap_or_default()
            );
        }
    }
}

pub fn print_skipped(list: &[SkippedRecord], json: bool) {
    if json {
        print_json(&Value::Array(list.iter().map(skipped).collect()));
    } else {
        for r in list {
            println!(
                "{:<20} {:<36} {:<40} {}",
                r.account,
                r.message_id.as_deref().unwrap_or("-"),
                first_chars(r.subject.as_deref().unwrap_or(""), 40),
                r.filter
            );
        }
        note(format!("{} skipped message(s)", list.len()));
    }
}

pub fn print_inbox(list: &[InboxCopy], json: bool) -> anyhow::Result<()> {
    if json {
        print_serialized(&list)?;
    } else {
        for c in list {
            println!(
                "{:<12} {} {:<40} {}",
                c.folder,
                if c.read { "read  " } else { "unread" },
                first_chars(c.subject.as_deref().unwrap_or(""), 40),
                c.message_id
            );
        }
    }
    Ok(())
}

pub fn print_stream(entries: &[StreamEntry], json: bool) -> anyhow::Result<()> {
    if json {
        print_serialized(&entries)?;
    } else {
        for e in entries {
            println!(
                "{}  {:<15} {}  {}",
                e.at.format("%Y-%m-%d %H:%M"),
                e.kind,
                e.message_id.as_deref().unwrap_or("-"),
                e.subject.as_deref().unwrap_or("")
            );
        }
    }
    Ok(())
}

// ---- The demo's first look (stdout; its progress notes go to stderr).

pub fn demo_heading(title: &str) {
    println!("\n== {title} ==");
}

pub fn demo_email(e: &EmailRecord) {
    println!(
        "  {:<45} from {:<32} {} attachment(s)",
        first_chars(e.subject.as_deref().unwrap_or("(no subject)"), 45),
        e.from.as_ref().map(|f| f.address.as_str()).unwrap_or("-"),
        e.attachments.len()
    );
}

/// `emails`: how many emails the case's timeline holds.
pub fn demo_case(c: &Case, emails: usize) {
    println!(
        "  #{:<5} {:<9} {:<5} {:<45} {} email(s)",
        c.number,
        format!("{:?}", c.status),
        c.assigned_user.as_deref().unwrap_or("-"),
        first_chars(&c.name, 45),
        emails
    );
}

pub fn demo_quarantined(q: &QuarantineRecord) {
    println!("  {}  {}", q.id, q.reason);
}

pub fn demo_explore(prefix: &str) {
    println!(
        "\nExplore (this demo's data lives under its own prefix):\n  cargo run --release --bin mailroom -- --prefix {prefix} emails list\n  cargo run --release --bin mailroom -- --prefix {prefix} cases list\n  cargo run --release --bin mailroom -- --prefix {prefix} status\n\nThe API over the same data (ann is an agent of the team):\n  api=$(cargo run --release --bin mailroom -- --prefix {prefix} local up --json | jq -r .api_url)\n  curl -s \"$api/v1/cases\" -H \"Authorization: Bearer $(cargo run --release --bin mailroom -- local token ann)\""
    );
}

/// One sent email as `sent list --json` shows it (a contract: `to`, `subject`, `kind`,
/// `in_reply_to`, `message_id`, `ses_message_id`).
pub fn sent(r: &mailroom_core::dispatch::records::SentRecord) -> Value {
    json!({
        "id": r.id,
        "kind": r.kind.as_str(),
        "account": r.account,
        "from": r.from,
        "to": r.to,
        "subject": r.subject,
        "in_reply_to": r.in_reply_to,
        "message_id": r.message_id,
        "ses_message_id": r.ses_message_id,
        "email_id": r.email_id,
        "parent": r.parent.as_ref().map(|p| p.to_string()),
        "case": r.case.map(|c| c.get()),
        "sent_at": r.sent_at,
    })
}

/// One auto-reply or notification email not sent, with why (`sent list --suppressed`).
pub fn suppressed(r: &mailroom_core::dispatch::records::SuppressedRecord) -> Value {
    json!({
        "id": r.id,
        "kind": r.kind.as_str(),
        "account": r.account,
        "email_id": r.email_id,
        "in_reply_to": r.message_id,
        "to": r.to,
        "reason": r.reason,
        "detail": r.detail,
        "at": r.at,
    })
}

pub fn print_sent(list: &[mailroom_core::dispatch::records::SentRecord], json: bool) {
    if json {
        print_json(&Value::Array(list.iter().map(sent).collect()));
    } else {
        for r in list {
            println!(
                "{:<13} {:<30} {:<40} {}",
                r.kind.as_str(),
                r.to.join(","),
                first_chars(&r.subject, 40),
                r.ses_message_id
            );
        }
    }
}

pub fn print_suppressed(list: &[mailroom_core::dispatch::records::SuppressedRecord], json: bool) {
    if json {
        print_json(&Value::Array(list.iter().map(suppressed).collect()));
    } else {
        for r in list {
            println!(
                "{:<13} {:<30} {:<22} {}",
                r.kind.as_str(),
                opt(&r.to),
                r.reason,
                r.message_id
            );
        }
    }
}

/// One notification as `notifications list --json` shows it (a contract: `kind`, `email`
/// (Message-ID), `record`, `read`).
pub fn notification(n: &mailroom_core::dispatch::records::Notification) -> Value {
    json!({
        "user": n.user,
        "key": n.key,
        "kind": n.kind.as_str(),
        "email": n.email,
        "email_id": n.email_id,
        "record": n.record.as_ref().map(|r| r.to_string()),
        "account": n.account,
        "summary": n.summary,
        "read": n.read,
        "at": n.at,
    })
}

pub fn print_notifications(list: &[mailroom_core::dispatch::records::Notification], json: bool) {
    if json {
        print_json(&Value::Array(list.iter().map(notification).collect()));
    } else {
        for n in list {
            println!(
                "{:<16} {:<5} {:<24} {:<40} {}",
                n.kind.as_str(),
                if n.read { "read" } else { "new" },
                n.record
                    .as_ref()
                    .map(|r| r.to_string())
                    .unwrap_or_else(|| n.account.clone()),
                first_chars(&n.summary, 40),
                n.email.as_deref().unwrap_or("")
            );
        }
    }
}
