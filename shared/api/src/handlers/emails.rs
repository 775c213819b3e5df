//! Emails: the list of those the caller may read, one email with its bodies, and pre-signed
//! attachment URLs (R-P4). Whether the caller may read an email is asked of
//! `mailroom_core::access::Caller` with every account it came through and its case, each
//! loaded once per request; an email the caller may not read is answered as one that does not
//! exist (404, never 403), so its existence is not revealed.

use std::collections::{BTreeSet, HashMap};

use mailroom_core::access::Caller;
use mailroom_core::model::{Account, Body, EmailRecord};
use mailroom_core::ports::{AccountStore as _, BlobStore as _, Crm as _, EmailStore as _};
use mailroom_core::records::{Case, RecordKind, RecordRef};
use mailroom_core::types::CaseNumber;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::handlers::Module;
use crate::page::{list_body, PageRequest};
use crate::request::ApiRequest;
use crate::routes::Route;
use crate::{Api, Reply};

pub const ROUTES: &[Route] = &[
    Route::new("GET", "/v1/emails", "listEmails", Module::Emails),
    Route::new("GET", "/v1/emails/{id}", "getEmail", Module::Emails),
    Route::new(
        "GET",
        "/v1/emails/{id}/attachments/{index}",
        "getAttachment",
        Module::Emails,
    ),
];

pub async fn call(api: &Api, caller: &Caller, op: &str, req: &ApiRequest) -> ApiResult<Reply> {
    match op {
        "listEmails" => list(api, caller, req).await,
        "getEmail" => get(api, caller, req).await,
        "getAttachment" => attachment(api, caller, req).await,
        _ => Err(ApiError::not_found("operation")),
    }
}

/// Longest id a path may name. Ids Mailroom makes are far shorter; a longer one names nothing,
/// and must not reach DynamoDB, which refuses keys over 1,024 (sort) or 2,048 (partition) bytes.
pub const MAX_ID_BYTES: usize = 512;

/// A path parameter naming a stored thing: 404 when it is longer than any id.
pub fn id_param<'r>(req: &'r ApiRequest, name: &str, what: &str) -> ApiResult<&'r str> {
    let id = req.param(name);
    if id.len() > MAX_ID_BYTES {
        return Err(ApiError::not_found(format!(
            "{what} (an id of {} bytes)",
            id.len()
        )));
    }
    Ok(id)
}

/// The accounts and cases some emails need for the R-P4 check, each read once: the accounts
/// by key in one batch, the cases one request each (a page names few).
pub struct Readers {
    accounts: Vec<Account>,
    cases: HashMap<CaseNumber, Case>,
}

impl Readers {
    pub async fn load<'e>(
        api: &Api,
        emails: impl IntoIterator<Item = &'e EmailRecord> + Clone,
    ) -> ApiResult<Readers> {
        let store = &api.adapters.store;
        let names: BTreeSet<String> = emails
            .clone()
            .into_iter()
            .flat_map(|e| e.accounts.iter().cloned())
            .collect();
        let names: Vec<String> = names.into_iter().collect();
        let accounts = if names.is_empty() {
            Vec::new()
        } else {
            store.get_accounts(&names).await?
        };
        let numbers: BTreeSet<CaseNumber> = emails.into_iter().filter_map(|e| e.case).collect();
        let mut cases = HashMap::new();
        for n in numbers {
            if let Some(c) = store.get_case(n).await? {
                cases.insert(n, c);
            }
        }
        Ok(Readers { accounts, cases })
    }

    pub fn case(&self, n: Option<CaseNumber>) -> Option<&Case> {
        n.and_then(|n| self.cases.get(&n))
    }

    pub fn account(&self, name: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.name == name)
    }

    /// R-P4, asked of the core.
    pub fn may_read(&self, caller: &Caller, email: &EmailRecord) -> bool {
        caller.may_read_via(email, &self.accounts, self.case(email.case))
    }
}

/// `{"type": "case", "id": "42", "number": 42}`, `{"type": "contact", "id": "a@b", "email": ..}`,
/// `{"type": "account", "id": "Acme", "name": "Acme"}`: as `mailroom emails list --json`.
pub fn record_ref(r: &RecordRef) -> Value {
    let mut v = json!({"type": r.kind.as_str(), "id": r.id});
    match r.kind {
        RecordKind::Case => v["number"] = json!(r.id.parse::<u64>().ok()),
        RecordKind::Contact | RecordKind::Lead => v["email"] = json!(r.id),
        _ => v["name"] = json!(r.id),
    }
    v
}

fn addresses(list: &[mailroom_core::model::MailAddr]) -> Vec<Value> {
    list.iter()
        .map(|a| json!({"name": a.name, "address": a.address}))
        .collect()
}

/// An email as a list shows it: no bodies, attachments as metadata with their index.
pub fn summary(e: &EmailRecord) -> Value {
    json!({
        "id": e.email_id,
        "message_id": e.message_id,
        "subject": e.subject,
        "from": e.from.as_ref().map(|f| f.address.clone()),
        "from_name": e.from.as_ref().and_then(|f| f.name.clone()),
        "date": e.date,
        "received_at": e.received_at,
        "parent": e.parent.as_ref().map(record_ref),
        "case": e.case,
        "accounts": e.accounts,
        "teams": e.teams,
        "attachments": e.attachments.iter().enumerate().map(|(i, a)| json!({
            "index": i,
            "filename": a.filename,
            "content_type": a.content_type,
            "size": a.size,
            "inline": a.inline,
            "content_id": a.content_id,
        })).collect::<Vec<_>>(),
    })
}

/// Newest first: the key sorts descending by arrival, then by id, and is unique.
fn newest_first_key(e: &EmailRecord) -> String {
    let micros = e.received_at.timestamp_micros();
    format!("{:020}#{}", i64::MAX - micros, e.email_id)
}

async fn list(api: &Api, caller: &Caller, req: &ApiRequest) -> ApiResult<Reply> {
    let page = PageRequest::from_request(req)?;
    let parent: Option<RecordRef> = match req.query("parent") {
        None | Some("") => None,
        Some(p) => Some(p.parse().map_err(|e: mailroom_core::error::Invalid| {
            ApiError::bad_request("parent", e.message)
        })?),
    };
    let case: Option<u64> = match req.query("case") {
        None | Some("") => None,
        Some(c) => Some(c.parse().map_err(|_| {
            ApiError::bad_request("case", format!("case {c:?} is not a case number"))
        })?),
    };
    let account = req.query("account").filter(|a| !a.is_empty());
    if let Some(p) = &parent {
        if p.id.len() > MAX_ID_BYTES {
            return Err(ApiError::bad_request("parent", "the record id is too long"));
        }
    }
    let emails: Vec<EmailRecord> = api
        .adapters
        .store
        .list_emails()
        .await?
        .into_iter()
        .filter(|e| parent.as_ref().is_none_or(|p| e.parent.as_ref() == Some(p)))
        .filter(|e| case.is_none_or(|c| e.case.map(|n| n.get()) == Some(c)))
        .filter(|e| account.is_none_or(|a| e.accounts.iter().any(|x| x == a)))
        .collect();
    let readers = Readers::load(api, &emails).await?;
    let readable: Vec<EmailRecord> = emails
        .into_iter()
        .filter(|e| readers.may_read(caller, e))
        .collect();
    let (emails, next) = page.page(readable, newest_first_key);
    Ok(Reply::ok(list_body(
        emails.iter().map(summary).collect(),
        next,
    )))
}

/// The email named in the path, if the caller may read it; 404 alike when it does not exist
/// and when it may not be read.
async fn readable(api: &Api, caller: &Caller, req: &ApiRequest) -> ApiResult<EmailRecord> {
    let id = id_param(req, "id", "email")?;
    let missing = || ApiError::not_found(format!("email {id}"));
    let email = api
        .adapters
        .store
        .get_email(id)
        .await?
        .ok_or_else(missing)?;
    let readers = Readers::load(api, [&email]).await?;
    if !readers.may_read(caller, &email) {
        return Err(missing());
    }
    Ok(email)
}

/// A body as ingest stored it: in the item, or in S3 when large.
async fn body(api: &Api, b: &Option<Body>) -> ApiResult<Option<String>> {
    match b {
        None => Ok(None),
        Some(Body::Inline(s)) => Ok(Some(s.clone())),
        Some(Body::Stored { key, .. }) => {
            let bytes = api.adapters.blobs.get(key).await?.ok_or_else(|| {
                tracing::error!(key, "a stored body is missing");
                ApiError::new(500, "internal", "internal error")
            })?;
            Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
        }
    }
}

async fn get(api: &Api, caller: &Caller, req: &ApiRequest) -> ApiResult<Reply> {
    // The id `POST /v1/emails` answered names a sent message, not a received one.
    let id = id_param(req, "id", "email")?;
    let Some(e) = api.adapters.store.get_email(id).await? else {
        return sent(api, caller, id).await;
    };
    if !Readers::load(api, [&e]).await?.may_read(caller, &e) {
        return Err(ApiError::not_found(format!("email {id}")));
    }
    let mut v = summary(&e);
    v["to"] = json!(addresses(&e.to));
    v["cc"] = json!(addresses(&e.cc));
    v["reply_to"] = json!(addresses(&e.reply_to));
    v["in_reply_to"] = json!(e.in_reply_to);
    v["references"] = json!(e.references);
    v["synthetic_message_id"] = json!(e.synthetic_id);
    v["auto_submitted"] = json!(e.auto_submitted);
    v["bounce"] = json!(e.bounce);
    v["size"] = json!(e.size);
    v["attachments_skipped"] = json!(e.attachments_skipped);
    v["text"] = json!(body(api, &e.text).await?);
    v["html"] = json!(body(api, &e.html).await?);
    Ok(Reply::ok(v))
}

/// A message Mailroom sent (through the API, or an auto-reply or notification), by its send id:
/// what was sent, to whom, and its two Message-IDs; readable as R-P4 says for sent mail.
async fn sent(api: &Api, caller: &Caller, id: &str) -> ApiResult<Reply> {
    use mailroom_core::ports::DispatchStore as _;
    let missing = || ApiError::not_found(format!("email {id}"));
    let store = &api.adapters.store;
    let s = store.sent(id).await?.ok_or_else(missing)?;
    let account = store.get_account(&s.account).await?.ok_or_else(missing)?;
    let case = match s.case {
        Some(n) => store.get_case(n).await?,
        None => None,
    };
    if !caller.may_read_sent(&account, case.as_ref()) {
        return Err(missing());
    }
    Ok(Reply::ok(json!({
        "id": s.id,
        "kind": "sent",
        "sent_kind": s.kind,
        "account": s.account,
        "accounts": [s.account],
        "from": s.from,
        "to": s.to,
        "subject": s.subject,
        "message_id": s.message_id,
        "ses_message_id": s.ses_message_id,
        "in_reply_to": s.in_reply_to,
        "parent": s.parent.as_ref().map(record_ref),
        "case": s.case,
        "user": s.user,
        "date": s.sent_at,
    })))
}

async fn attachment(api: &Api, caller: &Caller, req: &ApiRequest) -> ApiResult<Reply> {
    let e = readable(api, caller, req).await?;
    let index = req.param("index");
    let a = index
        .parse::<usize>()
        .ok()
        .and_then(|i| e.attachments.get(i))
        .ok_or_else(|| {
            ApiError::not_found(format!("attachment {index} of email {}", e.email_id))
        })?;
    let expires = std::time::Duration::from_secs(api.settings.presign_seconds);
    let signed = api
        .adapters
        .blobs
        .presign_get(&a.key, expires, a.filename.as_deref(), &a.content_type)
        .await?;
    Ok(Reply::ok(json!({
        "url": signed.url,
        "expires_at": signed.expires_at,
        "filename": a.filename,
        "content_type": a.content_type,
        "size": a.size,
    })))
}
