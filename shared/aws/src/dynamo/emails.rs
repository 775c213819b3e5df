//! Emails (one item per email, shared by the accounts that received it) and quarantined
//! messages ([`EmailStore`]).

use aws_sdk_dynamodb::types::AttributeValue;
use mailroom_core::error::StoreResult;
use mailroom_core::keys::{email_pk, EMAIL_SK, QUARANTINE_PK};
use mailroom_core::model::{EmailRecord, QuarantineRecord};
use mailroom_core::ports::{EmailStore, Upsert};

use super::item::{key, s, to_item};
use super::store::{decode, DynamoStore};
use crate::errors::{sdk_error, unless_condition_failed};

impl EmailStore for DynamoStore {
    /// One conditional put for a new email; a second request only for one already stored.
    async fn upsert_email(&self, email: &EmailRecord, account: &str) -> StoreResult<Upsert> {
        let pk = email_pk(&email.email_id);
        let mut item = to_item(email, &[("pk", &pk), ("sk", EMAIL_SK)]);
        item.insert(
            "accounts".into(),
            AttributeValue::Ss(vec![account.to_string()]),
        );
        if self.put_if_absent(item, "put email").await? {
            return Ok(Upsert::Created);
        }
        // Already stored: add this account to its set, unless it is there (a redelivery).
        let result = self
            .client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(key(&pk, EMAIL_SK)))
            .update_expression("ADD accounts :a")
            .condition_expression("attribute_exists(pk) AND NOT contains(accounts, :name)")
            .expression_attribute_values(":a", AttributeValue::Ss(vec![account.to_string()]))
            .expression_attribute_values(":name", s(account))
            .send()
            .await;
        Ok(match unless_condition_failed("link email", result)? {
            Some(_) => Upsert::Linked,
            None => Upsert::AlreadyLinked,
        })
    }

    async fn list_emails(&self) -> StoreResult<Vec<EmailRecord>> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let resp = self
                .client()
                .scan()
                .table_name(self.table())
                .filter_expression("sk = :e")
                .expression_attribute_values(":e", s(EMAIL_SK))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| sdk_error("scan emails", e))?;
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

    async fn get_email(&self, email_id: &str) -> StoreResult<Option<EmailRecord>> {
        self.get_decoded(key(&email_pk(email_id), EMAIL_SK), "email")
            .await
    }

    async fn put_quarantine(&self, record: &QuarantineRecord) -> StoreResult<()> {
        let item = to_item(record, &[("pk", QUARANTINE_PK), ("sk", &record.id)]);
        self.put(item, "put quarantine").await
    }

    async fn get_quarantine(&self, id: &str) -> StoreResult<Option<QuarantineRecord>> {
        self.get_decoded(key(QUARANTINE_PK, id), "quarantine").await
    }

    async fn list_quarantine(&self) -> StoreResult<Vec<QuarantineRecord>> {
        self.list_decoded(QUARANTINE_PK, "quarantine").await
    }

    async fn remove_quarantine(&self, id: &str) -> StoreResult<()> {
        self.delete(key(QUARANTINE_PK, id), "delete quarantine")
            .await
    }
}
