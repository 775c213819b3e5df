//! Fakes of the storage ports: DynamoDB-like store, S3-like blobs, an SQS-like queue, and a
//! stand-in for the KMS envelope.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use chrono::{DateTime, NaiveDate, Utc};

use crate::model::*;
use crate::ports::*;

#[derive(Default)]
pub struct MemoryStore {
    accounts: Mutex<BTreeMap<String, Account>>,
    emails: Mutex<BTreeMap<String, EmailRecord>>,
    quarantine: Mutex<BTreeMap<String, QuarantineRecord>>,
    pub filters: Mutex<Vec<crate::filters::Filter>>,
    pub skipped: Mutex<Vec<crate::filters::SkippedRecord>>,
    pub copies: Mutex<Vec<crate::filters::InboxCopy>>,
    /// Counts writes, so tests can assert that an idle poll writes nothing.
    pub writes: Mutex<u32>,
    /// Counts account look-ups (`get_accounts`, `own_addresses`), so tests can see a cache
    /// answer instead of the store.
    pub account_reads: Mutex<u32>,
    /// Counts filter listings, for the same reason.
    pub filter_reads: Mutex<u32>,
    /// Counts account listings, so tests can see a tick read the schedule index instead.
    pub account_listings: Mutex<u32>,
}

/// Entries per schedule-index page: small, so tests of a thousand accounts page.
pub const SCHEDULE_PAGE: usize = 100;

impl MemoryStore {
    fn wrote(&self) {
        *self.writes.lock().unwrap() += 1;
    }
}

impl AccountStore for MemoryStore {
    async fn create_account(&self, account: &Account) -> StoreResult<()> {
        let mut map = self.accounts.lock().unwrap();
        if map.contains_key(&account.name) {
            return Err(StoreError::AlreadyExists(format!(
                "account {}",
                account.name
            )));
        }
        map.insert(account.name.clone(), account.clone());
        self.wrote();
        Ok(())
    }
    async fn get_account(&self, name: &str) -> StoreResult<Option<Account>> {
        Ok(self.accounts.lock().unwrap().get(name).cloned())
    }
    async fn get_accounts(&self, names: &[String]) -> StoreResult<Vec<Account>> {
        *self.account_reads.lock().unwrap() += 1;
        let map = self.accounts.lock().unwrap();
        Ok(names.iter().filter_map(|n| map.get(n).cloned()).collect())
    }
    async fn own_addresses(&self, addresses: &[String]) -> StoreResult<Vec<String>> {
        *self.account_reads.lock().unwrap() += 1;
        let map = self.accounts.lock().unwrap();
        let ours: std::collections::HashSet<String> = map
            .values()
            .filter_map(|a| a.address.as_deref().map(crate::records::normalize_address))
            .collect();
        Ok(addresses
            .iter()
            .filter(|a| ours.contains(*a))
            .cloned()
            .collect())
    }
    async fn list_accounts(&self) -> StoreResult<Vec<Account>> {
        *self.account_listings.lock().unwrap() += 1;
        Ok(self.accounts.lock().unwrap().values().cloned().collect())
    }
    async fn save_folder_state(
        &self,
        account: &str,
        folder: &str,
        state: &FolderState,
    ) -> StoreResult<()> {
        let mut map = self.accounts.lock().unwrap();
        let a = map
            .get_mut(account)
            .ok_or_else(|| StoreError::NotFound(format!("account {account}")))?;
        a.folder_state.insert(folder.to_string(), state.clone());
        self.wrote();
        Ok(())
    }
    async fn save_status(&self, account: &str, status: &AccountStatus) -> StoreResult<()> {
        let mut map = self.accounts.lock().unwrap();
        let a = map
            .get_mut(account)
            .ok_or_else(|| StoreError::NotFound(format!("account {account}")))?;
        a.status = status.clone();
        self.wrote();
        Ok(())
    }
    async fn record_send_error(
        &self,
        account: &str,
        error: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut map = self.accounts.lock().unwrap();
        let a = map
            .get_mut(account)
            .ok_or_else(|| StoreError::NotFound(format!("account {account}")))?;
        a.send_error = Some(error.to_string());
        a.send_error_at = Some(at);
        Ok(())
    }
    async fn reset_account(&self, account: &str, fetch_since: NaiveDate) -> StoreResult<()> {
        let mut map = self.accounts.lock().unwrap();
        let a = map
            .get_mut(account)
            .ok_or_else(|| StoreError::NotFound(format!("account {account}")))?;
        a.folder_state.clear();
        a.fetch_since = Some(fetch_since);
        self.wrote();
        Ok(())
    }
}

/// The index as DynamoDB keeps it: each account under its placement, sorted by the sort key
/// string (then name), read a page at a time.
impl ScheduleIndex for MemoryStore {
    async fn schedule_page(
        &self,
        range: &crate::schedule::index::IndexRange,
        forward: bool,
        start: Option<String>,
    ) -> StoreResult<crate::schedule::index::SchedulePage> {
        use crate::schedule::index::{in_range, index_time, placement, SchedulePage};
        let map = self.accounts.lock().unwrap();
        let mut rows: Vec<(String, crate::schedule::ScheduleEntry)> = map
            .values()
            .filter_map(|a| {
                let p = placement(&a.name, &a.status);
                let sort = index_time(p.sort.unwrap_or(a.created_at));
                let key = format!("{sort}\n{}", a.name);
                (p.partition == range.partition && in_range(range, &sort))
                    .then(|| (key, crate::schedule::ScheduleEntry::of(a)))
            })
            .collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        if !forward {
            rows.reverse();
        }
        let after = |k: &String| match &start {
            None => true,
            Some(s) if forward => k > s,
            Some(s) => k < s,
        };
        let page: Vec<_> = rows
            .into_iter()
            .filter(|(k, _)| after(k))
            .take(SCHEDULE_PAGE + 1)
            .collect();
        let more = page.len() > SCHEDULE_PAGE;
        let page = &page[..page.len().min(SCHEDULE_PAGE)];
        Ok(SchedulePage {
            next: more.then(|| page.last().expect("a full page").0.clone()),
            entries: page.iter().map(|(_, e)| e.clone()).collect(),
        })
    }
}

impl EmailStore for MemoryStore {
    async fn upsert_email(&self, email: &EmailRecord, account: &str) -> StoreResult<Upsert> {
        let mut map = self.emails.lock().unwrap();
        match map.get_mut(&email.email_id) {
            None => {
                let mut e = email.clone();
                e.accounts = vec![account.to_string()];
                map.insert(e.email_id.clone(), e);
                Ok(Upsert::Created)
            }
            Some(e) if e.accounts.iter().any(|a| a == account) => Ok(Upsert::AlreadyLinked),
            Some(e) => {
                e.accounts.push(account.to_string());
                e.accounts.sort();
                Ok(Upsert::Linked)
            }
        }
    }
    async fn list_emails(&self) -> StoreResult<Vec<EmailRecord>> {
        Ok(self.emails.lock().unwrap().values().cloned().collect())
    }
    async fn get_email(&self, email_id: &str) -> StoreResult<Option<EmailRecord>> {
        Ok(self.emails.lock().unwrap().get(email_id).cloned())
    }
    async fn put_quarantine(&self, record: &QuarantineRecord) -> StoreResult<()> {
        self.quarantine
            .lock()
            .unwrap()
            .insert(record.id.clone(), record.clone());
        Ok(())
    }
    async fn get_quarantine(&self, id: &str) -> StoreResult<Option<QuarantineRecord>> {
        Ok(self.quarantine.lock().unwrap().get(id).cloned())
    }
    async fn list_quarantine(&self) -> StoreResult<Vec<QuarantineRecord>> {
        Ok(self.quarantine.lock().unwrap().values().cloned().collect())
    }
    async fn remove_quarantine(&self, id: &str) -> StoreResult<()> {
        self.quarantine.lock().unwrap().remove(id);
        Ok(())
    }
}

impl FilterStore for MemoryStore {
    async fn filters(&self) -> StoreResult<Vec<crate::filters::Filter>> {
        *self.filter_reads.lock().unwrap() += 1;
        Ok(self.filters.lock().unwrap().clone())
    }
    async fn put_skipped(&self, record: &crate::filters::SkippedRecord) -> StoreResult<()> {
        let mut list = self.skipped.lock().unwrap();
        list.retain(|r| r.key() != record.key());
        list.push(record.clone());
        Ok(())
    }
    async fn put_copies(&self, copies: &[crate::filters::InboxCopy]) -> StoreResult<()> {
        let mut list = self.copies.lock().unwrap();
        for copy in copies {
            if !list
                .iter()
                .any(|c| c.user == copy.user && c.email_id == copy.email_id)
            {
                list.push(copy.clone());
            }
        }
        Ok(())
    }
}

#[derive(Default)]
pub struct MemoryBlobs {
    pub objects: Mutex<HashMap<String, Vec<u8>>>,
}

impl BlobStore for MemoryBlobs {
    async fn put(&self, key: &str, bytes: Vec<u8>, _content_type: &str) -> StoreResult<()> {
        self.objects.lock().unwrap().insert(key.to_string(), bytes);
        Ok(())
    }
    async fn get(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        Ok(self.objects.lock().unwrap().get(key).cloned())
    }
}

pub struct MemoryQueue<M> {
    pub sent: Mutex<Vec<M>>,
}

impl<M> Default for MemoryQueue<M> {
    fn default() -> Self {
        MemoryQueue {
            sent: Mutex::new(Vec::new()),
        }
    }
}

impl<M: Clone + Send + Sync> Queue<M> for MemoryQueue<M> {
    async fn send(&self, messages: &[Outgoing<M>]) -> StoreResult<()> {
        self.sent
            .lock()
            .unwrap()
            .extend(messages.iter().map(|o| o.message.clone()));
        Ok(())
    }
}

/// Not encryption: a reversible stand-in that still binds the secret to the account name, so
/// tests notice a secret opened under the wrong account.
pub struct FakeSecretBox;

impl SecretBox for FakeSecretBox {
    async fn seal(&self, account: &str, secret: &Secret) -> StoreResult<SealedSecret> {
        Ok(SealedSecret {
            key_id: "fake".into(),
            nonce: account.to_string(),
            ciphertext: secret.expose().chars().rev().collect(),
        })
    }
    async fn open(&self, account: &str, sealed: &SealedSecret) -> StoreResult<Secret> {
        if sealed.nonce != account {
            return Err(StoreError::backend(
                "open secret",
                "sealed for another account",
            ));
        }
        Ok(Secret::new(
            sealed.ciphertext.chars().rev().collect::<String>(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::builders::test_account;

    #[tokio::test]
    async fn accounts_are_created_once_and_writes_are_counted() {
        let store = MemoryStore::default();
        let a = test_account("a", chrono::Utc::now());
        store.create_account(&a).await.unwrap();
        assert!(matches!(
            store.create_account(&a).await,
            Err(StoreError::AlreadyExists(_))
        ));
        let state = FolderState {
            uidvalidity: 1,
            last_uid: 5,
            last_arrival: None,
        };
        store.save_folder_state("a", "INBOX", &state).await.unwrap();
        assert!(matches!(
            store.save_folder_state("nobody", "INBOX", &state).await,
            Err(StoreError::NotFound(_))
        ));
        assert_eq!(*store.writes.lock().unwrap(), 2);
        let since = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        store.reset_account("a", since).await.unwrap();
        let back = store.get_account("a").await.unwrap().unwrap();
        assert!(back.folder_state.is_empty());
        assert_eq!(back.fetch_since, Some(since));
    }

    #[tokio::test]
    async fn accounts_are_read_by_name_and_own_addresses_by_look_up() {
        let store = MemoryStore::default();
        for (name, address) in [("a", Some("Support@Corp.example")), ("b", None)] {
            let mut account = test_account(name, chrono::Utc::now());
            account.address = address.map(str::to_string);
            store.create_account(&account).await.unwrap();
        }
        let names = |v: Vec<Account>| v.into_iter().map(|a| a.name).collect::<Vec<_>>();
        let asked = ["b".to_string(), "gone".to_string(), "a".to_string()];
        assert_eq!(names(store.get_accounts(&asked).await.unwrap()), ["b", "a"]);
        assert!(store.get_accounts(&[]).await.unwrap().is_empty());
        let ours = store
            .own_addresses(&["support@corp.example".into(), "x@cust.example".into()])
            .await
            .unwrap();
        assert_eq!(ours, ["support@corp.example"], "normalised, and only ours");
    }

    #[tokio::test]
    async fn an_email_is_stored_once_and_linked_to_each_account_once() {
        let store = MemoryStore::default();
        let email: EmailRecord = serde_json::from_value(serde_json::json!({
            "email_id": "e", "message_id": "m", "synthetic_id": false,
            "auto_submitted": false, "list": false, "bounce": false, "size": 1,
            "attachments_skipped": false, "raw_key": "k", "received_at": "2026-01-01T00:00:00Z"
        }))
        .unwrap();
        assert_eq!(
            store.upsert_email(&email, "b").await.unwrap(),
            Upsert::Created
        );
        assert_eq!(
            store.upsert_email(&email, "a").await.unwrap(),
            Upsert::Linked
        );
        assert_eq!(
            store.upsert_email(&email, "b").await.unwrap(),
            Upsert::AlreadyLinked
        );
        let all = store.list_emails().await.unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].accounts, ["a", "b"]);
    }

    #[tokio::test]
    async fn blobs_queues_and_the_secret_box_keep_their_contracts() {
        let blobs = MemoryBlobs::default();
        blobs.put("k", b"one".to_vec(), "text/plain").await.unwrap();
        assert_eq!(blobs.get("k").await.unwrap().as_deref(), Some(&b"one"[..]));
        assert_eq!(blobs.get("missing").await.unwrap(), None);

        let queue = MemoryQueue::<u32>::default();
        queue
            .send(&[Outgoing::plain(1), Outgoing::plain(2)])
            .await
            .unwrap();
        assert_eq!(*queue.sent.lock().unwrap(), [1, 2]);

        let sealed = FakeSecretBox.seal("a", &Secret::new("pw")).await.unwrap();
        assert_eq!(
            FakeSecretBox.open("a", &sealed).await.unwrap().expose(),
            "pw"
        );
        assert!(FakeSecretBox.open("b", &sealed).await.is_err());
        // The test account builder's secret opens like any sealed one.
        let a = test_account("a", chrono::Utc::now());
        assert_eq!(
            FakeSecretBox.open("a", &a.secret).await.unwrap().expose(),
            "pw"
        );
    }
}
