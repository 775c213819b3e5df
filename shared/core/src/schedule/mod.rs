//! Which accounts one scheduler tick polls (R-F1, R-F10), and the tick itself.
//!
//! Idle mailboxes are polled less often, and accounts in back-off wait; the choice is a pure
//! function of the account and the tick, so a retried tick picks the same set. A tick reads
//! only the due accounts, through the schedule index ([`index`]): shard by shard, in
//! parallel, a page at a time, each page's jobs sent before the next page is read, so its
//! memory does not grow with the deployment.

pub mod index;

use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};

use crate::messages::PollJob;
use crate::model::Account;
use crate::ports::{AccountStore, Directory, Outgoing, Queue, ScheduleIndex, StoreError};
pub use index::{ScheduleEntry, SHARDS};

/// Minutes between polls for an account, from how long ago it last received mail.
pub fn interval_minutes(account: &Account, now: DateTime<Utc>) -> i64 {
    index::interval_after(ScheduleEntry::of(account).since, now)
}

/// Whether the tick at `now` should poll `account` ([`ScheduleEntry::is_due`]).
pub fn is_due(account: &Account, now: DateTime<Utc>) -> bool {
    ScheduleEntry::of(account).is_due(now)
}

/// Which accounts a cycle polls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// A scheduled tick: active accounts that are due (adaptive interval, back-off).
    Due,
    /// Every active account, due or not (an operator's manual cycle).
    AllActive,
    /// These accounts, due or not.
    Named(Vec<String>),
}

#[derive(Debug, Clone, Default, serde::Serialize, PartialEq, Eq)]
pub struct CycleReport {
    pub cycle: String,
    /// Accounts the tick read: the index entries of its ranges (or the named accounts found).
    pub accounts: usize,
    pub queued: Vec<String>,
    pub not_due: usize,
}

impl CycleReport {
    fn add(mut self, other: CycleReport) -> CycleReport {
        self.accounts += other.accounts;
        self.queued.extend(other.queued);
        self.not_due += other.not_due;
        self
    }
}

/// Index ranges one tick reads at once (each sends its pages in parallel batches too).
pub const PARALLEL_RANGES: usize = 4;

/// One scheduler tick: queue one poll job per chosen account. The jobs go to a FIFO queue
/// grouped by account, so two polls of one account never run at once, and deduplicated by
/// account and tick, so a retried tick queues nothing twice (R-F1, R-F10).
///
/// A tick cut short by its timeout must not leave the same accounts unpolled every time: each
/// tick starts at another shard and reads the ranges in the direction its id picks.
pub async fn run_cycle<A, D, Q>(
    accounts: &A,
    users: &D,
    poll_queue: &Q,
    now: DateTime<Utc>,
    cycle: &str,
    selection: &Selection,
) -> Result<CycleReport, StoreError>
where
    A: AccountStore + ScheduleIndex,
    D: Directory,
    Q: Queue<PollJob>,
{
    let empty = CycleReport {
        cycle: cycle.to_string(),
        ..CycleReport::default()
    };
    let mut ranges = match selection {
        Selection::Named(names) => {
            let found = accounts.get_accounts(names).await?;
            let names: Vec<String> = found.into_iter().map(|a| a.name).collect();
            let mut report = CycleReport {
                accounts: names.len(),
                ..empty
            };
            report.queued = send_jobs(poll_queue, cycle, names).await?;
            return Ok(report);
        }
        Selection::Due => index::due_ranges(now),
        Selection::AllActive => index::all_ranges(),
    };
    let hash = cycle_hash(cycle);
    let start = (hash % ranges.len() as u64) as usize;
    ranges.rotate_left(start);
    let forward = (hash >> 32) & 1 == 0;
    let tick = Tick {
        accounts,
        users,
        poll_queue,
        now,
        cycle,
        due_only: *selection == Selection::Due,
        forward,
    };
    futures::stream::iter(ranges.iter().map(|r| tick.range(r)))
        .buffer_unordered(PARALLEL_RANGES)
        .try_fold(empty, |total, part| async move { Ok(total.add(part)) })
        .await
}

struct Tick<'a, A, D, Q> {
    accounts: &'a A,
    users: &'a D,
    poll_queue: &'a Q,
    now: DateTime<Utc>,
    cycle: &'a str,
    due_only: bool,
    forward: bool,
}

impl<A, D, Q> Tick<'_, A, D, Q>
where
    A: ScheduleIndex,
    D: Directory,
    Q: Queue<PollJob>,
{
    /// One range, page by page: decide, send, then read the next page.
    async fn range(&self, range: &index::IndexRange) -> Result<CycleReport, StoreError> {
        let mut report = CycleReport::default();
        let mut start = None;
        loop {
            let page = self
                .accounts
                .schedule_page(range, self.forward, start.take())
                .await?;
            let read = page.entries.len();
            report.accounts += read;
            let chosen: Vec<ScheduleEntry> = page
                .entries
                .into_iter()
                .filter(|e| {
                    if self.due_only {
                        e.is_due(self.now)
                    } else {
                        e.active
                    }
                })
                .collect();
            let chosen = self.without_inactive_owners(chosen).await?;
            report.not_due += read - chosen.len();
            let names = chosen.into_iter().map(|e| e.name).collect();
            report
                .queued
                .extend(send_jobs(self.poll_queue, self.cycle, names).await?);
            match page.next {
                Some(next) => start = Some(next),
                None => return Ok(report),
            }
        }
    }

    /// R-F1: a personal account is polled only while its owner is an active user. The owners
    /// of this page's accounts are read by key, never the whole user list; an owner the
    /// directory does not know is not taken for an inactive one.
    async fn without_inactive_owners(
        &self,
        entries: Vec<ScheduleEntry>,
    ) -> Result<Vec<ScheduleEntry>, StoreError> {
        let mut owners: Vec<String> = entries.iter().filter_map(|e| e.owner.clone()).collect();
        if owners.is_empty() {
            return Ok(entries);
        }
        owners.sort();
        owners.dedup();
        let inactive: std::collections::HashSet<String> = self
            .users
            .get_users(&owners)
            .await?
            .into_iter()
            .filter(|u| !u.active)
            .map(|u| u.name)
            .collect();
        Ok(entries
            .into_iter()
            .filter(|e| e.owner.as_ref().is_none_or(|o| !inactive.contains(o)))
            .collect())
    }
}

/// Sends one poll job per account, starting at an account the tick's id picks; returns the
/// names in the order given.
async fn send_jobs<Q: Queue<PollJob>>(
    poll_queue: &Q,
    cycle: &str,
    names: Vec<String>,
) -> Result<Vec<String>, StoreError> {
    if names.is_empty() {
        return Ok(names);
    }
    let mut jobs: Vec<Outgoing<PollJob>> = names
        .iter()
        .map(|name| Outgoing {
            message: PollJob::new(name, cycle),
            group: Some(name.clone()),
            dedupe: Some(format!("{name}:{cycle}")),
        })
        .collect();
    let start = rotation(cycle, jobs.len());
    jobs.rotate_left(start);
    poll_queue.send(&jobs).await?;
    Ok(names)
}

/// FNV-1a of a tick's id: where its sends start, which way it reads.
fn cycle_hash(cycle: &str) -> u64 {
    cycle.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Where a tick's sends start: spread over the accounts by the tick's id.
fn rotation(cycle: &str, n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    (cycle_hash(cycle) % n as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;
    use chrono::Duration;

    fn account(name: &str, created: DateTime<Utc>) -> Account {
        crate::memory::test_account(name, created)
    }

    #[test]
    fn busy_accounts_every_minute_idle_ones_less_often() {
        let now = DateTime::parse_from_rfc3339("2026-11-27T06:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let fresh = account("a", now - Duration::minutes(5));
        for m in 0..10 {
            assert!(is_due(&fresh, now + Duration::minutes(m)));
        }
        let idle = account("b", now - Duration::days(3));
        let due = (0..60)
            .filter(|m| is_due(&idle, now + Duration::minutes(*m)))
            .count();
        assert_eq!(due, 4);
    }

    #[test]
    fn backoff_and_inactive_skip() {
        let now = Utc::now();
        let mut a = account("a", now);
        a.status.backoff_until = Some(now + Duration::minutes(3));
        assert!(!is_due(&a, now));
        assert!(is_due(&a, now + Duration::minutes(3)));
        a.status.backoff_until = None;
        a.active = false;
        assert!(!is_due(&a, now));
    }

    #[test]
    fn ticks_start_their_sends_at_different_accounts() {
        let starts: std::collections::HashSet<usize> = (0..50)
            .map(|i| rotation(&format!("tick-{i}"), 1000))
            .collect();
        assert!(
            starts.len() > 40,
            "starts spread over the accounts: {starts:?}"
        );
        assert_eq!(rotation("any", 0), 0);
        assert!(rotation("any", 7) < 7);
    }

    mod cycle {
        use super::*;
        use crate::memory::{FakeSecretBox, MemoryCrm, MemoryQueue, MemoryStore};
        use crate::messages::PollJob;
        use crate::ports::{AccountStore, SecretBox};
        use crate::records::User;

        #[tokio::test]
        async fn a_thousand_accounts_are_one_listing_and_one_job_each_grouped_by_account() {
            let store = MemoryStore::default();
            let now = Utc::now();
            for i in 0..1000 {
                let name = format!("acct-{i:04}");
                let secret = FakeSecretBox.seal(&name, &Secret::new("pw")).await.unwrap();
                store
                    .create_account(&Account {
                        secret,
                        active: i % 10 != 0,
                        ..crate::memory::test_account(&name, now)
                    })
                    .await
                    .unwrap();
            }
            let queue = MemoryQueue::<PollJob>::default();
            let users = MemoryCrm::default();
            users
                .add_user(User {
                    v: 1,
                    name: "gone".into(),
                    emails: vec![],
                    teams: vec![],
                    active: false,
                    created_at: now,
                    admin: false,
                    notify_email: false,
                    role: None,
                })
                .unwrap();
            // Two personal accounts: one whose owner left, one whose owner is active.
            for (name, owner) in [("p-gone", "gone"), ("p-here", "here")] {
                let secret = FakeSecretBox.seal(name, &Secret::new("pw")).await.unwrap();
                let mut a = store.list_accounts().await.unwrap()[1].clone();
                a.name = name.into();
                a.kind = AccountKind::Personal;
                a.owner = Some(owner.into());
                a.secret = secret;
                store.create_account(&a).await.unwrap();
            }
            let report = run_cycle(&store, &users, &queue, now, "tick-1", &Selection::Due)
                .await
                .unwrap();
            assert_eq!(report.accounts, 1002);
            assert!(report.queued.contains(&"p-here".to_string()));
            assert!(
                !report.queued.contains(&"p-gone".to_string()),
                "owner inactive"
            );
            assert_eq!(report.queued.len(), 901, "inactive accounts are not polled");
            let sent = queue.sent.lock().unwrap();
            assert_eq!(sent.len(), 901);
            assert!(sent.iter().all(|j| j.cycle == "tick-1"));
        }

        /// Accounts in every state the rules know, as the index would hold them.
        async fn mixed_store(now: DateTime<Utc>) -> MemoryStore {
            let store = MemoryStore::default();
            for i in 0..600 {
                let mut a = crate::memory::test_account(&format!("m-{i:03}"), now);
                a.created_at = now - Duration::minutes((i * 97 % 4000) as i64);
                a.status.last_mail_at = match i % 4 {
                    0 => None,
                    1 => Some(now - Duration::minutes((i % 50) as i64)),
                    2 => Some(now - Duration::hours((i % 30) as i64)),
                    _ => Some(now - Duration::days((i % 9) as i64)),
                };
                if i % 11 == 0 {
                    // Back-offs that end before, during and after the ticks tested.
                    a.status.backoff_until = Some(now + Duration::minutes((i % 40) as i64 - 10));
                }
                a.active = i % 13 != 0;
                if i % 7 == 0 {
                    a.kind = AccountKind::Personal;
                    a.owner = Some(if i % 14 == 0 { "gone" } else { "here" }.into());
                }
                store.create_account(&a).await.unwrap();
            }
            store
        }

        fn directory() -> MemoryCrm {
            let users = MemoryCrm::default();
            for (name, active) in [("gone", false), ("here", true)] {
                users
                    .add_user(User {
                        v: 1,
                        name: name.into(),
                        emails: vec![],
                        teams: vec![],
                        active,
                        created_at: Utc::now(),
                        admin: false,
                        notify_email: false,
                        role: None,
                    })
                    .unwrap();
            }
            users
        }

        #[tokio::test]
        async fn the_index_finds_exactly_the_due_accounts_minute_after_minute_without_a_listing() {
            let now = DateTime::parse_from_rfc3339("2026-11-27T06:00:20.25Z")
                .unwrap()
                .with_timezone(&Utc);
            let store = mixed_store(now).await;
            let all = store.list_accounts().await.unwrap();
            *store.account_listings.lock().unwrap() = 0;
            let users = directory();
            let mut polled = 0;
            for m in 0..45 {
                let at = now + Duration::minutes(m) + Duration::seconds(m * 7 % 40);
                let queue = MemoryQueue::<PollJob>::default();
                let tick = format!("tick-{m}");
                let report = run_cycle(&store, &users, &queue, at, &tick, &Selection::Due)
                    .await
                    .unwrap();
                let mut expected: Vec<String> = all
                    .iter()
                    .filter(|a| is_due(a, at) && a.owner.as_deref() != Some("gone"))
                    .map(|a| a.name.clone())
                    .collect();
                let mut queued = report.queued.clone();
                queued.sort();
                expected.sort();
                assert_eq!(queued, expected, "minute {m}");
                assert!(
                    report.accounts < all.len(),
                    "minute {m}: read only the due ranges"
                );
                assert_eq!(report.accounts, report.queued.len() + report.not_due);
                let sent = queue.sent.lock().unwrap();
                assert_eq!(sent.len(), expected.len());
                assert!(sent.iter().all(|j| j.cycle == tick));
                polled += expected.len();
            }
            assert!(polled > 1000, "the ticks did poll: {polled}");
            assert_eq!(
                *store.account_listings.lock().unwrap(),
                0,
                "never a listing"
            );

            // An operator's cycle: every active account whose owner is not inactive.
            let queue = MemoryQueue::<PollJob>::default();
            let report = run_cycle(&store, &users, &queue, now, "all", &Selection::AllActive)
                .await
                .unwrap();
            let expected = all
                .iter()
                .filter(|a| a.active && a.owner.as_deref() != Some("gone"))
                .count();
            assert_eq!(report.queued.len(), expected);
            assert_eq!(report.accounts, all.len(), "the index holds every account");
            assert_eq!(*store.account_listings.lock().unwrap(), 0);
        }

        #[tokio::test]
        async fn a_named_cycle_queues_the_accounts_that_exist_due_or_not() {
            let now = Utc::now();
            let store = mixed_store(now).await;
            let queue = MemoryQueue::<PollJob>::default();
            let names = vec!["m-013".to_string(), "m-001".into(), "nobody".into()];
            let report = run_cycle(
                &store,
                &directory(),
                &queue,
                now,
                "named",
                &Selection::Named(names),
            )
            .await
            .unwrap();
            // m-013 is inactive: named means polled anyway (the poller reports it).
            assert_eq!(report.queued, ["m-013", "m-001"]);
            assert_eq!(report.accounts, 2);
            assert_eq!(queue.sent.lock().unwrap().len(), 2);
        }
    }
}
