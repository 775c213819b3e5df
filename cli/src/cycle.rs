//! One polling cycle run to completion in-process: the scheduler handler queues poll jobs, the
//! poller handler drains the poll queue, the ingest handler drains the ingest queue, the
//! dispatch handler drains the dispatch queue. These are the functions' own handlers, fed the
//! same SQS events Lambda would build.

use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal;

use anyhow::Result;
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use chrono::Utc;
use mailroom_aws::queue::{Received, SqsQueue};
use mailroom_core::ingest::IngestOutcome;
use mailroom_core::messages::{decode, IngestPointer};
use mailroom_core::model::ErrorKind;
use mailroom_core::schedule::Selection;
use mailroom_runtime::RecordResult;
use serde::Serialize;

use crate::context::Context;

/// Per-account totals of one cycle (`mailroom poll --json` prints a list of these).
/// `fetched = imported + duplicates + quarantined` once ingest has drained.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct AccountCycle {
    pub account: String,
    /// Messages downloaded from the mailbox.
    pub fetched: u32,
    /// New emails stored.
    pub imported: u32,
    /// Messages Mailroom already had (re-fetch, redelivery, or the same email through
    /// another account); nothing was stored twice.
    pub duplicates: u32,
    /// Of the duplicates: emails first stored through another account, now linked to this one.
    pub linked: u32,
    pub quarantined: u32,
    /// Messages above the size limit, imported with headers and text only.
    pub oversize: u32,
    /// Cases created from this account's mail (email-to-case).
    pub cases_created: u32,
    /// Failures this cycle (a failed poll, or messages whose ingest failed and will retry).
    pub errors: u32,
    pub error: Option<String>,
    pub error_kind: Option<ErrorKind>,
    /// Messages kept out by skip filters (listed by `mailroom skipped list`).
    pub skipped: u32,
    /// Why the account was not polled (inactive, unknown).
    pub not_polled: Option<String>,
    /// Auto-replies sent for this account's mail (R-A1).
    pub auto_replies: u32,
    /// Auto-replies and notification emails deliberately not sent (`sent list --suppressed`).
    pub suppressed: u32,
    /// Notification emails sent (R-N3).
    pub notification_emails: u32,
    /// In-app notifications created (R-N).
    pub notifications: u32,
}

fn progress(enabled: bool, msg: &str) {
    if enabled {
        eprintln!("{msg}");
    }
}

/// The SQS event Lambda would hand a function for messages received from `queue`.
pub fn to_sqs_event(queue: &SqsQueue, messages: &[Received]) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = messages
        .iter()
        .map(|m| {
            let mut r = SqsMessage::default();
            r.message_id = Some(m.message_id.clone());
            r.receipt_handle = Some(m.receipt_handle.clone());
            r.body = Some(m.body.clone());
            r.attributes = m.attributes.clone();
            r.event_source = Some("aws:sqs".into());
            r.event_source_arn = Some(format!("arn:aws:sqs:local:000000000000:{}", queue.name()));
            r
        })
        .collect();
    event
}

/// Runs one cycle and returns per-account totals, sorted by account name.
pub async fn run(ctx: &Context, selection: Selection) -> Result<Vec<AccountCycle>> {
    run_stages(ctx, selection, true).await
}

/// [`run`], leaving the dispatch queue for the dispatch function (`mailroom poll
/// --no-dispatch`: what ingest announced stays on the queue to be inspected or consumed).
pub async fn run_without_dispatch(
    ctx: &Context,
    selection: Selection,
) -> Result<Vec<AccountCycle>> {
    run_stages(ctx, selection, false).await
}

async fn run_stages(
    ctx: &Context,
    selection: Selection,
    dispatching: bool,
) -> Result<Vec<AccountCycle>> {
    let show = std::io::stderr().is_terminal();
    let adapters = ctx.adapters();
    let mut totals: BTreeMap<String, AccountCycle> = BTreeMap::new();
    let entry = |totals: &mut BTreeMap<String, AccountCycle>, name: &str| {
        totals
            .entry(name.to_string())
            .or_insert_with(|| AccountCycle {
                account: name.to_string(),
                ..AccountCycle::default()
            })
            .account
            .clone()
    };

    // A unique event id per manual cycle: FIFO deduplication must not swallow a second
    // `mailroom poll` run within the same second.
    let mut tick = EventBridgeEvent::default();
    tick.detail_type = "Scheduled Event".into();
    tick.source = "mailroom.cli".into();
    tick.time = Some(Utc::now());
    tick.id = Some(format!(
        "manual-{}-{:08x}",
        Utc::now().timestamp_millis(),
        rand::random::<u32>()
    ));
    let report = scheduler::handle(&scheduler::Scheduler::aws(adapters), tick, &selection).await?;
    for name in &report.queued {
        entry(&mut totals, name);
    }
    progress(
        show,
        &format!("polling {} account(s)…", report.queued.len()),
    );

    loop {
        let batch = adapters.poll_queue.receive(10, 0).await?;
        if batch.is_empty() {
            break;
        }
        let event = to_sqs_event(&adapters.poll_queue, &batch);
        let (_response, results) =
            poller::handle(&ctx.poller.service(), &adapters.dispatch_queue, event).await;
        let mut done = Vec::new();
        for (r, m) in pair(&results, &batch) {
            match &r.result {
                Ok(report) => {
                    let name = entry(&mut totals, &report.account);
                    let t = totals.get_mut(&name).expect("inserted");
                    t.fetched += report.fetched;
                    t.oversize += report.oversize;
                    t.skipped += report.skipped;
                    t.not_polled = report.not_polled.clone();
                    if let Some(e) = &report.error {
                        t.errors += 1;
                        t.error = Some(e.message.clone());
                        t.error_kind = Some(e.kind);
                    }
                    progress(
                        show,
                        &format!("  {}: fetched {}", report.account, report.fetched),
                    );
                    done.push(m.receipt_handle.clone());
                }
                Err(e) => {
                    let account = decode::<mailroom_core::messages::PollJob>(&m.body)
                        .map(|j| j.account)
                        .unwrap_or_else(|_| "(unreadable poll job)".into());
                    let name = entry(&mut totals, &account);
                    let t = totals.get_mut(&name).expect("inserted");
                    t.errors += 1;
                    t.error = Some(e.to_string());
                }
            }
        }
        adapters.poll_queue.delete(&done).await?;
    }

    let mut ingested = 0usize;
    loop {
        let batch = adapters.ingest_queue.receive(10, 0).await?;
        if batch.is_empty() {
            break;
        }
        let event = to_sqs_event(&adapters.ingest_queue, &batch);
        let (_response, results) = ingest::handle(&adapters.intake(), event).await;
        let mut done = Vec::new();
        for (r, m) in pair(&results, &batch) {
            match &r.result {
                Ok(ingested) => {
                    let (pointer, outcome) = (&ingested.pointer, &ingested.outcome);
                    let name = entry(&mut totals, &pointer.account);
                    let t = totals.get_mut(&name).expect("inserted");
                    match outcome {
                        IngestOutcome::Imported { .. } => t.imported += 1,
                        IngestOutcome::Linked { .. } => {
                            t.duplicates += 1;
                            t.linked += 1;
                        }
                        IngestOutcome::Duplicate { .. } => t.duplicates += 1,
                        IngestOutcome::Quarantined { .. } => t.quarantined += 1,
                        IngestOutcome::Skipped { .. } => t.skipped += 1,
                    }
                    // Counted once: a redelivery that finds its own claim re-emits the event
                    // but created nothing.
                    if ingested.link.as_ref().is_some_and(|l| l.case_claimed_now) {
                        t.cases_created += 1;
                    }
                    done.push(m.receipt_handle.clone());
                }
                Err(e) => {
                    let account = decode::<IngestPointer>(&m.body)
                        .map(|p| p.account)
                        .unwrap_or_else(|_| "(unreadable pointer)".into());
                    let name = entry(&mut totals, &account);
                    let t = totals.get_mut(&name).expect("inserted");
                    t.errors += 1;
                    t.error = Some(match e {
                        mailroom_runtime::RecordError::Failed(e) => {
                            mailroom_core::error::describe(e.as_ref())
                        }
                        other => other.to_string(),
                    });
                }
            }
        }
        ingested += done.len();
        progress(show, &format!("ingested {ingested} message(s)…"));
        adapters.ingest_queue.delete(&done).await?;
    }

    // Then what ingest announced: auto-replies, notifications (the dispatch function's work).
    let dispatch = adapters.dispatch();
    if !dispatching {
        return Ok(totals.into_values().collect());
    }
    loop {
        let batch = adapters.dispatch_queue.receive(10, 0).await?;
        if batch.is_empty() {
            break;
        }
        let event = to_sqs_event(&adapters.dispatch_queue, &batch);
        let (_response, results) = dispatch::handle(&dispatch, event).await;
        let mut done = Vec::new();
        for (r, m) in pair(&results, &batch) {
            let account = decode::<mailroom_core::messages::DispatchEvent>(&m.body)
                .map(|e| e.account)
                .ok();
            match (&r.result, account) {
                (Ok(d), Some(account)) => {
                    let name = entry(&mut totals, &account);
                    let t = totals.get_mut(&name).expect("inserted");
                    for s in &d.sent {
                        match s.kind {
                            mailroom_core::dispatch::records::SentKind::AutoReply => {
                                t.auto_replies += 1
                            }
                            _ => t.notification_emails += 1,
                        }
                    }
                    t.suppressed += d.suppressed.len() as u32;
                    t.notifications += d.notified as u32;
                    done.push(m.receipt_handle.clone());
                }
                (Ok(_), None) => done.push(m.receipt_handle.clone()),
                (Err(e), account) => {
                    let name = entry(&mut totals, account.as_deref().unwrap_or("(dispatch)"));
                    let t = totals.get_mut(&name).expect("inserted");
                    t.errors += 1;
                    t.error = Some(e.to_string());
                }
            }
        }
        adapters.dispatch_queue.delete(&done).await?;
    }
    Ok(totals.into_values().collect())
}

/// Pairs each result with the received message it came from (results are not in order).
fn pair<'a, T, E>(
    results: &'a [RecordResult<T, E>],
    batch: &'a [Received],
) -> Vec<(&'a RecordResult<T, E>, &'a Received)> {
    let by_id: HashMap<&str, &Received> =
        batch.iter().map(|m| (m.message_id.as_str(), m)).collect();
    results
        .iter()
        .filter_map(|r| by_id.get(r.message_id.as_str()).map(|m| (r, *m)))
        .collect()
}
