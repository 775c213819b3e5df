//! The schedule index ([`SCHEDULE_INDEX`], a GSI): each account item carries `sched_pk`,
//! `sched_sk` and `sched_since`, computed by `mailroom_core::schedule::index::placement` and
//! written with every creation and status write, so the scheduler Queries the due ranges
//! instead of listing the accounts ([`ScheduleIndex`]). The projection is `INCLUDE` of
//! [`PROJECTED`]: with the keys (`sk` is the account's name), what the decision reads.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use mailroom_core::error::{StoreError, StoreResult};
use mailroom_core::keys::{ACCOUNTS_PK, CONFIG_PK, SCHEDULE_INDEX, SCHEDULE_INDEX_SK};
use mailroom_core::model::{Account, AccountStatus};
use mailroom_core::ports::{AccountStore, ScheduleIndex};
use mailroom_core::schedule::index::{index_time, placement, IndexRange, SchedulePage};
use mailroom_core::schedule::ScheduleEntry;
use mailroom_core::SCHEMA_VERSION;

use super::accounts::account_key;
use super::item::{get_s, key, n, s, Item};
use super::store::DynamoStore;
use crate::errors::{sdk_error, unless_condition_failed};

pub const SCHED_PK: &str = "sched_pk";
pub const SCHED_SK: &str = "sched_sk";
pub const SCHED_SINCE: &str = "sched_since";
/// The index's non-key attributes.
pub const PROJECTED: [&str; 3] = ["active", "owner", SCHED_SINCE];

/// The index attributes of a new account (its creation time is known here).
pub(super) fn create_attributes(account: &Account) -> [(&'static str, AttributeValue); 3] {
    let p = placement(&account.name, &account.status);
    [
        (SCHED_PK, s(p.partition)),
        (
            SCHED_SK,
            s(index_time(p.sort.unwrap_or(account.created_at))),
        ),
        (
            SCHED_SINCE,
            s(index_time(p.since.unwrap_or(account.created_at))),
        ),
    ]
}

/// The `SET` clauses and values that keep the index attributes in step with a status write.
/// An instant the status does not give is the item's own `created_at`, copied by the update.
pub(super) fn status_clauses(
    account: &str,
    status: &AccountStatus,
) -> (String, Vec<(&'static str, AttributeValue)>) {
    let p = placement(account, status);
    let mut values = vec![(":spk", s(p.partition))];
    let mut value_or_created = |name: &'static str, t: Option<DateTime<Utc>>| match t {
        Some(t) => {
            values.push((name, s(index_time(t))));
            name
        }
        None => "created_at",
    };
    let sort = value_or_created(":ssk", p.sort);
    let since = value_or_created(":ssince", p.since);
    (
        format!("{SCHED_PK} = :spk, {SCHED_SK} = {sort}, {SCHED_SINCE} = {since}"),
        values,
    )
}

fn instant(item: &Item, name: &str) -> Option<DateTime<Utc>> {
    get_s(item, name)
        .and_then(|v| DateTime::parse_from_rfc3339(v).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// An index entry as the decision reads it; one that does not decode fails the tick, since
/// skipping it would leave its account unpolled without a word.
fn entry(range: &IndexRange, item: &Item) -> StoreResult<ScheduleEntry> {
    let bad = |what: &str| {
        StoreError::permanent("decode schedule index entry", format!("{what} in {item:?}"))
    };
    let name = get_s(item, "sk").ok_or_else(|| bad("no sk"))?.clone();
    let since = instant(item, SCHED_SINCE).ok_or_else(|| bad("no sched_since"))?;
    let waiting = range.partition.ends_with("#WAIT");
    Ok(ScheduleEntry {
        active: matches!(item.get("active"), Some(AttributeValue::Bool(true))),
        owner: get_s(item, "owner").cloned(),
        since,
        backoff_until: if waiting {
            Some(instant(item, SCHED_SK).ok_or_else(|| bad("no sched_sk"))?)
        } else {
            None
        },
        name,
    })
}

/// A continuation as the core carries it: the last evaluated key's strings, as JSON.
fn encode_start(key: &Item) -> Option<String> {
    let strings: BTreeMap<&String, &String> = key
        .iter()
        .filter_map(|(k, v)| v.as_s().ok().map(|s| (k, s)))
        .collect();
    serde_json::to_string(&strings).ok()
}

fn decode_start(start: &str) -> StoreResult<Item> {
    let strings: BTreeMap<String, String> = serde_json::from_str(start)
        .map_err(|e| StoreError::permanent("schedule index continuation", e))?;
    Ok(strings.into_iter().map(|(k, v)| (k, s(v))).collect())
}

impl ScheduleIndex for DynamoStore {
    async fn schedule_page(
        &self,
        range: &IndexRange,
        forward: bool,
        start: Option<String>,
    ) -> StoreResult<SchedulePage> {
        let condition = match (&range.from, &range.to) {
            (Some(_), Some(_)) => "#p = :pk AND #s BETWEEN :from AND :to",
            (Some(_), None) => "#p = :pk AND #s >= :from",
            (None, Some(_)) => "#p = :pk AND #s <= :to",
            (None, None) => "#p = :pk",
        };
        let mut req = self
            .client()
            .query()
            .table_name(self.table())
            .index_name(SCHEDULE_INDEX)
            .key_condition_expression(condition)
            .expression_attribute_names("#p", SCHED_PK)
            .expression_attribute_values(":pk", s(&range.partition))
            .scan_index_forward(forward)
            .set_exclusive_start_key(start.as_deref().map(decode_start).transpose()?);
        if range.from.is_some() || range.to.is_some() {
            req = req.expression_attribute_names("#s", SCHED_SK);
        }
        if let Some(from) = &range.from {
            req = req.expression_attribute_values(":from", s(from));
        }
        if let Some(to) = &range.to {
            req = req.expression_attribute_values(":to", s(to));
        }
        let resp = req
            .send()
            .await
            .map_err(|e| sdk_error(format!("query schedule index {}", range.partition), e))?;
        Ok(SchedulePage {
            entries: resp
                .items()
                .iter()
                .map(|i| entry(range, i))
                .collect::<StoreResult<_>>()?,
            next: resp.last_evaluated_key().and_then(encode_start),
        })
    }
}

impl DynamoStore {
    /// Gives every account its index attributes, once per table: accounts made before the
    /// index existed have none, and the scheduler would never see them. A marker item says it
    /// was done, so this is one GetItem afterwards. An account that has its attributes (new,
    /// or a status written meanwhile) is left as it is.
    pub async fn ensure_schedule_index(&self) -> StoreResult<()> {
        let marker = key(CONFIG_PK, SCHEDULE_INDEX_SK);
        if self
            .get_item(marker.clone(), "schedule index marker")
            .await?
            .is_some()
        {
            return Ok(());
        }
        for account in self.list_accounts().await? {
            let mut req = self
                .client()
                .update_item()
                .table_name(self.table())
                .set_key(Some(account_key(&account.name)))
                .update_expression(format!(
                    "SET {SCHED_PK} = :spk, {SCHED_SK} = :ssk, {SCHED_SINCE} = :ssince"
                ))
                .condition_expression(format!(
                    "attribute_exists(pk) AND attribute_not_exists({SCHED_PK})"
                ));
            for ((_, v), name) in create_attributes(&account)
                .into_iter()
                .zip([":spk", ":ssk", ":ssince"])
            {
                req = req.expression_attribute_values(name, v);
            }
            unless_condition_failed("index account schedule", req.send().await)?;
        }
        let mut item = marker;
        item.insert("v".into(), n(SCHEMA_VERSION as u64));
        self.put(item, "schedule index marker").await
    }

    /// Writes new accounts as `create_account` leaves them (with their own-address entries),
    /// 25 items a request, without checking that they are new or that their addresses are
    /// distinct: for benchmarks seeding a table of their own (moto's transactions copy the
    /// whole table each, so creating 10,000 accounts one by one outgrows the emulator).
    pub async fn seed_accounts(&self, accounts: &[Account]) -> StoreResult<()> {
        let entries = accounts.iter().filter_map(|a| {
            let address = mailroom_core::records::normalize_address(a.address.as_deref()?);
            let mut item = key(
                &mailroom_core::keys::address_pk(&address),
                mailroom_core::keys::MAILBOX_SK,
            );
            item.insert("accounts".into(), AttributeValue::Ss(vec![a.name.clone()]));
            item.insert("address".into(), s(address));
            item.insert("v".into(), n(SCHEMA_VERSION as u64));
            Some(item)
        });
        let items = accounts
            .iter()
            .map(|a| {
                let mut item = super::item::to_item(a, &[("pk", ACCOUNTS_PK), ("sk", &a.name)]);
                item.entry("folder_state".into())
                    .or_insert_with(|| AttributeValue::M(Default::default()));
                item.extend(
                    create_attributes(a)
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), v)),
                );
                item
            })
            .chain(entries.collect::<Vec<_>>())
            .collect();
        self.batch_put(items, "seed accounts").await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn a_status_write_copies_the_creation_time_it_does_not_carry() {
        let mut status = AccountStatus::default();
        let (expr, values) = status_clauses("support", &status);
        assert_eq!(
            expr,
            "sched_pk = :spk, sched_sk = created_at, sched_since = created_at"
        );
        assert_eq!(values.len(), 1);
        let now = Utc::now();
        status.last_mail_at = Some(now - Duration::hours(2));
        status.backoff_until = Some(now);
        let (expr, values) = status_clauses("support", &status);
        assert_eq!(
            expr,
            "sched_pk = :spk, sched_sk = :ssk, sched_since = :ssince"
        );
        assert_eq!(values[1], (":ssk", s(index_time(now))));
        assert!(values[0].1.as_s().unwrap().ends_with("#WAIT"));
    }

    #[test]
    fn continuations_round_trip() {
        let mut k = key(ACCOUNTS_PK, "a");
        k.insert(SCHED_PK.into(), s("SCHED#03"));
        k.insert(SCHED_SK.into(), s("2026-11-27T06:00:00Z"));
        assert_eq!(decode_start(&encode_start(&k).unwrap()).unwrap(), k);
    }
}
