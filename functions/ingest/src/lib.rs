//! `ingest`: turns ingest pointers into stored emails (or quarantine records), concurrently,
//! failing only the records whose backing service failed.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use chrono::Utc;
use mailroom_aws::Adapters;
use mailroom_core::ingest::{IngestOutcome, IngestService};
use mailroom_core::messages::{decode, IngestPointer};
use mailroom_runtime::{process_batch, RecordResult};

pub type Error = Box<dyn std::error::Error + Send + Sync>;

pub async fn handle(
    adapters: &Adapters,
    event: SqsEvent,
) -> (
    SqsBatchResponse,
    Vec<RecordResult<(IngestPointer, IngestOutcome), Error>>,
) {
    let service = IngestService {
        emails: &adapters.store,
        blobs: &adapters.blobs,
        limits: &adapters.config.limits,
    };
    let service = &service;
    process_batch(event, 10, |record| async move {
        let pointer: IngestPointer = decode(record.body.as_deref().unwrap_or_default())?;
        let outcome = service.ingest(&pointer, Utc::now()).await?;
        // Ids and outcomes only: subjects and bodies stay out of the logs (R-Q5).
        tracing::info!(
            account = %pointer.account,
            uid = pointer.uid,
            outcome = ?outcome,
            "ingested"
        );
        Ok::<_, Error>((pointer, outcome))
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
}
