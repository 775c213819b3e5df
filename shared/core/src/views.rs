//! The JSON forms of accounts, account status, quarantined messages and filters: what
//! `mailroom ... --json` prints (a contract other checks use: add fields freely, never rename
//! or remove one) and what the API builds its views on, so the two never drift apart. None
//! holds a credential.

use serde_json::{json, Value};

use crate::filters::Filter;
use crate::model::{Account, QuarantineRecord};

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
        "identity": a.identity,
        "send_error": a.send_error,
        "send_error_at": a.send_error_at,
        "folders": a.folder_state.iter().map(|(f, st)| (f.clone(), json!({
            "uidvalidity": st.uidvalidity,
            "last_uid": st.last_uid,
            "last_arrival": st.last_arrival,
        }))).collect::<serde_json::Map<_, _>>(),
    })
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

pub fn filter(f: &Filter) -> Value {
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
