//! `scheduler`: on each EventBridge tick, queue one poll job per due account (R-F1, R-F10).
//! It never polls itself, and never lists the accounts: it reads the due ones through the
//! schedule index, shard by shard, a page at a time, sending each page's jobs in parallel
//! batches before it reads the next (`mailroom_core::schedule`).

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use chrono::Utc;
use mailroom_aws::{Adapters, DynamoStore, SqsQueue};
use mailroom_core::messages::PollJob;
use mailroom_core::ports::{AccountStore, Directory, Queue, ScheduleIndex, StoreError};
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
    A: AccountStore + ScheduleIndex,
    D: Directory,
    Q: Queue<PollJob>,
{
    let now = event.time.unwrap_or_else(Utc::now);
    let cycle = event
        .id
        .clone()
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| now.format("%Y-%m-%dT%H:%M:%SZ").to_string());
    let report = run_cycle(
        ports.accounts,
        ports.users,
        ports.poll_queue,
        now,
        &cycle,
        selection,
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

    /// Every sample event through the handler on fakes, answering as its expected file says
    /// (the same file the integration test holds the real binary to).
    #[tokio::test]
    async fn every_sample_event_answers_as_expected_on_fakes() {
        use mailroom_core::memory::{test_account, MemoryCrm, MemoryQueue, MemoryStore};
        for sample in mailroom_runtime::samples::of("scheduler") {
            let store = MemoryStore::default();
            for name in ["support", "sales"] {
                store
                    .create_account(&test_account(name, Utc::now()))
                    .await
                    .unwrap();
            }
            let (users, queue) = (MemoryCrm::default(), MemoryQueue::<PollJob>::default());
            let ports = Scheduler {
                accounts: &store,
                users: &users,
                poll_queue: &queue,
            };
            let event: EventBridgeEvent =
                serde_json::from_slice(&std::fs::read(&sample.path).unwrap()).unwrap();
            let report = handle(&ports, event, &Selection::Due).await.unwrap();
            let answer = serde_json::to_value(&report).unwrap();
            let problems = mailroom_runtime::samples::check_response(&sample, &answer);
            assert!(problems.is_empty(), "{}: {problems:?}", sample.name);
            // It did the work, not just answered: a job per new account, named by the tick.
            let sent = queue.sent.lock().unwrap();
            assert_eq!(sent.len(), 2, "{}", sample.name);
            assert!(sent.iter().all(|j| j.cycle == report.cycle));
        }
    }
}
