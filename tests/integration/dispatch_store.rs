//! The DynamoDB `DispatchStore` and `Followers` against the local DynamoDB (moto): the contract
//! the fake (`mailroom_core::memory::MemoryDispatch`) keeps, plus what only a real table can
//! show: racing allowances, batches past DynamoDB's request limits, keys from 2 KB values, and
//! how many requests each path makes.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use mailroom_aws::dynamo::DynamoStore;
use mailroom_aws::RequestCounter;
use mailroom_core::dispatch::records::{
    FailingAddress, Notification, NotificationKind, SentKind, SentRecord, SuppressedRecord,
};
use mailroom_core::ports::{DispatchStore, Followers};
use mailroom_core::records::{RecordKind, RecordRef};
use mailroom_core::SCHEMA_VERSION;

use crate::harness::*;

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// The test's table through a client that counts its requests by operation.
fn counted(env: &TestEnv) -> (DynamoStore, RequestCounter) {
    let counter = RequestCounter::default();
    let client = env
        .ctx
        .clients
        .clone()
        .counting_dynamodb(counter.clone())
        .dynamodb;
    let store = DynamoStore::new(client, &env.ctx.config().resources.table);
    (store, counter)
}

fn requests(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

fn notification(user: &str, key: &str, when: DateTime<Utc>) -> Notification {
    Notification {
        v: SCHEMA_VERSION,
        user: user.into(),
        key: key.into(),
        kind: NotificationKind::Follower,
        email: Some(format!("{key}@cust.example")),
        email_id: Some(key.into()),
        record: Some(RecordRef::case(7)),
        account: "support".into(),
        summary: format!("Re: printer ({key})"),
        read: false,
        at: when,
    }
}

fn sent(id: &str, when: &str) -> SentRecord {
    SentRecord {
        v: SCHEMA_VERSION,
        id: id.into(),
        kind: SentKind::AutoReply,
        account: "support".into(),
        from: "support@example.test".into(),
        to: vec!["customer@example.com".into()],
        subject: "Re: printer [#7]".into(),
        in_reply_to: Some("m1@cust.example".into()),
        message_id: "mr-1@mailroom.example".into(),
        ses_message_id: "0100-ses@email.amazonses.com".into(),
        user: None,
        email_id: Some("e1".into()),
        parent: Some(RecordRef::case(7)),
        case: Some(mailroom_core::types::CaseNumber::new(7).unwrap()),
        sent_at: at(when),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_and_suppressions_are_kept_by_id_and_listed_oldest_first() {
    let env = env("dsent").await;
    let (store, counter) = counted(&env);
    // An id that holds a 2 KB Message-ID still has a key (hashed) and keeps its text.
    let long = format!("e1#auto-reply#{}", "m".repeat(2048));
    assert_eq!(store.sent(&long).await.unwrap(), None);
    for (id, when) in [
        ("b", "2026-03-03T10:00:02Z"),
        (long.as_str(), "2026-03-03T10:00:03Z"),
        ("c", "2026-03-03T10:00:01Z"),
        ("b", "2026-03-03T10:00:02Z"),
    ] {
        store.put_sent(&sent(id, when)).await.unwrap();
    }
    assert_eq!(
        store.sent(&long).await.unwrap(),
        Some(sent(&long, "2026-03-03T10:00:03Z"))
    );
    let ids: Vec<String> = store
        .list_sent()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, ["c", "b", long.as_str()], "oldest first, one per id");
    assert_eq!(
        counter.take(),
        requests(&[("GetItem", 2), ("PutItem", 4), ("Query", 1)])
    );

    let sup = |id: &str, when: &str| SuppressedRecord {
        v: SCHEMA_VERSION,
        id: id.into(),
        kind: SentKind::AutoReply,
        account: "support".into(),
        email_id: "e1".into(),
        message_id: "m1@cust.example".into(),
        to: Some("customer@example.com".into()),
        reason: "auto_submitted".into(),
        detail: None,
        at: at(when),
    };
    store
        .put_suppressed(&sup("s2", "2026-03-03T10:00:05Z"))
        .await
        .unwrap();
    store
        .put_suppressed(&sup(&long, "2026-03-03T10:00:04Z"))
        .await
        .unwrap();
    store
        .put_suppressed(&sup("s2", "2026-03-03T10:00:05Z"))
        .await
        .unwrap();
    let listed = store.list_suppressed().await.unwrap();
    let ids: Vec<&str> = listed.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, [long.as_str(), "s2"]);
    assert_eq!(listed[1], sup("s2", "2026-03-03T10:00:05Z"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowance_counts_each_email_once_and_refuses_the_one_past_its_limit() {
    let env = env("dallow").await;
    let (store, counter) = counted(&env);
    let expires = Utc::now() + Duration::hours(2);
    // A 2 KB sender in the bucket name: its key is hashed, its count works the same.
    let bucket = format!("{}@cust.example#2026-03-03T10", "s".repeat(2048));
    for e in ["e1", "e2", "e1", "e3", "e2"] {
        assert!(
            store.take_allowance(&bucket, e, 3, expires).await.unwrap(),
            "{e}"
        );
    }
    assert!(!store
        .take_allowance(&bucket, "e4", 3, expires)
        .await
        .unwrap());
    // Refused stays refused; a counted email (a redelivery) is still allowed.
    assert!(!store
        .take_allowance(&bucket, "e4", 3, expires)
        .await
        .unwrap());
    assert!(store
        .take_allowance(&bucket, "e3", 3, expires)
        .await
        .unwrap());
    // Per bucket: another sender's window counts apart.
    assert!(store
        .take_allowance("bob@cust.example#2026-03-03T10", "e4", 3, expires)
        .await
        .unwrap());
    // A limit of 0 allows nothing, without a request.
    assert!(!store
        .take_allowance("cid@cust.example#w", "e1", 0, expires)
        .await
        .unwrap());
    assert_eq!(counter.take(), requests(&[("UpdateItem", 9)]));

    // The item: the emails counted, and the TTL attribute the table expires it by.
    let item = env
        .ctx
        .clients
        .dynamodb
        .get_item()
        .table_name(&env.ctx.config().resources.table)
        .set_key(Some(mailroom_aws::dynamo::item::key(
            &mailroom_core::keys::allowance_pk(&bucket),
            mailroom_core::keys::ALLOWANCE_SK,
        )))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let mut ids = item["ids"].as_ss().unwrap().clone();
    ids.sort();
    assert_eq!(ids, ["e1", "e2", "e3"]);
    assert_eq!(
        item["expires_at"].as_n().unwrap(),
        &expires.timestamp().to_string()
    );
    assert_eq!(item["bucket"].as_s().unwrap(), &bucket);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_emails_at_the_limit_get_one_place_between_them() {
    let env = env("drace").await;
    let store = env.ctx.adapters().store.clone();
    let expires = Utc::now() + Duration::hours(2);
    // Two different emails racing for the last of 5 places, in 10 buckets: one wins each time.
    for round in 0..10 {
        let bucket = format!("racer{round}@cust.example#w");
        for e in 0..4 {
            assert!(store
                .take_allowance(&bucket, &format!("e{e}"), 5, expires)
                .await
                .unwrap());
        }
        let (a, b) = tokio::join!(
            tokio::spawn({
                let (s, b) = (store.clone(), bucket.clone());
                async move { s.take_allowance(&b, "x", 5, expires).await.unwrap() }
            }),
            tokio::spawn({
                let (s, b) = (store.clone(), bucket.clone());
                async move { s.take_allowance(&b, "y", 5, expires).await.unwrap() }
            }),
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        assert!(
            a ^ b,
            "round {round}: exactly one of two gets the last place ({a}, {b})"
        );
    }
    // A burst: 20 emails at once for 3 places of an empty bucket.
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let s = store.clone();
            tokio::spawn(async move {
                s.take_allowance("burst@cust.example#w", &format!("b{i}"), 3, expires)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut allowed = 0;
    for t in tasks {
        allowed += t.await.unwrap() as usize;
    }
    assert_eq!(allowed, 3, "no more places than the limit under a burst");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_are_created_once_listed_newest_first_and_a_read_one_stays_read() {
    let env = env("dnotif").await;
    let (store, counter) = counted(&env);
    let t0 = at("2026-03-03T10:00:00Z");
    // One: one conditional put.
    let first = notification("ann", "e1", t0);
    assert_eq!(
        store
            .put_notifications(std::slice::from_ref(&first))
            .await
            .unwrap(),
        1
    );
    assert_eq!(counter.take(), requests(&[("PutItem", 1)]));
    assert!(store.mark_read("ann", "e1").await.unwrap());
    assert!(!store.mark_read("ann", "nope").await.unwrap());
    assert!(!store.mark_read("nobody", "e1").await.unwrap());
    // A batch with the same one again, a newer one, another user's, and a key twice.
    let batch = [
        notification("ann", "e1", t0),
        notification("ann", "e2", t0 + Duration::minutes(5)),
        notification("bob", "e1", t0),
        notification("ann", "e2", t0 + Duration::minutes(5)),
    ];
    assert_eq!(store.put_notifications(&batch).await.unwrap(), 2);
    assert_eq!(store.put_notifications(&batch).await.unwrap(), 0);
    let ann = store.notifications("ann").await.unwrap();
    let seen: Vec<(&str, bool)> = ann.iter().map(|n| (n.key.as_str(), n.read)).collect();
    assert_eq!(
        seen,
        [("e2", false), ("e1", true)],
        "newest first; e1 stays read"
    );
    let mut read = first.clone();
    read.read = true;
    assert_eq!(ann[1], read, "the item round-trips whole");
    assert!(!store.notifications("bob").await.unwrap()[0].read);
    assert!(store.notifications("cid").await.unwrap().is_empty());
    // A 2 KB key and user name: hashed keys, kept text; marking it read finds it.
    let (user, key) = ("u".repeat(2048), "k".repeat(2048));
    let long = [notification(&user, &key, t0)];
    assert_eq!(store.put_notifications(&long).await.unwrap(), 1);
    assert!(store.mark_read(&user, &key).await.unwrap());
    assert_eq!(store.notifications(&user).await.unwrap()[0].key, key);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_hundred_users_notified_in_few_requests_and_a_racing_redelivery_adds_none() {
    let env = env("dnotif600").await;
    let (store, counter) = counted(&env);
    let t0 = Utc::now();
    let users: Vec<String> = (0..600).map(|i| format!("user{i:03}")).collect();
    let batch: Vec<Notification> = users.iter().map(|u| notification(u, "e600", t0)).collect();
    // One has read theirs already (an earlier, partial delivery made it).
    store
        .put_notifications(&[notification("user123", "e600", t0)])
        .await
        .unwrap();
    assert!(store.mark_read("user123", "e600").await.unwrap());
    counter.take();

    assert_eq!(store.put_notifications(&batch).await.unwrap(), 599);
    // Which exist: 100 keys a BatchGetItem; the new ones: 100 conditional puts a transaction.
    assert_eq!(
        counter.take(),
        requests(&[("BatchGetItem", 6), ("TransactWriteItems", 6)])
    );
    assert_eq!(store.put_notifications(&batch).await.unwrap(), 0);
    assert_eq!(counter.take(), requests(&[("BatchGetItem", 6)]));
    for u in ["user000", "user123", "user599"] {
        let list = store.notifications(u).await.unwrap();
        assert_eq!(list.len(), 1, "{u}");
        assert_eq!(list[0].read, u == "user123", "{u}");
    }

    // Two deliveries of a new event at once, to 200 users (two transactions each): exactly
    // 200 new between them, and no write beyond the first delivery's (the loser's cancelled
    // transactions are followed by a read that finds everything made).
    let batch: Vec<Notification> = users[..200]
        .iter()
        .map(|u| notification(u, "e601", t0))
        .collect();
    let (a, b) = tokio::join!(
        store.put_notifications(&batch),
        store.put_notifications(&batch)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a + b, 200, "{a} + {b}");
    let raced = counter.take();
    assert_eq!(raced.get("PutItem"), None, "{raced:?}");
    assert!(store.mark_read("user042", "e601").await.unwrap());
    assert_eq!(store.put_notifications(&batch).await.unwrap(), 0);
    assert!(store.notifications("user042").await.unwrap()[0].read);
    eprintln!("two racing deliveries to 200 users: {a} + {b} new, requests {raced:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn addresses_fail_until_their_until_and_are_read_in_one_request() {
    let env = env("dfail").await;
    let (store, counter) = counted(&env);
    let now = Utc::now();
    let mark = |a: &str, until: DateTime<Utc>| FailingAddress {
        v: SCHEMA_VERSION,
        address: a.into(),
        reason: "bounce".into(),
        since: now - Duration::minutes(1),
        until,
    };
    let long = format!("{}@cust.example", "a".repeat(2048));
    for f in [
        mark("Ann@Cust.example", now + Duration::days(1)),
        mark("bob@cust.example", now - Duration::seconds(1)),
        mark(&long, now + Duration::hours(1)),
    ] {
        store.mark_failing(&f).await.unwrap();
    }
    let asked: Vec<String> = [
        "ann@cust.example",
        "bob@cust.example",
        "cid@cust.example",
        &long,
        "ANN@cust.example",
    ]
    .map(String::from)
    .to_vec();
    counter.take();
    let failing = store.failing(&asked, now).await.unwrap();
    assert_eq!(
        failing,
        ["ann@cust.example", long.as_str(), "ANN@cust.example"]
    );
    // Four distinct addresses, one BatchGetItem (a key twice would be refused by DynamoDB).
    assert_eq!(counter.take(), requests(&[("BatchGetItem", 1)]));
    // A later mark wins: bob fails again.
    store
        .mark_failing(&mark("bob@cust.example", now + Duration::hours(1)))
        .await
        .unwrap();
    assert_eq!(
        store.failing(&asked[1..2], now).await.unwrap(),
        ["bob@cust.example"]
    );
    assert!(store.failing(&[], now).await.unwrap().is_empty());
    // 150 addresses: two requests of at most 100 keys.
    let many: Vec<String> = (0..150).map(|i| format!("x{i}@cust.example")).collect();
    counter.take();
    assert!(store.failing(&many, now).await.unwrap().is_empty());
    assert_eq!(counter.take(), requests(&[("BatchGetItem", 2)]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_are_kept_once_each_in_user_order() {
    let env = env("dfollow").await;
    let store = &env.ctx.adapters().store;
    let case = RecordRef::case(7);
    for u in ["bob", "ann", "bob"] {
        store.follow(u, &case).await.unwrap();
    }
    assert_eq!(store.followers(&case).await.unwrap(), ["ann", "bob"]);
    assert!(store
        .followers(&RecordRef::case(8))
        .await
        .unwrap()
        .is_empty());
    // A contact named by a 2 KB address: its partition key is bounded, its followers kept.
    let contact = RecordRef::new(
        RecordKind::Contact,
        format!("{}@x.example", "c".repeat(2048)),
    );
    store.follow("ann", &contact).await.unwrap();
    assert_eq!(store.followers(&contact).await.unwrap(), ["ann"]);
}
