//! `scheduler`: on each EventBridge tick, queue one poll job per due account (R-F1, R-F10).
//! It never polls itself, so a cycle over 1,000 accounts is one query and 100 batch sends.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use chrono::Utc;
use mailroom_aws::{Adapters, DynamoStore, SqsQueue};
use mailroom_core::messages::PollJob;
use mailroom_core::ports::{AccountStore, Directory, Queue, StoreError};
use mailroom_core::schedule::{run_cycle, CycleReport, Selection};

/// The ports a tick reads and writes.
pub struct Scheduler<'a, A, D, Q> {
    pub accounts: &'a A,
    pub users: &'a D,
    pub poll_queue: &'a Q,
}

impl<'a> Scheduler<'a, DynamoStore, DynamoStore, SqsQueue> {
    pub fn aws(adapters: &'a Adapters) -> Self {
        Scheduler {
            accounts: &adapters.store,
            users: &adapters.store,
            poll_queue: &adapters.poll_queue,
        }
    }
}

/// Handles one tick. The event's id (else its time) names the cycle, so a retried invocation
/// of the same tick produces the same FIFO deduplication ids and queues nothing twice.
pub async fn handle<A, D, Q>(
    ports: &Scheduler<'_, A, D, Q>,
    event: EventBridgeEvent,
    selection: &Selection,
) -> Result<CycleReport, StoreError>
where
    A: AccountStore,
    D: Directory,
    Q: Queue<PollJob>,
{
    let now = event.time.unwrap_or_else(Utc::now);
    let cycle = event
        .id
        .clone()
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| now.format("%Y-%m-%dT%H:%M:%SZ").to_string());
    let inactive: Vec<String> = ports
        .users
        .list_users()
        .await?
        .into_iter()
        .filter(|u| !u.active)
        .map(|u| u.name)
        .collect();
    let report = run_cycle(
        ports.accounts,
        ports.poll_queue,
        now,
        &cycle,
        selection,
        &inactive,
    )
    .await?;
    tracing::info!(
        cycle = %report.cycle,
        accounts = report.accounts,
        queued = report.queued.len(),
        not_due = report.not_due,
        "cycle scheduled"
    );
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_event_parses() {
        let raw = include_str!("../../../events/scheduler/schedule.json");
        let event: EventBridgeEvent = serde_json::from_str(raw).unwrap();
        assert_eq!(event.detail_type, "Scheduled Event");
        assert!(event.time.is_some());
    }
}
