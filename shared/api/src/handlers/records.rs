//! CRM records (R-P4: readable by every active user): list, read, create (accounts, contacts,
//! leads, opportunities; cases come from email), a record's stream, and its followers.
//!
//! A stream lists mail filed under the record; an entry for mail the caller may not read is
//! left out (personal mail linked to a record by its sender is shared with nobody), so a
//! stream never shows what `GET /v1/emails/{id}` would refuse.

use std::collections::{BTreeSet, HashMap};

use mailroom_core::access::Caller;
use mailroom_core::admin::NewRecord;
use mailroom_core::ports::{
    AccountStore as _, Crm as _, DispatchStore as _, EmailStore as _, Followers as _,
};
use mailroom_core::records::{RecordKind, RecordRef, StreamEntry, StreamKind};
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::handlers::emails::{id_param, Readers};
use crate::handlers::Module;
use crate::page::{list_body, number_key, PageRequest};
use crate::request::ApiRequest;
use crate::routes::Route;
use crate::{Api, Reply};

pub const ROUTES: &[Route] = &[
    Route::new("GET", "/v1/records/{kind}", "listRecords", Module::Records),
    Route::new(
        "POST",
        "/v1/records/{kind}",
        "createRecord",
        Module::Records,
    ),
    Route::new(
        "GET",
        "/v1/records/{kind}/{id}",
        "getRecord",
        Module::Records,
    ),
    Route::new(
        "GET",
        "/v1/records/{kind}/{id}/stream",
        "getRecordStream",
        Module::Records,
    ),
    Route::new(
        "GET",
        "/v1/records/{kind}/{id}/followers",
        "listFollowers",
        Module::Records,
    ),
    Route::new(
        "PUT",
        "/v1/records/{kind}/{id}/followers/{user}",
        "followRecord",
        Module::Records,
    ),
    Route::new(
        "DELETE",
        "/v1/records/{kind}/{id}/followers/{user}",
        "unfollowRecord",
        Module::Records,
    ),
];

pub async fn call(api: &Api, caller: &Caller, op: &str, req: &ApiRequest) -> ApiResult<Reply> {
    match op {
        "listRecords" => list(api, req).await,
        "createRecord" => create(api, req).await,
        "getRecord" => get(api, req).await,
        "getRecordStream" => stream(api, caller, req).await,
        "listFollowers" => followers(api, req).await,
        "followRecord" => follow(api, caller, req, true).await,
        "unfollowRecord" => follow(api, caller, req, false).await,
        _ => Err(ApiError::not_found("operation")),
    }
}

/// The `{kind}` of the path: an unknown kind is an unknown resource.
fn kind(req: &ApiRequest) -> ApiResult<RecordKind> {
    let k = req.param("kind");
    k.parse()
        .map_err(|_| ApiError::not_found(format!("record type {k}")))
}

/// The record the path names, which must exist (404 otherwise).
async fn existing(api: &Api, req: &ApiRequest) -> ApiResult<(RecordRef, Value)> {
    let kind = kind(req)?;
    let id = id_param(req, "id", "record")?;
    let missing = || ApiError::not_found(format!("{} {id}", kind.as_str()));
    if kind == RecordKind::Case {
        let n: u64 = id.parse().map_err(|_| missing())?;
        let number = mailroom_core::types::CaseNumber::new(n).map_err(|_| missing())?;
        let case = api
            .adapters
            .store
            .get_case(number)
            .await?
            .ok_or_else(missing)?;
        let v = crate::handlers::cases::view(api, &case).await?;
        return Ok((RecordRef::case(n), v));
    }
    let r = RecordRef::new(kind, id);
    if r.id.is_empty() {
        // An address that normalises to nothing (`%0C`) names no record, and DynamoDB refuses
        // an empty key.
        return Err(missing());
    }
    let v = api
        .adapters
        .store
        .get_record(&r)
        .await?
        .ok_or_else(missing)?;
    Ok((r.clone(), view(&r, v)))
}

/// A record as stored, with its `type` and `id` (the name, or the address of a contact or lead).
fn view(r: &RecordRef, mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("v");
        o.insert("type".into(), json!(r.kind.as_str()));
        o.insert("id".into(), json!(r.id));
    }
    v
}

fn id_of(kind: RecordKind, v: &Value) -> String {
    let field = match kind {
        RecordKind::Contact | RecordKind::Lead => "email",
        _ => "name",
    };
    v[field].as_str().unwrap_or_default().to_string()
}

async fn list(api: &Api, req: &ApiRequest) -> ApiResult<Reply> {
    let kind = kind(req)?;
    let page = PageRequest::from_request(req)?;
    if kind == RecordKind::Case {
        let cases = api.adapters.store.list_cases().await?;
        let (cases, next) = page.page(cases, |c| number_key(c.number.get()));
        let mut items = Vec::with_capacity(cases.len());
        for c in &cases {
            let mut v = crate::handlers::cases::view(api, c).await?;
            v["type"] = json!("case");
            v["id"] = json!(c.number.to_string());
            items.push(v);
        }
        return Ok(Reply::ok(list_body(items, next)));
    }
    let all = api.adapters.store.list_records(kind).await?;
    let (records, next) = page.page(all, |v| id_of(kind, v));
    let items = records
        .into_iter()
        .map(|v| {
            let r = RecordRef::new(kind, id_of(kind, &v));
            view(&r, v)
        })
        .collect();
    Ok(Reply::ok(list_body(items, next)))
}

async fn get(api: &Api, req: &ApiRequest) -> ApiResult<Reply> {
    let (_, v) = existing(api, req).await?;
    Ok(Reply::ok(v))
}

/// `POST /v1/records/{kind}`: the body is the record's JSON form (as `mailroom records import`
/// reads it), its type from the path; validated as the CLI validates it, references included.
async fn create(api: &Api, req: &ApiRequest) -> ApiResult<Reply> {
    let kind = kind(req)?;
    let mut body: Value = req.json()?;
    let Some(obj) = body.as_object_mut() else {
        return Err(ApiError::invalid("body", "a record must be a JSON object"));
    };
    match obj.get("type").and_then(Value::as_str) {
        None => {
            obj.insert("type".into(), json!(kind.as_str()));
        }
        Some(t) if t == kind.as_str() => {}
        Some(t) => {
            return Err(ApiError::invalid(
                "type",
                format!("{t:?} differs from the path's {}", kind.as_str()),
            ))
        }
    }
    let record = NewRecord::from_json(&body).map_err(|e| {
        let message = if e.message == mailroom_core::admin::REQUIRED {
            format!("{} is required", e.field)
        } else {
            e.message.clone()
        };
        ApiError::from(mailroom_core::error::Invalid::new(e.field, message))
    })?;
    let store = &api.adapters.store;
    for (field, r) in record.references() {
        if !store.record_exists(&r).await? {
            return Err(ApiError::invalid(field, format!("no such record {r}")));
        }
    }
    let r = record.reference();
    store.add_record(&record).await.map_err(|e| match e {
        mailroom_core::ports::StoreError::AlreadyExists(_) => {
            ApiError::conflict("id", format!("{r} already exists"))
        }
        other => other.into(),
    })?;
    let v = store
        .get_record(&r)
        .await?
        .ok_or_else(|| ApiError::not_found(r.to_string()))?;
    Ok(Reply::created(view(&r, v)))
}

/// Stream entries the caller may see, oldest first, each with the email it is about.
async fn stream(api: &Api, caller: &Caller, req: &ApiRequest) -> ApiResult<Reply> {
    let (r, _) = existing(api, req).await?;
    let page = PageRequest::from_request(req)?;
    let store = &api.adapters.store;
    let entries = store.stream(&r).await?;
    // The emails and sends the entries name, each read once; then their accounts and cases.
    let received: BTreeSet<&str> = entries
        .iter()
        .filter(|e| e.kind != StreamKind::EmailSent)
        .filter_map(|e| e.email_id.as_deref())
        .collect();
    let sent: BTreeSet<&str> = entries
        .iter()
        .filter(|e| e.kind == StreamKind::EmailSent)
        .filter_map(|e| e.email_id.as_deref())
        .collect();
    let emails: HashMap<String, _> =
        futures::future::try_join_all(received.iter().map(|id| store.get_email(id)))
            .await?
            .into_iter()
            .flatten()
            .map(|e| (e.email_id.clone(), e))
            .collect();
    let sends: HashMap<String, _> =
        futures::future::try_join_all(sent.iter().map(|id| store.sent(id)))
            .await?
            .into_iter()
            .flatten()
            .map(|s| (s.id.clone(), s))
            .collect();
    let readers = Readers::load(api, emails.values()).await?;
    let send_accounts: Vec<String> = sends
        .values()
        .map(|s| s.account.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let send_accounts = if send_accounts.is_empty() {
        Vec::new()
    } else {
        store.get_accounts(&send_accounts).await?
    };
    let mut send_cases = HashMap::new();
    for n in sends
        .values()
        .filter_map(|s| s.case)
        .collect::<BTreeSet<_>>()
    {
        if let Some(c) = store.get_case(n).await? {
            send_cases.insert(n, c);
        }
    }
    let visible = |e: &StreamEntry| -> bool {
        let Some(id) = e.email_id.as_deref() else {
            return true;
        };
        match e.kind {
            // The case itself is a record (readable by all); its first email is checked.
            StreamKind::CaseCreated => true,
            StreamKind::EmailReceived => emails
                .get(id)
                .is_some_and(|email| readers.may_read(caller, email)),
            StreamKind::EmailSent => sends.get(id).is_some_and(|s| {
                send_accounts
                    .iter()
                    .find(|a| a.name == s.account)
                    .is_some_and(|a| {
                        caller.may_read_sent(a, s.case.and_then(|n| send_cases.get(&n)))
                    })
            }),
        }
    };
    let shown: Vec<(usize, &StreamEntry)> = entries
        .iter()
        .enumerate()
        .filter(|(_, e)| visible(e))
        .collect();
    // Position in the stream's order (time, kind) as the cursor: stable while it only grows.
    let (shown, next) = page.page(shown, |(i, e)| {
        format!("{:020}#{i:08}", e.at.timestamp_micros().max(0))
    });
    let items = shown
        .into_iter()
        .map(|(_, e)| {
            let mut v = json!({
                "at": e.at,
                "kind": e.kind.as_str(),
                "email_id": e.email_id,
                "message_id": e.message_id,
                "subject": e.subject,
                "case": e.case,
            });
            if e.kind == StreamKind::CaseCreated {
                // The first email's id is left out unless the caller may read it.
                let id = e.email_id.as_deref().unwrap_or_default();
                if !emails
                    .get(id)
                    .is_some_and(|email| readers.may_read(caller, email))
                {
                    v["email_id"] = Value::Null;
                    v["message_id"] = Value::Null;
                }
            }
            v
        })
        .collect();
    Ok(Reply::ok(list_body(items, next)))
}

async fn followers(api: &Api, req: &ApiRequest) -> ApiResult<Reply> {
    let (r, _) = existing(api, req).await?;
    let page = PageRequest::from_request(req)?;
    let users = api.adapters.store.followers(&r).await?;
    let (users, next) = page.page(users, |u| u.clone());
    let items = users.into_iter().map(|u| json!({"user": u})).collect();
    Ok(Reply::ok(list_body(items, next)))
}

/// `PUT` (follow) and `DELETE` (unfollow) `/v1/records/{kind}/{id}/followers/{user}`: for
/// oneself; admins for anyone. Both idempotent.
async fn follow(api: &Api, caller: &Caller, req: &ApiRequest, on: bool) -> ApiResult<Reply> {
    let user = id_param(req, "user", "user")?.to_string();
    if !caller.may_manage_follows_of(&user) {
        return Err(ApiError::forbidden(
            "users follow and unfollow records for themselves; admins for anyone",
        ));
    }
    let (r, _) = existing(api, req).await?;
    let store = &api.adapters.store;
    if on {
        let active = store.get_user(&user).await?.is_some_and(|u| u.active);
        if !active {
            return Err(ApiError::invalid(
                "user",
                format!("{user:?} is not an active user"),
            ));
        }
        store.follow(&user, &r).await?;
    } else {
        store.unfollow(&user, &r).await?;
    }
    Ok(Reply::ok(json!({
        "record": crate::handlers::emails::record_ref(&r),
        "user": user,
        "following": on,
    })))
}
