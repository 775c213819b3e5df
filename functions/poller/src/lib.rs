//! `poller`: polls the accounts named by a batch of poll jobs, concurrently (one FIFO message
//! group per account, so one account never has two polls at once).

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use chrono::Utc;
use mailroom_aws::Adapters;
use mailroom_core::messages::{decode, IngestPointer, PollJob};
use mailroom_core::poll::{PollReport, PollService};
use mailroom_core::ports::{AccountStore, BlobStore, FilterStore, Mailbox, Queue, SecretBox};
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

/// Polls every job of the batch; a job fails (and is retried) only when a backing service
/// failed. Mailbox problems are recorded on the account and the job succeeds.
pub async fn handle<A, S, M, B, Q, F>(
    service: &PollService<'_, A, S, M, B, Q, F>,
    event: SqsEvent,
) -> (SqsBatchResponse, Vec<RecordResult<PollReport, Error>>)
where
    A: AccountStore,
    S: SecretBox,
    M: Mailbox,
    B: BlobStore,
    Q: Queue<IngestPointer>,
    F: FilterStore,
{
    process_batch(event, 10, |record| async move {
        let job: PollJob = decode(record.body.as_deref().unwrap_or_default())?;
        let report = service.poll(&job.account, Utc::now()).await?;
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
}
