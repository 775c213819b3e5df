//! Where an account sits in the schedule index, and which ranges of it one tick reads.
//!
//! An idle poll writes nothing (R-F10), so the index cannot hold a "next due" instant that
//! every poll moves on: an instant once passed would stay passed. What it holds instead never
//! changes between the writes that change the schedule itself (new mail, a failure, a
//! recovery):
//! - the partition is the account's shard, a hash of its name modulo [`SHARDS`]; as
//!   [`SHARDS`] is a multiple of the slowest interval, the shard fixes the minute of each
//!   interval the account is polled in (the spread of [`super::is_due`]);
//! - the sort key is the account's last mail, else its creation: the interval follows from it.
//!
//! So at a given minute each shard's due accounts are one range, newer than the idle age of
//! the slowest interval due in that shard's minute (every account when its 15-minute turn has
//! come, those with mail within a day on its 5-minute turn, those with mail within the hour
//! otherwise). Accounts in back-off wait in a partition of their own, sorted by the end of the
//! back-off. The ranges are a superset by a second or two; the exact rule
//! ([`ScheduleEntry::is_due`]) decides on the projected fields.

use chrono::{DateTime, Duration, SecondsFormat, Utc};

use crate::keys::{schedule_pk, schedule_wait_pk};
use crate::model::{Account, AccountStatus};

/// Partitions of the index. A multiple of 15 (the slowest interval), so a shard fixes the
/// account's turn in every interval; more shards spread the index's writes over more
/// partitions (each takes 1,000 writes a second) at the cost of one more Query per tick each.
pub const SHARDS: u32 = 15;

/// What the scheduling decision reads of an account: the index's projection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleEntry {
    pub name: String,
    pub active: bool,
    /// A personal account's owner: polled only while that user is active (R-F1).
    pub owner: Option<String>,
    /// The last mail, else the account's creation: drives the adaptive interval (R-F10).
    pub since: DateTime<Utc>,
    pub backoff_until: Option<DateTime<Utc>>,
}

impl ScheduleEntry {
    pub fn of(account: &Account) -> Self {
        ScheduleEntry {
            name: account.name.clone(),
            active: account.active,
            owner: account.owner.clone(),
            since: account.status.last_mail_at.unwrap_or(account.created_at),
            backoff_until: account.status.backoff_until,
        }
    }

    /// Whether the tick at `now` polls this account: active, not backing off, and its turn
    /// within its interval. Idle accounts are spread over the interval by a hash of their name
    /// so the load stays flat.
    pub fn is_due(&self, now: DateTime<Utc>) -> bool {
        if !self.active || self.backoff_until.is_some_and(|t| t > now) {
            return false;
        }
        let interval = interval_after(self.since, now);
        let minute = now.timestamp().div_euclid(60);
        (minute + (spread(&self.name) % interval as u64) as i64) % interval == 0
    }
}

/// Minutes between polls of an account whose last mail (or creation) was at `since`.
pub(super) fn interval_after(since: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    let idle = now - since;
    if idle < Duration::hours(1) {
        1
    } else if idle < Duration::days(1) {
        5
    } else {
        15
    }
}

fn spread(name: &str) -> u64 {
    name.bytes()
        .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64))
}

/// The shard of an account: stable, as it depends on the name alone.
pub fn shard(name: &str) -> u32 {
    (spread(name) % u64::from(SHARDS)) as u32
}

/// The index attributes an account's item carries, from its name and status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub partition: String,
    /// The sort key's instant; `None`: the account's creation time (a status write does not
    /// carry it, so the adapter copies the item's own `created_at`).
    pub sort: Option<DateTime<Utc>>,
    /// The projected last mail (`None`: creation, as for `sort`).
    pub since: Option<DateTime<Utc>>,
}

/// Where an account with this status sits: in back-off, in its shard's waiting partition
/// sorted by the end of the back-off; otherwise in its shard, sorted by its last mail. Every
/// writer of an account's status or creation writes this with it.
pub fn placement(name: &str, status: &AccountStatus) -> Placement {
    let shard = shard(name);
    match status.backoff_until {
        Some(until) => Placement {
            partition: schedule_wait_pk(shard),
            sort: Some(until),
            since: status.last_mail_at,
        },
        None => Placement {
            partition: schedule_pk(shard),
            sort: status.last_mail_at,
            since: status.last_mail_at,
        },
    }
}

/// An instant as the index's sort keys hold it: RFC 3339 in UTC as serde writes `created_at`,
/// so the copied creation time and written instants compare as strings (to the second).
pub fn index_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// A range bound, whole seconds: `2026-11-27T06:00:00Z`.
fn bound(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// One read of the index: the entries of `partition` whose sort key is within `from..=to`
/// (an open end: unbounded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexRange {
    pub partition: String,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// Whether an account in `range` with sort key `sort` is read by it (the fakes' Query).
pub fn in_range(range: &IndexRange, sort: &str) -> bool {
    range.from.as_deref().is_none_or(|f| sort >= f) && range.to.as_deref().is_none_or(|t| sort <= t)
}

/// The ranges that hold every account due at `now`, two per shard; a little more than the
/// due accounts (whole seconds, back-offs whose account's turn has not come yet), never less.
pub fn due_ranges(now: DateTime<Utc>) -> Vec<IndexRange> {
    let minute = now.timestamp().div_euclid(60);
    // Two seconds of slack: stored instants have fractions, bounds whole seconds.
    let slack = Duration::seconds(2);
    (0..SHARDS)
        .flat_map(|shard| {
            let phase = i64::from(shard % 15);
            let from = if (minute + phase) % 15 == 0 {
                None
            } else if (minute + phase % 5) % 5 == 0 {
                Some(bound(now - Duration::days(1) - slack))
            } else {
                Some(bound(now - Duration::hours(1) - slack))
            };
            [
                IndexRange {
                    partition: schedule_pk(shard),
                    from,
                    to: None,
                },
                IndexRange {
                    partition: schedule_wait_pk(shard),
                    from: None,
                    to: Some(bound(now + slack)),
                },
            ]
        })
        .collect()
}

/// Every entry of the index: an operator's cycle over all active accounts.
pub fn all_ranges() -> Vec<IndexRange> {
    (0..SHARDS)
        .flat_map(|shard| [schedule_pk(shard), schedule_wait_pk(shard)])
        .map(|partition| IndexRange {
            partition,
            from: None,
            to: None,
        })
        .collect()
}

/// One page of a range, in sort-key order, and where the next starts (`None`: the last).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchedulePage {
    pub entries: Vec<ScheduleEntry>,
    /// Opaque to the core: the store's own continuation.
    pub next: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_time_is_the_one_serde_writes_so_a_copied_created_at_compares() {
        for t in [
            "2026-11-27T06:00:00Z",
            "2026-11-27T06:00:00.5Z",
            "2026-11-27T06:00:00.123456789Z",
        ] {
            let t = DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc);
            assert_eq!(
                serde_json::to_value(t).unwrap(),
                serde_json::Value::String(index_time(t))
            );
        }
    }

    #[test]
    fn backing_off_moves_an_account_to_its_shards_waiting_partition() {
        let now = Utc::now();
        let mut status = AccountStatus::default();
        let idle = placement("support", &status);
        assert_eq!(idle.partition, schedule_pk(shard("support")));
        assert_eq!((idle.sort, idle.since), (None, None), "creation time");
        status.last_mail_at = Some(now);
        assert_eq!(placement("support", &status).sort, Some(now));
        status.backoff_until = Some(now + Duration::minutes(4));
        let waiting = placement("support", &status);
        assert_eq!(waiting.partition, schedule_wait_pk(shard("support")));
        assert_eq!(waiting.sort, status.backoff_until);
        assert_eq!(waiting.since, Some(now), "the interval survives the wait");
        assert!(shard("support") < SHARDS);
        assert_eq!(SHARDS % 15, 0, "a shard fixes the turn in every interval");
    }

    #[test]
    fn a_tick_reads_two_ranges_per_shard_and_only_due_shards_read_idle_accounts() {
        let now = DateTime::parse_from_rfc3339("2026-11-27T06:07:30Z")
            .unwrap()
            .with_timezone(&Utc);
        let ranges = due_ranges(now);
        assert_eq!(ranges.len(), 2 * SHARDS as usize);
        let whole = ranges
            .iter()
            .filter(|r| !r.partition.ends_with("WAIT") && r.from.is_none())
            .count();
        assert_eq!(whole, (SHARDS / 15) as usize, "one turn in 15 per shard");
        let day = bound(now - Duration::days(1) - Duration::seconds(2));
        let within_day = ranges.iter().filter(|r| r.from.as_deref() == Some(&day));
        assert_eq!(within_day.count(), (SHARDS / 5 - SHARDS / 15) as usize);
        assert!(in_range(&ranges[1], &index_time(now)));
        assert!(!in_range(
            &ranges[1],
            &index_time(now + Duration::seconds(3))
        ));
        assert_eq!(all_ranges().len(), 2 * SHARDS as usize);
    }
}
