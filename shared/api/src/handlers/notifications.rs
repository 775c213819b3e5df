//! Notifications (R-N): the caller's own, newest first; marking one read. Another user's
//! notification is answered as one that does not exist.

use mailroom_core::access::Caller;
use mailroom_core::dispatch::records::Notification;
use mailroom_core::ports::DispatchStore as _;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::handlers::Module;
use crate::page::{list_body, PageRequest};
use crate::request::ApiRequest;
use crate::routes::Route;
use crate::{Api, Reply};

pub const ROUTES: &[Route] = &[
    Route::new(
        "GET",
        "/v1/notifications",
        "listNotifications",
        Module::Notifications,
    ),
    Route::new(
        "POST",
        "/v1/notifications/{key}/read",
        "markNotificationRead",
        Module::Notifications,
    ),
];

pub async fn call(api: &Api, caller: &Caller, op: &str, req: &ApiRequest) -> ApiResult<Reply> {
    match op {
        "listNotifications" => list(api, caller, req).await,
        "markNotificationRead" => mark_read(api, caller, req).await,
        _ => Err(ApiError::not_found("operation")),
    }
}

pub fn view(n: &Notification) -> Value {
    json!({
        "key": n.key,
        "kind": n.kind.as_str(),
        "summary": n.summary,
        "account": n.account,
        "email_id": n.email_id,
        "message_id": n.email,
        "record": n.record.as_ref().map(crate::handlers::emails::record_ref),
        "read": n.read,
        "at": n.at,
    })
}

/// Newest first; the key is unique per user.
fn newest_first_key(n: &Notification) -> String {
    format!("{:020}#{}", i64::MAX - n.at.timestamp_micros(), n.key)
}

async fn list(api: &Api, caller: &Caller, req: &ApiRequest) -> ApiResult<Reply> {
    let page = PageRequest::from_request(req)?;
    let unread = match req.query("unread") {
        None | Some("") | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(ApiError::bad_request(
                "unread",
                format!("unread is true or false, not {other:?}"),
            ))
        }
    };
    let all: Vec<Notification> = api
        .adapters
        .store
        .notifications(caller.name())
        .await?
        .into_iter()
        .filter(|n| !unread || !n.read)
        .collect();
    let (list, next) = page.page(all, newest_first_key);
    Ok(Reply::ok(list_body(list.iter().map(view).collect(), next)))
}

/// Idempotent: marking a read one read again answers the same. Keys are looked up in the
/// caller's own partition only, so another user's key is not found.
async fn mark_read(api: &Api, caller: &Caller, req: &ApiRequest) -> ApiResult<Reply> {
    let key = crate::handlers::emails::id_param(req, "key", "notification")?;
    if !api.adapters.store.mark_read(caller.name(), key).await? {
        return Err(ApiError::not_found(format!("notification {key}")));
    }
    Ok(Reply::ok(json!({"key": key, "read": true})))
}
