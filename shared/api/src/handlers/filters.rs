//! Email filters (R-X) by scope, with R-X3's rule on who manages which
//! (`Caller::may_manage_filter`): global and group-account filters the admins', a personal
//! account's its owner's, a user's inbox filters that user's; admins manage anyone's. A
//! caller lists only the filters they may manage. The checks are the CLI's
//! (`mailroom_core::admin::NewFilter`), and a user's filters are limited (R-X2).

use std::collections::HashMap;

use mailroom_core::access::Caller;
use mailroom_core::admin::{check_filter_allowance, parse_scope, NewFilter};
use mailroom_core::error::StoreError;
use mailroom_core::filters::{Filter, Scope};
use mailroom_core::model::Account;
use mailroom_core::ports::{AccountStore as _, FilterStore as _};
use mailroom_core::views;
use serde::Deserialize;

use crate::error::{ApiError, ApiResult};
use crate::handlers::accounts::field_of;
use crate::handlers::Module;
use crate::page::{list_body, PageRequest};
use crate::request::ApiRequest;
use crate::routes::Route;
use crate::{Api, Reply};

pub const ROUTES: &[Route] = &[
    Route::new("GET", "/v1/filters", "listFilters", Module::Filters),
    Route::new("POST", "/v1/filters", "createFilter", Module::Filters),
    Route::new("GET", "/v1/filters/{name}", "getFilter", Module::Filters),
    Route::new(
        "DELETE",
        "/v1/filters/{name}",
        "deleteFilter",
        Module::Filters,
    ),
];

pub async fn call(api: &Api, caller: &Caller, op: &str, req: &ApiRequest) -> ApiResult<Reply> {
    match op {
        "listFilters" => list(api, caller, req).await,
        "createFilter" => create(api, caller, req).await,
        "getFilter" => get(api, caller, req).await,
        "deleteFilter" => delete(api, caller, req).await,
        _ => Err(ApiError::not_found("operation")),
    }
}

/// Every account by name: the account scopes' accounts, read once per call.
async fn accounts(api: &Api) -> ApiResult<HashMap<String, Account>> {
    Ok(api
        .adapters
        .store
        .list_accounts()
        .await?
        .into_iter()
        .map(|a| (a.name.clone(), a))
        .collect())
}

fn may_manage(caller: &Caller, scope: &Scope, accounts: &HashMap<String, Account>) -> bool {
    let account = match scope {
        Scope::Account(name) => accounts.get(name),
        _ => None,
    };
    caller.may_manage_filter(scope, account)
}

async fn list(api: &Api, caller: &Caller, req: &ApiRequest) -> ApiResult<Reply> {
    let page = PageRequest::from_request(req)?;
    let accounts = accounts(api).await?;
    let filters: Vec<Filter> = api
        .adapters
        .store
        .filters()
        .await?
        .into_iter()
        .filter(|f| may_manage(caller, &f.scope, &accounts))
        .collect();
    let (filters, next) = page.page(filters, |f| f.name.clone());
    Ok(Reply::ok(list_body(
        filters.iter().map(views::filter).collect(),
        next,
    )))
}

/// The filter `{name}` when the caller may manage it; 404 otherwise.
async fn manageable(api: &Api, caller: &Caller, name: &str) -> ApiResult<Filter> {
    let accounts = accounts(api).await?;
    api.adapters
        .store
        .filters()
        .await?
        .into_iter()
        .find(|f| f.name == name)
        .filter(|f| may_manage(caller, &f.scope, &accounts))
        .ok_or_else(|| ApiError::not_found(format!("filter {name}")))
}

async fn get(api: &Api, caller: &Caller, req: &ApiRequest) -> ApiResult<Reply> {
    let f = manageable(api, caller, req.param("name")).await?;
    Ok(Reply::ok(views::filter(&f)))
}

async fn delete(api: &Api, caller: &Caller, req: &ApiRequest) -> ApiResult<Reply> {
    let f = manageable(api, caller, req.param("name")).await?;
    match api.adapters.store.remove_filter(&f.name).await {
        Ok(()) | Err(StoreError::NotFound(_)) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(Reply::ok(
        serde_json::json!({"name": f.name, "removed": true}),
    ))
}

/// `POST /v1/filters`: `mailroom filters add`'s fields; `scope` is `global`,
/// `account:<account>` or `user:<user>`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FilterBody {
    scope: String,
    name: String,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    body_any: Vec<String>,
    #[serde(default)]
    body_all: Vec<String>,
    /// skip, move-to-folder, mark-read, skip-notification.
    action: String,
    #[serde(default)]
    folder: Option<String>,
}

/// A core refusal as a 422 naming the body's field (`--folder` is the filter's one `folder`).
fn invalid(e: mailroom_core::error::Invalid) -> ApiError {
    let field = match e.field.as_str() {
        "--folder" => "folder".to_string(),
        f => field_of(f),
    };
    ApiError::invalid(field, e.message)
}

async fn create(api: &Api, caller: &Caller, req: &ApiRequest) -> ApiResult<Reply> {
    let body: FilterBody = req.json()?;
    let scope = parse_scope(&body.scope).map_err(invalid)?;
    let accounts = accounts(api).await?;
    // R-X3 before anything else is told or written. An unknown account is nobody's but the
    // admins' (who then hear that it is unknown).
    if !may_manage(caller, &scope, &accounts) {
        return Err(
            ApiError::forbidden(format!("you may not manage filters of scope {scope}"))
                .with_field("scope"),
        );
    }
    let store = &api.adapters.store;
    match &scope {
        Scope::Account(a) if !accounts.contains_key(a) => {
            return Err(ApiError::invalid("scope", format!("unknown account {a:?}")))
        }
        Scope::User(u) if store.get_user(u).await?.is_none() => {
            return Err(ApiError::invalid("scope", format!("unknown user {u:?}")))
        }
        _ => {}
    }
    let filter = NewFilter {
        scope,
        name: body.name,
        from: body.from,
        to: body.to,
        subject: body.subject,
        body_any: body.body_any,
        body_all: body.body_all,
        action: body.action,
        folder: body.folder,
    }
    .build()
    .map_err(invalid)?;
    let all: Vec<Account> = accounts.into_values().collect();
    check_filter_allowance(&store.filters().await?, &all, &filter)
        .map_err(|e| ApiError::conflict("scope", e.message))?;
    store.add_filter(&filter).await.map_err(|e| match e {
        StoreError::AlreadyExists(_) => {
            ApiError::conflict("name", format!("a filter {:?} already exists", filter.name))
        }
        other => other.into(),
    })?;
    Ok(Reply::created(views::filter(&filter)))
}
