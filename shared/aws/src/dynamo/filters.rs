//! Filters (R-X), the messages they skipped, and users' copies of emails ([`FilterStore`]).

use mailroom_core::error::StoreResult;
use mailroom_core::filters::{Filter, InboxCopy, SkippedRecord};
use mailroom_core::keys::{inbox_pk, FILTERS_PK, SKIPPED_PK};
use mailroom_core::ports::FilterStore;

use std::collections::HashSet;

use super::item::{get_s, key, to_item};
use super::store::DynamoStore;

impl FilterStore for DynamoStore {
    async fn filters(&self) -> StoreResult<Vec<Filter>> {
        self.list_decoded(FILTERS_PK, "filter").await
    }

    async fn put_skipped(&self, record: &SkippedRecord) -> StoreResult<()> {
        let item = to_item(record, &[("pk", SKIPPED_PK), ("sk", &record.key())]);
        self.put(item, "put skipped").await
    }

    async fn put_copies(&self, copies: &[InboxCopy]) -> StoreResult<()> {
        let item = |c: &InboxCopy| to_item(c, &[("pk", &inbox_pk(&c.user)), ("sk", &c.email_id)]);
        if let [copy] = copies {
            // One copy (a personal account's owner): one conditional put.
            self.put_if_absent(item(copy), "put inbox copy").await?;
            return Ok(());
        }
        // Many (a team): read which exist, then write the others in batches of 25. A copy
        // that exists keeps what the user did with it; only a user's change racing the first
        // delivery of the same email could be overwritten, and that delivery wrote it alike.
        let keys = copies
            .iter()
            .map(|c| key(&inbox_pk(&c.user), &c.email_id))
            .collect();
        let existing: HashSet<(String, String)> = self
            .batch_get(keys, "read inbox copies")
            .await?
            .iter()
            .filter_map(|i| Some((get_s(i, "pk")?.clone(), get_s(i, "sk")?.clone())))
            .collect();
        let new: Vec<_> = copies
            .iter()
            .filter(|c| !existing.contains(&(inbox_pk(&c.user), c.email_id.clone())))
            .map(item)
            .collect();
        self.batch_put(new, "put inbox copies").await
    }
}
