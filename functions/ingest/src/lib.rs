//! `ingest`: turns ingest pointers into stored emails (or quarantine records), links each to
//! its parent record and, for group accounts with email-to-case, to its case. Records run
//! concurrently; only those whose backing service failed are retried.
//!
//! The handler only translates SQS events; what a pointer leads to is the core's
//! [`mailroom_core::intake`].

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use chrono::Utc;
use mailroom_core::intake::{Ingested, Intake};
use mailroom_core::messages::{decode, DispatchEvent, IngestPointer};
use mailroom_core::ports::{
    AccountStore, BlobStore, Crm, Directory, EmailStore, FilterStore, Queue,
};
use mailroom_runtime::{process_batch, RecordResult};

pub type Error = Box<dyn std::error::Error + Send + Sync>;

pub async fn handle<S, C, B, Q>(
    intake: &Intake<'_, S, C, B, Q>,
    event: SqsEvent,
) -> (SqsBatchResponse, Vec<RecordResult<Ingested, Error>>)
where
    S: AccountStore + EmailStore + FilterStore,
    C: Crm + Directory,
    B: BlobStore,
    Q: Queue<DispatchEvent>,
{
    // Only records that decode reach intake; the batch counts them so replies know when
    // every first email of a thread has linked. Their accounts are all the context reads.
    let pointers: Vec<IngestPointer> = event
        .records
        .iter()
        .filter_map(|r| decode(r.body.as_deref().unwrap_or_default()).ok())
        .collect();
    let mut accounts: Vec<String> = pointers.iter().map(|p| p.account.clone()).collect();
    accounts.sort();
    accounts.dedup();
    let context = match intake.context(&accounts, Utc::now()).await {
        Ok(c) => c,
        Err(e) => {
            // Without accounts and filters nothing can be taken: every record is retried.
            let message = e.to_string();
            return process_batch(event, 1, |_| {
                let message = message.clone();
                async move { Err::<Ingested, Error>(message.into()) }
            })
            .await;
        }
    };
    let batch = &intake.batch(&context, pointers.len());
    process_batch(event, 10, |record| async move {
        let pointer: IngestPointer = decode(record.body.as_deref().unwrap_or_default())?;
        let done = batch.take(&pointer, Utc::now()).await?;
        let link = done.link.as_ref();
        // Ids and outcomes only: subjects and bodies stay out of the logs (R-Q5).
        tracing::info!(
            account = %pointer.account,
            uid = pointer.uid,
            outcome = ?done.outcome,
            parent = ?link.and_then(|l| l.parent.as_ref()).map(|p| p.to_string()),
            case = ?link.and_then(|l| l.case),
            "ingested"
        );
        Ok::<_, Error>(done)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_events_parse() {
        let event: SqsEvent =
            serde_json::from_str(include_str!("../../../events/ingest/pointer.json")).unwrap();
        let p: IngestPointer = decode(event.records[0].body.as_deref().unwrap()).unwrap();
        assert_eq!(p.account, "support");
        let poison: SqsEvent =
            serde_json::from_str(include_str!("../../../events/ingest/poison.json")).unwrap();
        let bodies: Vec<_> = poison
            .records
            .iter()
            .map(|r| r.body.clone().unwrap())
            .collect();
        assert!(decode::<IngestPointer>(&bodies[0]).is_ok());
        assert!(decode::<IngestPointer>(&bodies[1]).is_err());
    }

    #[test]
    fn dispatch_sample_events_parse() {
        for raw in [
            include_str!("../../../events/dispatch/case-created.json"),
            include_str!("../../../events/dispatch/email-linked.json"),
        ] {
            let event: SqsEvent = serde_json::from_str(raw).unwrap();
            let e: DispatchEvent =
                serde_json::from_str(event.records[0].body.as_deref().unwrap()).unwrap();
            assert!(e.id.starts_with(e.kind.as_str()));
        }
    }

    /// Every sample ingest batch through the handler on fakes: the raw objects its pointers
    /// name are stored first, as the poller would have; the answer is as expected.
    #[tokio::test]
    async fn every_sample_event_answers_as_expected_on_fakes() {
        use mailroom_core::limits::Limits;
        use mailroom_core::memory::{
            test_account, MemoryBlobs, MemoryCrm, MemoryQueue, MemoryStore,
        };
        use mailroom_core::messages::EventKind;
        use mailroom_core::ports::EmailStore;
        for sample in mailroom_runtime::samples::of("ingest") {
            let store = MemoryStore::default();
            store
                .create_account(&test_account("support", Utc::now()))
                .await
                .unwrap();
            let blobs = MemoryBlobs::default();
            let event: SqsEvent =
                serde_json::from_slice(&std::fs::read(&sample.path).unwrap()).unwrap();
            let pointers: Vec<IngestPointer> = event
                .records
                .iter()
                .filter_map(|r| decode(r.body.as_deref().unwrap_or_default()).ok())
                .collect();
            for (i, p) in pointers.iter().enumerate() {
                let raw = format!(
                    "From: a@customer.example\r\nSubject: sample {i}\r\nMessage-ID: <sample-{i}@x>\r\n\r\nbody\r\n"
                );
                blobs
                    .put(&p.key, raw.into_bytes(), "message/rfc822")
                    .await
                    .unwrap();
            }
            let (crm, events) = (
                MemoryCrm::default(),
                MemoryQueue::<DispatchEvent>::default(),
            );
            let limits = Limits::default();
            let cache = mailroom_core::intake::IntakeCache::default();
            let intake = Intake {
                store: &store,
                crm: &crm,
                blobs: &blobs,
                events: &events,
                limits: &limits,
                cache: &cache,
            };
            let (response, _) = handle(&intake, event).await;
            let answer = serde_json::to_value(&response).unwrap();
            let problems = mailroom_runtime::samples::check_response(&sample, &answer);
            assert!(problems.is_empty(), "{}: {problems:?}", sample.name);
            // Each decodable pointer became a stored email, announced on the dispatch queue
            // as linked and as delivered.
            assert_eq!(store.list_emails().await.unwrap().len(), pointers.len());
            let sent = events.sent.lock().unwrap();
            let kinds = |k: EventKind| sent.iter().filter(|e| e.kind == k).count();
            assert_eq!(kinds(EventKind::EmailLinked), pointers.len());
            assert_eq!(kinds(EventKind::EmailDelivered), pointers.len());
        }
    }
}
