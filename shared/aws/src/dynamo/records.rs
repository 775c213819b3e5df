//! CRM records (accounts, contacts, leads, opportunities; cases in [`super::cases`]), their
//! address index, users and teams: the keys, and the reads linking and assignment need. The
//! writes only the CLI makes are in [`super::admin`].

use mailroom_core::admin::NewRecord;
use mailroom_core::error::StoreResult;
use mailroom_core::keys::{address_pk, case_sk, record_pk, split_address_sk, USERS_PK};
use mailroom_core::ports::AddressRecord;
use mailroom_core::records::{normalize_address, Contact, Lead, RecordKind, RecordRef, User};

use super::item::{get_s, key, to_item, Item};
use super::store::DynamoStore;

/// A record's key: cases by zero-padded number (listed in order), the rest by id.
pub(super) fn record_key(r: &RecordRef) -> Item {
    match r.kind {
        RecordKind::Case => key(
            &record_pk(r.kind.as_str()),
            &case_sk(r.id.parse::<u64>().unwrap_or(0)),
        ),
        _ => key(&record_pk(r.kind.as_str()), &r.id),
    }
}

/// A new record as its item: its fields plus its key.
pub(super) fn record_item(record: &NewRecord) -> Item {
    let r = record.reference();
    let pk = record_pk(r.kind.as_str());
    let keys = [("pk", pk.as_str()), ("sk", r.id.as_str())];
    match record {
        NewRecord::Account(a) => to_item(a, &keys),
        NewRecord::Contact(c) => to_item(c, &keys),
        NewRecord::Lead(l) => to_item(l, &keys),
        NewRecord::Opportunity(o) => to_item(o, &keys),
    }
}

impl DynamoStore {
    pub async fn list_users(&self) -> StoreResult<Vec<User>> {
        let mut users: Vec<User> = self.list_decoded(USERS_PK, "user").await?;
        users.sort_by(|a, b| (a.created_at, &a.name).cmp(&(b.created_at, &b.name)));
        Ok(users)
    }

    pub async fn get_user(&self, name: &str) -> StoreResult<Option<User>> {
        self.get_decoded(key(USERS_PK, name), "user").await
    }

    /// The records and users an address belongs to (R-L2), from the address index.
    pub(super) async fn address_records(&self, address: &str) -> StoreResult<Vec<AddressRecord>> {
        let items = self
            .query_partition(&address_pk(&normalize_address(address)))
            .await?;
        Ok(items
            .iter()
            .filter_map(|i| {
                let (kind, id) = split_address_sk(get_s(i, "sk")?)?;
                // `user#...` entries are no record: skipped here.
                let kind: RecordKind = kind.parse().ok()?;
                Some(AddressRecord {
                    record: RecordRef::new(kind, id),
                    account: get_s(i, "account").cloned(),
                })
            })
            .collect())
    }

    pub(super) async fn contact(&self, email: &str) -> StoreResult<Option<Contact>> {
        self.get_decoded(
            record_key(&RecordRef::new(RecordKind::Contact, email)),
            "contact",
        )
        .await
    }

    pub(super) async fn lead(&self, email: &str) -> StoreResult<Option<Lead>> {
        self.get_decoded(record_key(&RecordRef::new(RecordKind::Lead, email)), "lead")
            .await
    }
}

impl mailroom_core::ports::Directory for DynamoStore {
    async fn list_users(&self) -> StoreResult<Vec<User>> {
        DynamoStore::list_users(self).await
    }
    async fn get_users(&self, names: &[String]) -> StoreResult<Vec<User>> {
        // BatchGetItem refuses a request naming one key twice.
        let unique: std::collections::BTreeSet<&String> = names.iter().collect();
        let keys = unique.into_iter().map(|n| key(USERS_PK, n)).collect();
        self.batch_get(keys, "read users")
            .await?
            .iter()
            .map(|i| super::store::decode("user", i))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailroom_core::SCHEMA_VERSION;

    use crate::dynamo::item::s;

    #[test]
    fn cases_are_keyed_by_padded_number_and_contacts_by_normalised_address() {
        let case = record_key(&RecordRef::case(42));
        assert_eq!(case["pk"], s("REC#case"));
        assert_eq!(case["sk"], s("000000000042"));
        let item = record_item(&NewRecord::Contact(Contact {
            v: SCHEMA_VERSION,
            name: "Ann".into(),
            email: "Ann@Example.com".into(),
            account: None,
        }));
        assert_eq!(item["pk"], s("REC#contact"));
        assert_eq!(item["sk"], s("ann@example.com"));
        assert_eq!(item["name"], s("Ann"));
    }
}
