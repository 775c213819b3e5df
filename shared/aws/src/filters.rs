//! DynamoDB side of filters (R-X): the filters, skipped messages, users' copies.
//!
//! | item | pk | sk |
//! |---|---|---|
//! | filter | `FILTERS` | name |
//! | skipped message | `SKIPPED` | `<account>#<folder>#<uidvalidity>#<uid>` |
//! | a user's copy of an email | `INBOX#<user>` | email id |

use aws_sdk_dynamodb::error::SdkError;
use mailroom_core::filters::{Filter, InboxCopy, Scope, SkippedRecord, MAX_FILTERS_PER_USER};
use mailroom_core::ports::{FilterStore, StoreError, StoreResult};

use crate::item::{s, to_item};
use crate::DynamoStore;

fn backend<E: std::error::Error + Send + Sync + 'static>(context: &str, e: E) -> StoreError {
    StoreError::backend(context.to_string(), e)
}

impl DynamoStore {
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
                return Err(StoreError::backend(
                    "add filter",
                    format!(
                        "user {user} already has {count} filters (at most {MAX_FILTERS_PER_USER})"
                    ),
                ));
            }
        }
        match self
            .client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(to_item(
                filter,
                &[("pk", "FILTERS"), ("sk", &filter.name)],
            )))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                Err(StoreError::AlreadyExists(format!("filter {}", filter.name)))
            }
            Err(e) => Err(backend("add filter", e)),
        }
    }

    pub async fn remove_filter(&self, name: &str) -> StoreResult<()> {
        match self
            .client()
            .delete_item()
            .table_name(self.table())
            .key("pk", s("FILTERS"))
            .key("sk", s(name))
            .condition_expression("attribute_exists(pk)")
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                Err(StoreError::NotFound(format!("filter {name}")))
            }
            Err(e) => Err(backend("remove filter", e)),
        }
    }

    pub async fn list_skipped(&self) -> StoreResult<Vec<SkippedRecord>> {
        let mut list: Vec<SkippedRecord> = self.list_decoded("SKIPPED", "skipped").await?;
        list.sort_by_key(|r| (r.at, r.key()));
        Ok(list)
    }

    pub async fn inbox(&self, user: &str) -> StoreResult<Vec<InboxCopy>> {
        let mut list: Vec<InboxCopy> = self
            .list_decoded(&format!("INBOX#{user}"), "inbox copy")
            .await?;
        list.sort_by(|a, b| (a.at, &a.email_id).cmp(&(b.at, &b.email_id)));
        Ok(list)
    }
}

impl FilterStore for DynamoStore {
    async fn filters(&self) -> StoreResult<Vec<Filter>> {
        self.list_decoded("FILTERS", "filter").await
    }

    async fn put_skipped(&self, record: &SkippedRecord) -> StoreResult<()> {
        self.client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(to_item(
                record,
                &[("pk", "SKIPPED"), ("sk", &record.key())],
            )))
            .send()
            .await
            .map_err(|e| backend("put skipped", e))?;
        Ok(())
    }

    async fn put_copy(&self, copy: &InboxCopy) -> StoreResult<()> {
        let pk = format!("INBOX#{}", copy.user);
        match self
            .client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(to_item(copy, &[("pk", &pk), ("sk", &copy.email_id)])))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                Ok(()) // already there: keep what the user has done with it
            }
            Err(e) => Err(backend("put inbox copy", e)),
        }
    }
}
