//! The local API's contract: `mailroom local up --json` gives `api_url` and serves the API for
//! its prefix from the same binary, reused while the binary is unchanged and restarted when it
//! changed; `mailroom local token <user>` prints one line the API accepts for at least an hour;
//! changes made through the CLI are seen by the API at once.

use std::io::{Read, Write};
use std::process::{Command, Output};

use base64::Engine as _;
use serde_json::Value;

use crate::harness::*;

fn mailroom(prefix: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mailroom"))
        .args(args)
        .env("MAILROOM_PREFIX", prefix)
        .output()
        .expect("mailroom runs")
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// One GET over plain HTTP/1.1 (the local API listens on loopback only).
fn get(url: &str, path: &str, token: Option<&str>) -> (u16, Value) {
    let hostport = url.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(hostport).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {hostport}\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let status = raw[9..12].parse().unwrap();
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    // Chunked or not, the JSON document is the text between its outer braces.
    let start = body.find('{').unwrap_or(0);
    let end = body.rfind('}').map(|i| i + 1).unwrap_or(body.len());
    (
        status,
        serde_json::from_str(&body[start..end]).unwrap_or(Value::Null),
    )
}

fn pid_of(prefix: &str) -> u32 {
    mailroom::local_api::read_state(&mailroom::local_api::state_file(prefix))
        .expect("the API's state file")
        .pid
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_up_serves_the_api_and_tokens_work_for_cli_made_users() {
    stack();
    let prefix = unique("apiup").to_lowercase();
    let up: Value =
        serde_json::from_str(&ok(mailroom(&prefix, &["local", "up", "--json"]))).unwrap();
    let url = up["api_url"].as_str().expect("api_url").to_string();
    assert!(
        url.starts_with("http://127.0.0.1:") && !url.ends_with('/'),
        "{url}"
    );

    // A user added through the CLI after the API started is known to it at once.
    ok(mailroom(
        &prefix,
        &["users", "add", "ann", "--email", "ann@corp.example"],
    ));
    let out = ok(mailroom(&prefix, &["local", "token", "ann"]));
    assert_eq!(out.lines().count(), 1, "{out:?}");
    let token = out.trim().to_string();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    let now = chrono::Utc::now().timestamp();
    assert!(claims["exp"].as_i64().unwrap() - now >= 3600, "{claims}");
    assert_eq!(
        get(&url, "/v1/cases", Some(&token)),
        (200, serde_json::json!({"items": [], "next": null}))
    );

    // An inactive user, and a user that does not exist, are refused with the error body.
    ok(mailroom(&prefix, &["users", "add", "ivy", "--inactive"]));
    for user in ["ivy", "nobody"] {
        let t = ok(mailroom(&prefix, &["local", "token", user]));
        let (status, body) = get(&url, "/v1/cases", Some(t.trim()));
        assert_eq!(status, 401, "{user}: {body}");
        assert_eq!(body["error"]["code"], "unauthorized");
    }
    assert_eq!(get(&url, "/v1/cases", None).0, 401);

    // Unchanged binary: `local up` keeps the running server.
    let first = pid_of(&prefix);
    ok(mailroom(&prefix, &["local", "up", "--json"]));
    assert_eq!(pid_of(&prefix), first);
    // A rebuilt binary (here: its recorded identity no longer matches): restarted.
    let path = mailroom::local_api::state_file(&prefix);
    let mut state = mailroom::local_api::read_state(&path).unwrap();
    state.binary.modified_ns += 1;
    std::fs::write(&path, serde_json::to_vec(&state).unwrap()).unwrap();
    let again: Value =
        serde_json::from_str(&ok(mailroom(&prefix, &["local", "up", "--json"]))).unwrap();
    let second = pid_of(&prefix);
    assert_ne!(second, first);
    assert!(
        !std::path::Path::new(&format!("/proc/{first}")).exists() || {
            // A zombie until its parent (long gone) is reaped by init: not serving.
            std::fs::read_to_string(format!("/proc/{first}/stat")).is_ok_and(|s| s.contains(") Z "))
        }
    );
    let url = again["api_url"].as_str().unwrap();
    assert_eq!(get(url, "/v1/cases", Some(&token)).0, 200);
    mailroom::local_api::stop_prefix(&prefix);
}
