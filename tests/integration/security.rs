//! What a deployment refuses: a poller never creates the credential data key, and plaintext
//! IMAP is refused (when an account is added and when it is polled) unless allowed.

use std::io::Write;
use std::process::{Command, Stdio};

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Utc;
use mailroom_aws::{Adapters, KmsSecretBox};
use mailroom_core::model::{ErrorKind, Security};
use mailroom_core::ports::{AccountStore, SecretBox};

use crate::harness::*;

/// The stored data key item, if any.
async fn data_key_item(env: &TestEnv) -> Option<String> {
    env.ctx
        .clients
        .dynamodb
        .get_item()
        .table_name(&env.ctx.config().resources.table)
        .key("pk", AttributeValue::S("CONFIG".into()))
        .key("sk", AttributeValue::S("DATAKEY".into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .and_then(|i| i.get("key_id").and_then(|v| v.as_s().ok()).cloned())
}

fn fresh_box(env: &TestEnv) -> KmsSecretBox {
    let r = &env.ctx.config().resources;
    KmsSecretBox::new(
        env.ctx.clients.kms.clone(),
        &r.kms_key_id,
        &r.table,
        env.ctx.clients.dynamodb.clone(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_provisioning_creates_the_data_key_and_a_poller_without_it_refuses() {
    let env = env("datakey").await;
    // Provisioning made it: nothing has been sealed yet.
    let provisioned = data_key_item(&env)
        .await
        .expect("provisioning stores the data key");
    let mb = TestMailbox {
        user: format!("{}@example.test", unique("datakey")),
        password: "unused".into(),
    };
    env.add_account("support", &mb).await;
    let sealed = env
        .ctx
        .adapters()
        .store
        .get_account("support")
        .await
        .unwrap()
        .unwrap()
        .secret;
    assert_eq!(
        sealed.key_id, provisioned,
        "sealed under the provisioned key"
    );

    // The key item is lost. A new process opening a password refuses, says why, and creates
    // nothing (a new key would open none of the stored passwords).
    env.ctx
        .clients
        .dynamodb
        .delete_item()
        .table_name(&env.ctx.config().resources.table)
        .key("pk", AttributeValue::S("CONFIG".into()))
        .key("sk", AttributeValue::S("DATAKEY".into()))
        .send()
        .await
        .unwrap();
    let err = fresh_box(&env)
        .open("support", &sealed)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("CONFIG/DATAKEY"), "{err}");
    assert!(err.contains("not provisioned"), "{err}");
    assert_eq!(data_key_item(&env).await, None, "opening created a key");

    // The poller reports it on the account, as a credential problem, and still creates none.
    let poller =
        poller::Poller::new(Adapters::new(&env.ctx.clients, env.ctx.config().clone())).unwrap();
    let report = poller.service().poll("support", Utc::now()).await.unwrap();
    let failure = report.error.expect("the poll fails");
    assert_eq!(failure.kind, ErrorKind::Credentials);
    assert!(
        failure.message.contains("CONFIG/DATAKEY"),
        "{}",
        failure.message
    );
    assert_eq!(data_key_item(&env).await, None, "polling created a key");

    // Provisioning again creates a new key, which indeed opens nothing sealed before.
    let again = fresh_box(&env).create_data_key().await.unwrap();
    assert_ne!(again, provisioned);
    assert_eq!(
        fresh_box(&env).create_data_key().await.unwrap(),
        again,
        "idempotent"
    );
    let err = fresh_box(&env).open("support", &sealed).await.unwrap_err();
    let cause = std::error::Error::source(&err).map(|s| s.to_string());
    assert!(
        cause
            .as_deref()
            .unwrap_or_default()
            .contains("unknown data key"),
        "{err}: {cause:?}"
    );
}

/// Runs the CLI against the prefix's resources as a deployed stack: `MAILROOM_TABLE` and the
/// other variables set, the local stack's defaults (plaintext allowed) not applied.
fn deployed_cli(
    env: &TestEnv,
    extra_env: &[(&str, &str)],
    args: &[&str],
    stdin: &str,
) -> std::process::Output {
    let r = &env.ctx.config().resources;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mailroom"));
    cmd.args(args)
        .env("MAILROOM_TABLE", &r.table)
        .env("MAILROOM_BUCKET", &r.bucket)
        .env("MAILROOM_POLL_QUEUE_URL", &r.poll_queue_url)
        .env("MAILROOM_INGEST_QUEUE_URL", &r.ingest_queue_url)
        .env("MAILROOM_DISPATCH_QUEUE_URL", &r.dispatch_queue_url)
        .env("MAILROOM_KMS_KEY_ID", &r.kms_key_id)
        .env("MAILROOM_IMAP_CA_FILE", &stack().ca_file)
        // The IMAP server is on loopback: only the plaintext rule is under test.
        .env("MAILROOM_ALLOW_PRIVATE_HOSTS", "true")
        .env_remove("MAILROOM_ALLOW_PLAINTEXT")
        .env("AWS_ENDPOINT_URL", &stack().aws_endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("mailroom runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_imap_is_refused_unless_the_deployment_allows_it() {
    let env = env("plainoff").await;
    let mb = mailbox("plainoff");
    deliver(&mb, &[message(Some("plainoff@example.com"), "plain")]).await;
    let port = stack().imap_port.to_string();
    let add = |name: &str| {
        vec![
            "account".to_string(),
            "add-group".into(),
            "--name".into(),
            name.into(),
            "--address".into(),
            mb.user.clone(),
            "--imap-host".into(),
            "127.0.0.1".into(),
            "--imap-port".into(),
            port.clone(),
            "--imap-user".into(),
            mb.user.clone(),
            "--password-stdin".into(),
            "--security".into(),
            "plain".into(),
        ]
    };
    let args = add("clear");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let password = format!("{}\n", mb.password);

    // A deployed configuration refuses it, naming the field and the switch; nothing is stored.
    let refused = deployed_cli(&env, &[], &args, &password);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert!(stderr.contains("--security"), "{stderr}");
    assert!(stderr.contains("MAILROOM_ALLOW_PLAINTEXT"), "{stderr}");
    let store = &env.ctx.adapters().store;
    assert!(store.get_account("clear").await.unwrap().is_none());

    // With the switch, the same command is accepted.
    let allowed = deployed_cli(
        &env,
        &[("MAILROOM_ALLOW_PLAINTEXT", "true")],
        &args,
        &password,
    );
    assert!(
        allowed.status.success(),
        "{}",
        String::from_utf8_lossy(&allowed.stderr)
    );
    assert_eq!(
        store
            .get_account("clear")
            .await
            .unwrap()
            .unwrap()
            .imap
            .security,
        Security::Plain
    );

    // A poller whose deployment refuses plaintext does not connect to it (an account stored
    // before the switch was turned off), and says which switch would allow it.
    let mut strict = env.ctx.config().clone();
    strict.allow_plaintext = false;
    let poller = poller::Poller::new(Adapters::new(&env.ctx.clients, strict)).unwrap();
    let report = poller.service().poll("clear", Utc::now()).await.unwrap();
    assert_eq!(report.fetched, 0, "{report:?}");
    let failure = report.error.expect("the poll is refused");
    assert_eq!(failure.kind, ErrorKind::Tls);
    assert!(
        failure.message.contains("MAILROOM_ALLOW_PLAINTEXT"),
        "{}",
        failure.message
    );
    // The local stack allows it: the same account polls there.
    let report = env
        .ctx
        .poller
        .service()
        .poll("clear", Utc::now())
        .await
        .unwrap();
    assert!(report.error.is_none(), "{report:?}");
    assert_eq!(report.fetched, 1);
}
