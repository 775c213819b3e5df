//! Watched mailboxes (R-P1, R-P2) and their operation (R-F9): the accounts a caller may see,
//! personal accounts their owners add (a count limit per user), group accounts the admins
//! add, and for admins the status, fetch-position resets, quarantine and dead-letter replays.
//!
//! An account's password goes in once, sealed with the KMS envelope before it is stored
//! (`mailroom_core::admin::add_account`, as the CLI adds accounts), and is never answered,
//! logged or put in an error: views are built field by field, never from the stored item.

use chrono::{NaiveDate, Utc};
use mailroom_core::access::Caller;
use mailroom_core::admin::{add_account, check_personal_limit, AccountPorts, AddAccountError};
use mailroom_core::model::{Account, AccountKind, Secret, Security};
use mailroom_core::ports::{AccountStore as _, EmailStore as _, Outgoing, Queue as _};
use mailroom_core::views;
use mailroom_imap::{ImapConnector, ImapOptions};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::handlers::Module;
use crate::page::{list_body, PageRequest};
use crate::request::ApiRequest;
use crate::routes::Route;
use crate::{Api, Reply};

pub const ROUTES: &[Route] = &[
    Route::new("GET", "/v1/accounts", "listAccounts", Module::Accounts),
    Route::new(
        "POST",
        "/v1/accounts/personal",
        "createPersonalAccount",
        Module::Accounts,
    ),
    Route::new(
        "POST",
        "/v1/accounts/group",
        "createGroupAccount",
        Module::Accounts,
    ),
    Route::new("GET", "/v1/accounts/{name}", "getAccount", Module::Accounts),
    Route::new(
        "PATCH",
        "/v1/accounts/{name}",
        "updateAccount",
        Module::Accounts,
    ),
    Route::new(
        "GET",
        "/v1/accounts/{name}/status",
        "getAccountStatus",
        Module::Accounts,
    ),
    Route::new(
        "POST",
        "/v1/accounts/{name}/reset",
        "resetAccount",
        Module::Accounts,
    ),
    Route::new("GET", "/v1/quarantine", "listQuarantine", Module::Accounts),
    Route::new(
        "POST",
        "/v1/quarantine/{id}/replay",
        "replayQuarantine",
        Module::Accounts,
    ),
    Route::new(
        "GET",
        "/v1/dead-letters",
        "listDeadLetters",
        Module::Accounts,
    ),
    Route::new(
        "POST",
        "/v1/dead-letters/replay",
        "replayDeadLetters",
        Module::Accounts,
    ),
];

pub async fn call(api: &Api, caller: &Caller, op: &str, req: &ApiRequest) -> ApiResult<Reply> {
    match op {
        "listAccounts" => list(api, caller, req).await,
        "getAccount" => get(api, caller, req).await,
        "updateAccount" => update(api, caller, req).await,
        "createPersonalAccount" => create_personal(api, caller, req).await,
        "createGroupAccount" => create_group(api, caller, req).await,
        "getAccountStatus" => status(api, caller, req).await,
        "resetAccount" => reset(api, caller, req).await,
        "listQuarantine" => list_quarantine(api, caller, req).await,
        "replayQuarantine" => replay_quarantined(api, caller, req).await,
        "listDeadLetters" => list_dead_letters(api, caller, req).await,
        "replayDeadLetters" => replay_dead_letters(api, caller, req).await,
        _ => Err(ApiError::not_found("operation")),
    }
}

/// An account as the API shows it: `mailroom account list --json`'s fields and summaries of
/// its health, auto-reply and email-to-case settings. Never the sealed password.
pub fn view(a: &Account) -> Value {
    let mut v = views::account(a);
    let s = &a.status;
    v["status"] = json!({
        "last_success": s.last_success,
        "last_error_kind": s.last_error_kind,
        "consecutive_failures": s.consecutive_failures,
        "failing_since": s.failing_since,
    });
    v["auto_reply"] = json!(a.auto_reply.as_ref().is_some_and(|r| r.enabled));
    v["case"] = match &a.case {
        Some(c) => json!({
            "create_case": c.create_case,
            "distribution": c.distribution,
            "target_team": c.target_team,
            "assign_to": c.assign_to,
            "reopen_on_reply": c.reopen_on_reply,
        }),
        None => Value::Null,
    };
    v
}

/// The account `{name}` when the caller may see it; 404 otherwise, so a hidden account's
/// existence is not told.
async fn visible(api: &Api, caller: &Caller, name: &str) -> ApiResult<Account> {
    api.adapters
        .store
        .get_account(name)
        .await?
        .filter(|a| caller.may_see_account(a))
        .ok_or_else(|| ApiError::not_found(format!("account {name}")))
}

async fn list(api: &Api, caller: &Caller, req: &ApiRequest) -> ApiResult<Reply> {
    let page = PageRequest::from_request(req)?;
    let accounts: Vec<Account> = api
        .adapters
        .store
        .list_accounts()
        .await?
        .into_iter()
        .filter(|a| caller.may_see_account(a))
        .collect();
    let (accounts, next) = page.page(accounts, |a| a.name.clone());
    Ok(Reply::ok(list_body(
        accounts.iter().map(view).collect(),
        next,
    )))
}

async fn get(api: &Api, caller: &Caller, req: &ApiRequest) -> ApiResult<Reply> {
    let a = visible(api, caller, req.param("name")).await?;
    Ok(Reply::ok(view(&a)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    active: bool,
}

/// `PATCH /v1/accounts/{name}` with `{"active": bool}`: polling on or off, by those who manage
/// the account (R-P1, R-P2).
async fn update(api: &Api, caller: &Caller, req: &ApiRequest) -> ApiResult<Reply> {
    let mut a = visible(api, caller, req.param("name")).await?;
    if !caller.may_manage_account(&a) {
        return Err(ApiError::forbidden(
            "only admins (and a personal account's owner) change an account",
        ));
    }
    let body: UpdateBody = req.json()?;
    api.adapters
        .store
        .set_account_active(&a.name, body.active)
        .await?;
    a.active = body.active;
    Ok(Reply::ok(view(&a)))
}

/// `POST /v1/accounts/personal`: the contract's fields, and `owner` (admins only, for
/// another user).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PersonalBody {
    name: String,
    #[serde(default)]
    address: Option<String>,
    imap_host: String,
    imap_port: u16,
    imap_user: String,
    password: String,
    #[serde(default)]
    security: Security,
    #[serde(default)]
    folders: Vec<String>,
    #[serde(default)]
    fetch_since: Option<NaiveDate>,
    #[serde(default)]
    owner: Option<String>,
}

/// `POST /v1/accounts/group` (admins).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupBody {
    name: String,
    address: String,
    imap_host: String,
    imap_port: u16,
    imap_user: String,
    password: String,
    #[serde(default)]
    security: Security,
    #[serde(default)]
    folders: Vec<String>,
    #[serde(default)]
    fetch_since: Option<NaiveDate>,
    #[serde(default)]
    teams: Vec<String>,
}

/// The body field a core check names by its CLI flag (`--imap-port` is `imap_port`).
pub(crate) fn field_of(flag: &str) -> String {
    match flag {
        "--password-stdin" => "password".into(),
        "--folder" => "folders".into(),
        "--team" => "teams".into(),
        "--email" => "emails".into(),
        "--body-any/--body-all" => "body_any".into(),
        "user" => "name".into(),
        "team" | "role" => "name".into(),
        f => f.trim_start_matches("--").replace('-', "_"),
    }
}

/// A core refusal as the API's 422, the field in the body's terms.
pub(crate) fn invalid(e: mailroom_core::error::Invalid) -> ApiError {
    ApiError::invalid(field_of(&e.field), e.message)
}

/// The IMAP connector's host rules of this deployment (R-F8, R-F8b), as the poller applies
/// them.
fn connector(api: &Api) -> ApiResult<ImapConnector> {
    let c = &api.adapters.config;
    ImapConnector::new(ImapOptions {
        allow_private_hosts: c.allow_private_hosts,
        allow_plaintext: c.allow_plaintext,
        extra_ca_file: c.imap_ca_file.clone(),
        ..ImapOptions::default()
    })
    .map_err(|e| {
        tracing::error!(error = %e, "IMAP connector");
        ApiError::new(500, "internal", "internal error")
    })
}

async fn add(
    api: &Api,
    new: mailroom_core::admin::NewAccount,
    password: Secret,
) -> ApiResult<Account> {
    let hosts = connector(api)?;
    let a = &api.adapters;
    // Under the deployment's data key; the API never creates one (provisioning does).
    let secrets = mailroom_aws::secrets::ExistingKey(&a.secrets);
    let ports = AccountPorts {
        store: &a.store,
        secrets: &secrets,
        hosts: &hosts,
        mailer: &a.mailer,
        verify_identity: true,
    };
    add_account(ports, new, password, Utc::now())
        .await
        .map_err(|e| match e {
            AddAccountError::Invalid(i) => invalid(i),
            AddAccountError::IdentityRefused { address, error } => {
                tracing::warn!(error = %error, "sending identity refused");
                ApiError::invalid(
                    "address",
                    format!("the mail service refused {address} as a sending identity"),
                )
            }
            AddAccountError::Exists(name) => {
                ApiError::conflict("name", format!("an account {name:?} already exists"))
            }
            AddAccountError::Store(e) => e.into(),
        })
}

async fn create_personal(api: &Api, caller: &Caller, req: &ApiRequest) -> ApiResult<Reply> {
    let body: PersonalBody = req.json()?;
    let owner = body.owner.unwrap_or_else(|| caller.name().to_string());
    // R-P2, before anything is read or written: one's own, or an admin for anyone.
    if !caller.may_manage_user_accounts(&owner) {
        return Err(
            ApiError::forbidden("only admins add personal accounts for other users")
                .with_field("owner"),
        );
    }
    let store = &api.adapters.store;
    if store.get_user(&owner).await?.is_none() {
        return Err(ApiError::invalid("owner", format!("no user {owner:?}")));
    }
    let all = store.list_accounts().await?;
    check_personal_limit(&all, &owner, api.settings.personal_account_limit)
        .map_err(|e| ApiError::conflict("owner", e.message))?;
    let new = mailroom_core::admin::NewAccount {
        name: body.name,
        kind: AccountKind::Personal,
        address: body.address,
        owner: Some(owner),
        imap_host: body.imap_host,
        imap_port: body.imap_port,
        imap_user: body.imap_user,
        security: body.security,
        folders: body.folders,
        fetch_since: body.fetch_since,
        teams: vec![],
    };
    let a = add(api, new, Secret::new(body.password)).await?;
    Ok(Reply::created(view(&a)))
}

async fn create_group(api: &Api, caller: &Caller, req: &ApiRequest) -> ApiResult<Reply> {
    // R-P1: checked before the body is even read.
    if !caller.may_manage_directory() {
        return Err(ApiError::forbidden("only admins add group accounts"));
    }
    let body: GroupBody = req.json()?;
    let known = api.adapters.store.list_teams().await?;
    if let Some(t) = body.teams.iter().find(|t| !known.contains(t)) {
        return Err(ApiError::invalid("teams", format!("unknown team {t:?}")));
    }
    let new = mailroom_core::admin::NewAccount {
        name: body.name,
        kind: AccountKind::Group,
        address: Some(body.address),
        owner: None,
        imap_host: body.imap_host,
        imap_port: body.imap_port,
        imap_user: body.imap_user,
        security: body.security,
        folders: body.folders,
        fetch_since: body.fetch_since,
        teams: body.teams,
    };
    let a = add(api, new, Secret::new(body.password)).await?;
    Ok(Reply::created(view(&a)))
}

/// `GET /v1/accounts/{name}/status`: what `mailroom status --json` shows of it; for those
/// who manage the account (admins; a personal account's owner, who is told when it fails).
async fn status(api: &Api, caller: &Caller, req: &ApiRequest) -> ApiResult<Reply> {
    let a = visible(api, caller, req.param("name")).await?;
    if !caller.may_manage_account(&a) {
        return Err(ApiError::forbidden(
            "only admins (and a personal account's owner) see an account's status",
        ));
    }
    Ok(Reply::ok(views::status(&a)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResetBody {
    fetch_since: NaiveDate,
}

/// R-F9: forget the watermarks; the next poll imports again from `fetch_since`.
async fn reset(api: &Api, caller: &Caller, req: &ApiRequest) -> ApiResult<Reply> {
    let a = visible(api, caller, req.param("name")).await?;
    if !caller.may_operate() {
        return Err(ApiError::forbidden("only admins reset an account"));
    }
    let body: ResetBody = req.json()?;
    api.adapters
        .store
        .reset_account(&a.name, body.fetch_since)
        .await?;
    Ok(Reply::ok(
        json!({"account": a.name, "fetch_since": body.fetch_since}),
    ))
}

fn operator(caller: &Caller) -> ApiResult<()> {
    if caller.may_operate() {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "only admins see and replay quarantined and dead-lettered messages",
        ))
    }
}

async fn list_quarantine(api: &Api, caller: &Caller, req: &ApiRequest) -> ApiResult<Reply> {
    operator(caller)?;
    let page = PageRequest::from_request(req)?;
    let list = api.adapters.store.list_quarantine().await?;
    let (list, next) = page.page(list, |q| q.id.clone());
    Ok(Reply::ok(list_body(
        list.iter().map(views::quarantine).collect(),
        next,
    )))
}

/// R-F9: the quarantined message goes back on the ingest queue (read from its mailbox again
/// first when it was quarantined empty); ingest imports it and removes the quarantine record,
/// or quarantines it again with the new reason.
async fn replay_quarantined(api: &Api, caller: &Caller, req: &ApiRequest) -> ApiResult<Reply> {
    operator(caller)?;
    let id = req.param("id");
    let a = &api.adapters;
    let q = a
        .store
        .get_quarantine(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("quarantined message {id}")))?;
    let imap = connector(api)?;
    let service = mailroom_core::poll::PollService {
        accounts: &a.store,
        filters: &a.store,
        secrets: &a.secrets,
        mailbox: &imap,
        blobs: &a.blobs,
        ingest_queue: &a.ingest_queue,
        limits: &a.config.limits,
    };
    let pointer = service.replay_pointer(&q).await?;
    let fetch_error = pointer.fetch_error.clone();
    a.ingest_queue.send(&[Outgoing::plain(pointer)]).await?;
    Ok(Reply {
        status: 202,
        body: json!({
            "id": q.id,
            "account": q.account,
            "queued": true,
            "fetch_error": fetch_error,
        }),
    })
}

/// The dead-letter queues that can be replayed, with how many messages each holds.
async fn list_dead_letters(api: &Api, caller: &Caller, req: &ApiRequest) -> ApiResult<Reply> {
    operator(caller)?;
    let page = PageRequest::from_request(req)?;
    let mut items = Vec::new();
    for name in mailroom_aws::redrive::REPLAYABLE {
        let q = api
            .adapters
            .replayable_queue(name)
            .expect("a replayable name")
            .dead_letter();
        let (visible, in_flight) = q.depth().await?;
        items.push(json!({"queue": name, "messages": visible, "in_flight": in_flight}));
    }
    let (items, next) = page.page(items, |v| v["queue"].as_str().unwrap_or("").to_string());
    Ok(Reply::ok(list_body(items, next)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayBody {
    queue: String,
}

/// R-F9: every message of a dead-letter queue back to its queue (`mailroom dlq redrive`);
/// the deployed functions then run them.
async fn replay_dead_letters(api: &Api, caller: &Caller, req: &ApiRequest) -> ApiResult<Reply> {
    operator(caller)?;
    let body: ReplayBody = req.json()?;
    let done = api.adapters.redrive(&body.queue).await?.ok_or_else(|| {
        ApiError::invalid(
            "queue",
            format!("{:?} is not one of ingest, poll", body.queue),
        )
    })?;
    Ok(Reply::ok(json!({
        "queue": body.queue,
        "moved": done.moved,
        "left": done.left.iter().map(|(id, why)| json!({"id": id, "reason": why})).collect::<Vec<_>>(),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_flags_become_body_fields() {
        for (flag, field) in [
            ("--imap-port", "imap_port"),
            ("--imap-host", "imap_host"),
            ("--password-stdin", "password"),
            ("--folder", "folders"),
            ("--name", "name"),
            ("--security", "security"),
            ("owner", "owner"),
            ("user", "name"),
        ] {
            assert_eq!(field_of(flag), field);
        }
    }

    #[test]
    fn a_view_never_holds_the_sealed_password() {
        let mut a = mailroom_core::memory::builders::test_account("acct", Utc::now());
        a.secret.ciphertext = "SEALED-CIPHERTEXT".into();
        a.secret.nonce = "SEALED-NONCE".into();
        let text = view(&a).to_string();
        assert!(!text.contains("SEALED"), "{text}");
        assert!(!text.contains("secret"), "{text}");
        assert_eq!(view(&a)["imap_host"], a.imap.host.as_str());
    }
}
