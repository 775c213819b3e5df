//! What a deployment refuses: a poller never creates the credential data key.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Utc;
use mailroom_aws::{Adapters, KmsSecretBox};
use mailroom_core::model::ErrorKind;
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
