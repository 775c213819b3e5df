//! Crashes and failures at every step lose nothing and duplicate nothing (R-F5, R-I2, R-Q4).

use std::sync::atomic::{AtomicU32, Ordering};

use chrono::Utc;
use mailroom::cycle;
use mailroom_core::messages::IngestPointer;
use mailroom_core::model::{AccountStatus, FolderState};
use mailroom_core::poll::PollService;
use mailroom_core::ports::*;
use mailroom_core::schedule::Selection;

use crate::harness::*;

/// The real SQS adapter, failing from the `fail_from`-th send on (a crash between S3 and SQS).
struct FlakyQueue<'a> {
    inner: &'a mailroom_aws::SqsQueue,
    sends: AtomicU32,
    fail_from: u32,
}

impl Queue<IngestPointer> for FlakyQueue<'_> {
    async fn send(&self, messages: &[Outgoing<IngestPointer>]) -> StoreResult<()> {
        let n = self.sends.fetch_add(1, Ordering::SeqCst) + 1;
        if n >= self.fail_from {
            return Err(StoreError::backend("send", "injected failure"));
        }
        self.inner.send(messages).await
    }
}

/// The real DynamoDB adapter, failing to save watermarks from the `fail_from`-th save on (a
/// crash after enqueueing, before the watermark moved).
struct FlakyWatermarks<'a> {
    inner: &'a mailroom_aws::DynamoStore,
    saves: AtomicU32,
    fail_from: u32,
}

impl AccountStore for FlakyWatermarks<'_> {
    async fn create_account(&self, a: &mailroom_core::model::Account) -> StoreResult<()> {
        self.inner.create_account(a).await
    }
    async fn get_account(&self, n: &str) -> StoreResult<Option<mailroom_core::model::Account>> {
        self.inner.get_account(n).await
    }
    async fn get_accounts(&self, n: &[String]) -> StoreResult<Vec<mailroom_core::model::Account>> {
        self.inner.get_accounts(n).await
    }
    async fn own_addresses(&self, a: &[String]) -> StoreResult<Vec<String>> {
        self.inner.own_addresses(a).await
    }
    async fn list_accounts(&self) -> StoreResult<Vec<mailroom_core::model::Account>> {
        self.inner.list_accounts().await
    }
    async fn save_folder_state(&self, a: &str, f: &str, s: &FolderState) -> StoreResult<()> {
        let n = self.saves.fetch_add(1, Ordering::SeqCst) + 1;
        if n >= self.fail_from {
            return Err(StoreError::backend("save", "injected crash"));
        }
        self.inner.save_folder_state(a, f, s).await
    }
    async fn save_status(&self, a: &str, s: &AccountStatus) -> StoreResult<()> {
        self.inner.save_status(a, s).await
    }
    async fn reset_account(&self, a: &str, d: chrono::NaiveDate) -> StoreResult<()> {
        self.inner.reset_account(a, d).await
    }
    async fn record_send_error(
        &self,
        a: &str,
        e: &str,
        at: chrono::DateTime<Utc>,
    ) -> StoreResult<()> {
        self.inner.record_send_error(a, e, at).await
    }
}

async fn setup(tag: &str, n: usize) -> TestEnv {
    let env = env(tag).await;
    let mb = mailbox(tag);
    let msgs: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            message(
                Some(&format!("{tag}-{i}@example.com")),
                &format!("{tag} {i}"),
            )
        })
        .collect();
    deliver(&mb, &msgs).await;
    env.add_account("support", &mb).await;
    env
}

fn small_batches(env: &TestEnv) -> mailroom_core::limits::Limits {
    mailroom_core::limits::Limits {
        fetch_batch_messages: 2,
        ..env.ctx.config().limits.clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poller_failing_after_storing_some_messages_loses_and_duplicates_nothing() {
    let env = setup("flakyq", 7).await;
    let a = env.ctx.adapters();
    let limits = small_batches(&env);
    let flaky = FlakyQueue {
        inner: &a.ingest_queue,
        sends: AtomicU32::new(0),
        fail_from: 3,
    };
    let service = PollService {
        accounts: &a.store,
        filters: &a.store,
        secrets: &a.secrets,
        mailbox: &env.ctx.poller.imap,
        blobs: &a.blobs,
        ingest_queue: &flaky,
        limits: &limits,
    };
    let result = service.poll("support", Utc::now()).await;
    assert!(
        result.is_err(),
        "the injected failure surfaces so the job is retried"
    );
    let state = a.store.get_account("support").await.unwrap().unwrap();
    assert_eq!(
        state.folder_state["INBOX"].last_uid, 4,
        "advanced past the two sent batches only"
    );

    // The retried job (the normal poller) picks up exactly where the watermark stands.
    let totals = cycle::run(&env.ctx, Selection::Named(vec!["support".into()]))
        .await
        .unwrap();
    let t = totals_for(&totals, "support");
    assert_eq!((t.fetched, t.imported, t.duplicates), (3, 7, 0), "{t:?}");
    assert_eq!(a.store.list_emails().await.unwrap().len(), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poller_killed_before_moving_the_watermark_duplicates_nothing() {
    let env = setup("flakyw", 5).await;
    let a = env.ctx.adapters();
    let limits = small_batches(&env);
    let flaky = FlakyWatermarks {
        inner: &a.store,
        saves: AtomicU32::new(0),
        fail_from: 2,
    };
    let service = PollService {
        accounts: &flaky,
        filters: &a.store,
        secrets: &a.secrets,
        mailbox: &env.ctx.poller.imap,
        blobs: &a.blobs,
        ingest_queue: &a.ingest_queue,
        limits: &limits,
    };
    assert!(service.poll("support", Utc::now()).await.is_err());
    // Batch 2 was stored and enqueued, but its watermark never moved: it is fetched again.
    let totals = cycle::run(&env.ctx, Selection::Named(vec!["support".into()]))
        .await
        .unwrap();
    let t = totals_for(&totals, "support");
    assert_eq!(t.fetched, 3, "{t:?}");
    assert_eq!(t.imported, 5, "{t:?}");
    assert_eq!(t.duplicates, 2, "the re-fetched batch is recognised: {t:?}");
    assert_eq!(a.store.list_emails().await.unwrap().len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_pointer_fails_alone_and_redelivery_has_no_second_effect() {
    let env = setup("poison", 2).await;
    let a = env.ctx.adapters();
    // Poll only (no ingest): pointers wait on the queue.
    let service = env.ctx.poller.service();
    let report = service.poll("support", Utc::now()).await.unwrap();
    assert_eq!(report.enqueued, 2);
    let received = a.ingest_queue.receive(10, 1).await.unwrap();
    assert_eq!(received.len(), 2);

    let mut event = aws_lambda_events::event::sqs::SqsEvent::default();
    let mut records = vec![];
    for (i, body) in received
        .iter()
        .map(|m| m.body.clone())
        .chain(["not json".to_string(), r#"{"v":1,"account":"support","folder":"INBOX","uidvalidity":1,"uid":99,"key":"raw/missing.eml","size":1}"#.to_string()])
        .enumerate()
    {
        let mut r = aws_lambda_events::event::sqs::SqsMessage::default();
        r.message_id = Some(format!("m{i}"));
        r.body = Some(body);
        records.push(r);
    }
    // The first pointer twice: a duplicate delivery.
    let mut dup = records[0].clone();
    dup.message_id = Some("dup".into());
    records.push(dup);
    event.records = records;

    let (response, results) = ingest::handle(&a.intake(), event).await;
    let mut failed: Vec<_> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    failed.sort();
    assert_eq!(
        failed,
        vec!["m2", "m3"],
        "only the poison and the dangling pointer fail"
    );
    assert_eq!(results.len(), 5);
    assert_eq!(a.store.list_emails().await.unwrap().len(), 2);
    let email = &a.store.list_emails().await.unwrap()[0];
    assert_eq!(email.accounts, vec!["support"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_scheduler_tick_queues_each_account_once() {
    let env = env("tick").await;
    for name in ["a", "b", "c"] {
        let mb = mailbox(&format!("tick-{name}"));
        env.add_account(name, &mb).await;
    }
    let raw = std::fs::read_to_string(
        mailroom::local::repo_root().join("events/scheduler/schedule.json"),
    )
    .unwrap();
    let mut event: aws_lambda_events::event::eventbridge::EventBridgeEvent =
        serde_json::from_str(&raw).unwrap();
    event.time = Some(Utc::now());
    let first = scheduler::handle(
        &scheduler::Scheduler::aws(env.ctx.adapters()),
        event.clone(),
        &Selection::Due,
    )
    .await
    .unwrap();
    assert_eq!(first.queued.len(), 3, "new accounts are due every minute");
    scheduler::handle(
        &scheduler::Scheduler::aws(env.ctx.adapters()),
        event,
        &Selection::Due,
    )
    .await
    .unwrap();
    let mut jobs = vec![];
    loop {
        let batch = env.ctx.adapters().poll_queue.receive(10, 0).await.unwrap();
        if batch.is_empty() {
            break;
        }
        let receipts: Vec<_> = batch.iter().map(|m| m.receipt_handle.clone()).collect();
        jobs.extend(batch);
        env.ctx
            .adapters()
            .poll_queue
            .delete(&receipts)
            .await
            .unwrap();
    }
    assert_eq!(
        jobs.len(),
        3,
        "FIFO deduplication drops the retried tick's jobs"
    );
    for j in &jobs {
        assert!(j.attributes.contains_key("MessageGroupId"));
    }
}
