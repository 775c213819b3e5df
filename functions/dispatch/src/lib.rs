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
    // The same event twice in one batch (one message fetched through two folders makes two
    // pointers, each announcing it) is handled once: concurrent copies would both find no
    // send record and both send.
    let seen = &std::sync::Mutex::new(std::collections::HashSet::new());
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
        if !seen.lock().expect("not poisoned").insert(event.id.clone()) {
            return Ok(Dispatched::default());
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use mailroom_core::dispatch::DispatchSettings;
    use mailroom_core::memory::{test_account, FakeMailer, MemoryCrm, MemoryDispatch, MemoryStore};
    use mailroom_core::model::EmailRecord;

    /// Every sample dispatch event through the handler on fakes: account `support` (no
    /// auto-reply) and the email `events/ingest/pointer.json` stores, as on a prepared stack.
    #[tokio::test]
    async fn every_sample_event_answers_as_expected_on_fakes() {
        for sample in mailroom_runtime::samples::of("dispatch") {
            let store = MemoryStore::default();
            store
                .create_account(&test_account("support", Utc::now()))
                .await
                .unwrap();
            let email: EmailRecord = serde_json::from_value(serde_json::json!({
                "email_id": "1bf04b8632ad9457595ab8e6796ddb78",
                "message_id": "20260304050607.1234@mail.example.com", "synthetic_id": false,
                "auto_submitted": false, "list": false, "bounce": false, "size": 1,
                "attachments_skipped": false, "raw_key": "raw/support/INBOX/1/1.eml",
                "received_at": "2026-11-27T06:00:00Z",
                "from": {"address": "john@example.com"}
            }))
            .unwrap();
            store.upsert_email(&email, "support").await.unwrap();
            let (dispatch_store, crm, mailer) = (
                MemoryDispatch::default(),
                MemoryCrm::default(),
                FakeMailer::default(),
            );
            let settings = DispatchSettings::default();
            let dispatch = Dispatch {
                store: &store,
                dispatch: &dispatch_store,
                crm: &crm,
                followers: &crm,
                mailer: &mailer,
                settings: &settings,
            };
            let event: SqsEvent =
                serde_json::from_slice(&std::fs::read(&sample.path).unwrap()).unwrap();
            let (response, _) = handle(&dispatch, event).await;
            let answer = serde_json::to_value(&response).unwrap();
            let problems = mailroom_runtime::samples::check_response(&sample, &answer);
            assert!(problems.is_empty(), "{}: {problems:?}", sample.name);
            // Nothing on a stack without auto-replies or followers sends mail.
            assert!(mailer.sent.lock().unwrap().is_empty(), "{}", sample.name);
            if sample.name.ends_with("ses-bounce.json") {
                let failing = dispatch_store
                    .failing(&["gone@customer.example".into()], Utc::now())
                    .await
                    .unwrap();
                assert_eq!(failing, ["gone@customer.example"]);
            }
        }
    }
}
