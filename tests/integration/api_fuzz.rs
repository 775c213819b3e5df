//! The API fuzzed against its own document (`tests/api_fuzz.sh`: schemathesis from PyPI):
//! an API on a fresh prefix, a little data so that ids resolve, then generated requests to
//! every documented operation, valid and malformed, as an admin. None may get a 5xx.
//! Bounded: a few examples per operation and a time budget, so it fits in CI.

use mailroom_core::admin::NewRecord;
use mailroom_core::records::Contact;
use serde_json::json;

use crate::api_support::ApiServer;
use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_answers_no_generated_request_with_a_server_error() {
    let e = env("fuzz").await;
    let ctx = &e.ctx;
    let store = &ctx.adapters().store;
    store.add_team("l1").await.unwrap();
    for (name, admin) in [("root", true), ("ann", false)] {
        let emails = [format!("{name}@corp.example")];
        mailroom::records::add_user_as(ctx, name, &emails, &["l1".into()], true, admin, None)
            .await
            .unwrap();
    }
    let carol = NewRecord::Contact(Contact {
        v: 1,
        name: "Carol".into(),
        email: "carol@customer.example".into(),
        account: None,
    });
    store.add_record(&carol).await.unwrap();
    let api = ApiServer::start(&e).await;
    let (status, _) = api
        .call(
            "root",
            "PUT",
            "/v1/records/contact/carol@customer.example/followers/ann",
            Some(&json!(null)),
        )
        .await;
    assert_eq!(status, 200);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/api_fuzz.sh");
    let token = api.token("root");
    // A fixed seed by default, so the gate replays the same requests (a new finding is then a
    // change of the code, not of luck); MAILROOM_FUZZ_SEED=random (or another number) explores.
    let seed = std::env::var("MAILROOM_FUZZ_SEED").unwrap_or_else(|_| "20261202".into());
    eprintln!("api_fuzz: seed {seed}");
    let out = tokio::process::Command::new("bash")
        .args([script, api.url.as_str(), token.as_str(), "15", "150"])
        .env("MAILROOM_FUZZ_SEED", &seed)
        .output()
        .await
        .expect("tests/api_fuzz.sh runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "schemathesis found server errors (or could not run):\n{stdout}\n{stderr}"
    );
    // The run's summary, for the log.
    if let Some(at) = stdout.find("SUMMARY") {
        eprintln!("{}", &stdout[at..]);
    }
    // It ran: operations were tested, not all skipped.
    assert!(stdout.contains("Tested:"), "{stdout}");
    assert!(!stdout.contains("Tested: 0"), "{stdout}");
}
