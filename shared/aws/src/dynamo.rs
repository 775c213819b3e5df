//! DynamoDB adapter: one table, keys `pk`/`sk`.
//!
//! | item | pk | sk |
//! |---|---|---|
//! | account (config, watermarks, status) | `ACCOUNTS` | account name |
//! | email | `EMAIL#<email id>` | `EMAIL` |
//! | quarantined message | `QUARANTINE` | quarantine id |
//! | wrapped data key | `CONFIG` | `DATAKEY` |
//!
//! Accounts share one partition so the scheduler lists them all with one paginated Query.

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use chrono::NaiveDate;
use mailroom_core::model::{Account, AccountStatus, EmailRecord, FolderState, QuarantineRecord};
use mailroom_core::ports::{AccountStore, EmailStore, StoreError, StoreResult, Upsert};
use serde::de::DeserializeOwned;

use crate::item::{from_item, s, to_av, to_item, Item};

const ACCOUNTS: &str = "ACCOUNTS";
const QUARANTINE: &str = "QUARANTINE";

#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

fn backend<E: std::error::Error + Send + Sync + 'static>(context: &str, e: E) -> StoreError {
    StoreError::backend(context.to_string(), e)
}

fn decode<T: DeserializeOwned>(what: &str, item: &Item) -> StoreResult<T> {
    from_item(item).map_err(|e| backend(&format!("decode {what}"), e))
}

impl DynamoStore {
    pub fn new(client: Client, table: &str) -> Self {
        DynamoStore {
            client,
            table: table.to_string(),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    fn key(pk: &str, sk: &str) -> Item {
        [("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))].into()
    }

    /// One item by key, decoded (consistent read).
    pub(crate) async fn get_decoded<T: DeserializeOwned>(
        &self,
        key: Item,
        what: &str,
    ) -> StoreResult<Option<T>> {
        let resp = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| backend(&format!("get {what}"), e))?;
        resp.item.map(|i| decode(what, &i)).transpose()
    }

    /// Every item of a partition, decoded.
    pub(crate) async fn list_decoded<T: DeserializeOwned>(
        &self,
        pk: &str,
        what: &str,
    ) -> StoreResult<Vec<T>> {
        self.query_partition(pk)
            .await?
            .iter()
            .map(|i| decode(what, i))
            .collect()
    }

    /// All items of a partition, following pagination.
    pub(crate) async fn query_partition(&self, pk: &str) -> StoreResult<Vec<Item>> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let resp = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(pk))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| backend(&format!("query {pk}"), e))?;
            out.extend(resp.items.unwrap_or_default());
            start = resp.last_evaluated_key;
            if start.is_none() {
                return Ok(out);
            }
        }
    }

    /// Updates an existing account; a missing account is `NotFound`, not a new item.
    async fn update_account(
        &self,
        account: &str,
        expression: &str,
        names: &[(&str, &str)],
        values: Vec<(&str, AttributeValue)>,
    ) -> StoreResult<()> {
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(ACCOUNTS, account)))
            .update_expression(expression)
            .condition_expression("attribute_exists(pk)");
        for (k, v) in names {
            req = req.expression_attribute_names(*k, *v);
        }
        for (k, v) in values {
            req = req.expression_attribute_values(k, v);
        }
        match req.send().await {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                Err(StoreError::NotFound(format!("account {account}")))
            }
            Err(e) => Err(backend(&format!("update account {account}"), e)),
        }
    }
}

impl AccountStore for DynamoStore {
    async fn create_account(&self, account: &Account) -> StoreResult<()> {
        let mut item = to_item(account, &[("pk", ACCOUNTS), ("sk", &account.name)]);
        // The watermark map must exist for `SET folder_state.#f` updates.
        item.entry("folder_state".into())
            .or_insert_with(|| AttributeValue::M(Default::default()));
        match self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                Err(StoreError::AlreadyExists(format!(
                    "account {}",
                    account.name
                )))
            }
            Err(e) => Err(backend("create account", e)),
        }
    }

    async fn get_account(&self, name: &str) -> StoreResult<Option<Account>> {
        self.get_decoded(Self::key(ACCOUNTS, name), "account").await
    }

    async fn list_accounts(&self) -> StoreResult<Vec<Account>> {
        self.list_decoded(ACCOUNTS, "account").await
    }

    async fn save_folder_state(
        &self,
        account: &str,
        folder: &str,
        state: &FolderState,
    ) -> StoreResult<()> {
        let value = to_av(serde_json::to_value(state).expect("serialises"));
        self.update_account(
            account,
            "SET folder_state.#f = :s",
            &[("#f", folder)],
            vec![(":s", value)],
        )
        .await
    }

    async fn save_status(&self, account: &str, status: &AccountStatus) -> StoreResult<()> {
        let value = to_av(serde_json::to_value(status).expect("serialises"));
        self.update_account(
            account,
            "SET #st = :s",
            &[("#st", "status")],
            vec![(":s", value)],
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
        )
        .await
    }
}

impl EmailStore for DynamoStore {
    /// One conditional put for a new email; a second request only for one already stored.
    async fn upsert_email(&self, email: &EmailRecord, account: &str) -> StoreResult<Upsert> {
        let pk = format!("EMAIL#{}", email.email_id);
        let mut item = to_item(email, &[("pk", &pk), ("sk", "EMAIL")]);
        item.insert(
            "accounts".into(),
            AttributeValue::Ss(vec![account.to_string()]),
        );
        match self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
        {
            Ok(_) => return Ok(Upsert::Created),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {}
            Err(e) => return Err(backend("put email", e)),
        }
        // Already stored: add this account to its set, unless it is there (a redelivery).
        match self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(&pk, "EMAIL")))
            .update_expression("ADD accounts :a")
            .condition_expression("attribute_exists(pk) AND NOT contains(accounts, :name)")
            .expression_attribute_values(":a", AttributeValue::Ss(vec![account.to_string()]))
            .expression_attribute_values(":name", s(account))
            .send()
            .await
        {
            Ok(_) => Ok(Upsert::Linked),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                Ok(Upsert::AlreadyLinked)
            }
            Err(e) => Err(backend("link email", e)),
        }
    }

    async fn list_emails(&self) -> StoreResult<Vec<EmailRecord>> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let resp = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("sk = :e")
                .expression_attribute_values(":e", s("EMAIL"))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| backend("scan emails", e))?;
            for i in resp.items.unwrap_or_default() {
                out.push(decode::<EmailRecord>("email", &i)?);
            }
            start = resp.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        out.sort_by(|a, b| {
            (a.date, &a.received_at, &a.email_id).cmp(&(b.date, &b.received_at, &b.email_id))
        });
        Ok(out)
    }

    async fn put_quarantine(&self, record: &QuarantineRecord) -> StoreResult<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(
                record,
                &[("pk", QUARANTINE), ("sk", &record.id)],
            )))
            .send()
            .await
            .map_err(|e| backend("put quarantine", e))?;
        Ok(())
    }

    async fn get_quarantine(&self, id: &str) -> StoreResult<Option<QuarantineRecord>> {
        self.get_decoded(Self::key(QUARANTINE, id), "quarantine")
            .await
    }

    async fn list_quarantine(&self) -> StoreResult<Vec<QuarantineRecord>> {
        self.list_decoded(QUARANTINE, "quarantine").await
    }

    async fn remove_quarantine(&self, id: &str) -> StoreResult<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(QUARANTINE, id)))
            .send()
            .await
            .map_err(|e| backend("delete quarantine", e))?;
        Ok(())
    }
}
