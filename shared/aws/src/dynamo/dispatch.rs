//! What dispatch remembers ([`DispatchStore`]) and who follows what ([`Followers`]).
//!
//! Requests per call: `sent`, `put_sent`, `put_suppressed`, `mark_read`, `mark_failing`,
//! `take_allowance`, `follow` one each; `failing` one BatchGetItem per 100 addresses (none for
//! none); `put_notifications` one conditional PutItem for a single notification, else one
//! BatchGetItem per 100 (which exist) and one TransactWriteItems per 100 of the new ones (600
//! users: 6 + 6 requests; a redelivery: 6 reads, no write; a delivery racing another: its
//! cancelled transactions, each followed by one more BatchGetItem).

use std::collections::HashSet;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use mailroom_core::dispatch::records::{
    FailingAddress, Notification, SentRecord, SuppressedRecord,
};
use mailroom_core::error::StoreResult;
use mailroom_core::keys::{
    allowance_pk, failing_sk, follow_pk, notification_pk, notification_sk, sent_sk, ALLOWANCE_SK,
    FAILING_PK, SENT_PK, SUPPRESSED_PK,
};
use mailroom_core::ports::{DispatchStore, Followers, MAX_TRANSACTION_ITEMS};
use mailroom_core::records::{normalize_address, RecordRef};
use mailroom_core::SCHEMA_VERSION;

use super::item::{get_s, key, n, s, to_item, Item};
use super::store::{decode, DynamoStore};
use crate::errors::unless_condition_failed;

/// DynamoDB's TTL attribute of the table (`provision.rs`, `template.yaml`): epoch seconds.
fn expires_at(t: DateTime<Utc>) -> AttributeValue {
    n(t.timestamp().max(0) as u64)
}

fn notification_key(user: &str, key_: &str) -> Item {
    key(&notification_pk(user), &notification_sk(key_))
}

fn notification_item(n: &Notification) -> Item {
    let (pk, sk) = (notification_pk(&n.user), notification_sk(&n.key));
    to_item(n, &[("pk", &pk), ("sk", &sk)])
}

impl DispatchStore for DynamoStore {
    async fn sent(&self, id: &str) -> StoreResult<Option<SentRecord>> {
        self.get_decoded(key(SENT_PK, &sent_sk(id)), "sent email")
            .await
    }

    async fn put_sent(&self, record: &SentRecord) -> StoreResult<()> {
        let sk = sent_sk(&record.id);
        self.put(
            to_item(record, &[("pk", SENT_PK), ("sk", &sk)]),
            "put sent email",
        )
        .await
    }

    /// One partition, read whole (the port lists every send): ordered here by `sent_at`.
    async fn list_sent(&self) -> StoreResult<Vec<SentRecord>> {
        let mut list: Vec<SentRecord> = self.list_decoded(SENT_PK, "sent email").await?;
        list.sort_by(|a, b| (a.sent_at, &a.id).cmp(&(b.sent_at, &b.id)));
        Ok(list)
    }

    async fn put_suppressed(&self, record: &SuppressedRecord) -> StoreResult<()> {
        let sk = sent_sk(&record.id);
        let item = to_item(record, &[("pk", SUPPRESSED_PK), ("sk", &sk)]);
        self.put(item, "put suppressed email").await
    }

    /// Oldest first, as `list_sent`.
    async fn list_suppressed(&self) -> StoreResult<Vec<SuppressedRecord>> {
        let mut list: Vec<SuppressedRecord> =
            self.list_decoded(SUPPRESSED_PK, "suppressed email").await?;
        list.sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
        Ok(list)
    }

    /// One conditional UpdateItem on the bucket's item: the email joins the `ids` string set
    /// unless `limit` others are in it. DynamoDB evaluates the condition and the update as one
    /// step per item, so two emails racing for the last place get one place between them.
    /// The item holds at most `limit` ids (an id is 32 hex digits: a limit in the thousands
    /// still fits an item), and expires by TTL (`expires_at`) after the last count's `expires`.
    async fn take_allowance(
        &self,
        bucket: &str,
        email_id: &str,
        limit: u32,
        expires: DateTime<Utc>,
    ) -> StoreResult<bool> {
        if limit == 0 {
            // `attribute_not_exists(ids)` would let a first email through.
            return Ok(false);
        }
        let result = self
            .client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(key(&allowance_pk(bucket), ALLOWANCE_SK)))
            .update_expression("ADD #ids :e SET #x = :x, #b = :b, #v = :v")
            .condition_expression(
                "attribute_not_exists(#ids) OR size(#ids) < :limit OR contains(#ids, :id)",
            )
            .expression_attribute_names("#ids", "ids")
            .expression_attribute_names("#x", "expires_at")
            .expression_attribute_names("#b", "bucket")
            .expression_attribute_names("#v", "v")
            .expression_attribute_values(":e", AttributeValue::Ss(vec![email_id.to_string()]))
            .expression_attribute_values(":id", s(email_id))
            .expression_attribute_values(":limit", n(limit as u64))
            .expression_attribute_values(":x", expires_at(expires))
            .expression_attribute_values(":b", s(bucket))
            .expression_attribute_values(":v", n(SCHEMA_VERSION as u64))
            .send()
            .await;
        Ok(unless_condition_failed("take auto-reply allowance", result)?.is_some())
    }

    /// Creates only what does not exist, so a read notification stays read. Several at once
    /// (one email's followers and inbox users): one consistent BatchGetItem per 100 says which
    /// exist, and the others are written as conditional puts in transactions of up to 100, so
    /// a racing delivery of the same event can never overwrite one: a transaction that finds
    /// one created meanwhile is cancelled whole, and is retried with what is still absent. The
    /// count of new ones is exact.
    async fn put_notifications(&self, notifications: &[Notification]) -> StoreResult<usize> {
        // One per user and key: the first of a batch wins, and DynamoDB refuses a key twice in
        // one BatchGetItem or transaction.
        let mut seen = HashSet::new();
        let unique: Vec<&Notification> = notifications
            .iter()
            .filter(|n| seen.insert((notification_pk(&n.user), notification_sk(&n.key))))
            .collect();
        if let [one] = unique[..] {
            let created = self
                .put_if_absent(notification_item(one), "put notification")
                .await?;
            return Ok(created as usize);
        }
        let mut created = 0;
        for chunk in self.absent(unique).await?.chunks(MAX_TRANSACTION_ITEMS) {
            created += self.create_notifications(chunk).await?;
        }
        Ok(created)
    }

    /// The user's partition, read whole, newest first. The sort key is the notification's key
    /// alone (so `mark_read` is one request), so the order is made here from `at`.
    async fn notifications(&self, user: &str) -> StoreResult<Vec<Notification>> {
        let mut list: Vec<Notification> = self
            .list_decoded(&notification_pk(user), "notification")
            .await?;
        list.sort_by(|a, b| (b.at, &b.key).cmp(&(a.at, &a.key)));
        Ok(list)
    }

    async fn mark_read(&self, user: &str, key_: &str) -> StoreResult<bool> {
        let result = self
            .client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(notification_key(user, key_)))
            .update_expression("SET #r = :t")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#r", "read")
            .expression_attribute_values(":t", AttributeValue::Bool(true))
            .send()
            .await;
        Ok(unless_condition_failed("mark notification read", result)?.is_some())
    }

    /// Keyed by the normalised address; the latest mark wins (a later bounce or complaint
    /// restarts the period). TTL removes the item some time after `until`.
    async fn mark_failing(&self, failing: &FailingAddress) -> StoreResult<()> {
        let sk = failing_sk(&normalize_address(&failing.address));
        let mut item = to_item(failing, &[("pk", FAILING_PK), ("sk", &sk)]);
        item.insert("expires_at".into(), expires_at(failing.until));
        self.put(item, "mark address failing").await
    }

    /// By key, in one BatchGetItem per 100 distinct addresses; an item TTL has not removed yet
    /// but whose `until` has passed does not count.
    async fn failing(&self, addresses: &[String], now: DateTime<Utc>) -> StoreResult<Vec<String>> {
        let normalised: Vec<String> = addresses.iter().map(|a| normalize_address(a)).collect();
        let mut seen = HashSet::new();
        let keys: Vec<Item> = normalised
            .iter()
            .filter(|a| seen.insert(a.as_str()))
            .map(|a| key(FAILING_PK, &failing_sk(a)))
            .collect();
        let mut failing = HashSet::new();
        for item in self.batch_get(keys, "read failing addresses").await? {
            let f: FailingAddress = decode("failing address", &item)?;
            if f.until > now {
                failing.insert(normalize_address(&f.address));
            }
        }
        Ok(addresses
            .iter()
            .zip(&normalised)
            .filter(|(_, n)| failing.contains(*n))
            .map(|(a, _)| a.clone())
            .collect())
    }
}

impl DynamoStore {
    /// Those of `notifications` that do not exist (consistent reads, 100 keys a request).
    async fn absent<'n>(
        &self,
        notifications: Vec<&'n Notification>,
    ) -> StoreResult<Vec<&'n Notification>> {
        let keys = notifications
            .iter()
            .map(|n| notification_key(&n.user, &n.key))
            .collect();
        let existing: HashSet<(String, String)> = self
            .batch_get(keys, "read notifications")
            .await?
            .iter()
            .filter_map(|i| Some((get_s(i, "pk")?.clone(), get_s(i, "sk")?.clone())))
            .collect();
        Ok(notifications
            .into_iter()
            .filter(|n| !existing.contains(&(notification_pk(&n.user), notification_sk(&n.key))))
            .collect())
    }

    /// Creates up to 100 notifications that were absent when read, in one transaction of
    /// conditional puts. Cancelled (another delivery created some, or wrote them at the same
    /// moment), nothing of it was written: read again and retry with what is still absent. A
    /// few rounds, then one conditional put each, so contention never fails the batch.
    async fn create_notifications(&self, chunk: &[&Notification]) -> StoreResult<usize> {
        let mut pending = chunk.to_vec();
        for _ in 0..3 {
            if pending.is_empty() {
                return Ok(0);
            }
            let ops = pending
                .iter()
                .map(|n| self.put_op(notification_item(n), Some("attribute_not_exists(pk)")))
                .collect();
            match self.transact_or_refused(ops, "put notifications").await? {
                Ok(()) => return Ok(pending.len()),
                Err(_) => pending = self.absent(pending).await?,
            }
        }
        let mut created = 0;
        for n in pending {
            if self
                .put_if_absent(notification_item(n), "put notification")
                .await?
            {
                created += 1;
            }
        }
        Ok(created)
    }
}

/// `FOLLOW#<type>#<id>`, sort key the user: one Query lists a record's followers (in user
/// order), one PutItem (idempotent) adds one, one DeleteItem removes one. The CLI's `mailroom follow` and dispatch (a new
/// case's assignee follows it) share this.
impl Followers for DynamoStore {
    async fn followers(&self, record: &RecordRef) -> StoreResult<Vec<String>> {
        self.sort_keys(&follow_pk(record.kind.as_str(), &record.id))
            .await
    }

    async fn follow(&self, user: &str, record: &RecordRef) -> StoreResult<()> {
        let mut item = key(&follow_pk(record.kind.as_str(), &record.id), user);
        item.insert("user".into(), s(user));
        item.insert("v".into(), n(SCHEMA_VERSION as u64));
        self.put(item, "follow").await
    }

    /// One DeleteItem (deleting an absent item succeeds).
    async fn unfollow(&self, user: &str, record: &RecordRef) -> StoreResult<()> {
        let k = key(&follow_pk(record.kind.as_str(), &record.id), user);
        self.delete(k, "unfollow").await
    }
}
