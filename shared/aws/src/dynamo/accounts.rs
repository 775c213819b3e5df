//! Accounts: configuration, folder watermarks, status ([`AccountStore`]), in one partition.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::NaiveDate;
use mailroom_core::error::StoreResult;
use mailroom_core::keys::ACCOUNTS_PK;
use mailroom_core::model::{Account, AccountStatus, FolderState};
use mailroom_core::ports::AccountStore;

use super::item::{key, s, to_item, value, Item};
use super::store::DynamoStore;

pub(super) fn account_key(name: &str) -> Item {
    key(ACCOUNTS_PK, name)
}

impl DynamoStore {
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
        self.create(item, "create account", format!("account {}", account.name))
            .await
    }

    async fn get_account(&self, name: &str) -> StoreResult<Option<Account>> {
        self.get_decoded(account_key(name), "account").await
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
        self.update_account(
            account,
            "SET #st = :s",
            &[("#st", "status")],
            vec![(":s", value(status))],
            "update account",
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
