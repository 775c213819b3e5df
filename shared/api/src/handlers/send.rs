//! Sending (R-S1..R-S5): a new message, a reply or reply-all to a stored email, and the
//! prepared reply without sending it. What may be sent, from where and to whom is decided in
//! `mailroom_core::outbox` (access first: a 403 sends and stores nothing, whatever else the
//! request holds).

use std::hash::{BuildHasher, Hasher};

use chrono::Utc;
use mailroom_aws::{DynamoStore, SesMailer};
use mailroom_core::access::Caller;
use mailroom_core::dispatch::mime::Mailbox;
use mailroom_core::dispatch::records::SentRecord;
use mailroom_core::outbox::request::{ReplyRequest, SendRequest};
use mailroom_core::outbox::service::send_id;
use mailroom_core::outbox::{Outbox, SendError};
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::handlers::Module;
use crate::request::ApiRequest;
use crate::routes::Route;
use crate::{Api, Reply};

pub const ROUTES: &[Route] = &[
    Route::new("POST", "/v1/emails", "sendEmail", Module::Send),
    Route::new(
        "POST",
        "/v1/emails/{id}/reply",
        "replyToEmail",
        Module::Send,
    ),
    Route::new(
        "GET",
        "/v1/emails/{id}/reply-draft",
        "getReplyDraft",
        Module::Send,
    ),
];

pub async fn call(api: &Api, caller: &Caller, op: &str, req: &ApiRequest) -> ApiResult<Reply> {
    match op {
        "sendEmail" => send(api, caller, req).await,
        "replyToEmail" => reply(api, caller, req).await,
        "getReplyDraft" => draft(api, caller, req).await,
        _ => Err(ApiError::not_found("operation")),
    }
}

type ApiOutbox<'a> = Outbox<'a, DynamoStore, DynamoStore, DynamoStore, SesMailer>;

fn outbox(api: &Api) -> ApiOutbox<'_> {
    let store = &api.adapters.store;
    Outbox {
        store,
        dispatch: store,
        crm: store,
        mailer: &api.adapters.mailer,
    }
}

/// A fresh send id: the time and a random word (std's per-process random hash keys, which
/// move with every hasher built, over the clock's nanoseconds).
fn new_send_id() -> String {
    let now = Utc::now();
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_i64(now.timestamp_nanos_opt().unwrap_or_default());
    send_id(now, h.finish())
}

fn api_error(e: SendError) -> ApiError {
    match e {
        SendError::Forbidden(m) => ApiError::forbidden(m).with_field("account"),
        SendError::NotFound { field, what } => {
            let e = ApiError::not_found(what);
            match field {
                Some(f) => e.with_field(f),
                None => e,
            }
        }
        SendError::Invalid(i) => i.into(),
        SendError::Store(s) => s.into(),
    }
}

/// What a send answers (201): the contract's `id`, `from`, `subject`, `message_id`,
/// `ses_message_id` (no angle brackets, as the recipient's Message-ID header has it), and the
/// rest of the record.
fn sent_view(s: &SentRecord) -> Value {
    json!({
        "id": s.id,
        "account": s.account,
        "from": s.from,
        "to": s.to,
        "subject": s.subject,
        "message_id": s.message_id,
        "ses_message_id": s.ses_message_id,
        "in_reply_to": s.in_reply_to,
        "email_id": s.email_id,
        "parent": s.parent,
        "case": s.case,
        "user": s.user,
        "sent_at": s.sent_at,
    })
}

async fn send(api: &Api, caller: &Caller, req: &ApiRequest) -> ApiResult<Reply> {
    let body: SendRequest = req.json()?;
    let sent = outbox(api)
        .send(caller, &body, &new_send_id(), Utc::now())
        .await
        .map_err(api_error)?;
    Ok(Reply::created(sent_view(&sent)))
}

async fn reply(api: &Api, caller: &Caller, req: &ApiRequest) -> ApiResult<Reply> {
    let body: ReplyRequest = req.json()?;
    let sent = outbox(api)
        .reply(caller, req.param("id"), &body, &new_send_id(), Utc::now())
        .await
        .map_err(api_error)?;
    Ok(Reply::created(sent_view(&sent)))
}

/// `?all=true|false` (default false), `?account=<name>`.
async fn draft(api: &Api, caller: &Caller, req: &ApiRequest) -> ApiResult<Reply> {
    let all = match req.query("all") {
        None | Some("false") | Some("0") => false,
        Some("true") | Some("1") => true,
        Some(other) => {
            return Err(ApiError::bad_request(
                "all",
                format!("{other:?}: all is true or false"),
            ))
        }
    };
    let plan = outbox(api)
        .reply_plan(caller, req.param("id"), req.query("account"), all)
        .await
        .map_err(api_error)?;
    let addresses =
        |l: &[Mailbox]| -> Vec<String> { l.iter().map(|m| m.address.to_string()).collect() };
    Ok(Reply::ok(json!({
        "email_id": plan.email_id,
        "account": plan.account.name,
        "to": addresses(&plan.to),
        "cc": addresses(&plan.cc),
        "subject": plan.subject,
        "in_reply_to": plan.in_reply_to.as_ref().map(|m| m.as_str()),
        "references": plan.references.iter().map(|m| m.as_str()).collect::<Vec<_>>(),
        "parent": plan.parent,
    })))
}
