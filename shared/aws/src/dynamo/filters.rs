//! Filters (R-X), the messages they skipped, and users' copies of emails ([`FilterStore`]).

use mailroom_core::error::StoreResult;
use mailroom_core::filters::{Filter, InboxCopy, SkippedRecord};
use mailroom_core::keys::{inbox_pk, FILTERS_PK, SKIPPED_PK};
use mailroom_core::ports::FilterStore;

use super::item::to_item;
use super::store::DynamoStore;

impl FilterStore for DynamoStore {
    async fn filters(&self) -> StoreResult<Vec<Filter>> {
        self.list_decoded(FILTERS_PK, "filter").await
    }

    async fn put_skipped(&self, record: &SkippedRecord) -> StoreResult<()> {
        let item = to_item(record, &[("pk", SKIPPED_PK), ("sk", &record.key())]);
        self.put(item, "put skipped").await
    }

    async fn put_copy(&self, copy: &InboxCopy) -> StoreResult<()> {
        let pk = inbox_pk(&copy.user);
        let item = to_item(copy, &[("pk", &pk), ("sk", &copy.email_id)]);
        // Already there: keep what the user has done with it.
        self.put_if_absent(item, "put inbox copy").await?;
        Ok(())
    }
}
