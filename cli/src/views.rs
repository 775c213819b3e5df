//! JSON shapes of `--json` output. These are a contract other checks use: add fields freely,
//! never rename or remove one.

use mailroom_core::model::{Account, Body, EmailRecord, QuarantineRecord};
use serde_json::{json, Value};

pub fn account(a: &Account) -> Value {
    json!({
        "name": a.name,
        "kind": a.kind,
        "address": a.address,
        "owner": a.owner,
        "imap_host": a.imap.host,
        "imap_port": a.imap.port,
        "imap_user": a.imap.user,
        "security": a.imap.security,
        "folders": a.folders,
        "fetch_since": a.fetch_since,
        "teams": a.teams,
        "active": a.active,
        "created_at": a.created_at,
    })
}

pub fn status(a: &Account) -> Value {
    let s = &a.status;
    json!({
        "name": a.name,
        "account": a.name,
        "active": a.active,
        "last_success": s.last_success,
        "last_error": s.last_error,
        "last_error_kind": s.last_error_kind,
        "last_error_at": s.last_error_at,
        "consecutive_failures": s.consecutive_failures,
        "failing_since": s.failing_since,
        "backoff_until": s.backoff_until,
        "last_mail_at": s.last_mail_at,
        "case_error": a.case_error,
        "case_error_at": a.case_error_at,
        "folders": a.folder_state.iter().map(|(f, st)| (f.clone(), json!({
            "uidvalidity": st.uidvalidity,
            "last_uid": st.last_uid,
            "last_arrival": st.last_arrival,
        }))).collect::<serde_json::Map<_, _>>(),
    })
}

fn body_len(b: &Option<Body>) -> u64 {
    match b {
        None => 0,
        Some(Body::Inline(s)) => s.len() as u64,
        Some(Body::Stored { bytes, .. }) => *bytes,
    }
}

/// `names` maps contact and lead addresses to their names, for `parent.name`.
pub fn email(e: &EmailRecord, names: &std::collections::HashMap<String, String>) -> Value {
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
pub fn record_ref(r: &mailroom_core::records::RecordRef) -> Value {
    use mailroom_core::records::RecordKind;
    let mut v = json!({"type": r.kind.as_str(), "id": r.id});
    match r.kind {
        RecordKind::Case => v["number"] = json!(r.id.parse::<u64>().ok()),
        RecordKind::Contact | RecordKind::Lead => v["email"] = json!(r.id),
        _ => v["name"] = json!(r.id),
    }
    v
}

pub fn quarantine(q: &QuarantineRecord) -> Value {
    json!({
        "id": q.id,
        "message_id": q.message_id,
        "account": q.account,
        "reason": q.reason,
        "folder": q.folder,
        "uid": q.uid,
        "size": q.size,
        "raw_key": q.raw_key,
        "quarantined_at": q.quarantined_at,
    })
}

pub fn skipped(r: &mailroom_core::filters::SkippedRecord) -> Value {
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

pub fn filter(f: &mailroom_core::filters::Filter) -> Value {
    json!({
        "name": f.name,
        "scope": f.scope.to_string(),
        "from": f.from.as_ref().map(|p| p.as_str()),
        "to": f.to.as_ref().map(|p| p.as_str()),
        "subject": f.subject.as_ref().map(|p| p.as_str()),
        "body_any": f.body_any,
        "body_all": f.body_all,
        "action": f.action,
        "folder": f.folder,
    })
}
