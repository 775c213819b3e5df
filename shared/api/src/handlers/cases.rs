//! Cases: list and read (records are readable by every active user, R-P4); change status and
//! assignee (admins, the case's teams, its assignee: `Caller::may_update_case`).

use mailroom_core::access::Caller;
use mailroom_core::ports::Crm as _;
use mailroom_core::records::{Case, CaseStatus, RecordRef};
use mailroom_core::types::CaseNumber;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::handlers::Module;
use crate::page::{list_body, number_key, PageRequest};
use crate::request::ApiRequest;
use crate::routes::Route;
use crate::{Api, Reply};

pub const ROUTES: &[Route] = &[
    Route::new("GET", "/v1/cases", "listCases", Module::Cases),
    Route::new("GET", "/v1/cases/{number}", "getCase", Module::Cases),
    Route::new("PATCH", "/v1/cases/{number}", "updateCase", Module::Cases),
];

pub async fn call(api: &Api, caller: &Caller, op: &str, req: &ApiRequest) -> ApiResult<Reply> {
    match op {
        "listCases" => list(api, req).await,
        "getCase" => get(api, req).await,
        "updateCase" => update(api, caller, req).await,
        _ => Err(ApiError::not_found("operation")),
    }
}

/// A case as the API shows it: the fields of `mailroom cases list --json`.
pub async fn view(api: &Api, c: &Case) -> ApiResult<Value> {
    let store = &api.adapters.store;
    let emails: Vec<String> = store
        .stream(&RecordRef::case(c.number.get()))
        .await?
        .into_iter()
        .filter(|e| e.kind == "email_received")
        .filter_map(|e| e.message_id)
        .collect();
    Ok(json!({
        "number": c.number,
        "name": c.name,
        "status": format!("{:?}", c.status),
        "assigned_user": c.assigned_user,
        "account": c.account,
        "contact_email": c.contact,
        "lead": c.lead,
        "teams": c.teams,
        "mail_account": c.mail_account,
        "emails": emails,
        "created_at": c.created_at,
    }))
}

async fn list(api: &Api, req: &ApiRequest) -> ApiResult<Reply> {
    let page = PageRequest::from_request(req)?;
    let status: Option<CaseStatus> = match req.query("status") {
        None | Some("") => None,
        Some(s) => Some(s.parse().map_err(|e: mailroom_core::error::Invalid| {
            ApiError::bad_request("status", e.message)
        })?),
    };
    let assignee = req.query("assigned_user").filter(|a| !a.is_empty());
    let cases: Vec<Case> = api
        .adapters
        .store
        .list_cases()
        .await?
        .into_iter()
        .filter(|c| status.is_none_or(|s| c.status == s))
        .filter(|c| assignee.is_none_or(|a| c.assigned_user.as_deref() == Some(a)))
        .collect();
    let (cases, next) = page.page(cases, |c| number_key(c.number.get()));
    let mut items = Vec::with_capacity(cases.len());
    for c in &cases {
        items.push(view(api, c).await?);
    }
    Ok(Reply::ok(list_body(items, next)))
}

async fn get(api: &Api, req: &ApiRequest) -> ApiResult<Reply> {
    let c = load(api, req).await?;
    Ok(Reply::ok(view(api, &c).await?))
}

async fn load(api: &Api, req: &ApiRequest) -> ApiResult<Case> {
    let n = req.number_param("number", "case")?;
    let missing = || ApiError::not_found(format!("case {n}"));
    let number = CaseNumber::new(n).map_err(|_| missing())?;
    api.adapters
        .store
        .get_case(number)
        .await?
        .ok_or_else(missing)
}

/// `PATCH /v1/cases/{number}`: `assigned_user` null unassigns.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseChange {
    #[serde(default)]
    status: Option<String>,
    #[serde(default, deserialize_with = "present")]
    assigned_user: Option<Option<String>>,
}

/// A field given as null is `Some(None)`; one left out stays `None` (serde's default).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    use serde::Deserialize as _;
    Option::<String>::deserialize(d).map(Some)
}

async fn update(api: &Api, caller: &Caller, req: &ApiRequest) -> ApiResult<Reply> {
    let change: CaseChange = req.json()?;
    let case = load(api, req).await?;
    // Who may, first: a refused caller learns nothing of the values' validity.
    if !caller.may_update_case(&case) {
        return Err(ApiError::forbidden(format!(
            "only admins, the case's teams and its assignee change case {}",
            case.number
        )));
    }
    let status: Option<CaseStatus> =
        match &change.status {
            None => None,
            Some(s) => Some(s.parse().map_err(|e: mailroom_core::error::Invalid| {
                ApiError::invalid("status", e.message)
            })?),
        };
    if let Some(Some(user)) = &change.assigned_user {
        let active = user.len() <= crate::handlers::emails::MAX_ID_BYTES
            && api
                .adapters
                .store
                .get_user(user)
                .await?
                .is_some_and(|u| u.active);
        if !active {
            return Err(ApiError::invalid(
                "assigned_user",
                format!("{user:?} is not an active user"),
            ));
        }
    }
    if status.is_none() && change.assigned_user.is_none() {
        return Err(ApiError::invalid(
            "body",
            "name a status, an assigned_user, or both",
        ));
    }
    let updated = api
        .adapters
        .store
        .update_case(case.number, status, change.assigned_user)
        .await?;
    Ok(Reply::ok(view(api, &updated).await?))
}
