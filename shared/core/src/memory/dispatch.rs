//! In-memory fake of [`DispatchStore`], keeping the DynamoDB adapter's contract
//! (`mailroom_aws::dynamo::dispatch`): sends and suppressions by id, an allowance bucket that
//! counts each email once and refuses the one past its limit, notifications created only if
//! absent (a redelivery never marks a read one unread), failing addresses by normalised address
//! until their `until`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use crate::dispatch::records::{FailingAddress, Notification, SentRecord, SuppressedRecord};
use crate::ports::{DispatchStore, StoreResult};
use crate::records::normalize_address;

/// What one allowance bucket holds: the emails counted, and when it may be forgotten.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Allowance {
    pub emails: BTreeSet<String>,
    pub expires: Option<DateTime<Utc>>,
}

#[derive(Default)]
pub struct MemoryDispatch {
    pub sent: Mutex<BTreeMap<String, SentRecord>>,
    pub suppressed: Mutex<BTreeMap<String, SuppressedRecord>>,
    pub allowances: Mutex<HashMap<String, Allowance>>,
    /// By user, then key.
    pub notifications: Mutex<BTreeMap<String, BTreeMap<String, Notification>>>,
    /// By normalised address.
    pub failing: Mutex<BTreeMap<String, FailingAddress>>,
}

impl DispatchStore for MemoryDispatch {
    async fn sent(&self, id: &str) -> StoreResult<Option<SentRecord>> {
        Ok(self.sent.lock().unwrap().get(id).cloned())
    }

    async fn put_sent(&self, record: &SentRecord) -> StoreResult<()> {
        self.sent
            .lock()
            .unwrap()
            .insert(record.id.clone(), record.clone());
        Ok(())
    }

    async fn list_sent(&self) -> StoreResult<Vec<SentRecord>> {
        let mut list: Vec<SentRecord> = self.sent.lock().unwrap().values().cloned().collect();
        list.sort_by(|a, b| (a.sent_at, &a.id).cmp(&(b.sent_at, &b.id)));
        Ok(list)
    }

    async fn put_suppressed(&self, record: &SuppressedRecord) -> StoreResult<()> {
        self.suppressed
            .lock()
            .unwrap()
            .insert(record.id.clone(), record.clone());
        Ok(())
    }

    async fn list_suppressed(&self) -> StoreResult<Vec<SuppressedRecord>> {
        let mut list: Vec<SuppressedRecord> =
            self.suppressed.lock().unwrap().values().cloned().collect();
        list.sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
        Ok(list)
    }

    async fn take_allowance(
        &self,
        bucket: &str,
        email_id: &str,
        limit: u32,
        expires: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let mut map = self.allowances.lock().unwrap();
        let a = map.entry(bucket.to_string()).or_default();
        if a.emails.contains(email_id) {
            return Ok(true);
        }
        if a.emails.len() >= limit as usize {
            return Ok(false);
        }
        a.emails.insert(email_id.to_string());
        a.expires = Some(expires);
        Ok(true)
    }

    async fn put_notifications(&self, notifications: &[Notification]) -> StoreResult<usize> {
        let mut map = self.notifications.lock().unwrap();
        let mut new = 0;
        for n in notifications {
            let of_user = map.entry(n.user.clone()).or_default();
            if !of_user.contains_key(&n.key) {
                of_user.insert(n.key.clone(), n.clone());
                new += 1;
            }
        }
        Ok(new)
    }

    async fn notifications(&self, user: &str) -> StoreResult<Vec<Notification>> {
        let mut list: Vec<Notification> = self
            .notifications
            .lock()
            .unwrap()
            .get(user)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        list.sort_by(|a, b| (b.at, &b.key).cmp(&(a.at, &a.key)));
        Ok(list)
    }

    async fn mark_read(&self, user: &str, key: &str) -> StoreResult<bool> {
        let mut map = self.notifications.lock().unwrap();
        match map.get_mut(user).and_then(|m| m.get_mut(key)) {
            Some(n) => {
                n.read = true;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn mark_failing(&self, failing: &FailingAddress) -> StoreResult<()> {
        // The latest mark wins, as the adapter's put does.
        self.failing
            .lock()
            .unwrap()
            .insert(normalize_address(&failing.address), failing.clone());
        Ok(())
    }

    async fn failing(&self, addresses: &[String], now: DateTime<Utc>) -> StoreResult<Vec<String>> {
        let map = self.failing.lock().unwrap();
        Ok(addresses
            .iter()
            .filter(|a| {
                map.get(&normalize_address(a))
                    .is_some_and(|f| f.until > now)
            })
            .cloned()
            .collect())
    }
}

#[cfg(test)]
mod tests {
    //! The contract the adapter keeps too (`tests/integration/dispatch_store.rs` checks the same
    //! points against the local DynamoDB).

    use super::*;
    use crate::dispatch::records::{NotificationKind, SentKind};
    use crate::records::RecordRef;
    use crate::SCHEMA_VERSION;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn notification(user: &str, key: &str, when: &str) -> Notification {
        Notification {
            v: SCHEMA_VERSION,
            user: user.into(),
            key: key.into(),
            kind: NotificationKind::Follower,
            email: Some(format!("{key}@x.example")),
            email_id: Some(key.into()),
            record: Some(RecordRef::case(7)),
            account: "support".into(),
            summary: format!("about {key}"),
            read: false,
            at: at(when),
        }
    }

    fn sent(id: &str, when: &str) -> SentRecord {
        SentRecord {
            v: SCHEMA_VERSION,
            id: id.into(),
            kind: SentKind::AutoReply,
            account: "support".into(),
            from: "support@example.test".into(),
            to: vec!["customer@example.com".into()],
            subject: "Re: printer [#7]".into(),
            in_reply_to: Some("m1@x.example".into()),
            message_id: format!("{id}@mailroom.example"),
            ses_message_id: format!("ses-{id}@email.amazonses.com"),
            user: None,
            email_id: Some("e1".into()),
            parent: Some(RecordRef::case(7)),
            case: Some(crate::types::CaseNumber::new(7).unwrap()),
            sent_at: at(when),
        }
    }

    #[tokio::test]
    async fn sends_are_kept_by_id_and_listed_oldest_first() {
        let s = MemoryDispatch::default();
        assert_eq!(s.sent("b").await.unwrap(), None);
        s.put_sent(&sent("b", "2026-03-03T10:00:02Z"))
            .await
            .unwrap();
        s.put_sent(&sent("a", "2026-03-03T10:00:03Z"))
            .await
            .unwrap();
        s.put_sent(&sent("c", "2026-03-03T10:00:01Z"))
            .await
            .unwrap();
        // Idempotent: the same record again is still one.
        s.put_sent(&sent("b", "2026-03-03T10:00:02Z"))
            .await
            .unwrap();
        let ids: Vec<String> = s
            .list_sent()
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, ["c", "b", "a"]);
        assert_eq!(
            s.sent("b").await.unwrap(),
            Some(sent("b", "2026-03-03T10:00:02Z"))
        );
    }

    #[tokio::test]
    async fn an_allowance_counts_an_email_once_and_refuses_the_one_past_its_limit() {
        let s = MemoryDispatch::default();
        let x = at("2026-03-03T12:00:00Z");
        for e in ["e1", "e2", "e1", "e3", "e2"] {
            assert!(s.take_allowance("ann", e, 3, x).await.unwrap(), "{e}");
        }
        assert!(!s.take_allowance("ann", "e4", 3, x).await.unwrap());
        // Refused once, still refused; a counted one is still allowed (a redelivery).
        assert!(!s.take_allowance("ann", "e4", 3, x).await.unwrap());
        assert!(s.take_allowance("ann", "e3", 3, x).await.unwrap());
        // Per bucket: another sender (or window) has its own count.
        assert!(s.take_allowance("bob", "e4", 3, x).await.unwrap());
        // A limit of 0 allows nothing.
        assert!(!s.take_allowance("cid", "e1", 0, x).await.unwrap());
    }

    #[tokio::test]
    async fn notifications_are_created_once_and_a_read_one_stays_read() {
        let s = MemoryDispatch::default();
        let batch = [
            notification("ann", "e1", "2026-03-03T10:00:00Z"),
            notification("ann", "e2", "2026-03-03T10:05:00Z"),
            notification("bob", "e1", "2026-03-03T10:00:00Z"),
        ];
        assert_eq!(s.put_notifications(&batch).await.unwrap(), 3);
        assert!(s.mark_read("ann", "e1").await.unwrap());
        assert!(!s.mark_read("ann", "e9").await.unwrap());
        assert!(!s.mark_read("cid", "e1").await.unwrap());
        // The same batch again (a redelivery): nothing new, ann's read one stays read.
        assert_eq!(s.put_notifications(&batch).await.unwrap(), 0);
        let ann = s.notifications("ann").await.unwrap();
        let keys: Vec<(&str, bool)> = ann.iter().map(|n| (n.key.as_str(), n.read)).collect();
        assert_eq!(keys, [("e2", false), ("e1", true)], "newest first");
        assert!(!s.notifications("bob").await.unwrap()[0].read);
        assert!(s.notifications("cid").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn an_address_fails_until_its_until_only() {
        let s = MemoryDispatch::default();
        let mark = |a: &str, until: &str| FailingAddress {
            v: SCHEMA_VERSION,
            address: a.into(),
            reason: "bounce".into(),
            since: at("2026-03-03T10:00:00Z"),
            until: at(until),
        };
        s.mark_failing(&mark("Ann@X.example", "2026-03-04T10:00:00Z"))
            .await
            .unwrap();
        s.mark_failing(&mark("bob@x.example", "2026-03-03T11:00:00Z"))
            .await
            .unwrap();
        let asked = [
            "ann@x.example".to_string(),
            "bob@x.example".into(),
            "cid@x.example".into(),
        ];
        let now = at("2026-03-03T10:30:00Z");
        assert_eq!(
            s.failing(&asked, now).await.unwrap(),
            ["ann@x.example", "bob@x.example"]
        );
        // At `until` it no longer fails: only addresses whose `until` is after now.
        let later = at("2026-03-03T11:00:00Z");
        assert_eq!(s.failing(&asked, later).await.unwrap(), ["ann@x.example"]);
        assert!(s.failing(&[], now).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn suppressions_are_kept_and_listed_in_time_order() {
        let s = MemoryDispatch::default();
        let sup = |id: &str, when: &str| SuppressedRecord {
            v: SCHEMA_VERSION,
            id: id.into(),
            kind: SentKind::AutoReply,
            account: "support".into(),
            email_id: "e1".into(),
            message_id: "m1@x.example".into(),
            to: Some("customer@example.com".into()),
            reason: "rate_limit".into(),
            detail: None,
            at: at(when),
        };
        s.put_suppressed(&sup("b", "2026-03-03T10:00:02Z"))
            .await
            .unwrap();
        s.put_suppressed(&sup("a", "2026-03-03T10:00:05Z"))
            .await
            .unwrap();
        s.put_suppressed(&sup("b", "2026-03-03T10:00:02Z"))
            .await
            .unwrap();
        let ids: Vec<String> = s
            .list_suppressed()
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, ["b", "a"]);
    }

    #[tokio::test]
    async fn followers_are_kept_once_per_user_in_user_order() {
        use crate::ports::Followers;
        let crm = super::super::MemoryCrm::default();
        let case = RecordRef::case(7);
        crm.follow("bob", &case).await.unwrap();
        crm.follow("ann", &case).await.unwrap();
        crm.follow("bob", &case).await.unwrap();
        assert_eq!(crm.followers(&case).await.unwrap(), ["ann", "bob"]);
        assert!(crm.followers(&RecordRef::case(8)).await.unwrap().is_empty());
    }
}
