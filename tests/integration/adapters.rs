//! Each adapter against the real local service (moto), beyond what the pipeline tests show.

use aws_sdk_kms::primitives::Blob;
use mailroom_core::model::Secret;
use mailroom_core::ports::*;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_sealed_per_account_and_kms_enforces_the_context() {
    let env = env("kms").await;
    let a = env.ctx.adapters();
    let secret = Secret::new("correct horse battery staple");
    let sealed = a.secrets.seal("support", &secret).await.unwrap();
    assert!(!sealed.ciphertext.contains("horse"));
    assert_eq!(a.secrets.open("support", &sealed).await.unwrap(), secret);
    // The account name is the associated data: another account cannot open it.
    assert!(a.secrets.open("sales", &sealed).await.is_err());

    // The wrapped data key only unwraps with its encryption context.
    let item = env
        .ctx
        .clients
        .dynamodb
        .get_item()
        .table_name(&env.ctx.config().resources.table)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S("CONFIG".into()),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("DATAKEY".into()),
        )
        .send()
        .await
        .unwrap()
        .item
        .expect("data key stored");
    use base64::Engine;
    let wrapped = base64::engine::general_purpose::STANDARD
        .decode(item["wrapped"].as_s().unwrap())
        .unwrap();
    let without_context = env
        .ctx
        .clients
        .kms
        .decrypt()
        .key_id(&env.ctx.config().resources.kms_key_id)
        .ciphertext_blob(Blob::new(wrapped))
        .send()
        .await;
    assert!(
        without_context.is_err(),
        "KMS must refuse a decrypt without the context"
    );

    // A second process (fresh adapter, empty cache) opens what the first sealed.
    let fresh = mailroom_aws::KmsSecretBox::new(
        env.ctx.clients.kms.clone(),
        &env.ctx.config().resources.kms_key_id,
        &env.ctx.config().resources.table,
        env.ctx.clients.dynamodb.clone(),
    );
    assert_eq!(fresh.open("support", &sealed).await.unwrap(), secret);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_blob_and_queue_adapters_keep_their_contracts() {
    let env = env("ports").await;
    let a = env.ctx.adapters();
    // DynamoDB: updates of a missing account are NotFound, not a silent new item.
    let err = a
        .store
        .save_status("ghost", &Default::default())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
    assert!(a.store.get_account("ghost").await.unwrap().is_none());

    // S3: a missing key is None; puts round-trip bytes exactly.
    assert!(a.blobs.get("raw/none.eml").await.unwrap().is_none());
    let bytes: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    a.blobs
        .put("raw/x.bin", bytes.clone(), "application/octet-stream")
        .await
        .unwrap();
    assert_eq!(a.blobs.get("raw/x.bin").await.unwrap().unwrap(), bytes);

    // SQS: more than ten messages go out in several batches, all arrive.
    let msgs: Vec<Outgoing<mailroom_core::messages::PollJob>> = (0..23)
        .map(|i| Outgoing::plain(mailroom_core::messages::PollJob::new(format!("a{i}"), "c")))
        .collect();
    a.ingest_queue.send(&msgs).await.unwrap();
    let mut got = 0;
    for _ in 0..10 {
        let batch = a.ingest_queue.receive(10, 0).await.unwrap();
        if batch.is_empty() {
            break;
        }
        got += batch.len();
        let r: Vec<_> = batch.iter().map(|m| m.receipt_handle.clone()).collect();
        a.ingest_queue.delete(&r).await.unwrap();
    }
    assert_eq!(got, 23);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulator_serialises_conditional_writes_under_parallel_requests() {
    // The exactly-once design leans on conditional writes; check the emulator honours them
    // when requests race, so the tests that rely on it prove something.
    let env = env("race").await;
    let client = env.ctx.clients.dynamodb.clone();
    let table = env.ctx.config().resources.table.clone();
    let mut tasks = vec![];
    for i in 0..40 {
        let client = client.clone();
        let table = table.clone();
        tasks.push(tokio::spawn(async move {
            client
                .put_item()
                .table_name(table)
                .item(
                    "pk",
                    aws_sdk_dynamodb::types::AttributeValue::S("RACE".into()),
                )
                .item(
                    "sk",
                    aws_sdk_dynamodb::types::AttributeValue::S("ONE".into()),
                )
                .item(
                    "winner",
                    aws_sdk_dynamodb::types::AttributeValue::N(i.to_string()),
                )
                .condition_expression("attribute_not_exists(pk)")
                .send()
                .await
                .is_ok()
        }));
    }
    let mut wins = 0;
    for t in tasks {
        if t.await.unwrap() {
            wins += 1;
        }
    }
    assert_eq!(wins, 1, "exactly one conditional put may win");

    // Transactions too: 40 racing claims of one key, each also bumping a counter. Exactly one
    // commits, the others are cancelled (never a 500, never a half-applied transaction).
    use aws_sdk_dynamodb::types::{AttributeValue as Av, Put, TransactWriteItem, Update};
    let mut tasks = vec![];
    for i in 0..40 {
        let client = client.clone();
        let table = table.clone();
        tasks.push(tokio::spawn(async move {
            let claim = Put::builder()
                .table_name(&table)
                .item("pk", Av::S("RACE".into()))
                .item("sk", Av::S("TX".into()))
                .item("winner", Av::N(i.to_string()))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .unwrap();
            let bump = Update::builder()
                .table_name(&table)
                .key("pk", Av::S("RACE".into()))
                .key("sk", Av::S("COUNT".into()))
                .update_expression("ADD n :one")
                .expression_attribute_values(":one", Av::N("1".into()))
                .build()
                .unwrap();
            match client
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().put(claim).build())
                .transact_items(TransactWriteItem::builder().update(bump).build())
                .send()
                .await
            {
                Ok(_) => Ok(true),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_transaction_canceled_exception()) =>
                {
                    Ok(false)
                }
                Err(e) => Err(format!("{e:?}")),
            }
        }));
    }
    let mut committed = 0;
    for t in tasks {
        if t.await
            .unwrap()
            .expect("no emulator error under parallel transactions")
        {
            committed += 1;
        }
    }
    assert_eq!(committed, 1);
    let count = client
        .get_item()
        .table_name(&table)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S("RACE".into()),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("COUNT".into()),
        )
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert_eq!(
        count["n"].as_n().unwrap(),
        "1",
        "cancelled transactions applied nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbox_copies_of_a_large_team_are_batched_and_never_undo_a_users_change() {
    use mailroom_core::filters::InboxCopy;
    let env = env("copies").await;
    let store = &env.ctx.adapters().store;
    let copy = |user: String, read: bool| InboxCopy {
        v: 1,
        user,
        email_id: "e-copies".into(),
        message_id: "copies@x.example".into(),
        subject: Some("hi".into()),
        from: Some("a@x.example".into()),
        account: "support".into(),
        folder: "Inbox".into(),
        read,
        notify: true,
        filters: vec![],
        at: chrono::Utc::now(),
    };
    // 60 members: more than one BatchWriteItem (25 a request).
    let users: Vec<String> = (0..60).map(|i| format!("member{i:02}")).collect();
    let first: Vec<InboxCopy> = users.iter().map(|u| copy(u.clone(), false)).collect();
    store.put_copies(&first).await.unwrap();
    // A user reads it; a redelivery writes every copy again (as unread).
    let mut mine = copy("member07".into(), true);
    mine.folder = "Done".into();
    // The user's change, written as the API will (an unconditional put of their copy).
    let pk = mailroom_core::keys::inbox_pk("member07");
    env.ctx
        .clients
        .dynamodb
        .put_item()
        .table_name(&env.ctx.config().resources.table)
        .set_item(Some(mailroom_aws::dynamo::item::to_item(
            &mine,
            &[("pk", &pk), ("sk", "e-copies")],
        )))
        .send()
        .await
        .unwrap();
    store.put_copies(&first).await.unwrap();
    for u in ["member00", "member07", "member59"] {
        let inbox = store.inbox(u).await.unwrap();
        assert_eq!(inbox.len(), 1, "{u}: one copy");
        if u == "member07" {
            assert!(
                inbox[0].read && inbox[0].folder == "Done",
                "the user's change stays"
            );
        }
    }
}
