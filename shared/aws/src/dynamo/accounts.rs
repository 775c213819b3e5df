//! Accounts: configuration, folder watermarks, status ([`AccountStore`]), in one partition;
//! each account's own address also in the address index (`ADDR#<address>` / `MAILBOX`), so
//! ingest asks "is this address ours?" without listing the accounts.

use std::collections::{BTreeSet, HashSet};

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::NaiveDate;
use mailroom_core::error::{StoreError, StoreResult};
use mailroom_core::keys::{address_pk, ACCOUNTS_PK, ADDRESS_INDEX_SK, CONFIG_PK, MAILBOX_SK};
use mailroom_core::model::{Account, AccountStatus, FolderState};
use mailroom_core::ports::AccountStore;
use mailroom_core::records::normalize_address;
use mailroom_core::SCHEMA_VERSION;

use super::item::{get_s, key, n, s, to_item, value, Item};
use super::store::{decode, update_op, DynamoStore};

pub(super) fn account_key(name: &str) -> Item {
    key(ACCOUNTS_PK, name)
}

impl DynamoStore {
    /// The address-index entry of an account's own address: a set of account names, as two
    /// accounts may share an address.
    fn mailbox_entry(
        &self,
        address: &str,
        account: &str,
    ) -> aws_sdk_dynamodb::types::builders::UpdateBuilder {
        self.update(key(&address_pk(address), MAILBOX_SK))
            .update_expression("ADD accounts :a SET address = :addr, v = :v")
            .expression_attribute_values(":a", AttributeValue::Ss(vec![account.to_string()]))
            .expression_attribute_values(":addr", s(address))
            .expression_attribute_values(":v", n(SCHEMA_VERSION as u64))
    }

    /// Puts every account's address in the index, once per table: accounts made before the
    /// index existed have no entry (new ones write theirs with the account). A marker item
    /// says it was done, so this is one GetItem afterwards. Idempotent; an account created
    /// meanwhile wrote its own entry.
    pub async fn ensure_address_index(&self) -> StoreResult<()> {
        let marker = key(CONFIG_PK, ADDRESS_INDEX_SK);
        if self
            .get_item(marker.clone(), "address index marker")
            .await?
            .is_some()
        {
            return Ok(());
        }
        for account in self.list_accounts().await? {
            if let Some(address) = account.address.as_deref().map(normalize_address) {
                let entry = update_op(self.mailbox_entry(&address, &account.name));
                self.transact(vec![entry], "index account address").await?;
            }
        }
        let mut item = marker;
        item.insert("v".into(), n(SCHEMA_VERSION as u64));
        self.put(item, "address index marker").await
    }

    /// Updates an existing account; a missing account is `NotFound`, not a new item.
    pub(super) async fn update_account(
        &self,
        account: &str,
        expression: &str,
        names: &[(&str, &str)],
        values: Vec<(&str, AttributeValue)>,
        what: &str,
    ) -> StoreResult<()> {
        self.update_existing(
            account_key(account),
            expression,
            names,
            values,
            &format!("{what} {account}"),
            format!("account {account}"),
        )
        .await
    }
}

impl AccountStore for DynamoStore {
    async fn create_account(&self, account: &Account) -> StoreResult<()> {
        let mut item = to_item(account, &[("pk", ACCOUNTS_PK), ("sk", &account.name)]);
        // The watermark map must exist for `SET folder_state.#f` updates.
        item.entry("folder_state".into())
            .or_insert_with(|| AttributeValue::M(Default::default()));
        // Listed by the scheduler through the schedule index from the start.
        item.extend(
            super::schedule::create_attributes(account)
                .into_iter()
                .map(|(k, v)| (k.to_string(), v)),
        );
        let name = format!("account {}", account.name);
        let Some(address) = account.address.as_deref().map(normalize_address) else {
            return self.create(item, "create account", name).await;
        };
        // The account and its address-index entry together, so ingest never sees one alone.
        let items = vec![
            self.put_op(item, Some("attribute_not_exists(pk)")),
            update_op(self.mailbox_entry(&address, &account.name)),
        ];
        match self.transact(items, "create account").await {
            Err(StoreError::AlreadyExists(_)) => Err(StoreError::AlreadyExists(name)),
            other => other,
        }
    }

    async fn get_account(&self, name: &str) -> StoreResult<Option<Account>> {
        self.get_decoded(account_key(name), "account").await
    }

    async fn get_accounts(&self, names: &[String]) -> StoreResult<Vec<Account>> {
        // BatchGetItem refuses a request naming one key twice.
        let unique: BTreeSet<&String> = names.iter().collect();
        let keys = unique.into_iter().map(|n| account_key(n)).collect();
        self.batch_get(keys, "read accounts")
            .await?
            .iter()
            .map(|i| decode("account", i))
            .collect()
    }

    async fn own_addresses(&self, addresses: &[String]) -> StoreResult<Vec<String>> {
        let pks: BTreeSet<String> = addresses.iter().map(|a| address_pk(a)).collect();
        let keys = pks.iter().map(|pk| key(pk, MAILBOX_SK)).collect();
        let found: HashSet<String> = self
            .batch_get(keys, "read own addresses")
            .await?
            .iter()
            .filter_map(|i| get_s(i, "pk").cloned())
            .collect();
        Ok(addresses
            .iter()
            .filter(|a| found.contains(&address_pk(a)))
            .cloned()
            .collect())
    }

    async fn list_accounts(&self) -> StoreResult<Vec<Account>> {
        self.list_decoded(ACCOUNTS_PK, "account").await
    }

    async fn save_folder_state(
        &self,
        account: &str,
        folder: &str,
        state: &FolderState,
    ) -> StoreResult<()> {
        self.update_account(
            account,
            "SET folder_state.#f = :s",
            &[("#f", folder)],
            vec![(":s", value(state))],
            "update account",
        )
        .await
    }

    async fn save_status(&self, account: &str, status: &AccountStatus) -> StoreResult<()> {
        // The schedule index follows the status in the same write: new mail shortens the
        // interval, a failure moves the account to wait out its back-off.
        let (index, mut values) = super::schedule::status_clauses(account, status);
        values.push((":s", value(status)));
        self.update_account(
            account,
            &format!("SET #st = :s, {index}"),
            &[("#st", "status")],
            values,
            "update account",
        )
        .await
    }

    async fn record_send_error(
        &self,
        account: &str,
        error: &str,
        at: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<()> {
        self.update_account(
            account,
            "SET send_error = :e, send_error_at = :t",
            &[],
            vec![(":e", s(error)), (":t", s(at.to_rfc3339()))],
            "record send error",
        )
        .await
    }

    async fn reset_account(&self, account: &str, fetch_since: NaiveDate) -> StoreResult<()> {
        self.update_account(
            account,
            "SET folder_state = :empty, fetch_since = :d",
            &[],
            vec![
                (":empty", AttributeValue::M(Default::default())),
                (":d", s(fetch_since.to_string())),
            ],
            "update account",
        )
        .await
    }
}
