//! The `api` function: API Gateway (HTTP API, payload 2.0) requests into the API's handler.
//! API Gateway's JWT authorizer checks the token first; the handler verifies it again
//! (`mailroom_api::auth`), so the function is safe behind any front door and under
//! `cargo lambda watch`.

use lambda_http::{Body, Request};
use mailroom_api::Api;

/// Serves one request. Every failure is an HTTP answer with the API's error body, so nothing
/// reaches Lambda as a function error (which API Gateway would turn into a bare 500).
pub async fn handle(api: &Api, req: Request) -> http::Response<String> {
    let (parts, body) = req.into_parts();
    let body = match body {
        Body::Empty => bytes::Bytes::new(),
        Body::Text(t) => bytes::Bytes::from(t),
        Body::Binary(b) => bytes::Bytes::from(b),
        // A future body kind: treat as empty rather than fail the invocation.
        #[allow(unreachable_patterns)]
        _ => bytes::Bytes::new(),
    };
    api.handle(http::Request::from_parts(parts, body)).await
}
