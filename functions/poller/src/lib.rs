//! `poller`: polls the accounts named by a batch of poll jobs, concurrently (one FIFO message
//! group per account, so one account never has two polls at once).

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use chrono::Utc;
use mailroom_aws::Adapters;
use mailroom_core::messages::{decode, DispatchEvent, EventKind, IngestPointer, PollJob};
use mailroom_core::poll::{PollReport, PollService};
use mailroom_core::ports::{
    AccountStore, BlobStore, FilterStore, Mailbox, Outgoing, Queue, SecretBox,
};
use mailroom_imap::{ImapConnector, ImapOptions};
use mailroom_runtime::{process_batch, RecordResult};

/// Everything a poll needs, built once per instance: connections, the cached data key.
pub struct Poller {
    pub adapters: Adapters,
    pub imap: ImapConnector,
}

impl Poller {
    pub fn new(adapters: Adapters) -> Result<Self, String> {
        let imap = ImapConnector::new(ImapOptions {
            allow_private_hosts: adapters.config.allow_private_hosts,
            allow_plaintext: adapters.config.allow_plaintext,
            extra_ca_file: adapters.config.imap_ca_file.clone(),
            ..ImapOptions::default()
        })?;
        Ok(Poller { adapters, imap })
    }

    pub fn service(
        &self,
    ) -> PollService<
        '_,
        mailroom_aws::DynamoStore,
        mailroom_aws::KmsSecretBox,
        ImapConnector,
        mailroom_aws::S3Blobs,
        mailroom_aws::SqsQueue,
        mailroom_aws::DynamoStore,
    > {
        PollService {
            accounts: &self.adapters.store,
            filters: &self.adapters.store,
            secrets: &self.adapters.secrets,
            mailbox: &self.imap,
            blobs: &self.adapters.blobs,
            ingest_queue: &self.adapters.ingest_queue,
            limits: &self.adapters.config.limits,
        }
    }
}

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Polls every job of the batch; a job fails (and is retried) when a backing service failed or
/// its account does not exist. Mailbox problems are recorded on the account and the job succeeds.
/// An account is polled once per invocation: a FIFO batch may hold several jobs of one account
/// (ticks queued while it was slow), and the first poll already took all there was.
/// An account failing for long enough gets an `account.failing` event on `notices` (the
/// dispatch queue), which tells its admins or owner at most once a day (R-F7).
pub async fn handle<A, S, M, B, Q, F, N>(
    service: &PollService<'_, A, S, M, B, Q, F>,
    notices: &N,
    event: SqsEvent,
) -> (SqsBatchResponse, Vec<RecordResult<PollReport, Error>>)
where
    A: AccountStore,
    S: SecretBox,
    M: Mailbox,
    B: BlobStore,
    Q: Queue<IngestPointer>,
    F: FilterStore,
    N: Queue<DispatchEvent>,
{
    let polled = &std::sync::Mutex::new(std::collections::HashSet::new());
    process_batch(event, 10, |record| async move {
        let job: PollJob = decode(record.body.as_deref().unwrap_or_default())?;
        // Jobs of one account share a FIFO group, so they run in order: a repeat finds the
        // account here and answers at once.
        if !polled
            .lock()
            .expect("not poisoned")
            .insert(job.account.clone())
        {
            return Ok(PollReport {
                account: job.account,
                not_polled: Some("already polled in this invocation".into()),
                ..PollReport::default()
            });
        }
        let now = Utc::now();
        let report = service.poll(&job.account, now).await?;
        if report.failure_notice {
            // One id per account and day: the queue's consumers drop repeats of a day.
            let mut notice = DispatchEvent::about(EventKind::AccountFailing, "", "", &job.account);
            notice.id = format!("{}:{}", notice.id, now.date_naive());
            notices.send(&[Outgoing::plain(notice)]).await?;
        }
        // A job naming no account (deleted since it was queued, or written by hand) fails, so
        // it is retried and then dead-lettered where an operator sees it, instead of answering
        // success. An inactive account is a normal skip and succeeds.
        if report.not_polled.as_deref() == Some("unknown account") {
            return Err(format!("unknown account {:?}", job.account).into());
        }
        match &report.error {
            Some(e) => tracing::warn!(
                account = %report.account,
                kind = %e.kind,
                error = %e.message,
                fetched = report.fetched,
                "poll failed"
            ),
            None => tracing::info!(
                account = %report.account,
                fetched = report.fetched,
                oversize = report.oversize,
                skipped = report.skipped,
                not_polled = report.not_polled.as_deref().unwrap_or(""),
                "polled"
            ),
        }
        Ok::<_, Error>(report)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailroom_core::limits::Limits;
    use mailroom_core::memory::{
        test_account, FakeMailbox, FakeSecretBox, MemoryBlobs, MemoryQueue, MemoryStore,
    };

    /// A poller's ports on fakes: group accounts on one scripted mailbox (password `pw`).
    struct Fakes {
        store: MemoryStore,
        mailbox: FakeMailbox,
        blobs: MemoryBlobs,
        queue: MemoryQueue<IngestPointer>,
        limits: Limits,
    }

    impl Fakes {
        async fn with_accounts(names: &[&str]) -> Fakes {
            let store = MemoryStore::default();
            for name in names {
                store
                    .create_account(&test_account(name, Utc::now()))
                    .await
                    .unwrap();
            }
            Fakes {
                store,
                mailbox: FakeMailbox::new("pw"),
                blobs: MemoryBlobs::default(),
                queue: MemoryQueue::default(),
                limits: Limits::default(),
            }
        }

        fn service(
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
    }

    #[test]
    fn sample_events_parse_into_poll_jobs() {
        for raw in [
            include_str!("../../../events/poller/poll-job.json"),
            include_str!("../../../events/poller/two-accounts.json"),
        ] {
            let event: SqsEvent = serde_json::from_str(raw).unwrap();
            assert!(!event.records.is_empty());
            for r in event.records {
                let job: PollJob = decode(r.body.as_deref().unwrap()).unwrap();
                assert_eq!(r.attributes["MessageGroupId"], job.account);
            }
        }
    }

    /// Every sample poll job through the handler on fakes (accounts `support` and `sales` on a
    /// scripted mailbox), answering as its expected file says.
    #[tokio::test]
    async fn every_sample_event_answers_as_expected_on_fakes() {
        for sample in mailroom_runtime::samples::of("poller") {
            let fakes = Fakes::with_accounts(&["support", "sales"]).await;
            fakes.mailbox.append(
                "INBOX",
                Utc::now(),
                b"From: a@customer.example\r\nSubject: hi\r\nMessage-ID: <s1@x>\r\n\r\nbody\r\n",
            );
            let (service, queue) = (fakes.service(), &fakes.queue);
            let event: SqsEvent =
                serde_json::from_slice(&std::fs::read(&sample.path).unwrap()).unwrap();
            let jobs = event.records.len();
            let notices = MemoryQueue::<DispatchEvent>::default();
            let (response, results) = handle(&service, &notices, event).await;
            let answer = serde_json::to_value(&response).unwrap();
            let problems = mailroom_runtime::samples::check_response(&sample, &answer);
            assert!(problems.is_empty(), "{}: {problems:?}", sample.name);
            // Every job that succeeded polled its account and queued what it fetched.
            let polled = results.iter().filter(|r| r.result.is_ok()).count();
            assert_eq!(polled + response.batch_item_failures.len(), jobs);
            assert_eq!(queue.sent.lock().unwrap().len(), polled, "{}", sample.name);
        }
    }

    #[tokio::test]
    async fn an_account_is_polled_once_per_invocation_whatever_its_jobs() {
        let fakes = Fakes::with_accounts(&["support"]).await;
        let (service, mailbox) = (fakes.service(), &fakes.mailbox);
        let record = |i: u32| {
            serde_json::json!({
                "messageId": format!("m{i}"),
                "body": format!("{{\"v\":1,\"account\":\"support\",\"cycle\":\"c{i}\"}}"),
                "attributes": {"MessageGroupId": "support"},
            })
        };
        let event: SqsEvent = serde_json::from_value(
            serde_json::json!({"Records": (0..4).map(record).collect::<Vec<_>>()}),
        )
        .unwrap();
        let notices = MemoryQueue::<DispatchEvent>::default();
        let (response, results) = handle(&service, &notices, event).await;
        assert!(response.batch_item_failures.is_empty());
        let polls = mailbox
            .log()
            .iter()
            .filter(|c| c.starts_with("EXAMINE"))
            .count();
        assert_eq!(polls, 1, "{:?}", mailbox.log());
        let repeats = results
            .iter()
            .filter(|r| {
                r.result.as_ref().is_ok_and(|p| {
                    p.not_polled.as_deref() == Some("already polled in this invocation")
                })
            })
            .count();
        assert_eq!(repeats, 3);
    }

    /// R-F7: a poll that fails an account failing for ten minutes already queues one
    /// `account.failing` event, with the day in its id; a first failure queues none.
    #[tokio::test]
    async fn an_account_failing_for_ten_minutes_queues_a_failure_notice() {
        use mailroom_core::model::AccountStatus;
        let mut fakes = Fakes::with_accounts(&["support", "sales"]).await;
        fakes.mailbox = FakeMailbox::new("not-the-password");
        let now = Utc::now();
        let failing = AccountStatus {
            consecutive_failures: 3,
            failing_since: Some(now - chrono::Duration::minutes(11)),
            ..AccountStatus::default()
        };
        fakes.store.save_status("support", &failing).await.unwrap();
        let service = fakes.service();
        let event: SqsEvent = serde_json::from_value(serde_json::json!({"Records": [
            {"messageId": "m1", "body": "{\"v\":1,\"account\":\"support\",\"cycle\":\"c\"}",
             "attributes": {"MessageGroupId": "support"}},
            {"messageId": "m2", "body": "{\"v\":1,\"account\":\"sales\",\"cycle\":\"c\"}",
             "attributes": {"MessageGroupId": "sales"}}
        ]}))
        .unwrap();
        let notices = MemoryQueue::<DispatchEvent>::default();
        let (response, results) = handle(&service, &notices, event).await;
        assert!(response.batch_item_failures.is_empty());
        assert!(results
            .iter()
            .all(|r| r.result.as_ref().is_ok_and(|p| p.error.is_some())));
        let sent = notices.sent.lock().unwrap();
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert_eq!(sent[0].kind, EventKind::AccountFailing);
        assert_eq!(sent[0].account, "support");
        assert!(sent[0].id.ends_with(&now.date_naive().to_string()));
    }
}
