//! Poll and ingest services over the in-memory fakes: the pure logic of R-F2..R-F7 and R-I2.
//! The same flows run against Dovecot and moto in the workspace's integration tests.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use mailroom_core::ingest::{IngestOutcome, IngestService};
use mailroom_core::limits::Limits;
use mailroom_core::memory::*;
use mailroom_core::messages::IngestPointer;
use mailroom_core::model::*;
use mailroom_core::poll::PollService;
use mailroom_core::ports::*;

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn mail(i: usize) -> Vec<u8> {
    format!(
        "From: c{i}@example.com\r\nTo: support@example.test\r\nSubject: message {i}\r\nMessage-ID: <m{i}@example.com>\r\nDate: Tue, 3 Mar 2026 10:00:00 +0000\r\n\r\nBody {i}\r\n"
    )
    .into_bytes()
}

struct World {
    store: MemoryStore,
    blobs: MemoryBlobs,
    queue: MemoryQueue<IngestPointer>,
    mailbox: FakeMailbox,
    limits: Limits,
}

impl World {
    async fn new(password: &str, fetch_since: Option<NaiveDate>) -> World {
        let w = World {
            store: MemoryStore::default(),
            blobs: MemoryBlobs::default(),
            queue: MemoryQueue::default(),
            mailbox: FakeMailbox::new(password),
            limits: Limits::default(),
        };
        w.add_account("support", fetch_since).await;
        w
    }
    async fn add_account(&self, name: &str, fetch_since: Option<NaiveDate>) {
        let secret = FakeSecretBox.seal(name, &Secret::new("pw")).await.unwrap();
        self.store
            .create_account(&Account {
                secret,
                fetch_since,
                ..test_account(name, t("2026-01-01T00:00:00Z"))
            })
            .await
            .unwrap();
    }
    fn poller(
        &self,
    ) -> PollService<
        '_,
        MemoryStore,
        FakeSecretBox,
        FakeMailbox,
        MemoryBlobs,
        MemoryQueue<IngestPointer>,
        MemoryStore,
    > {
        PollService {
            accounts: &self.store,
            filters: &self.store,
            secrets: &FakeSecretBox,
            mailbox: &self.mailbox,
            blobs: &self.blobs,
            ingest_queue: &self.queue,
            limits: &self.limits,
        }
    }
    fn drain(&self) -> Vec<IngestPointer> {
        std::mem::take(&mut *self.queue.sent.lock().unwrap())
    }
    async fn ingest_all(&self) -> Vec<IngestOutcome> {
        let svc = IngestService {
            emails: &self.store,
            blobs: &self.blobs,
            limits: &self.limits,
            filters: &[],
            skips: &self.store,
        };
        let mut out = vec![];
        for p in self.drain() {
            out.push(svc.ingest(&p, Utc::now()).await.unwrap());
        }
        out
    }
    fn writes(&self) -> u32 {
        *self.store.writes.lock().unwrap()
    }
}

#[tokio::test]
async fn imports_each_message_once_and_idle_poll_writes_nothing() {
    let w = World::new("pw", None).await;
    for i in 0..5 {
        w.mailbox
            .append("INBOX", t("2026-03-03T10:00:00Z"), &mail(i));
    }
    let now = t("2026-03-03T11:00:00Z");
    let r = w.poller().poll("support", now).await.unwrap();
    assert_eq!((r.fetched, r.enqueued, r.error.clone()), (5, 5, None));
    let outcomes = w.ingest_all().await;
    assert_eq!(outcomes.len(), 5);
    assert!(outcomes
        .iter()
        .all(|o| matches!(o, IngestOutcome::Imported { .. })));

    let before = w.writes();
    let r = w
        .poller()
        .poll("support", now + Duration::minutes(1))
        .await
        .unwrap();
    assert_eq!(r.fetched, 0);
    assert!(w.drain().is_empty());
    assert_eq!(w.writes(), before, "an idle poll must not write");
    // The idle poll issued one EXAMINE and no search or fetch.
    let log = w.mailbox.log();
    assert_eq!(log.last().unwrap(), "EXAMINE INBOX");
}

#[tokio::test]
async fn portion_limits_a_run_and_the_next_run_continues() {
    let mut w = World::new("pw", None).await;
    w.limits.fetch_portion = 3;
    for i in 0..7 {
        w.mailbox
            .append("INBOX", t("2026-03-03T10:00:00Z"), &mail(i));
    }
    let now = t("2026-03-03T11:00:00Z");
    let mut total = 0;
    for _ in 0..3 {
        total += w.poller().poll("support", now).await.unwrap().fetched;
    }
    assert_eq!(total, 7);
    let uids: Vec<u32> = w.drain().iter().map(|p| p.uid).collect();
    assert_eq!(uids, (1..=7).collect::<Vec<_>>(), "oldest first, each once");
}

#[tokio::test]
async fn first_run_honours_fetch_since_by_arrival_date() {
    let w = World::new("pw", NaiveDate::from_ymd_opt(2026, 3, 2)).await;
    w.mailbox
        .append("INBOX", t("2026-03-01T10:00:00Z"), &mail(0));
    w.mailbox
        .append("INBOX", t("2026-03-02T00:10:00Z"), &mail(1));
    w.mailbox
        .append("INBOX", t("2026-03-05T10:00:00Z"), &mail(2));
    let r = w
        .poller()
        .poll("support", t("2026-03-06T00:00:00Z"))
        .await
        .unwrap();
    assert_eq!(r.fetched, 2);
    let uids: Vec<u32> = w.drain().iter().map(|p| p.uid).collect();
    assert_eq!(uids, vec![2, 3]);
}

#[tokio::test]
async fn uidvalidity_change_rereads_without_duplicates() {
    let w = World::new("pw", None).await;
    for i in 0..3 {
        w.mailbox
            .append("INBOX", t("2026-03-03T10:00:00Z"), &mail(i));
    }
    let now = t("2026-03-04T00:00:00Z");
    w.poller().poll("support", now).await.unwrap();
    assert_eq!(w.ingest_all().await.len(), 3);
    w.mailbox.renumber("INBOX", 99);
    w.mailbox
        .append("INBOX", t("2026-03-03T12:00:00Z"), &mail(3));
    let r = w.poller().poll("support", now).await.unwrap();
    assert_eq!(r.fetched, 4, "re-read since the last arrival day");
    let outcomes = w.ingest_all().await;
    let imported = outcomes
        .iter()
        .filter(|o| matches!(o, IngestOutcome::Imported { .. }))
        .count();
    assert_eq!(imported, 1);
    assert_eq!(w.store.list_emails().await.unwrap().len(), 4);
    let state = w.store.get_account("support").await.unwrap().unwrap();
    assert_eq!(state.folder_state["INBOX"].uidvalidity, 99);
}

#[tokio::test]
async fn wrong_password_is_recorded_and_other_accounts_poll() {
    let w = World::new("other-password", None).await;
    w.mailbox
        .append("INBOX", t("2026-03-03T10:00:00Z"), &mail(0));
    let now = t("2026-03-03T11:00:00Z");
    let r = w.poller().poll("support", now).await.unwrap();
    let err = r.error.expect("auth failure reported");
    assert_eq!(err.kind, ErrorKind::Auth);
    let a = w.store.get_account("support").await.unwrap().unwrap();
    assert_eq!(a.status.consecutive_failures, 1);
    assert_eq!(a.status.last_error_kind, Some(ErrorKind::Auth));
    assert!(a.status.backoff_until.is_some());
    assert!(a.folder_state.is_empty(), "nothing advanced");
}

#[tokio::test]
async fn oversize_message_fetches_head_only() {
    let mut w = World::new("pw", None).await;
    w.limits.max_message_bytes = 64 * 1024;
    w.limits.oversize_head_bytes = 2048;
    let mut big = mail(0);
    big.extend(std::iter::repeat_n(b'x', 100 * 1024));
    w.mailbox.append("INBOX", t("2026-03-03T10:00:00Z"), &big);
    let r = w
        .poller()
        .poll("support", t("2026-03-04T00:00:00Z"))
        .await
        .unwrap();
    assert_eq!((r.fetched, r.oversize), (1, 1));
    let p = &w.queue.sent.lock().unwrap()[0].clone();
    assert!(p.truncated);
    assert_eq!(p.size, big.len() as u64);
    let outcomes = w.ingest_all().await;
    assert!(matches!(outcomes[0], IngestOutcome::Imported { .. }));
    let e = &w.store.list_emails().await.unwrap()[0];
    assert!(e.attachments_skipped);
    assert_eq!(e.size, big.len() as u64);
}

#[tokio::test]
async fn same_message_in_two_accounts_is_one_email_and_redelivery_is_a_no_op() {
    let w = World::new("pw", None).await;
    let svc = IngestService {
        emails: &w.store,
        blobs: &w.blobs,
        limits: &w.limits,
        filters: &[],
        skips: &w.store,
    };
    let raw = mail(1);
    let mut pointers = vec![];
    for account in ["support", "sales"] {
        let key = format!("raw/{account}/INBOX/1/1.eml");
        w.blobs
            .put(&key, raw.clone(), "message/rfc822")
            .await
            .unwrap();
        pointers.push(IngestPointer {
            v: 1,
            account: account.into(),
            folder: "INBOX".into(),
            uidvalidity: 1,
            uid: 1,
            key,
            size: raw.len() as u64,
            arrived: None,
            truncated: false,
            quarantine_id: None,
            fetch_error: None,
        });
    }
    let now = Utc::now();
    assert!(matches!(
        svc.ingest(&pointers[0], now).await.unwrap(),
        IngestOutcome::Imported { .. }
    ));
    assert!(matches!(
        svc.ingest(&pointers[1], now).await.unwrap(),
        IngestOutcome::Linked { .. }
    ));
    assert!(matches!(
        svc.ingest(&pointers[1], now).await.unwrap(),
        IngestOutcome::Duplicate { .. }
    ));
    let emails = w.store.list_emails().await.unwrap();
    assert_eq!(emails.len(), 1);
    assert_eq!(emails[0].accounts, vec!["sales", "support"]);
}

#[tokio::test]
async fn unparseable_mail_is_quarantined_with_its_reason_and_raw_copy() {
    let w = World::new("pw", None).await;
    let svc = IngestService {
        emails: &w.store,
        blobs: &w.blobs,
        limits: &w.limits,
        filters: &[],
        skips: &w.store,
    };
    let key = "raw/support/INBOX/1/9.eml";
    w.blobs
        .put(key, b"just some words\n".to_vec(), "message/rfc822")
        .await
        .unwrap();
    let p = IngestPointer {
        v: 1,
        account: "support".into(),
        folder: "INBOX".into(),
        uidvalidity: 1,
        uid: 9,
        key: key.into(),
        size: 16,
        arrived: None,
        truncated: false,
        quarantine_id: None,
        fetch_error: None,
    };
    let out = svc.ingest(&p, Utc::now()).await.unwrap();
    let IngestOutcome::Quarantined { id, reason } = out else {
        panic!("expected quarantine, got {out:?}")
    };
    assert!(reason.contains("no header section"));
    let q = w.store.get_quarantine(&id).await.unwrap().unwrap();
    assert_eq!(q.account, "support");
    assert_eq!(
        w.blobs.get(&q.raw_key).await.unwrap().as_deref(),
        Some(&b"just some words\n"[..])
    );
    assert!(w.store.list_emails().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_header_skip_filter_never_fetches_the_body_and_advances_the_watermark() {
    use mailroom_core::filters::{Action, Filter, Pattern, Scope};
    let w = World::new("pw", None).await;
    w.store.filters.lock().unwrap().push(Filter {
        v: 1,
        name: "no-5".into(),
        scope: Scope::Global,
        from: None,
        to: None,
        subject: Some(Pattern::new("message 5").unwrap()),
        body_any: vec![],
        body_all: vec![],
        action: Action::Skip,
        folder: None,
    });
    for i in 4..7 {
        w.mailbox
            .append("INBOX", t("2026-03-03T10:00:00Z"), &mail(i));
    }
    let r = w
        .poller()
        .poll("support", t("2026-03-04T00:00:00Z"))
        .await
        .unwrap();
    assert_eq!((r.fetched, r.skipped), (2, 1));
    let log = w.mailbox.log();
    assert!(log.iter().any(|l| l.starts_with("FETCH HEADER")));
    let bodies: Vec<_> = log.iter().filter(|l| l.starts_with("FETCH BODY")).collect();
    assert!(
        bodies.iter().all(|l| !l.contains('2')),
        "uid 2 body fetched: {bodies:?}"
    );
    let skipped = w.store.skipped.lock().unwrap().clone();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].uid, 2);
    assert_eq!(skipped[0].message_id.as_deref(), Some("m5@example.com"));
    let a = w.store.get_account("support").await.unwrap().unwrap();
    assert_eq!(a.folder_state["INBOX"].last_uid, 3);
}

#[tokio::test]
async fn a_message_the_server_would_not_return_is_quarantined_with_that_reason() {
    let w = World::new("pw", None).await;
    let svc = IngestService {
        emails: &w.store,
        blobs: &w.blobs,
        limits: &w.limits,
        filters: &[],
        skips: &w.store,
    };
    let key = "raw/support/INBOX/1/5.eml";
    w.blobs.put(key, vec![], "message/rfc822").await.unwrap();
    let p = IngestPointer {
        v: 1,
        account: "support".into(),
        folder: "INBOX".into(),
        uidvalidity: 1,
        uid: 5,
        key: key.into(),
        size: 1234,
        arrived: None,
        truncated: false,
        quarantine_id: None,
        fetch_error: Some("the server returned no content for UID 5".into()),
    };
    let IngestOutcome::Quarantined { reason, .. } = svc.ingest(&p, Utc::now()).await.unwrap()
    else {
        panic!("expected quarantine")
    };
    assert!(reason.contains("no content for UID 5"));
    assert_eq!(w.store.list_quarantine().await.unwrap()[0].uid, 5);
}

/// Polls once with no error, and returns the pointers it enqueued.
async fn poll_clean(w: &World) -> Vec<IngestPointer> {
    let r = w
        .poller()
        .poll("support", t("2026-03-04T00:00:00Z"))
        .await
        .unwrap();
    assert_eq!(r.error, None, "{r:?}");
    w.queue.sent.lock().unwrap().clone()
}

fn fetch_errors(pointers: &[IngestPointer]) -> Vec<(u32, String)> {
    pointers
        .iter()
        .filter_map(|p| p.fetch_error.clone().map(|e| (p.uid, e)))
        .collect()
}

async fn last_uid(w: &World) -> u32 {
    let a = w.store.get_account("support").await.unwrap().unwrap();
    a.folder_state["INBOX"].last_uid
}

#[tokio::test]
async fn a_refused_batch_is_split_and_only_the_refused_message_is_quarantined() {
    let w = World::new("pw", None).await;
    for i in 0..6 {
        w.mailbox
            .append("INBOX", t("2026-03-03T10:00:00Z"), &mail(i));
    }
    let words = "[SERVERBUG] could not be converted to RFC-822";
    w.mailbox
        .fault(4, FakeStage::Body, FakeFault::Refuse(words.into()));
    let pointers = poll_clean(&w).await;
    let uids: Vec<u32> = pointers.iter().map(|p| p.uid).collect();
    assert_eq!(uids, vec![1, 2, 3, 4, 5, 6], "each once, in UID order");
    let errors = fetch_errors(&pointers);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].0, 4);
    assert!(errors[0].1.contains(words), "{}", errors[0].1);
    assert_eq!(last_uid(&w).await, 6);
    // The split went down to the one message: UID 4 was asked for alone.
    assert!(w.mailbox.log().iter().any(|l| l == "FETCH BODY [4]"));

    let outcomes = w.ingest_all().await;
    let imported = outcomes
        .iter()
        .filter(|o| matches!(o, IngestOutcome::Imported { .. }))
        .count();
    assert_eq!(imported, 5);
    let q = w.store.list_quarantine().await.unwrap();
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].uid, 4);
    assert!(q[0].reason.contains(words), "{}", q[0].reason);

    // The next poll has nothing new: the refused message blocks nothing.
    let r = w
        .poller()
        .poll("support", t("2026-03-04T00:05:00Z"))
        .await
        .unwrap();
    assert_eq!((r.fetched, r.error), (0, None));
}

#[tokio::test]
async fn a_server_that_says_bye_and_expunges_is_reopened_and_its_words_kept() {
    let w = World::new("pw", None).await;
    for i in 0..5 {
        w.mailbox
            .append("INBOX", t("2026-03-03T10:00:00Z"), &mail(i));
    }
    let words = "FETCH failed: Internal error occurred.";
    w.mailbox
        .fault(2, FakeStage::Body, FakeFault::Bye(words.into()));
    // After one failed read the message is gone: a second read finds nothing.
    w.mailbox.expunge_refused();
    let pointers = poll_clean(&w).await;
    assert_eq!(pointers.len(), 5);
    let errors = fetch_errors(&pointers);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].0, 2);
    assert!(errors[0].1.contains(words), "{}", errors[0].1);
    assert!(!w.mailbox.uids("INBOX").contains(&2));
    let logins = w.mailbox.log().iter().filter(|l| *l == "LOGIN").count();
    assert!(logins >= 2, "the closed session was reopened");
    assert_eq!(last_uid(&w).await, 5);
}

#[tokio::test]
async fn a_message_refused_at_rfc822_size_or_nil_at_any_stage_is_quarantined() {
    use mailroom_core::filters::{Action, Filter, Pattern, Scope};
    let w = World::new("pw", None).await;
    // A header skip filter makes the poller read BODY.PEEK[HEADER] first.
    w.store.filters.lock().unwrap().push(Filter {
        v: 1,
        name: "never".into(),
        scope: Scope::Global,
        from: None,
        to: None,
        subject: Some(Pattern::new("no such subject").unwrap()),
        body_any: vec![],
        body_all: vec![],
        action: Action::Skip,
        folder: None,
    });
    for i in 0..6 {
        w.mailbox
            .append("INBOX", t("2026-03-03T10:00:00Z"), &mail(i));
    }
    w.mailbox
        .fault(2, FakeStage::Size, FakeFault::Refuse("no size".into()));
    w.mailbox.fault(3, FakeStage::Header, FakeFault::Nil);
    w.mailbox.fault(4, FakeStage::Body, FakeFault::Nil);
    w.mailbox.fault(5, FakeStage::Body, FakeFault::Empty);
    let pointers = poll_clean(&w).await;
    let mut errors = fetch_errors(&pointers);
    errors.sort();
    let uids: Vec<u32> = errors.iter().map(|e| e.0).collect();
    assert_eq!(uids, vec![2, 3, 4, 5], "{errors:?}");
    assert!(errors[0].1.contains("RFC822.SIZE") && errors[0].1.contains("no size"));
    assert!(errors[1].1.contains("BODY.PEEK[HEADER]"), "{}", errors[1].1);
    assert!(
        errors[2].1.contains("no content for UID 4"),
        "{}",
        errors[2].1
    );
    assert!(errors[3].1.contains("empty"), "{}", errors[3].1);
    // Messages refused before the body stage were not asked for again.
    let log = w.mailbox.log();
    assert!(
        log.iter()
            .filter(|l| l.starts_with("FETCH BODY"))
            .all(|l| !l.contains('2') && !l.contains('3')),
        "{log:?}"
    );
    assert_eq!(pointers.len(), 6);
    assert_eq!(last_uid(&w).await, 6);
    let outcomes = w.ingest_all().await;
    let quarantined = outcomes
        .iter()
        .filter(|o| matches!(o, IngestOutcome::Quarantined { .. }))
        .count();
    assert_eq!((outcomes.len(), quarantined), (6, 4));
}

#[tokio::test]
async fn a_message_of_unknown_size_is_fetched_alone_and_still_bounded_by_the_size_limit() {
    let mut w = World::new("pw", None).await;
    w.limits.max_message_bytes = 64 * 1024;
    w.limits.oversize_head_bytes = 2048;
    let mut big = mail(1);
    big.extend(std::iter::repeat_n(b'x', 100 * 1024));
    w.mailbox
        .append("INBOX", t("2026-03-03T10:00:00Z"), &mail(0));
    w.mailbox.append("INBOX", t("2026-03-03T10:00:00Z"), &big);
    w.mailbox
        .append("INBOX", t("2026-03-03T10:00:00Z"), &mail(2));
    w.mailbox.fault(1, FakeStage::Size, FakeFault::NoSize);
    w.mailbox.fault(2, FakeStage::Size, FakeFault::NoSize);
    let r = w
        .poller()
        .poll("support", t("2026-03-04T00:00:00Z"))
        .await
        .unwrap();
    assert_eq!(
        (r.fetched, r.oversize, r.error.clone()),
        (3, 1, None),
        "{r:?}"
    );
    let log = w.mailbox.log();
    // Each unknown one alone, one byte past the limit; the known one in a batch of its own.
    assert!(
        log.contains(&format!("FETCH HEAD 1 {}", 64 * 1024 + 1)),
        "{log:?}"
    );
    assert!(
        log.contains(&format!("FETCH HEAD 2 {}", 64 * 1024 + 1)),
        "{log:?}"
    );
    assert!(log.contains(&"FETCH BODY [3]".to_string()), "{log:?}");
    let pointers = w.queue.sent.lock().unwrap().clone();
    assert!(!pointers[0].truncated);
    assert_eq!(pointers[0].size, mail(0).len() as u64);
    assert!(
        pointers[1].truncated,
        "the unknown oversize one keeps its head only"
    );
    let head = w.blobs.get(&pointers[1].key).await.unwrap().unwrap();
    assert_eq!(head.len(), 2048);
    let outcomes = w.ingest_all().await;
    assert!(outcomes
        .iter()
        .all(|o| matches!(o, IngestOutcome::Imported { .. })));
}

#[tokio::test]
async fn a_replay_reads_the_message_again_but_never_under_another_uidvalidity() {
    use mailroom_core::poll::Refetch;
    let w = World::new("pw", None).await;
    for i in 0..3 {
        w.mailbox
            .append("INBOX", t("2026-03-03T10:00:00Z"), &mail(i));
    }
    w.mailbox
        .fault(2, FakeStage::Body, FakeFault::Refuse("still broken".into()));
    poll_clean(&w).await;
    w.ingest_all().await;
    let q = w.store.list_quarantine().await.unwrap().remove(0);
    assert_eq!(q.uid, 2);
    let again = w.poller().refetch(&q).await.unwrap();
    assert!(
        matches!(&again, Refetch::Failed(why) if why.contains("still broken")),
        "{again:?}"
    );
    // Renumbered: UID 2 may now be another message, so it is not read at all.
    w.mailbox.renumber("INBOX", 99);
    let before = w.mailbox.log().len();
    let renumbered = w.poller().refetch(&q).await.unwrap();
    assert!(
        matches!(&renumbered, Refetch::Failed(why) if why.contains("renumbered")),
        "{renumbered:?}"
    );
    assert!(w.mailbox.log()[before..]
        .iter()
        .all(|l| !l.starts_with("FETCH")));
    assert!(w.blobs.get(&q.raw_key).await.unwrap().unwrap().is_empty());
}

/// The ingest queue, refusing sends that carry an unreadable message's pointer while `down`.
struct DownQueue<'a> {
    inner: &'a MemoryQueue<IngestPointer>,
    down: std::sync::atomic::AtomicBool,
}

impl Queue<IngestPointer> for DownQueue<'_> {
    async fn send(&self, messages: &[Outgoing<IngestPointer>]) -> StoreResult<()> {
        let unreadable = messages.iter().any(|m| m.message.fetch_error.is_some());
        if unreadable && self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::backend("send", "queue unavailable"));
        }
        self.inner.send(messages).await
    }
}

#[tokio::test]
async fn the_watermark_passes_an_unreadable_message_only_once_its_entry_is_enqueued() {
    let w = World::new("pw", None).await;
    for i in 0..3 {
        w.mailbox
            .append("INBOX", t("2026-03-03T10:00:00Z"), &mail(i));
    }
    w.mailbox
        .fault(3, FakeStage::Size, FakeFault::Refuse("no".into()));
    let queue = DownQueue {
        inner: &w.queue,
        down: true.into(),
    };
    let poller = PollService {
        accounts: &w.store,
        filters: &w.store,
        secrets: &FakeSecretBox,
        mailbox: &w.mailbox,
        blobs: &w.blobs,
        ingest_queue: &queue,
        limits: &w.limits,
    };
    let now = t("2026-03-04T00:00:00Z");
    assert!(poller.poll("support", now).await.is_err());
    let a = w.store.get_account("support").await.unwrap().unwrap();
    let saved = a.folder_state.get("INBOX").map_or(0, |s| s.last_uid);
    assert!(saved < 3, "the watermark passed UID 3 without its entry");
    queue.down.store(false, std::sync::atomic::Ordering::SeqCst);
    let r = poller.poll("support", now).await.unwrap();
    assert_eq!((r.fetched, r.unreadable, r.error), (3, 1, None));
    let errors = fetch_errors(&w.queue.sent.lock().unwrap());
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].0, 3);
    assert_eq!(last_uid(&w).await, 3);
}
