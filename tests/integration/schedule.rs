//! The schedule index on the local stack: a tick queues exactly the due accounts, the index
//! follows status writes, and a table from before the index gets its accounts indexed.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use chrono::{DateTime, Duration, Utc};
use mailroom_core::model::{Account, AccountStatus};
use mailroom_core::ports::AccountStore;
use mailroom_core::schedule::{is_due, CycleReport, Selection};

use crate::harness::*;

async fn tick(env: &TestEnv, at: DateTime<Utc>, selection: &Selection) -> CycleReport {
    let mut event = EventBridgeEvent::default();
    event.id = Some(unique("tick"));
    event.time = Some(at);
    scheduler::handle(
        &scheduler::Scheduler::aws(env.ctx.adapters()),
        event,
        selection,
    )
    .await
    .unwrap()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// What the rules say, from the whole accounts (the test may list them; the scheduler never).
async fn due(env: &TestEnv, at: DateTime<Utc>) -> Vec<String> {
    let all = env.ctx.adapters().store.list_accounts().await.unwrap();
    sorted(
        all.iter()
            .filter(|a| is_due(a, at))
            .map(|a| a.name.clone())
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sched_index_queues_the_due_accounts_and_follows_status_writes() {
    let env = env("schedidx").await;
    let store = &env.ctx.adapters().store;
    let now = Utc::now();
    // Fresh (every minute), idle for days (one minute in 15), inactive.
    for i in 0..40 {
        let name = format!("acct-{i:02}");
        let mut a: Account = mailroom_core::memory::test_account(&name, now);
        if i % 2 == 1 {
            a.created_at = now - Duration::days(3);
        }
        a.active = i % 10 != 9;
        store.create_account(&a).await.unwrap();
    }
    // Six minutes: every minute some idle account's turn comes (20 of them over 15 turns).
    for m in 0..6 {
        let at = now + Duration::minutes(m);
        let report = tick(&env, at, &Selection::Due).await;
        assert_eq!(
            sorted(report.queued.clone()),
            due(&env, at).await,
            "minute {m}"
        );
        assert!(
            report.accounts < 40,
            "minute {m}: only the due ranges are read"
        );
    }

    // A failure's back-off takes a fresh account out; mail brings an idle one back to every
    // minute; a recovery brings the first one back.
    let backoff = AccountStatus {
        consecutive_failures: 1,
        backoff_until: Some(now + Duration::minutes(5)),
        ..AccountStatus::default()
    };
    store.save_status("acct-00", &backoff).await.unwrap();
    let mail = AccountStatus {
        last_mail_at: Some(now),
        ..AccountStatus::default()
    };
    store.save_status("acct-01", &mail).await.unwrap();
    let at = now + Duration::minutes(1);
    let queued = sorted(tick(&env, at, &Selection::Due).await.queued);
    assert!(!queued.contains(&"acct-00".to_string()), "backing off");
    assert!(queued.contains(&"acct-01".to_string()), "new mail");
    assert_eq!(queued, due(&env, at).await);
    let later = now + Duration::minutes(6);
    assert!(sorted(tick(&env, later, &Selection::Due).await.queued).contains(&"acct-00".into()));
    store
        .save_status("acct-00", &AccountStatus::default())
        .await
        .unwrap();
    assert!(tick(&env, at, &Selection::Due)
        .await
        .queued
        .contains(&"acct-00".into()));

    // An operator's cycle reads every entry and polls every active account.
    let all = tick(&env, now, &Selection::AllActive).await;
    assert_eq!(all.accounts, 40);
    assert_eq!(all.queued.len(), 36);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sched_a_table_from_before_the_index_gets_its_accounts_on_connect() {
    let env = env("schedold").await;
    let store = &env.ctx.adapters().store;
    let now = Utc::now();
    for name in ["old", "new"] {
        store
            .create_account(&mailroom_core::memory::test_account(name, now))
            .await
            .unwrap();
    }
    // "old" as an account written before the index: no index attributes, no marker.
    let table = &env.ctx.config().resources.table;
    let item_key = |pk: &str, sk: &str| {
        [
            (
                "pk".to_string(),
                aws_sdk_dynamodb::types::AttributeValue::S(pk.into()),
            ),
            (
                "sk".to_string(),
                aws_sdk_dynamodb::types::AttributeValue::S(sk.into()),
            ),
        ]
        .into_iter()
        .collect::<std::collections::HashMap<_, _>>()
    };
    let dynamodb = &env.ctx.clients.dynamodb;
    dynamodb
        .update_item()
        .table_name(table)
        .set_key(Some(item_key("ACCOUNTS", "old")))
        .update_expression("REMOVE sched_pk, sched_sk, sched_since")
        .send()
        .await
        .unwrap();
    dynamodb
        .delete_item()
        .table_name(table)
        .set_key(Some(item_key("CONFIG", "SCHEDULEINDEX")))
        .send()
        .await
        .unwrap();
    assert_eq!(tick(&env, now, &Selection::Due).await.queued, ["new"]);

    let again = mailroom::context::connect(&env.ctx.prefix).await.unwrap();
    let ports = scheduler::Scheduler::aws(again.adapters());
    let mut event = EventBridgeEvent::default();
    event.time = Some(now);
    event.id = Some(unique("tick"));
    let report = scheduler::handle(&ports, event, &Selection::Due)
        .await
        .unwrap();
    assert_eq!(sorted(report.queued), ["new", "old"]);
}
