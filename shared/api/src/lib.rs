//! The HTTP API (R-P, R-S): the `api` function's handler, which the local stack also serves on
//! loopback (`mailroom local up`).
//!
//! A request is routed ([`routes`]), its bearer token verified ([`auth`]), the caller loaded
//! (user and role), then one handler module runs it ([`handlers`]). Who may do what is decided
//! in `mailroom_core::access`, not here; the handlers enforce it before any write or send.
//! Every error is one body ([`error`]); every list is one page ([`page`]).

pub mod auth;
pub mod error;
pub mod handlers;
pub mod page;
pub mod request;
pub mod routes;
pub mod serve;

use mailroom_aws::Adapters;
use mailroom_core::access::Caller;
use mailroom_core::limits::ConfigError;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::request::{ApiRequest, MAX_BODY_BYTES};
use crate::routes::Found;

/// What a handler answers: a status and a JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    pub fn ok(body: Value) -> Self {
        Reply { status: 200, body }
    }
    pub fn created(body: Value) -> Self {
        Reply { status: 201, body }
    }
}

impl From<ApiError> for Reply {
    fn from(e: ApiError) -> Self {
        Reply {
            status: e.status,
            body: e.body(),
        }
    }
}

/// The API's own settings, from the environment, refused at load with the variable named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiSettings {
    /// Personal accounts a user may have (`MAILROOM_PERSONAL_ACCOUNT_LIMIT`, default 5, R-P2).
    pub personal_account_limit: usize,
    /// How long a pre-signed attachment URL works (`MAILROOM_PRESIGN_SECONDS`, default 300).
    pub presign_seconds: u64,
}

impl Default for ApiSettings {
    fn default() -> Self {
        ApiSettings {
            personal_account_limit: 5,
            presign_seconds: 300,
        }
    }
}

impl ApiSettings {
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let d = ApiSettings::default();
        let number = |name: &'static str, default: u64, max: u64| -> Result<u64, ConfigError> {
            match get(name).filter(|v| !v.trim().is_empty()) {
                None => Ok(default),
                Some(v) => match v.trim().parse::<u64>() {
                    Ok(n) if (1..=max).contains(&n) => Ok(n),
                    _ => Err(ConfigError::new(
                        name,
                        format!("{v:?}: a whole number from 1 to {max}"),
                    )),
                },
            }
        };
        Ok(ApiSettings {
            personal_account_limit: number(
                "MAILROOM_PERSONAL_ACCOUNT_LIMIT",
                d.personal_account_limit as u64,
                1000,
            )? as usize,
            presign_seconds: number("MAILROOM_PRESIGN_SECONDS", d.presign_seconds, 3600)?,
        })
    }
}

pub struct Api {
    pub adapters: Adapters,
    pub auth: auth::Verifier,
    pub settings: ApiSettings,
}

impl Api {
    pub fn new(adapters: Adapters, auth: auth::Verifier, settings: ApiSettings) -> Self {
        Api {
            adapters,
            auth,
            settings,
        }
    }

    /// Serves one HTTP request: what the Lambda handler and the local server both call.
    pub async fn handle(&self, req: http::Request<bytes::Bytes>) -> http::Response<String> {
        let (parts, body) = req.into_parts();
        let authorization = parts
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let reply = self
            .serve(
                parts.method,
                parts.uri.path(),
                parts.uri.query().unwrap_or(""),
                authorization,
                body,
            )
            .await;
        http::Response::builder()
            .status(reply.status)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::CACHE_CONTROL, "no-store")
            .body(reply.body.to_string())
            .expect("a status from the handlers and fixed headers")
    }

    /// Routes, authenticates and runs one call.
    pub async fn serve(
        &self,
        method: http::Method,
        path: &str,
        query: &str,
        authorization: Option<&str>,
        body: bytes::Bytes,
    ) -> Reply {
        let (route, params) = match routes::find(method.as_str(), path) {
            Found::Route(r, p) => (r, p),
            Found::WrongMethod(allowed) => {
                return ApiError::new(
                    405,
                    "method_not_allowed",
                    format!("{method} is not served here; use {}", allowed.join(", ")),
                )
                .into()
            }
            Found::None => return ApiError::not_found(format!("route {path}")).into(),
        };
        let caller = match self.caller(authorization).await {
            Ok(c) => c,
            Err(e) => return e.into(),
        };
        if body.len() > MAX_BODY_BYTES {
            return ApiError::bad_request(
                "body",
                format!("the body is over {MAX_BODY_BYTES} bytes"),
            )
            .into();
        }
        let req = ApiRequest {
            method,
            path: path.to_string(),
            params,
            query: request::parse_query(query),
            body,
        };
        match handlers::call(self, &caller, &route, &req).await {
            Ok(reply) => reply,
            Err(e) => e.into(),
        }
    }

    /// The caller a token is for: an active Mailroom user, with their role.
    async fn caller(&self, authorization: Option<&str>) -> ApiResult<Caller> {
        let claims = self
            .auth
            .verify(authorization, chrono::Utc::now().timestamp())?;
        let store = &self.adapters.store;
        let user = store
            .get_user(&claims.user)
            .await?
            .filter(|u| u.active)
            .ok_or_else(|| {
                ApiError::unauthorized("the token's user is not an active Mailroom user")
            })?;
        let role = match &user.role {
            Some(r) => store.get_role(r).await?,
            None => None,
        };
        Ok(Caller::new(user, role))
    }
}
