//! One error body for every endpoint: `{"error": {"code", "message", "field"}}`, with the
//! field at fault named whenever one is (R-P3, the brief's "bad API input gets a 4xx naming
//! the field"). Nothing secret ever goes into a message: store errors are logged and answered
//! with a generic 500/503.

use mailroom_core::error::StoreError;
use serde_json::{json, Value};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// 400: the request is malformed (unparseable body, bad query parameter).
    pub fn bad_request(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(400, "bad_request", message).with_field(field)
    }

    /// 422: well-formed, but a value is not acceptable.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(422, "invalid", message).with_field(field)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(401, "unauthorized", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "forbidden", message)
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(404, "not_found", format!("{} not found", what.into()))
    }

    pub fn conflict(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(409, "conflict", message).with_field(field)
    }

    pub fn body(&self) -> Value {
        json!({"error": {"code": self.code, "message": self.message, "field": self.field}})
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ApiError::not_found(what),
            StoreError::AlreadyExists(what) => {
                ApiError::new(409, "conflict", format!("{what} already exists"))
            }
            e if e.is_retryable() => {
                tracing::warn!(error = %e, "transient store error");
                ApiError::new(503, "unavailable", "the service is busy; try again")
            }
            e => {
                tracing::error!(error = %e, "store error");
                ApiError::new(500, "internal", "internal error")
            }
        }
    }
}

impl From<mailroom_core::error::Invalid> for ApiError {
    fn from(e: mailroom_core::error::Invalid) -> Self {
        let field = if e.field.is_empty() {
            "body".to_string()
        } else {
            e.field
        };
        ApiError::invalid(field, e.message)
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
