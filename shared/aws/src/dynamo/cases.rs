//! Linking and cases ([`Crm`]): the message index (R-L1), thread claims (R-C4), cases and
//! their streams, the case and round-robin counters, open-case loads and each team's load
//! version (R-C3). Everything an email changes is written in one transaction, so a retried
//! email never half-applies; a claim's transaction has a fixed number of items plus one per
//! team of the assignee, whatever the size of the team it was chosen from.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, TransactWriteItem};
use chrono::Utc;
use mailroom_core::dispatch::records::SentRecord;
use mailroom_core::error::{StoreError, StoreResult};
use mailroom_core::keys::{
    case_sk, email_pk, members_pk, message_pk, record_pk, stream_email_sk, stream_pk,
    stream_sent_sk, team_loads_sk, thread_pk, CASE_COUNTER_SK, CASE_CREATED_SK, CLAIM_SK,
    COUNTER_PK, EMAIL_SK, LOAD_PK, MESSAGE_SK,
};
use mailroom_core::ports::{
    AddressRecord, AssignmentGuard, Claim, Crm, EmailLink, MAX_TRANSACTION_ITEMS,
};
use mailroom_core::records::{
    Case, CaseStatus, MessageEntry, RecordKind, RecordRef, StreamEntry, StreamKind, ThreadClaim,
    User,
};
use mailroom_core::types::CaseNumber;
use mailroom_core::SCHEMA_VERSION;

use super::accounts::account_key;
use super::item::{get_n, get_s, key, n, s, to_item, value, Item};
use super::records::record_key;
use super::store::{decode, update_op, DynamoStore};
use crate::errors::sdk_error;

/// `attribute_not_exists` for a counter that starts at zero, `=` otherwise.
fn expect_condition(expected: u64, attr: &str, value: &str) -> String {
    if expected == 0 {
        format!("attribute_not_exists({attr}) OR {attr} = {value}")
    } else {
        format!("{attr} = {value}")
    }
}

impl DynamoStore {
    /// Changes a case's status and keeps the assignee's open-case count exact (R-C3): see
    /// [`DynamoStore::update_case`].
    pub async fn set_case_status(
        &self,
        number: CaseNumber,
        status: CaseStatus,
    ) -> StoreResult<Case> {
        self.update_case(number, Some(status), None).await
    }

    /// Changes a case's status and/or assignee (`Some(None)` unassigns; [`Case::changed`]
    /// says what status an assignment leaves) and keeps the open-case counts exact (R-C3):
    /// all in one transaction, conditional on the status and assignee read, with the load
    /// version of every team of the users whose count moves (and of the case), so a
    /// least-busy choice that read an old count fails and chooses again. The old assignee
    /// loses an open case and the new one gains it; a status change between open and closed
    /// moves the assignee's count alone.
    pub async fn update_case(
        &self,
        number: CaseNumber,
        status: Option<CaseStatus>,
        assignee: Option<Option<String>>,
    ) -> StoreResult<Case> {
        for _ in 0..10 {
            let case: Case = self
                .get_case(number)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("case {number}")))?;
            let new = case.changed(status, assignee.clone());
            if new.status == case.status && new.assigned_user == case.assigned_user {
                return Ok(case);
            }
            let mut update = self
                .update(record_key(&RecordRef::case(number.get())))
                .expression_attribute_names("#s", "status")
                .expression_attribute_names("#a", "assigned_user")
                .expression_attribute_values(":new", s(format!("{:?}", new.status)))
                .expression_attribute_values(":old", s(format!("{:?}", case.status)));
            let mut condition = "#s = :old".to_string();
            match &case.assigned_user {
                Some(a) => {
                    condition.push_str(" AND #a = :olda");
                    update = update.expression_attribute_values(":olda", s(a));
                }
                None => condition.push_str(" AND attribute_not_exists(#a)"),
            }
            let expression = match &new.assigned_user {
                Some(a) => {
                    update = update.expression_attribute_values(":newa", s(a));
                    "SET #s = :new, #a = :newa"
                }
                None => "SET #s = :new REMOVE #a",
            };
            let mut items = vec![update_op(
                update
                    .update_expression(expression)
                    .condition_expression(condition),
            )];
            // Each user's open count: -1 for an open case they held, +1 for one they now hold.
            let mut deltas: Vec<(String, i64)> = Vec::new();
            if let (Some(u), true) = (&case.assigned_user, case.status.is_open()) {
                deltas.push((u.clone(), -1));
            }
            if let (Some(u), true) = (&new.assigned_user, new.status.is_open()) {
                match deltas.iter_mut().find(|(d, _)| d == u) {
                    Some(d) => d.1 += 1,
                    None => deltas.push((u.clone(), 1)),
                }
            }
            deltas.retain(|(_, d)| *d != 0);
            if !deltas.is_empty() {
                let mut teams = case.teams.clone();
                for (user, delta) in &deltas {
                    items.push(self.load_update(user, *delta, None));
                    if let Some(u) = self.get_user(user).await? {
                        teams.extend(u.team_names());
                    }
                }
                teams.sort();
                teams.dedup();
                items.extend(teams.iter().map(|t| self.team_loads_update(t, None)));
            }
            match self.transact_or_refused(items, "update case").await? {
                Ok(()) => return Ok(new),
                Err(_) => continue, // raced: read again
            }
        }
        Err(StoreError::backend("update case", "case kept changing"))
    }

    /// Adds `delta` to a user's open-case count, conditional on its value when `expect` is set.
    fn load_update(&self, user: &str, delta: i64, expect: Option<u64>) -> TransactWriteItem {
        let mut u = self
            .update(key(LOAD_PK, user))
            .update_expression("ADD #o :d")
            .expression_attribute_names("#o", "open")
            .expression_attribute_values(":d", AttributeValue::N(delta.to_string()));
        if let Some(e) = expect {
            u = u
                .expression_attribute_values(":e", n(e))
                .condition_expression(expect_condition(e, "#o", ":e"));
        }
        update_op(u)
    }

    /// Bumps a team's load version, conditional on its value when `expect` is set (the version
    /// a least-busy choice read).
    fn team_loads_update(&self, team: &str, expect: Option<u64>) -> TransactWriteItem {
        let mut u = self
            .update(key(COUNTER_PK, &team_loads_sk(team)))
            .update_expression("ADD #v :one")
            .expression_attribute_names("#v", "value")
            .expression_attribute_values(":one", n(1));
        if let Some(e) = expect {
            u = u
                .expression_attribute_values(":e", n(e))
                .condition_expression(expect_condition(e, "#v", ":e"));
        }
        update_op(u)
    }

    /// The writes that link an email: its message-index entry; its parent, case and teams
    /// (R-I4) in one update; its entry in the parent's stream.
    fn link_items(&self, link: &EmailLink, case: Option<CaseNumber>) -> Vec<TransactWriteItem> {
        let mut items = Vec::new();
        let mut idx = key(&message_pk(&link.message_id), MESSAGE_SK);
        let entry = MessageEntry {
            message_id: link.message_id.clone(),
            email_id: link.email_id.clone(),
            parent: link.parent.clone(),
            thread_key: link.thread_key.clone(),
            ours: link.ours,
        };
        idx.extend(to_item(&entry, &[]));
        items.push(self.put_op(idx, None));
        let mut sets = Vec::new();
        let mut update = self
            .update(key(&email_pk(&link.email_id), EMAIL_SK))
            .condition_expression("attribute_exists(pk)");
        if let Some(parent) = &link.parent {
            sets.push("#par = :p");
            update = update
                .expression_attribute_names("#par", "parent")
                .expression_attribute_values(":p", value(parent));
        }
        if let Some(c) = case {
            sets.push("#c = :c");
            update = update
                .expression_attribute_names("#c", "case")
                .expression_attribute_values(":c", n(c.get()));
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
            items.push(update_op(update.update_expression(expression.trim())));
        }
        if let Some(parent) = &link.parent {
            let entry = StreamEntry {
                v: SCHEMA_VERSION,
                at: link.at,
                kind: StreamKind::EmailReceived,
                email_id: Some(link.email_id.clone()),
                message_id: Some(link.message_id.clone()),
                subject: link.subject.clone(),
                case,
            };
            let pk = stream_pk(parent.kind.as_str(), &parent.id);
            let sk = stream_email_sk(&link.email_id);
            items.push(self.put_op(to_item(&entry, &[("pk", &pk), ("sk", &sk)]), None));
        }
        items
    }

    /// The writes of a new case: the thread claim and the case (both only if absent), the
    /// round-robin counter, the assignee's count and each of the assignee's teams' load
    /// version (for least-busy both conditional on what the choice read), the case's first
    /// stream entry, and the email's link. At most 8 items plus one per team of the assignee.
    fn claim_items(
        &self,
        case: &Case,
        guard: Option<&AssignmentGuard>,
        link: &EmailLink,
    ) -> Vec<TransactWriteItem> {
        let mut claim = key(&thread_pk(&case.thread_key), CLAIM_SK);
        claim.insert("case".into(), n(case.number.get()));
        claim.insert("email_id".into(), s(&link.email_id));
        claim.insert("v".into(), n(SCHEMA_VERSION as u64));
        let mut case_item = to_item(
            case,
            &[
                ("pk", &record_pk(RecordKind::Case.as_str())),
                ("sk", &case_sk(case.number.get())),
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
        // The thread claim comes first: its reason code tells a lost race (R-C4) apart.
        let mut items = vec![
            self.put_op(claim, Some("attribute_not_exists(pk)")),
            self.put_op(case_item, Some("attribute_not_exists(pk)")),
        ];
        if let Some(c) = guard.and_then(|g| g.counter.as_ref()) {
            items.push(update_op(
                self.update(key(COUNTER_PK, &c.key))
                    .update_expression("SET #v = :new")
                    .expression_attribute_names("#v", "value")
                    .expression_attribute_values(":new", n(c.new))
                    .expression_attribute_values(":exp", n(c.expected))
                    .condition_expression(expect_condition(c.expected, "#v", ":exp")),
            ));
        }
        if let Some(user) = &case.assigned_user {
            let least_busy = guard.and_then(|g| g.least_busy.as_ref());
            items.push(self.load_update(user, 1, least_busy.map(|l| l.load)));
            // One item per team: DynamoDB refuses a transaction naming an item twice.
            let mut teams: Vec<&String> = guard
                .map(|g| g.assignee_teams.iter().collect())
                .unwrap_or_default();
            teams.extend(least_busy.map(|l| &l.team));
            teams.sort();
            teams.dedup();
            for team in teams {
                let expect = least_busy.filter(|l| &l.team == team).map(|l| l.version);
                items.push(self.team_loads_update(team, expect));
            }
        }
        let created = StreamEntry {
            v: SCHEMA_VERSION,
            at: case.created_at,
            kind: StreamKind::CaseCreated,
            email_id: Some(link.email_id.clone()),
            message_id: Some(link.message_id.clone()),
            subject: Some(case.name.clone()),
            case: Some(case.number),
        };
        let stream = stream_pk(RecordKind::Case.as_str(), &case.number.to_string());
        items.push(self.put_op(
            to_item(&created, &[("pk", &stream), ("sk", CASE_CREATED_SK)]),
            None,
        ));
        items.extend(self.link_items(link, Some(case.number)));
        items
    }
}

impl Crm for DynamoStore {
    async fn messages(&self, ids: &[String]) -> StoreResult<Vec<MessageEntry>> {
        let mut unique: Vec<&String> = ids.iter().collect();
        unique.sort();
        unique.dedup();
        let keys = unique
            .iter()
            .map(|id| key(&message_pk(id), MESSAGE_SK))
            .collect();
        self.batch_get(keys, "look up message ids")
            .await?
            .iter()
            .map(|i| decode("message index", i))
            .collect()
    }

    async fn records_by_address(&self, address: &str) -> StoreResult<Vec<AddressRecord>> {
        self.address_records(address).await
    }

    async fn contact_account(&self, email: &str) -> StoreResult<Option<String>> {
        Ok(self.contact(email).await?.and_then(|c| c.account))
    }

    async fn lead_target(&self, email: &str) -> StoreResult<Option<RecordRef>> {
        Ok(self
            .lead(email)
            .await?
            .and_then(|l| match (l.converted_contact, l.converted_account) {
                (Some(c), _) => Some(RecordRef::new(RecordKind::Contact, c)),
                (None, Some(a)) => Some(RecordRef::new(RecordKind::Account, a)),
                _ => None,
            }))
    }

    async fn get_case(&self, number: CaseNumber) -> StoreResult<Option<Case>> {
        self.get_decoded(record_key(&RecordRef::case(number.get())), "case")
            .await
    }

    async fn thread_case(&self, thread_key: &str) -> StoreResult<Option<ThreadClaim>> {
        let item = self
            .get_item(key(&thread_pk(thread_key), CLAIM_SK), "thread claim")
            .await?;
        Ok(item.and_then(|i| {
            Some(ThreadClaim {
                case: get_n(&i, "case")?,
                email_id: get_s(&i, "email_id")?.clone(),
            })
        }))
    }

    /// One Query of the team's member entries (in join order), not a listing of every user.
    async fn team_members(&self, team: &str) -> StoreResult<Vec<User>> {
        self.list_decoded(&members_pk(team), "team member").await
    }

    async fn counter(&self, k: &str) -> StoreResult<u64> {
        let item = self.get_item(key(COUNTER_PK, k), "counter").await?;
        Ok(item.and_then(|i| get_n(&i, "value")).unwrap_or(0))
    }

    async fn open_loads(&self, users: &[String]) -> StoreResult<HashMap<String, u64>> {
        let keys: Vec<Item> = users.iter().map(|u| key(LOAD_PK, u)).collect();
        let mut out = HashMap::new();
        for i in self.batch_get(keys, "read loads").await? {
            let open: i64 = get_n(&i, "open").unwrap_or(0);
            if let Some(u) = get_s(&i, "sk") {
                out.insert(u.clone(), open.max(0) as u64);
            }
        }
        Ok(out)
    }

    async fn next_case_number(&self) -> StoreResult<CaseNumber> {
        let resp = self
            .client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(key(COUNTER_PK, CASE_COUNTER_SK)))
            .update_expression("ADD #v :one")
            .expression_attribute_names("#v", "value")
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| sdk_error("next case number", e))?;
        let n = resp
            .attributes
            .and_then(|a| get_n(&a, "value"))
            .ok_or_else(|| StoreError::backend("next case number", "no value returned"))?;
        CaseNumber::new(n).map_err(|e| StoreError::permanent("next case number", e))
    }

    async fn claim_case(
        &self,
        case: &Case,
        guard: Option<&AssignmentGuard>,
        link: &EmailLink,
    ) -> StoreResult<Claim> {
        let items = self.claim_items(case, guard, link);
        if items.len() > MAX_TRANSACTION_ITEMS {
            return Err(StoreError::permanent(
                "claim case",
                format!(
                    "{} items in one transaction (DynamoDB allows {MAX_TRANSACTION_ITEMS})",
                    items.len()
                ),
            ));
        }
        let codes = match self.transact_or_refused(items, "claim case").await? {
            Ok(()) => return Ok(Claim::Created),
            Err(codes) => codes,
        };
        if codes.first().is_some_and(|c| c == "ConditionalCheckFailed") {
            let claim = self
                .thread_case(&case.thread_key)
                .await?
                .ok_or_else(|| StoreError::backend("claim case", "thread claim vanished"))?;
            Ok(Claim::ThreadTaken(claim))
        } else if codes.is_empty() {
            // An emulator without reasons: look at the claim to tell the cases apart.
            match self.thread_case(&case.thread_key).await? {
                Some(claim) => Ok(Claim::ThreadTaken(claim)),
                None => Ok(Claim::Moved),
            }
        } else {
            // The counter, a team's load version or the assignee's count moved, or another
            // writer touched them at once: choose again.
            Ok(Claim::Moved)
        }
    }

    async fn join_case(
        &self,
        number: CaseNumber,
        link: &EmailLink,
        reopen: bool,
    ) -> StoreResult<()> {
        let mut items = self.link_items(link, Some(number));
        if !link.participants.is_empty() {
            items.push(update_op(
                self.update(record_key(&RecordRef::case(number.get())))
                    .update_expression("ADD participants :p")
                    .condition_expression("attribute_exists(pk)")
                    .expression_attribute_values(
                        ":p",
                        AttributeValue::Ss(link.participants.clone()),
                    ),
            ));
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
            .set_key(Some(account_key(account)))
            .update_expression("SET case_error = :e, case_error_at = :t")
            .expression_attribute_values(":e", s(error))
            .expression_attribute_values(":t", s(Utc::now().to_rfc3339()))
            .send()
            .await
            .map_err(|e| sdk_error("record case error", e))?;
        Ok(())
    }

    async fn record_name(&self, record: &RecordRef) -> StoreResult<Option<String>> {
        let mut r = record.clone();
        if matches!(r.kind, RecordKind::Contact | RecordKind::Lead) {
            r.id = mailroom_core::records::normalize_address(&r.id);
        }
        let item = self.get_item(record_key(&r), "record").await?;
        Ok(item.and_then(|i| get_s(&i, "name").cloned()))
    }

    /// One transaction: both index entries and the stream entry, so a retry never finds
    /// half of them.
    async fn index_sent(&self, sent: &SentRecord, thread_key: &str) -> StoreResult<()> {
        let mut items = Vec::new();
        for id in [&sent.message_id, &sent.ses_message_id] {
            let entry = MessageEntry {
                message_id: id.clone(),
                email_id: sent.id.clone(),
                parent: sent.parent.clone(),
                thread_key: thread_key.to_string(),
                ours: true,
            };
            let pk = message_pk(id);
            items.push(self.put_op(to_item(&entry, &[("pk", &pk), ("sk", MESSAGE_SK)]), None));
        }
        if let Some(parent) = &sent.parent {
            let entry = StreamEntry {
                v: SCHEMA_VERSION,
                at: sent.sent_at,
                kind: StreamKind::EmailSent,
                email_id: Some(sent.id.clone()),
                message_id: Some(sent.ses_message_id.clone()),
                subject: Some(sent.subject.clone()),
                case: sent.case,
            };
            let pk = stream_pk(parent.kind.as_str(), &parent.id);
            let sk = stream_sent_sk(&sent.id);
            items.push(self.put_op(to_item(&entry, &[("pk", &pk), ("sk", &sk)]), None));
        }
        self.transact(items, "index sent mail").await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailroom_core::ports::{CounterStep, LeastBusyRead};

    fn store() -> DynamoStore {
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new("eu-west-1"))
            .build();
        DynamoStore::new(aws_sdk_dynamodb::Client::from_conf(config), "t")
    }

    fn case(user: &str) -> Case {
        serde_json::from_value(serde_json::json!({
            "number": 7, "name": "printer", "status": "Assigned", "assigned_user": user,
            "teams": ["l1"], "mail_account": "support", "thread_key": "root",
            "participants": ["c@x.example"], "created_at": "2026-03-03T10:00:00Z"}))
        .unwrap()
    }

    fn link() -> EmailLink {
        EmailLink {
            email_id: "e1".into(),
            message_id: "m1@x.example".into(),
            parent: Some(RecordRef::case(7)),
            thread_key: "root".into(),
            subject: Some("printer".into()),
            at: "2026-03-03T10:00:00Z".parse().unwrap(),
            participants: vec!["c@x.example".into()],
            teams: vec!["l1".into()],
            ours: false,
        }
    }

    /// The claim's transaction does not grow with the team (moto does not enforce DynamoDB's
    /// 100 items, so a local run cannot show it): a least-busy choice over any number of
    /// members conditions on one team version and one count. It grows only with the teams
    /// of the assignee, each version named once.
    #[test]
    fn a_least_busy_claim_is_a_bounded_transaction_whatever_the_team_size() {
        let store = store();
        let guard = |teams: &[&str]| AssignmentGuard {
            counter: Some(CounterStep {
                key: "rr#support".into(),
                expected: 3,
                new: 4,
            }),
            least_busy: Some(LeastBusyRead {
                team: "l1".into(),
                version: 41,
                load: 2,
            }),
            assignee_teams: teams.iter().map(|t| t.to_string()).collect(),
        };
        let count = |g: &AssignmentGuard| store.claim_items(&case("ann"), Some(g), &link()).len();
        // Claim, case, counter, count, the l1 version, case-created entry, message index,
        // email update, stream entry.
        assert_eq!(count(&guard(&["l1"])), 9);
        assert_eq!(
            count(&guard(&[])),
            9,
            "the least-busy team's version is always named"
        );
        assert_eq!(count(&guard(&["l1", "sales", "l1"])), 10);

        let items = store.claim_items(&case("ann"), Some(&guard(&["l1", "sales"])), &link());
        let updates: Vec<_> = items.iter().filter_map(|i| i.update()).collect();
        let version = |sk: &str| {
            updates
                .iter()
                .find(|u| u.key().get("sk") == Some(&s(sk)))
                .unwrap_or_else(|| panic!("no update of {sk}"))
        };
        let l1 = version("loads#l1");
        assert_eq!(l1.update_expression(), "ADD #v :one");
        assert_eq!(l1.expression_attribute_values().unwrap()[":e"], n(41));
        assert!(l1.condition_expression().is_some());
        assert!(version("loads#sales").condition_expression().is_none());
        let load = version("ann");
        assert_eq!(load.expression_attribute_values().unwrap()[":e"], n(2));
        // Only the chosen member's count is read back: no condition check on anyone else.
        assert!(items.iter().all(|i| i.condition_check().is_none()));

        // Round-robin and direct: no version condition, the assignee's teams still bumped.
        let rr = AssignmentGuard {
            least_busy: None,
            ..guard(&["l1"])
        };
        let items = store.claim_items(&case("ann"), Some(&rr), &link());
        assert_eq!(items.len(), 9);
        let cond = items
            .iter()
            .filter_map(|i| i.update())
            .find(|u| u.key().get("sk") == Some(&s("loads#l1")))
            .unwrap()
            .condition_expression();
        assert_eq!(cond, None);
    }
}
