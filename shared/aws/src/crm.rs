//! DynamoDB side of records, linking and cases (same table as the rest).
//!
//! | item | pk | sk |
//! |---|---|---|
//! | record (account, contact, lead, opportunity, case) | `REC#<type>` | id (case: zero-padded number) |
//! | address index | `ADDR#<address>` | `<type>#<id>` |
//! | user / team | `USERS` / `TEAMS` | name |
//! | follower | `FOLLOW#<type>#<id>` | user |
//! | stream entry | `STREAM#<type>#<id>` | `email#<email id>` / `case_created` |
//! | message index (R-L1) | `MSGID#<message id>` | `MSGID` |
//! | thread claim (R-C4) | `THREAD#<thread key>` | `CLAIM` |
//! | counters | `COUNTER` | `case`, `rr#<account>` |
//! | open cases per user | `LOAD` | user |

use std::collections::HashMap;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, KeysAndAttributes, Put, ReturnValue, TransactWriteItem, Update,
};
use chrono::Utc;
use mailroom_core::model::CaseSettings;
use mailroom_core::ports::{
    AddressRecord, AssignmentGuard, Claim, Crm, EmailLink, StoreError, StoreResult,
};
use mailroom_core::records::{
    normalize_address, Case, CaseStatus, Contact, CrmAccount, Lead, MessageEntry, Opportunity,
    RecordKind, RecordRef, StreamEntry, ThreadClaim, User,
};
use mailroom_core::SCHEMA_VERSION;
use serde::Serialize;

use crate::item::{from_item, s, to_av, to_item, Item};
use crate::DynamoStore;

fn backend<E: std::error::Error + Send + Sync + 'static>(context: &str, e: E) -> StoreError {
    StoreError::backend(context.to_string(), e)
}

fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn key(pk: &str, sk: &str) -> Item {
    [("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))].into()
}

pub fn case_sk(number: u64) -> String {
    format!("{number:012}")
}

fn rec_pk(kind: RecordKind) -> String {
    format!("REC#{}", kind.as_str())
}

fn record_key(r: &RecordRef) -> Item {
    match r.kind {
        RecordKind::Case => key(&rec_pk(r.kind), &case_sk(r.id.parse().unwrap_or(0))),
        _ => key(&rec_pk(r.kind), &r.id),
    }
}

fn ref_av(r: &RecordRef) -> AttributeValue {
    to_av(serde_json::to_value(r).expect("serialises"))
}

fn put(item: Item, table: &str, condition: Option<&str>) -> TransactWriteItem {
    TransactWriteItem::builder()
        .put(
            Put::builder()
                .table_name(table)
                .set_item(Some(item))
                .set_condition_expression(condition.map(str::to_string))
                .build()
                .expect("complete"),
        )
        .build()
}

/// A record as the CLI adds or imports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewRecord {
    Account(CrmAccount),
    Contact(Contact),
    Lead(Lead),
    Opportunity(Opportunity),
}

impl NewRecord {
    pub fn reference(&self) -> RecordRef {
        match self {
            NewRecord::Account(a) => RecordRef::new(RecordKind::Account, &a.name),
            NewRecord::Contact(c) => RecordRef::new(RecordKind::Contact, &c.email),
            NewRecord::Lead(l) => RecordRef::new(RecordKind::Lead, &l.email),
            NewRecord::Opportunity(o) => RecordRef::new(RecordKind::Opportunity, &o.name),
        }
    }
    fn addresses(&self) -> Vec<String> {
        match self {
            NewRecord::Account(a) => a.emails.iter().map(|e| normalize_address(e)).collect(),
            NewRecord::Contact(c) => vec![normalize_address(&c.email)],
            NewRecord::Lead(l) => vec![normalize_address(&l.email)],
            NewRecord::Opportunity(_) => vec![],
        }
    }
    fn item(&self) -> Item {
        let r = self.reference();
        let pk = rec_pk(r.kind);
        let keys = [("pk", pk.as_str()), ("sk", r.id.as_str())];
        match self {
            NewRecord::Account(a) => to_item(a, &keys),
            NewRecord::Contact(c) => to_item(c, &keys),
            NewRecord::Lead(l) => to_item(l, &keys),
            NewRecord::Opportunity(o) => to_item(o, &keys),
        }
    }
}

impl DynamoStore {
    async fn transact(&self, items: Vec<TransactWriteItem>, what: &str) -> StoreResult<()> {
        self.client()
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
            .map_err(|e| match &e {
                SdkError::ServiceError(se) => match se.err() {
                    TransactWriteItemsError::TransactionCanceledException(tc) => {
                        StoreError::AlreadyExists(format!("{what}: {}", conflict_reasons(tc)))
                    }
                    _ => backend(what, e),
                },
                _ => backend(what, e),
            })?;
        Ok(())
    }

    pub async fn add_team(&self, name: &str) -> StoreResult<()> {
        let mut item = key("TEAMS", name);
        item.insert("name".into(), s(name));
        item.insert("v".into(), n(SCHEMA_VERSION as u64));
        match self
            .client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                Err(StoreError::AlreadyExists(format!("team {name}")))
            }
            Err(e) => Err(backend("add team", e)),
        }
    }

    pub async fn list_teams(&self) -> StoreResult<Vec<String>> {
        Ok(self
            .query_partition("TEAMS")
            .await?
            .iter()
            .filter_map(|i| i.get("sk").and_then(|v| v.as_s().ok()).cloned())
            .collect())
    }

    pub async fn add_user(&self, user: &User) -> StoreResult<()> {
        let mut items = vec![put(
            to_item(user, &[("pk", "USERS"), ("sk", &user.name)]),
            self.table(),
            Some("attribute_not_exists(pk)"),
        )];
        for e in &user.emails {
            let mut a = key(
                &format!("ADDR#{}", normalize_address(e)),
                &format!("user#{}", user.name),
            );
            a.insert("v".into(), n(SCHEMA_VERSION as u64));
            items.push(put(a, self.table(), None));
        }
        self.transact(items, &format!("add user {}", user.name))
            .await
    }

    pub async fn list_users(&self) -> StoreResult<Vec<User>> {
        let mut users: Vec<User> = self.list_decoded("USERS", "user").await?;
        users.sort_by(|a, b| (a.created_at, &a.name).cmp(&(b.created_at, &b.name)));
        Ok(users)
    }

    pub async fn get_user(&self, name: &str) -> StoreResult<Option<User>> {
        self.get_decoded(key("USERS", name), "user").await
    }

    /// Adds a record and its address index entries in one transaction; refuses duplicates.
    pub async fn add_record(&self, record: &NewRecord) -> StoreResult<()> {
        let r = record.reference();
        let mut items = vec![put(
            record.item(),
            self.table(),
            Some("attribute_not_exists(pk)"),
        )];
        for a in record.addresses() {
            let mut idx = key(
                &format!("ADDR#{a}"),
                &format!("{}#{}", r.kind.as_str(), r.id),
            );
            idx.insert("v".into(), n(SCHEMA_VERSION as u64));
            // The contact's account rides along: linking resolves it without another read.
            if let NewRecord::Contact(Contact {
                account: Some(acct),
                ..
            }) = record
            {
                idx.insert("account".into(), s(acct));
            }
            items.push(put(idx, self.table(), None));
        }
        self.transact(items, &format!("add {r}")).await
    }

    pub async fn record_exists(&self, r: &RecordRef) -> StoreResult<bool> {
        let resp = self
            .client()
            .get_item()
            .table_name(self.table())
            .set_key(Some(record_key(r)))
            .projection_expression("pk")
            .send()
            .await
            .map_err(|e| backend("get record", e))?;
        Ok(resp.item.is_some())
    }

    pub async fn list_records(&self, kind: RecordKind) -> StoreResult<Vec<serde_json::Value>> {
        self.query_partition(&rec_pk(kind))
            .await?
            .iter()
            .map(|i| {
                let mut v: serde_json::Value =
                    from_item(i).map_err(|e| backend("decode record", e))?;
                if let Some(o) = v.as_object_mut() {
                    o.remove("pk");
                    o.remove("sk");
                }
                Ok(v)
            })
            .collect()
    }

    pub async fn list_cases(&self) -> StoreResult<Vec<Case>> {
        self.list_decoded(&rec_pk(RecordKind::Case), "case").await
    }

    pub async fn follow(&self, user: &str, record: &RecordRef) -> StoreResult<()> {
        let mut item = key(
            &format!("FOLLOW#{}#{}", record.kind.as_str(), record.id),
            user,
        );
        item.insert("user".into(), s(user));
        item.insert("v".into(), n(SCHEMA_VERSION as u64));
        self.client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| backend("follow", e))?;
        Ok(())
    }

    pub async fn followers(&self, record: &RecordRef) -> StoreResult<Vec<String>> {
        Ok(self
            .query_partition(&format!("FOLLOW#{}#{}", record.kind.as_str(), record.id))
            .await?
            .iter()
            .filter_map(|i| i.get("sk").and_then(|v| v.as_s().ok()).cloned())
            .collect())
    }

    pub async fn stream(&self, record: &RecordRef) -> StoreResult<Vec<StreamEntry>> {
        let mut entries: Vec<StreamEntry> = self
            .list_decoded(
                &format!("STREAM#{}#{}", record.kind.as_str(), record.id),
                "stream",
            )
            .await?;
        entries.sort_by(|a, b| (a.at, &a.kind).cmp(&(b.at, &b.kind)));
        Ok(entries)
    }

    pub async fn set_case_settings(
        &self,
        account: &str,
        settings: &CaseSettings,
    ) -> StoreResult<()> {
        self.client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(key("ACCOUNTS", account)))
            .update_expression("SET #c = :c")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#c", "case")
            .expression_attribute_values(":c", to_av(serde_json::to_value(settings).expect("ok")))
            .send()
            .await
            .map_err(|e| match &e {
                SdkError::ServiceError(se) if se.err().is_conditional_check_failed_exception() => {
                    StoreError::NotFound(format!("account {account}"))
                }
                _ => backend("set case settings", e),
            })?;
        Ok(())
    }

    /// Changes a case's status and keeps the assignee's open-case count exact (R-C3): both in
    /// one transaction, conditional on the status read.
    pub async fn set_case_status(&self, number: u64, status: CaseStatus) -> StoreResult<Case> {
        for _ in 0..10 {
            let case: Case = self
                .get_decoded(record_key(&RecordRef::case(number)), "case")
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("case {number}")))?;
            if case.status == status {
                return Ok(case);
            }
            let mut items = vec![TransactWriteItem::builder()
                .update(
                    Update::builder()
                        .table_name(self.table())
                        .set_key(Some(record_key(&RecordRef::case(number))))
                        .update_expression("SET #s = :new")
                        .condition_expression("#s = :old")
                        .expression_attribute_names("#s", "status")
                        .expression_attribute_values(":new", s(format!("{status:?}")))
                        .expression_attribute_values(":old", s(format!("{:?}", case.status)))
                        .build()
                        .expect("complete"),
                )
                .build()];
            if let (Some(user), true) = (
                &case.assigned_user,
                case.status.is_open() != status.is_open(),
            ) {
                let delta: i64 = if status.is_open() { 1 } else { -1 };
                items.push(load_update(self.table(), user, delta, None));
            }
            match self.transact(items, "set status").await {
                Ok(()) => return Ok(Case { status, ..case }),
                Err(StoreError::AlreadyExists(_)) => continue, // raced: read again
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::backend("set status", "case kept changing"))
    }

    pub async fn open_load(&self, user: &str) -> StoreResult<u64> {
        Ok(self
            .open_loads(&[user.to_string()])
            .await?
            .get(user)
            .copied()
            .unwrap_or(0))
    }

    /// Consistent BatchGetItem of any number of keys (100 a request), unprocessed keys retried.
    async fn batch_get(&self, keys: Vec<Item>, what: &str) -> StoreResult<Vec<Item>> {
        let mut out = Vec::new();
        for chunk in keys.chunks(100) {
            let request = KeysAndAttributes::builder()
                .consistent_read(true)
                .set_keys(Some(chunk.to_vec()))
                .build()
                .expect("keys set");
            let mut request: HashMap<String, KeysAndAttributes> =
                [(self.table().to_string(), request)].into();
            while !request.is_empty() {
                let resp = self
                    .client()
                    .batch_get_item()
                    .set_request_items(Some(request))
                    .send()
                    .await
                    .map_err(|e| backend(what, e))?;
                out.extend(resp.responses.unwrap_or_default().into_values().flatten());
                request = resp.unprocessed_keys.unwrap_or_default();
            }
        }
        Ok(out)
    }

    fn link_items(&self, link: &EmailLink, case: Option<u64>) -> Vec<TransactWriteItem> {
        let mut items = Vec::new();
        let mut idx = key(&format!("MSGID#{}", link.message_id), "MSGID");
        let entry = MessageEntry {
            message_id: link.message_id.clone(),
            email_id: link.email_id.clone(),
            parent: link.parent.clone(),
            thread_key: link.thread_key.clone(),
        };
        idx.extend(to_item(&entry, &[]));
        items.push(put(idx, self.table(), None));
        // The email's parent, case and teams (R-I4), in one update.
        let mut sets = Vec::new();
        let mut update = Update::builder()
            .table_name(self.table())
            .set_key(Some(key(&format!("EMAIL#{}", link.email_id), "EMAIL")))
            .condition_expression("attribute_exists(pk)");
        if let Some(parent) = &link.parent {
            sets.push("#par = :p");
            update = update
                .expression_attribute_names("#par", "parent")
                .expression_attribute_values(":p", ref_av(parent));
        }
        if let Some(c) = case {
            sets.push("#c = :c");
            update = update
                .expression_attribute_names("#c", "case")
                .expression_attribute_values(":c", n(c));
        }
        let mut expression = String::new();
        if !sets.is_empty() {
            expression = format!("SET {}", sets.join(", "));
        }
        if !link.teams.is_empty() {
            expression.push_str(" ADD teams :t");
            update =
                update.expression_attribute_values(":t", AttributeValue::Ss(link.teams.clone()));
        }
        if !expression.is_empty() {
            items.push(
                TransactWriteItem::builder()
                    .update(
                        update
                            .update_expression(expression.trim())
                            .build()
                            .expect("complete"),
                    )
                    .build(),
            );
        }
        if let Some(parent) = &link.parent {
            let entry = StreamEntry {
                v: SCHEMA_VERSION,
                at: link.at,
                kind: mailroom_core::records::StreamKind::EmailReceived,
                email_id: Some(link.email_id.clone()),
                message_id: Some(link.message_id.clone()),
                subject: link.subject.clone(),
                case,
            };
            let pk = format!("STREAM#{}#{}", parent.kind.as_str(), parent.id);
            let sk = format!("email#{}", link.email_id);
            items.push(put(
                to_item(&entry, &[("pk", &pk), ("sk", &sk)]),
                self.table(),
                None,
            ));
        }
        items
    }
}

fn load_update(table: &str, user: &str, delta: i64, expect: Option<u64>) -> TransactWriteItem {
    let mut u = Update::builder()
        .table_name(table)
        .set_key(Some(key("LOAD", user)))
        .update_expression("ADD #o :d")
        .expression_attribute_names("#o", "open")
        .expression_attribute_values(":d", AttributeValue::N(delta.to_string()));
    if let Some(e) = expect {
        u = u.expression_attribute_values(":e", n(e));
        u = u.condition_expression(if e == 0 {
            "attribute_not_exists(#o) OR #o = :e"
        } else {
            "#o = :e"
        });
    }
    TransactWriteItem::builder()
        .update(u.build().expect("complete"))
        .build()
}

fn conflict_reasons(e: &aws_sdk_dynamodb::types::error::TransactionCanceledException) -> String {
    e.cancellation_reasons()
        .iter()
        .map(|r| r.code().unwrap_or("None").to_string())
        .collect::<Vec<_>>()
        .join(",")
}

impl Crm for DynamoStore {
    async fn messages(&self, ids: &[String]) -> StoreResult<Vec<MessageEntry>> {
        let mut unique: Vec<&String> = ids.iter().collect();
        unique.sort();
        unique.dedup();
        let keys = unique
            .iter()
            .map(|id| key(&format!("MSGID#{id}"), "MSGID"))
            .collect();
        self.batch_get(keys, "look up message ids")
            .await?
            .iter()
            .map(|i| from_item(i).map_err(|e| backend("decode message index", e)))
            .collect()
    }

    async fn records_by_address(&self, address: &str) -> StoreResult<Vec<AddressRecord>> {
        let items = self
            .query_partition(&format!("ADDR#{}", normalize_address(address)))
            .await?;
        Ok(items
            .iter()
            .filter_map(|i| {
                let sk = i.get("sk")?.as_s().ok()?;
                let (kind, id) = sk.split_once('#')?;
                let kind: RecordKind = kind.parse().ok()?;
                Some(AddressRecord {
                    record: RecordRef::new(kind, id),
                    account: i.get("account").and_then(|a| a.as_s().ok()).cloned(),
                })
            })
            .collect())
    }

    async fn contact_account(&self, email: &str) -> StoreResult<Option<String>> {
        let c: Option<Contact> = self
            .get_decoded(
                record_key(&RecordRef::new(RecordKind::Contact, email)),
                "contact",
            )
            .await?;
        Ok(c.and_then(|c| c.account))
    }

    async fn lead_target(&self, email: &str) -> StoreResult<Option<RecordRef>> {
        let l: Option<Lead> = self
            .get_decoded(record_key(&RecordRef::new(RecordKind::Lead, email)), "lead")
            .await?;
        Ok(
            l.and_then(|l| match (l.converted_contact, l.converted_account) {
                (Some(c), _) => Some(RecordRef::new(RecordKind::Contact, c)),
                (None, Some(a)) => Some(RecordRef::new(RecordKind::Account, a)),
                _ => None,
            }),
        )
    }

    async fn get_case(&self, number: u64) -> StoreResult<Option<Case>> {
        self.get_decoded(record_key(&RecordRef::case(number)), "case")
            .await
    }

    async fn thread_case(&self, thread_key: &str) -> StoreResult<Option<ThreadClaim>> {
        let resp = self
            .client()
            .get_item()
            .table_name(self.table())
            .set_key(Some(key(&format!("THREAD#{thread_key}"), "CLAIM")))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| backend("get thread claim", e))?;
        Ok(resp.item.and_then(|i| {
            Some(ThreadClaim {
                case: i.get("case")?.as_n().ok()?.parse().ok()?,
                email_id: i.get("email_id")?.as_s().ok()?.clone(),
            })
        }))
    }

    async fn team_members(&self, team: &str) -> StoreResult<Vec<User>> {
        Ok(self
            .list_users()
            .await?
            .into_iter()
            .filter(|u| u.teams.iter().any(|m| m.team == team))
            .collect())
    }

    async fn counter(&self, k: &str) -> StoreResult<u64> {
        let resp = self
            .client()
            .get_item()
            .table_name(self.table())
            .set_key(Some(key("COUNTER", k)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| backend("get counter", e))?;
        Ok(resp
            .item
            .and_then(|i| {
                i.get("value")
                    .and_then(|v| v.as_n().ok())
                    .and_then(|v| v.parse().ok())
            })
            .unwrap_or(0))
    }

    async fn open_loads(&self, users: &[String]) -> StoreResult<HashMap<String, u64>> {
        let keys = users.iter().map(|u| key("LOAD", u)).collect();
        let mut out = HashMap::new();
        for i in self.batch_get(keys, "read loads").await? {
            let open = i
                .get("open")
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(0);
            if let Some(u) = i.get("sk").and_then(|v| v.as_s().ok()) {
                out.insert(u.clone(), open.max(0) as u64);
            }
        }
        Ok(out)
    }

    async fn next_case_number(&self) -> StoreResult<u64> {
        let resp = self
            .client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(key("COUNTER", "case")))
            .update_expression("ADD #v :one")
            .expression_attribute_names("#v", "value")
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| backend("next case number", e))?;
        resp.attributes
            .and_then(|a| {
                a.get("value")
                    .and_then(|v| v.as_n().ok())
                    .and_then(|v| v.parse().ok())
            })
            .ok_or_else(|| StoreError::backend("next case number", "no value returned"))
    }

    async fn claim_case(
        &self,
        case: &Case,
        guard: Option<&AssignmentGuard>,
        link: &EmailLink,
    ) -> StoreResult<Claim> {
        let table = self.table();
        let mut claim = key(&format!("THREAD#{}", case.thread_key), "CLAIM");
        claim.insert("case".into(), n(case.number));
        claim.insert("email_id".into(), s(&link.email_id));
        claim.insert("v".into(), n(SCHEMA_VERSION as u64));
        let mut case_item = to_item(
            case,
            &[
                ("pk", &rec_pk(RecordKind::Case)),
                ("sk", &case_sk(case.number)),
            ],
        );
        // A set, so joins can ADD to it; DynamoDB has no empty sets, so none at all when empty.
        if case.participants.is_empty() {
            case_item.remove("participants");
        } else {
            case_item.insert(
                "participants".into(),
                AttributeValue::Ss(case.participants.clone()),
            );
        }
        let mut items = vec![
            put(claim, table, Some("attribute_not_exists(pk)")),
            put(case_item, table, Some("attribute_not_exists(pk)")),
        ];
        if let Some(g) = guard {
            let mut u = Update::builder()
                .table_name(table)
                .set_key(Some(key("COUNTER", &g.counter_key)))
                .update_expression("SET #v = :new")
                .expression_attribute_names("#v", "value")
                .expression_attribute_values(":new", n(g.counter_new))
                .expression_attribute_values(":exp", n(g.counter_expected));
            u = u.condition_expression(if g.counter_expected == 0 {
                "attribute_not_exists(#v) OR #v = :exp"
            } else {
                "#v = :exp"
            });
            items.push(
                TransactWriteItem::builder()
                    .update(u.build().expect("complete"))
                    .build(),
            );
        }
        if let Some(user) = &case.assigned_user {
            let expected = guard
                .and_then(|g| g.loads_expected.iter().find(|(u, _)| u == user))
                .map(|(_, l)| *l);
            items.push(load_update(table, user, 1, expected));
            for (other, load) in guard.map(|g| g.loads_expected.as_slice()).unwrap_or(&[]) {
                if other == user {
                    continue;
                }
                let mut c = ConditionCheck::builder()
                    .table_name(table)
                    .set_key(Some(key("LOAD", other)))
                    .expression_attribute_names("#o", "open")
                    .expression_attribute_values(":e", n(*load));
                c = c.condition_expression(if *load == 0 {
                    "attribute_not_exists(#o) OR #o = :e"
                } else {
                    "#o = :e"
                });
                items.push(
                    TransactWriteItem::builder()
                        .condition_check(c.build().expect("complete"))
                        .build(),
                );
            }
        }
        let created = StreamEntry {
            v: SCHEMA_VERSION,
            at: case.created_at,
            kind: mailroom_core::records::StreamKind::CaseCreated,
            email_id: Some(link.email_id.clone()),
            message_id: Some(link.message_id.clone()),
            subject: Some(case.name.clone()),
            case: Some(case.number),
        };
        let stream_pk = format!("STREAM#case#{}", case.number);
        items.push(put(
            to_item(&created, &[("pk", &stream_pk), ("sk", "case_created")]),
            table,
            None,
        ));
        items.extend(self.link_items(link, Some(case.number)));

        match self
            .client()
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(Claim::Created),
            Err(SdkError::ServiceError(se))
                if matches!(
                    se.err(),
                    TransactWriteItemsError::TransactionCanceledException(_)
                ) =>
            {
                let TransactWriteItemsError::TransactionCanceledException(tc) = se.err() else {
                    unreachable!("matched above")
                };
                let reasons = tc.cancellation_reasons();
                let thread_taken = reasons
                    .first()
                    .and_then(|r| r.code())
                    .is_some_and(|c| c == "ConditionalCheckFailed");
                if thread_taken {
                    let claim = self.thread_case(&case.thread_key).await?.ok_or_else(|| {
                        StoreError::backend("claim case", "thread claim vanished")
                    })?;
                    Ok(Claim::ThreadTaken(claim))
                } else if reasons.is_empty() {
                    // An emulator without reasons: look at the claim to tell the cases apart.
                    match self.thread_case(&case.thread_key).await? {
                        Some(claim) => Ok(Claim::ThreadTaken(claim)),
                        None => Ok(Claim::Moved),
                    }
                } else {
                    Ok(Claim::Moved)
                }
            }
            Err(e) => Err(backend("claim case", e)),
        }
    }

    async fn join_case(&self, number: u64, link: &EmailLink, reopen: bool) -> StoreResult<()> {
        let mut items = self.link_items(link, Some(number));
        if !link.participants.is_empty() {
            items.push(
                TransactWriteItem::builder()
                    .update(
                        Update::builder()
                            .table_name(self.table())
                            .set_key(Some(record_key(&RecordRef::case(number))))
                            .update_expression("ADD participants :p")
                            .condition_expression("attribute_exists(pk)")
                            .expression_attribute_values(
                                ":p",
                                AttributeValue::Ss(link.participants.clone()),
                            )
                            .build()
                            .expect("complete"),
                    )
                    .build(),
            );
        }
        self.transact(items, &format!("join case {number}")).await?;
        if reopen {
            if let Some(case) = self.get_case(number).await? {
                if case.status == CaseStatus::Closed {
                    let to = if case.assigned_user.is_some() {
                        CaseStatus::Assigned
                    } else {
                        CaseStatus::New
                    };
                    self.set_case_status(number, to).await?;
                }
            }
        }
        Ok(())
    }

    async fn link_email(&self, link: &EmailLink) -> StoreResult<()> {
        let items = self.link_items(link, None);
        self.transact(items, "link email").await
    }

    async fn record_case_error(&self, account: &str, error: &str) -> StoreResult<()> {
        self.client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(key("ACCOUNTS", account)))
            .update_expression("SET case_error = :e, case_error_at = :t")
            .expression_attribute_values(":e", s(error))
            .expression_attribute_values(":t", s(Utc::now().to_rfc3339()))
            .send()
            .await
            .map_err(|e| backend("record case error", e))?;
        Ok(())
    }
}

/// Helper for the CLI: serialise any record for listing.
pub fn to_json<T: Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).expect("serialises")
}

impl mailroom_core::ports::Directory for DynamoStore {
    async fn list_users(&self) -> StoreResult<Vec<User>> {
        DynamoStore::list_users(self).await
    }
}
