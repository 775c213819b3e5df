//! One module per resource. Each owns its routes (`ROUTES`) and a `call` that runs one of its
//! operations for an authenticated caller; access is decided by `mailroom_core::access`.

use mailroom_core::access::Caller;

use crate::error::ApiResult;
use crate::request::ApiRequest;
use crate::routes::Route;
use crate::{Api, Reply};

pub mod accounts;
pub mod cases;
pub mod directory;
pub mod emails;
pub mod filters;
pub mod notifications;
pub mod records;
pub mod send;

/// Which module serves a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Module {
    Accounts,
    Cases,
    Directory,
    Filters,
    Send,
    Emails,
    Records,
    Notifications,
}

/// Every module's routes.
pub const ROUTES: &[&[Route]] = &[
    accounts::ROUTES,
    cases::ROUTES,
    directory::ROUTES,
    filters::ROUTES,
    send::ROUTES,
    emails::ROUTES,
    records::ROUTES,
    notifications::ROUTES,
];

pub async fn call(api: &Api, caller: &Caller, route: &Route, req: &ApiRequest) -> ApiResult<Reply> {
    match route.module {
        Module::Accounts => accounts::call(api, caller, route.operation, req).await,
        Module::Cases => cases::call(api, caller, route.operation, req).await,
        Module::Directory => directory::call(api, caller, route.operation, req).await,
        Module::Filters => filters::call(api, caller, route.operation, req).await,
        Module::Send => send::call(api, caller, route.operation, req).await,
        Module::Emails => emails::call(api, caller, route.operation, req).await,
        Module::Records => records::call(api, caller, route.operation, req).await,
        Module::Notifications => notifications::call(api, caller, route.operation, req).await,
    }
}
