//! Account health after a poll: the status to write (or none, R-F10) and back-off (R-F7).

use chrono::{DateTime, Duration, Utc};

use crate::model::AccountStatus;
use crate::ports::MailboxError;

/// An idle, healthy account refreshes `last_success` at most this often, so idle polls cost no
/// write in most minutes (R-F10).
pub const STATUS_REFRESH: Duration = Duration::minutes(10);

/// An account failing this long is worth telling its admins or owner about (R-F7); dispatch
/// tells them at most once a day.
pub const FAILURE_NOTICE_AFTER: Duration = Duration::minutes(10);

/// Whether an account with this (just written) status is due a failure notice.
pub fn failure_notice_due(status: &AccountStatus, now: DateTime<Utc>) -> bool {
    status
        .failing_since
        .is_some_and(|since| now - since >= FAILURE_NOTICE_AFTER)
}

/// Exponential back-off after consecutive failures: 1, 2, 4 ... minutes, at most an hour.
pub fn backoff(consecutive_failures: u32) -> Duration {
    let exp = consecutive_failures.saturating_sub(1).min(6);
    Duration::minutes((1i64 << exp).min(60))
}

/// The status to write after a poll, or `None` when nothing worth a write changed (R-F10).
pub fn next_status(
    old: &AccountStatus,
    fetched: u32,
    failure: Option<&MailboxError>,
    now: DateTime<Utc>,
) -> Option<AccountStatus> {
    let mut s = old.clone();
    if fetched > 0 {
        s.last_mail_at = Some(now);
    }
    match failure {
        Some(e) => {
            s.consecutive_failures = s.consecutive_failures.saturating_add(1);
            s.failing_since = s.failing_since.or(Some(now));
            s.last_error = Some(e.message.clone());
            s.last_error_kind = Some(e.kind);
            s.last_error_at = Some(now);
            s.backoff_until = Some(now + backoff(s.consecutive_failures));
            Some(s)
        }
        None => {
            let stale = old.last_success.is_none_or(|t| now - t >= STATUS_REFRESH);
            let recovering = old.consecutive_failures > 0 || old.backoff_until.is_some();
            if fetched == 0 && !stale && !recovering {
                return None;
            }
            s.last_success = Some(now);
            s.consecutive_failures = 0;
            s.failing_since = None;
            s.backoff_until = None;
            Some(s)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ErrorKind;

    #[test]
    fn a_failure_notice_is_due_after_ten_minutes_of_failing_and_not_after_recovery() {
        let t0: DateTime<Utc> = "2026-03-03T10:00:00Z".parse().unwrap();
        let e = MailboxError::new(ErrorKind::Auth, "authentication failed");
        let s1 = next_status(&AccountStatus::default(), 0, Some(&e), t0).unwrap();
        assert!(!failure_notice_due(&s1, t0 + Duration::minutes(9)));
        let later = t0 + Duration::minutes(10);
        let s2 = next_status(&s1, 0, Some(&e), later).unwrap();
        assert!(failure_notice_due(&s2, later));
        let s3 = next_status(&s2, 0, None, later + Duration::minutes(1)).unwrap();
        assert!(!failure_notice_due(&s3, later + Duration::minutes(1)));
    }

    #[test]
    fn idle_success_does_not_write_until_stale() {
        let now = Utc::now();
        let fresh = AccountStatus {
            last_success: Some(now - Duration::minutes(2)),
            ..AccountStatus::default()
        };
        assert_eq!(next_status(&fresh, 0, None, now), None);
        assert!(next_status(&fresh, 1, None, now).is_some());
        let stale = AccountStatus {
            last_success: Some(now - Duration::minutes(11)),
            ..AccountStatus::default()
        };
        assert!(next_status(&stale, 0, None, now).is_some());
    }

    #[test]
    fn failures_count_and_back_off() {
        let now = Utc::now();
        let err = MailboxError::new(ErrorKind::Auth, "bad login");
        let s1 = next_status(&AccountStatus::default(), 0, Some(&err), now).unwrap();
        assert_eq!(s1.consecutive_failures, 1);
        assert_eq!(s1.backoff_until, Some(now + Duration::minutes(1)));
        let s3 = next_status(
            &AccountStatus {
                consecutive_failures: 2,
                ..s1.clone()
            },
            0,
            Some(&err),
            now,
        )
        .unwrap();
        assert_eq!(s3.consecutive_failures, 3);
        assert_eq!(s3.failing_since, s1.failing_since);
        assert_eq!(backoff(20), Duration::minutes(60));
        let healed = next_status(&s3, 0, None, now).unwrap();
        assert_eq!(healed.consecutive_failures, 0);
        assert_eq!(healed.backoff_until, None);
        assert_eq!(healed.last_error_kind, Some(ErrorKind::Auth));
    }
}
