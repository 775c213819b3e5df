//! What only the operator CLI (and tests) ask of the table: teams, users, records and their
//! address index, streams, case settings, loads, filters, skipped messages, copies.
//! Apart from the ports, so a function's grant need not cover them.

use aws_sdk_dynamodb::types::AttributeValue;
use mailroom_core::access::Role;
use mailroom_core::admin::NewRecord;
use mailroom_core::error::{StoreError, StoreResult};
use mailroom_core::filters::{Filter, InboxCopy, Scope, SkippedRecord, MAX_FILTERS_PER_USER};
use mailroom_core::keys::{
    address_pk, address_sk, inbox_pk, member_sk, members_pk, record_pk, stream_pk, CONFIG_PK,
    FILTERS_PK, MEMBER_INDEX_SK, ROLES_PK, SKIPPED_PK, TEAMS_PK, USERS_PK,
};
use mailroom_core::model::CaseSettings;
use mailroom_core::ports::Crm;
use mailroom_core::ports::FilterStore;
use mailroom_core::records::{
    normalize_address, Case, RecordKind, RecordRef, StreamEntry, TeamMembership, User,
};
use mailroom_core::SCHEMA_VERSION;

use super::item::{from_item, key, n, s, to_item, value};
use super::records::{record_item, record_key};
use super::store::DynamoStore;
use crate::errors::sdk_error;

/// A user's entries in its teams' member partitions: a copy of the user item each (users are
/// never changed once added, so the copies cannot drift).
fn member_items(user: &User) -> Vec<super::item::Item> {
    TeamMembership::set(user.teams.iter().cloned())
        .iter()
        .map(|m| {
            let pk = members_pk(&m.team);
            let sk = member_sk(user.created_at, &user.name);
            to_item(user, &[("pk", pk.as_str()), ("sk", sk.as_str())])
        })
        .collect()
}

/// A user's items: the user (first), its address-index entries, its team-member entries.
/// Memberships are stored as a set.
fn user_items(user: &User) -> Vec<super::item::Item> {
    let user = &User {
        teams: TeamMembership::set(user.teams.iter().cloned()),
        ..user.clone()
    };
    let mut items = vec![to_item(user, &[("pk", USERS_PK), ("sk", &user.name)])];
    for e in &user.emails {
        let mut a = key(
            &address_pk(&normalize_address(e)),
            &address_sk("user", &user.name),
        );
        a.insert("v".into(), n(SCHEMA_VERSION as u64));
        items.push(a);
    }
    items.extend(member_items(user));
    items
}

impl DynamoStore {
    // ---- teams and users ----

    pub async fn add_team(&self, name: &str) -> StoreResult<()> {
        let mut item = key(TEAMS_PK, name);
        item.insert("name".into(), s(name));
        item.insert("v".into(), n(SCHEMA_VERSION as u64));
        self.create(item, "add team", format!("team {name}")).await
    }

    pub async fn list_teams(&self) -> StoreResult<Vec<String>> {
        self.sort_keys(TEAMS_PK).await
    }

    /// Adds a user and its address index entries in one transaction; refuses duplicates.
    /// Memberships are stored as a set (a team once, positions merged), so a user listed
    /// twice in a team does not get a double round-robin share.
    pub async fn add_user(&self, user: &User) -> StoreResult<()> {
        let items = user_items(user)
            .into_iter()
            .enumerate()
            .map(|(i, item)| self.put_op(item, (i == 0).then_some("attribute_not_exists(pk)")))
            .collect();
        self.transact(items, &format!("add user {}", user.name))
            .await
    }

    /// Writes new users as `add_user` leaves them, 25 items a request, without checking that
    /// they are new: for benchmarks seeding a table of their own (moto copies the whole table
    /// for every transaction).
    pub async fn seed_users(&self, users: &[User]) -> StoreResult<()> {
        let items = users.iter().flat_map(user_items).collect();
        self.batch_put(items, "seed users").await
    }

    /// Puts every user in its teams' member entries, once per table: users added before the
    /// entries existed have none (new ones write theirs with the user). A marker item says it
    /// was done. Idempotent; a user added meanwhile wrote its own.
    pub async fn ensure_member_index(&self) -> StoreResult<()> {
        let marker = key(CONFIG_PK, MEMBER_INDEX_SK);
        if self
            .get_item(marker.clone(), "member index marker")
            .await?
            .is_some()
        {
            return Ok(());
        }
        for user in self.list_users().await? {
            for item in member_items(&user) {
                self.put(item, "index team member").await?;
            }
        }
        let mut item = marker;
        item.insert("v".into(), n(SCHEMA_VERSION as u64));
        self.put(item, "member index marker").await
    }

    // ---- records ----

    /// Adds a record and its address index entries in one transaction; refuses duplicates.
    pub async fn add_record(&self, record: &NewRecord) -> StoreResult<()> {
        let r = record.reference();
        let mut items = vec![self.put_op(record_item(record), Some("attribute_not_exists(pk)"))];
        for a in record.addresses() {
            let mut idx = key(&address_pk(&a), &address_sk(r.kind.as_str(), &r.id));
            idx.insert("v".into(), n(SCHEMA_VERSION as u64));
            if let Some(account) = record.indexed_account() {
                idx.insert("account".into(), s(account));
            }
            items.push(self.put_op(idx, None));
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
            .map_err(|e| sdk_error("get record", e))?;
        Ok(resp.item.is_some())
    }

    /// Every record of a type, as JSON without its keys.
    pub async fn list_records(&self, kind: RecordKind) -> StoreResult<Vec<serde_json::Value>> {
        self.query_partition(&record_pk(kind.as_str()))
            .await?
            .iter()
            .map(|i| {
                let mut v: serde_json::Value =
                    from_item(i).map_err(|e| StoreError::permanent("decode record", e))?;
                if let Some(o) = v.as_object_mut() {
                    o.remove("pk");
                    o.remove("sk");
                }
                Ok(v)
            })
            .collect()
    }

    /// One record, as JSON without its keys (as [`DynamoStore::list_records`] lists it).
    pub async fn get_record(&self, r: &RecordRef) -> StoreResult<Option<serde_json::Value>> {
        let Some(item) = self.get_item(record_key(r), "get record").await? else {
            return Ok(None);
        };
        let mut v: serde_json::Value =
            from_item(&item).map_err(|e| StoreError::permanent("decode record", e))?;
        if let Some(o) = v.as_object_mut() {
            o.remove("pk");
            o.remove("sk");
        }
        Ok(Some(v))
    }

    pub async fn list_cases(&self) -> StoreResult<Vec<Case>> {
        self.list_decoded(&record_pk(RecordKind::Case.as_str()), "case")
            .await
    }

    pub async fn stream(&self, record: &RecordRef) -> StoreResult<Vec<StreamEntry>> {
        let mut entries: Vec<StreamEntry> = self
            .list_decoded(&stream_pk(record.kind.as_str(), &record.id), "stream")
            .await?;
        entries.sort_by(|a, b| (a.at, &a.kind).cmp(&(b.at, &b.kind)));
        Ok(entries)
    }

    // ---- cases ----

    pub async fn set_case_settings(
        &self,
        account: &str,
        settings: &CaseSettings,
    ) -> StoreResult<()> {
        self.update_account(
            account,
            "SET #c = :c",
            &[("#c", "case")],
            vec![(":c", value(settings))],
            "set case settings",
        )
        .await
    }

    /// A group account's auto-reply settings (R-A1); `None` removes them.
    pub async fn set_auto_reply(
        &self,
        account: &str,
        settings: Option<&mailroom_core::dispatch::settings::AutoReply>,
    ) -> StoreResult<()> {
        match settings {
            Some(a) => {
                self.update_account(
                    account,
                    "SET auto_reply = :a",
                    &[],
                    vec![(":a", value(a))],
                    "set auto-reply",
                )
                .await
            }
            None => {
                self.update_account(
                    account,
                    "REMOVE auto_reply",
                    &[],
                    vec![],
                    "remove auto-reply",
                )
                .await
            }
        }
    }

    /// Turns an account's polling on or off (the schedule index projects `active`, so the
    /// scheduler sees the change with the item).
    pub async fn set_account_active(&self, account: &str, active: bool) -> StoreResult<()> {
        self.update_account(
            account,
            "SET active = :a",
            &[],
            vec![(":a", AttributeValue::Bool(active))],
            "set active",
        )
        .await
    }

    /// What SES said of the group address when last asked.
    /// How users' mail through the API names a group account (R-S3).
    pub async fn set_send_as(
        &self,
        account: &str,
        send_as: mailroom_core::model::SendAs,
    ) -> StoreResult<()> {
        self.update_account(
            account,
            "SET #s = :s",
            &[("#s", "send_as")],
            vec![(":s", value(&send_as))],
            "set send as",
        )
        .await
    }

    pub async fn set_identity(
        &self,
        account: &str,
        status: mailroom_core::ports::IdentityStatus,
    ) -> StoreResult<()> {
        self.update_account(
            account,
            "SET #i = :i",
            &[("#i", "identity")],
            vec![(":i", value(&status))],
            "set identity status",
        )
        .await
    }

    /// Whether a user's notifications also go out as email (R-N3).
    pub async fn set_notify_email(&self, user: &str, on: bool) -> StoreResult<()> {
        self.update_existing(
            key(USERS_PK, user),
            "SET notify_email = :n",
            &[],
            vec![(":n", AttributeValue::Bool(on))],
            &format!("set notify-email {user}"),
            format!("user {user}"),
        )
        .await
    }

    /// Makes a user an admin or not (R-P1).
    pub async fn set_admin(&self, user: &str, on: bool) -> StoreResult<()> {
        self.update_existing(
            key(USERS_PK, user),
            "SET #a = :a",
            &[("#a", "admin")],
            vec![(":a", AttributeValue::Bool(on))],
            &format!("set admin {user}"),
            format!("user {user}"),
        )
        .await
    }

    /// Gives a user a role (R-S2), or none. Only the user item carries it: the team-member
    /// copies serve assignment, which roles do not touch.
    pub async fn set_role(&self, user: &str, role: Option<&str>) -> StoreResult<()> {
        let (expr, values) = match role {
            Some(r) => ("SET #r = :r", vec![(":r", s(r))]),
            None => ("REMOVE #r", vec![]),
        };
        self.update_existing(
            key(USERS_PK, user),
            expr,
            &[("#r", "role")],
            values,
            &format!("set role {user}"),
            format!("user {user}"),
        )
        .await
    }

    // ---- roles ----

    /// Adds a role; refuses a duplicate.
    pub async fn add_role(&self, role: &Role) -> StoreResult<()> {
        let item = to_item(role, &[("pk", ROLES_PK), ("sk", &role.name)]);
        self.create(item, "add role", format!("role {}", role.name))
            .await
    }

    pub async fn get_role(&self, name: &str) -> StoreResult<Option<Role>> {
        self.get_decoded(key(ROLES_PK, name), "role").await
    }

    pub async fn list_roles(&self) -> StoreResult<Vec<Role>> {
        let mut roles: Vec<Role> = self.list_decoded(ROLES_PK, "role").await?;
        roles.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(roles)
    }

    pub async fn open_load(&self, user: &str) -> StoreResult<u64> {
        Ok(self
            .open_loads(&[user.to_string()])
            .await?
            .get(user)
            .copied()
            .unwrap_or(0))
    }

    // ---- filters ----

    /// Adds a filter; names are unique, and one user's scope holds at most
    /// `MAX_FILTERS_PER_USER` (R-X2).
    pub async fn add_filter(&self, filter: &Filter) -> StoreResult<()> {
        if let Scope::User(user) = &filter.scope {
            let count = self
                .filters()
                .await?
                .iter()
                .filter(|f| f.scope == Scope::User(user.clone()))
                .count();
            if count >= MAX_FILTERS_PER_USER {
                return Err(StoreError::permanent(
                    "add filter",
                    format!(
                        "user {user} already has {count} filters (at most {MAX_FILTERS_PER_USER})"
                    ),
                ));
            }
        }
        let item = to_item(filter, &[("pk", FILTERS_PK), ("sk", &filter.name)]);
        self.create(item, "add filter", format!("filter {}", filter.name))
            .await
    }

    pub async fn remove_filter(&self, name: &str) -> StoreResult<()> {
        self.delete_existing(
            key(FILTERS_PK, name),
            "remove filter",
            format!("filter {name}"),
        )
        .await
    }

    pub async fn list_skipped(&self) -> StoreResult<Vec<SkippedRecord>> {
        let mut list: Vec<SkippedRecord> = self.list_decoded(SKIPPED_PK, "skipped").await?;
        list.sort_by_key(|r| (r.at, r.key()));
        Ok(list)
    }

    pub async fn inbox(&self, user: &str) -> StoreResult<Vec<InboxCopy>> {
        let mut list: Vec<InboxCopy> = self.list_decoded(&inbox_pk(user), "inbox copy").await?;
        list.sort_by(|a, b| (a.at, &a.email_id).cmp(&(b.at, &b.email_id)));
        Ok(list)
    }
}

impl mailroom_core::ports::Streams for DynamoStore {
    async fn stream(&self, record: &RecordRef) -> StoreResult<Vec<StreamEntry>> {
        DynamoStore::stream(self, record).await
    }
}
