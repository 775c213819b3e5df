//! One module per resource. Each owns its routes (`ROUTES`) and a `call` that runs one of its
//! operations for an authenticated caller; access is decided by `mailroom_core::access`.

use mailroom_core::access::Caller;

use crate::error::ApiResult;
use crate::request::ApiRequest;
use crate::routes::Route;
use crate::{Api, Reply};

pub mod cases;
pub mod send;

/// Which module serves a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Module {
    Cases,
    Send,
}

/// Every module's routes.
pub const ROUTES: &[&[Route]] = &[cases::ROUTES, send::ROUTES];

pub async fn call(api: &Api, caller: &Caller, route: &Route, req: &ApiRequest) -> ApiResult<Reply> {
    match route.module {
        Module::Cases => cases::call(api, caller, route.operation, req).await,
        Module::Send => send::call(api, caller, route.operation, req).await,
    }
}
