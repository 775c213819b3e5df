//! The API's front door over real HTTP: who gets in (a valid token for an active user), who is
//! turned away and with which body, and what unknown routes and methods answer.

use mailroom_api::auth::{LocalKey, LOCAL_AUDIENCE, LOCAL_ISSUER};
use serde_json::{json, Value};

use crate::api_support::ApiServer;
use crate::harness::{env, TestEnv};

async fn with_users(tag: &str) -> (TestEnv, ApiServer) {
    let env = env(tag).await;
    for (name, active) in [("ann", true), ("bob", false)] {
        mailroom::records::add_user(
            &env.ctx,
            name,
            &[format!("{name}@corp.example")],
            &[],
            active,
        )
        .await
        .unwrap();
    }
    let api = ApiServer::start(&env).await;
    (env, api)
}

/// The one error body: exactly `code`, `message` and `field` under `error`.
fn error_of(body: &Value) -> (&str, &str, &Value) {
    let e = body["error"]
        .as_object()
        .unwrap_or_else(|| panic!("an error body: {body}"));
    let mut keys: Vec<_> = e.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["code", "field", "message"], "{body}");
    assert_eq!(body.as_object().unwrap().len(), 1, "only `error`: {body}");
    (
        e["code"].as_str().unwrap(),
        e["message"].as_str().unwrap(),
        &e["field"],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_token_for_an_active_user_gets_in_and_every_other_caller_gets_a_401() {
    let (_env, api) = with_users("apiauth").await;
    let (status, body) = api.call("ann", "GET", "/v1/cases", None).await;
    assert_eq!((status, &body), (200, &json!({"items": [], "next": null})));

    let now = chrono::Utc::now().timestamp();
    let claims = |user: &str, aud: &str, exp: i64| {
        json!({"iss": LOCAL_ISSUER, "aud": aud, "sub": user, "username": user,
               "iat": now - 7200, "exp": exp})
    };
    let foreign = LocalKey::generate().unwrap();
    let bearer = |t: String| Some(format!("Bearer {t}"));
    let cases: Vec<(&str, Option<String>, &str)> = vec![
        ("no token", None, "missing bearer token"),
        (
            "not a bearer token",
            Some("Basic YW5uOnB3".into()),
            "the Authorization header is not a bearer token",
        ),
        (
            "expired",
            bearer(
                api.key()
                    .sign_claims(&claims("ann", LOCAL_AUDIENCE, now - 3600)),
            ),
            "token expired",
        ),
        (
            "foreign-signed",
            bearer(foreign.sign("ann", 3600)),
            "token key id is not in the configured key set",
        ),
        (
            "wrong audience",
            bearer(
                api.key()
                    .sign_claims(&claims("ann", "someone-else", now + 3600)),
            ),
            "token audience not accepted",
        ),
        (
            "unknown user",
            bearer(api.token("zed")),
            "the token's user is not an active Mailroom user",
        ),
        (
            "inactive user",
            bearer(api.token("bob")),
            "the token's user is not an active Mailroom user",
        ),
    ];
    for (what, header, reason) in &cases {
        let (status, body) = api
            .call_with_header(header.as_deref(), "GET", "/v1/cases", None)
            .await;
        assert_eq!(status, 401, "{what}: {body}");
        let (code, message, field) = error_of(&body);
        assert_eq!((code, message), ("unauthorized", *reason), "{what}");
        assert_eq!(field, &Value::Null, "{what}");
        if let Some(h) = header {
            let token = h.rsplit(' ').next().unwrap();
            assert!(!body.to_string().contains(token), "{what}: token echoed");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_are_404_wrong_methods_405_and_oversized_bodies_400() {
    let (_env, api) = with_users("apiroute").await;
    let (status, body) = api.call("ann", "GET", "/v1/nothing-here", None).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(error_of(&body).0, "not_found");

    let (status, body) = api.call("ann", "DELETE", "/v1/cases", None).await;
    assert_eq!(status, 405, "{body}");
    let (code, message, _) = error_of(&body);
    assert_eq!(code, "method_not_allowed");
    assert!(
        message.contains("GET"),
        "names the allowed method: {message}"
    );

    // Cut off by the server before it is buffered or routed.
    let big = Value::String("x".repeat(mailroom_api::request::MAX_BODY_BYTES + 16));
    let (status, body) = api.call("ann", "POST", "/v1/cases", Some(&big)).await;
    assert_eq!(status, 400, "{body}");
    let (code, _, field) = error_of(&body);
    assert_eq!((code, field), ("bad_request", &json!("body")));
}
