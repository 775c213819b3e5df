//! The one [`DynamoStore`] and the requests every entity file builds on: get, query, put,
//! put-if-absent, update-if-present, delete, transactions, batch reads. Each maps its SDK error
//! once, through [`crate::errors`], so a failure is classified the same way whoever sends it.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, KeysAndAttributes, Put, PutRequest, TransactWriteItem, Update, WriteRequest,
};
use aws_sdk_dynamodb::Client;
use mailroom_core::error::{ErrorClass, StoreError, StoreResult};
use serde::de::DeserializeOwned;

use super::item::{from_item, s, Item};
use crate::errors::{cancelled, of_class, sdk_error, unless_condition_failed, Cancelled};

/// The table every DynamoDB item of Mailroom lives in (keys `pk`/`sk`, see the module doc).
#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

/// An item that does not decode fails the same way on every read: permanent.
pub(super) fn decode<T: DeserializeOwned>(what: &str, item: &Item) -> StoreResult<T> {
    from_item(item).map_err(|e| StoreError::permanent(format!("decode {what}"), e))
}

/// An Update in a transaction.
pub(super) fn update_op(
    update: aws_sdk_dynamodb::types::builders::UpdateBuilder,
) -> TransactWriteItem {
    TransactWriteItem::builder()
        .update(update.build().expect("table, key and expression are set"))
        .build()
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

    /// One item by key (consistent read).
    pub(crate) async fn get_item(&self, key: Item, what: &str) -> StoreResult<Option<Item>> {
        // DynamoDB refuses an empty key attribute (a ValidationException, not a miss); no item
        // has one, so an empty name (an API caller's `"owner": ""`) is simply not found.
        if key.values().any(|v| v.as_s().is_ok_and(|s| s.is_empty())) {
            return Ok(None);
        }
        let resp = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error(format!("get {what}"), e))?;
        Ok(resp.item)
    }

    /// One item by key, decoded (consistent read).
    pub(crate) async fn get_decoded<T: DeserializeOwned>(
        &self,
        key: Item,
        what: &str,
    ) -> StoreResult<Option<T>> {
        self.get_item(key, what)
            .await?
            .map(|i| decode(what, &i))
            .transpose()
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
                .map_err(|e| sdk_error(format!("query {pk}"), e))?;
            out.extend(resp.items.unwrap_or_default());
            start = resp.last_evaluated_key;
            if start.is_none() {
                return Ok(out);
            }
        }
    }

    /// The sort keys of a partition's items (names of users, teams, followers).
    pub(crate) async fn sort_keys(&self, pk: &str) -> StoreResult<Vec<String>> {
        Ok(self
            .query_partition(pk)
            .await?
            .iter()
            .filter_map(|i| super::item::get_s(i, "sk").cloned())
            .collect())
    }

    /// Writes an item, replacing any with its key.
    pub(crate) async fn put(&self, item: Item, what: &str) -> StoreResult<()> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| sdk_error(what.to_string(), e))?;
        Ok(())
    }

    /// Writes an item unless one with its key exists: `false` when it does (one request).
    pub(crate) async fn put_if_absent(&self, item: Item, what: &str) -> StoreResult<bool> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        Ok(unless_condition_failed(what, result)?.is_some())
    }

    /// Creates an item; one that exists is `AlreadyExists(name)`.
    pub(crate) async fn create(&self, item: Item, what: &str, name: String) -> StoreResult<()> {
        if self.put_if_absent(item, what).await? {
            Ok(())
        } else {
            Err(StoreError::AlreadyExists(name))
        }
    }

    /// Updates an existing item; a missing one is `NotFound(name)`, not a new item.
    pub(crate) async fn update_existing(
        &self,
        key: Item,
        expression: &str,
        names: &[(&str, &str)],
        values: Vec<(&str, AttributeValue)>,
        what: &str,
        name: String,
    ) -> StoreResult<()> {
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .update_expression(expression)
            .condition_expression("attribute_exists(pk)");
        for (k, v) in names {
            req = req.expression_attribute_names(*k, *v);
        }
        for (k, v) in values {
            req = req.expression_attribute_values(k, v);
        }
        match unless_condition_failed(what, req.send().await)? {
            Some(_) => Ok(()),
            None => Err(StoreError::NotFound(name)),
        }
    }

    /// Deletes an item, whether or not it exists.
    pub(crate) async fn delete(&self, key: Item, what: &str) -> StoreResult<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .send()
            .await
            .map_err(|e| sdk_error(what.to_string(), e))?;
        Ok(())
    }

    /// Deletes an existing item; a missing one is `NotFound(name)`.
    pub(crate) async fn delete_existing(
        &self,
        key: Item,
        what: &str,
        name: String,
    ) -> StoreResult<()> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .condition_expression("attribute_exists(pk)")
            .send()
            .await;
        match unless_condition_failed(what, result)? {
            Some(_) => Ok(()),
            None => Err(StoreError::NotFound(name)),
        }
    }

    /// Writes items in one transaction. `Ok(Err(codes))`: cancelled because the stored state
    /// moved (a condition failed, or another transaction wrote an item at once), with each
    /// item's reason code (none at all from an emulator that gives none). Any other failure,
    /// throttling or a refused item among them, is an error of its class.
    pub(crate) async fn transact_or_refused(
        &self,
        items: Vec<TransactWriteItem>,
        what: &str,
    ) -> StoreResult<Result<(), Vec<String>>> {
        let err = match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => return Ok(Ok(())),
            Err(e) => e,
        };
        let codes = match &err {
            SdkError::ServiceError(se) => match se.err() {
                TransactWriteItemsError::TransactionCanceledException(tc) => Some(
                    tc.cancellation_reasons()
                        .iter()
                        .map(|r| r.code().unwrap_or("None").to_string())
                        .collect::<Vec<_>>(),
                ),
                _ => None,
            },
            _ => None,
        };
        match codes {
            Some(codes) => match cancelled(&codes) {
                Cancelled::Condition | Cancelled::Conflict => Ok(Err(codes)),
                Cancelled::Failed(class) => Err(of_class(
                    class,
                    format!("{what}: cancelled ({})", codes.join(",")),
                    err,
                )),
            },
            None => Err(sdk_error(what.to_string(), err)),
        }
    }

    /// Writes items in one transaction; a failed condition is `AlreadyExists`, a conflict with
    /// another writer a transient error.
    pub(crate) async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
        what: &str,
    ) -> StoreResult<()> {
        match self.transact_or_refused(items, what).await? {
            Ok(()) => Ok(()),
            Err(codes) => {
                let reasons = format!("{what}: {}", codes.join(","));
                if cancelled(&codes) == Cancelled::Conflict {
                    Err(of_class(ErrorClass::Transient, what, reasons))
                } else {
                    Err(StoreError::AlreadyExists(reasons))
                }
            }
        }
    }

    /// BatchWriteItem puts of any number of items (25 a request), unprocessed items retried
    /// with a growing pause (they come back when the table throttles).
    pub(crate) async fn batch_put(&self, items: Vec<Item>, what: &str) -> StoreResult<()> {
        for chunk in items.chunks(25) {
            let puts = chunk
                .iter()
                .map(|i| {
                    WriteRequest::builder()
                        .put_request(
                            PutRequest::builder()
                                .set_item(Some(i.clone()))
                                .build()
                                .expect("item set"),
                        )
                        .build()
                })
                .collect();
            let mut request: HashMap<String, Vec<WriteRequest>> =
                [(self.table.clone(), puts)].into();
            let mut pause = std::time::Duration::from_millis(25);
            for attempt in 0.. {
                let resp = self
                    .client
                    .batch_write_item()
                    .set_request_items(Some(request))
                    .send()
                    .await
                    .map_err(|e| sdk_error(what.to_string(), e))?;
                request = resp.unprocessed_items.unwrap_or_default();
                request.retain(|_, v| !v.is_empty());
                if request.is_empty() {
                    break;
                }
                if attempt == 8 {
                    return Err(StoreError::backend(
                        what.to_string(),
                        "items left unprocessed",
                    ));
                }
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
        }
        Ok(())
    }

    /// Consistent BatchGetItem of any number of keys (100 a request), unprocessed keys retried.
    pub(crate) async fn batch_get(&self, keys: Vec<Item>, what: &str) -> StoreResult<Vec<Item>> {
        let mut out = Vec::new();
        for chunk in keys.chunks(100) {
            let request = KeysAndAttributes::builder()
                .consistent_read(true)
                .set_keys(Some(chunk.to_vec()))
                .build()
                .expect("keys set");
            let mut request: HashMap<String, KeysAndAttributes> =
                [(self.table.clone(), request)].into();
            while !request.is_empty() {
                let resp = self
                    .client
                    .batch_get_item()
                    .set_request_items(Some(request))
                    .send()
                    .await
                    .map_err(|e| sdk_error(what.to_string(), e))?;
                out.extend(resp.responses.unwrap_or_default().into_values().flatten());
                request = resp.unprocessed_keys.unwrap_or_default();
            }
        }
        Ok(out)
    }

    /// A Put in a transaction on this table, with an optional condition.
    pub(super) fn put_op(&self, item: Item, condition: Option<&str>) -> TransactWriteItem {
        TransactWriteItem::builder()
            .put(
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .set_condition_expression(condition.map(str::to_string))
                    .build()
                    .expect("table and item are set"),
            )
            .build()
    }

    /// An Update builder on this table, for [`update_op`].
    pub(super) fn update(&self, key: Item) -> aws_sdk_dynamodb::types::builders::UpdateBuilder {
        Update::builder().table_name(&self.table).set_key(Some(key))
    }
}
