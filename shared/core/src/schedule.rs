//! Which accounts one scheduler tick polls (R-F1, R-F10).
//!
//! Idle mailboxes are polled less often, and accounts in back-off wait; the choice is a pure
//! function of the account and the tick, so a retried tick picks the same set.

use chrono::{DateTime, Duration, Utc};

use crate::model::Account;

/// Minutes between polls for an account, from how long ago it last received mail.
pub fn interval_minutes(account: &Account, now: DateTime<Utc>) -> i64 {
    let last = account.status.last_mail_at.unwrap_or(account.created_at);
    let idle = now - last;
    if idle < Duration::hours(1) {
        1
    } else if idle < Duration::days(1) {
        5
    } else {
        15
    }
}

/// Whether the tick at `now` should poll `account`. Idle accounts are spread over the interval
/// by a hash of their name so the load stays flat.
pub fn is_due(account: &Account, now: DateTime<Utc>) -> bool {
    if !account.active {
        return false;
    }
    if account.status.backoff_until.is_some_and(|t| t > now) {
        return false;
    }
    let interval = interval_minutes(account, now);
    let minute = now.timestamp().div_euclid(60);
    let spread = account
        .name
        .bytes()
        .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64));
    (minute + (spread % interval as u64) as i64) % interval == 0
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
    pub accounts: usize,
    pub queued: Vec<String>,
    pub not_due: usize,
}

/// One scheduler tick: list accounts once, queue one poll job per chosen account. The jobs go
/// to a FIFO queue grouped by account, so two polls of one account never run at once, and
/// deduplicated by account and tick, so a retried tick queues nothing twice (R-F1, R-F10).
pub async fn run_cycle<A, Q>(
    accounts: &A,
    poll_queue: &Q,
    now: DateTime<Utc>,
    cycle: &str,
    selection: &Selection,
    inactive_users: &[String],
) -> Result<CycleReport, crate::ports::StoreError>
where
    A: crate::ports::AccountStore,
    Q: crate::ports::Queue<crate::messages::PollJob>,
{
    let all = accounts.list_accounts().await?;
    let mut report = CycleReport {
        cycle: cycle.to_string(),
        accounts: all.len(),
        ..CycleReport::default()
    };
    let mut jobs = Vec::new();
    for account in &all {
        // R-F1: a personal account is polled only while its owner is an active user.
        let owner_active = account
            .owner
            .as_ref()
            .is_none_or(|o| !inactive_users.contains(o));
        let chosen = match selection {
            Selection::Due => owner_active && is_due(account, now),
            Selection::AllActive => owner_active && account.active,
            Selection::Named(names) => names.iter().any(|n| n == &account.name),
        };
        if !chosen {
            report.not_due += 1;
            continue;
        }
        report.queued.push(account.name.clone());
        jobs.push(crate::ports::Outgoing {
            message: crate::messages::PollJob::new(&account.name, cycle),
            group: Some(account.name.clone()),
            dedupe: Some(format!("{}:{cycle}", account.name)),
        });
    }
    // Each tick starts the sends at another account, so a tick cut short by its timeout does
    // not leave the same (alphabetical) tail unpolled every time.
    let start = rotation(cycle, jobs.len());
    jobs.rotate_left(start);
    poll_queue.send(&jobs).await?;
    Ok(report)
}

/// Where a tick's sends start: spread over the accounts by the tick's id (FNV-1a).
fn rotation(cycle: &str, n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    let hash = cycle.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    (hash % n as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;

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
        use crate::memory::{FakeSecretBox, MemoryQueue, MemoryStore};
        use crate::messages::PollJob;
        use crate::ports::{AccountStore, SecretBox};

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
            let report = run_cycle(
                &store,
                &queue,
                now,
                "tick-1",
                &Selection::Due,
                &["gone".into()],
            )
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
    }
}
