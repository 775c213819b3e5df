//! Cases: list and read (records are readable by every active user, R-P4).

use mailroom_core::access::Caller;
use mailroom_core::ports::Crm as _;
use mailroom_core::records::{Case, RecordRef};
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
];

pub async fn call(api: &Api, _caller: &Caller, op: &str, req: &ApiRequest) -> ApiResult<Reply> {
    match op {
        "listCases" => list(api, req).await,
        "getCase" => get(api, req).await,
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
    let cases = api.adapters.store.list_cases().await?;
    let (cases, next) = page.page(cases, |c| number_key(c.number.get()));
    let mut items = Vec::with_capacity(cases.len());
    for c in &cases {
        items.push(view(api, c).await?);
    }
    Ok(Reply::ok(list_body(items, next)))
}

async fn get(api: &Api, req: &ApiRequest) -> ApiResult<Reply> {
    let n = req.number_param("number", "case")?;
    let missing = || ApiError::not_found(format!("case {n}"));
    let number = CaseNumber::new(n).map_err(|_| missing())?;
    let c = api
        .adapters
        .store
        .get_case(number)
        .await?
        .ok_or_else(missing)?;
    Ok(Reply::ok(view(api, &c).await?))
}
