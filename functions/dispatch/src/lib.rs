//! `dispatch`: answers and tells. Takes the events ingest and the poller put on the dispatch
//! queue (`email.linked`: auto-reply and bounces; `email.delivered`: notifications;
//! `account.failing`: failure notices) and SES's bounce and complaint notices (SNS envelopes
//! from the feedback queue). Records run concurrently; only those whose backing service
//! failed are retried.
//!
//! The handler only translates SQS events; what an event leads to is the core's
//! [`mailroom_core::dispatch`].

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use chrono::Utc;
use mailroom_core::dispatch::feedback::{is_sns_envelope, parse_feedback};
use mailroom_core::dispatch::{Dispatch, Dispatched};
use mailroom_core::messages::{decode, DispatchEvent};
use mailroom_core::ports::{
    AccountStore, Crm, Directory, DispatchStore, EmailStore, Followers, Mailer,
};
use mailroom_runtime::{process_batch, RecordResult};

pub type Error = Box<dyn std::error::Error + Send + Sync>;

pub async fn handle<S, D, C, F, M>(
    dispatch: &Dispatch<'_, S, D, C, F, M>,
    event: SqsEvent,
) -> (SqsBatchResponse, Vec<RecordResult<Dispatched, Error>>)
where
    S: AccountStore + EmailStore,
    D: DispatchStore,
    C: Crm + Directory,
    F: Followers,
    M: Mailer,
{
    process_batch(event, 10, |record| async move {
        let body = record.body.as_deref().unwrap_or_default();
        let now = Utc::now();
        if is_sns_envelope(body) {
            return match parse_feedback(body) {
                Ok(Some(f)) => {
                    let done = dispatch.feedback(&f, now).await?;
                    tracing::info!(reason = %f.reason, addresses = f.addresses.len(), "feedback");
                    Ok(done)
                }
                Ok(None) => Ok(Dispatched::default()),
                // SNS wrote it, not us: retrying cannot make it readable.
                Err(e) => {
                    tracing::warn!(error = %e, "unreadable SES notice dropped");
                    Ok(Dispatched::default())
                }
            };
        }
        let event: DispatchEvent = decode(body)?;
        let done = dispatch.handle(&event, now).await?;
        // Ids and counts only: no subjects, bodies or addresses in the logs (R-Q5).
        tracing::info!(
            event = %event.id,
            sent = done.sent.len(),
            suppressed = ?done.suppressed.iter().map(|s| s.reason.as_str()).collect::<Vec<_>>(),
            notified = done.notified,
            already_sent = done.already_sent,
            "dispatched"
        );
        Ok::<_, Error>(done)
    })
    .await
}
