//! In-memory fakes of every port, for unit tests of the core. They follow the same contracts as
//! the real adapters (which are tested against the local stack), with their own tests below.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

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
}

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
    async fn list_accounts(&self) -> StoreResult<Vec<Account>> {
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
        Ok(self.filters.lock().unwrap().clone())
    }
    async fn put_skipped(&self, record: &crate::filters::SkippedRecord) -> StoreResult<()> {
        let mut list = self.skipped.lock().unwrap();
        list.retain(|r| r.key() != record.key());
        list.push(record.clone());
        Ok(())
    }
    async fn put_copy(&self, copy: &crate::filters::InboxCopy) -> StoreResult<()> {
        let mut list = self.copies.lock().unwrap();
        if !list
            .iter()
            .any(|c| c.user == copy.user && c.email_id == copy.email_id)
        {
            list.push(copy.clone());
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

/// A scripted IMAP server: folders of (uid, arrival, raw) and a UIDVALIDITY each. Cloning
/// shares the state, so a test keeps a handle while the poller holds another.
#[derive(Clone, Default)]
pub struct FakeMailbox {
    inner: Arc<FakeInner>,
}

#[derive(Default)]
struct FakeInner {
    folders: Mutex<BTreeMap<String, FakeFolder>>,
    password: Mutex<String>,
    log: Mutex<Vec<String>>,
}

#[derive(Default, Clone)]
pub struct FakeFolder {
    pub uidvalidity: u32,
    pub messages: Vec<(u32, DateTime<Utc>, Vec<u8>)>,
}

impl FakeMailbox {
    pub fn new(password: &str) -> Self {
        let m = FakeMailbox::default();
        *m.inner.password.lock().unwrap() = password.to_string();
        m
    }
    pub fn append(&self, folder: &str, arrived: DateTime<Utc>, raw: &[u8]) -> u32 {
        let mut folders = self.inner.folders.lock().unwrap();
        let f = folders.entry(folder.to_string()).or_insert(FakeFolder {
            uidvalidity: 1,
            messages: vec![],
        });
        let uid = f.messages.last().map(|m| m.0 + 1).unwrap_or(1);
        f.messages.push((uid, arrived, raw.to_vec()));
        uid
    }
    /// Renumbers the folder under a new UIDVALIDITY, as a server rebuild would.
    pub fn renumber(&self, folder: &str, uidvalidity: u32) {
        let mut folders = self.inner.folders.lock().unwrap();
        let f = folders.get_mut(folder).expect("folder exists");
        f.uidvalidity = uidvalidity;
        for (i, m) in f.messages.iter_mut().enumerate() {
            m.0 = 1000 + i as u32;
        }
    }
    /// Commands issued so far (to assert what the poller asked for).
    pub fn log(&self) -> Vec<String> {
        self.inner.log.lock().unwrap().clone()
    }
}

pub struct FakeSession {
    inner: Arc<FakeInner>,
    folder: Option<FakeFolder>,
}

impl Mailbox for FakeMailbox {
    type Session = FakeSession;
    async fn connect(&self, _s: &ImapSettings, password: &Secret) -> MailboxResult<FakeSession> {
        if password.expose() != *self.inner.password.lock().unwrap() {
            return Err(MailboxError::new(ErrorKind::Auth, "authentication failed"));
        }
        Ok(FakeSession {
            inner: self.inner.clone(),
            folder: None,
        })
    }
}

impl FakeSession {
    fn log(&self, s: String) {
        self.inner.log.lock().unwrap().push(s);
    }
    fn folder(&self) -> MailboxResult<&FakeFolder> {
        self.folder
            .as_ref()
            .ok_or_else(|| MailboxError::new(ErrorKind::Protocol, "no folder selected"))
    }
}

impl MailboxSession for FakeSession {
    async fn examine(&mut self, folder: &str) -> MailboxResult<FolderInfo> {
        self.log(format!("EXAMINE {folder}"));
        let f = self
            .inner
            .folders
            .lock()
            .unwrap()
            .get(folder)
            .cloned()
            .ok_or_else(|| MailboxError::new(ErrorKind::Folder, format!("no folder {folder}")))?;
        let info = FolderInfo {
            uidvalidity: f.uidvalidity,
            uidnext: Some(f.messages.last().map(|m| m.0 + 1).unwrap_or(1)),
            exists: f.messages.len() as u32,
        };
        self.folder = Some(f);
        Ok(info)
    }
    async fn search_since(&mut self, since: Option<NaiveDate>) -> MailboxResult<Vec<u32>> {
        self.log(format!("SEARCH SINCE {since:?}"));
        Ok(self
            .folder()?
            .messages
            .iter()
            .filter(|m| since.is_none_or(|d| m.1.date_naive() >= d))
            .map(|m| m.0)
            .collect())
    }
    async fn search_above(&mut self, uid: u32) -> MailboxResult<Vec<u32>> {
        self.log(format!("SEARCH UID {}:*", uid + 1));
        Ok(self
            .folder()?
            .messages
            .iter()
            .filter(|m| m.0 > uid)
            .map(|m| m.0)
            .collect())
    }
    async fn metadata(&mut self, uids: &[u32]) -> MailboxResult<Vec<MessageMeta>> {
        self.log(format!("FETCH META {}", uids.len()));
        Ok(self
            .folder()?
            .messages
            .iter()
            .filter(|m| uids.contains(&m.0))
            .map(|m| MessageMeta {
                uid: m.0,
                size: m.2.len() as u64,
                arrived: Some(m.1),
            })
            .collect())
    }
    async fn fetch_headers(&mut self, uids: &[u32]) -> MailboxResult<Vec<FetchedMessage>> {
        self.log(format!("FETCH HEADER {uids:?}"));
        Ok(self
            .folder()?
            .messages
            .iter()
            .filter(|m| uids.contains(&m.0))
            .map(|m| FetchedMessage {
                uid: m.0,
                raw: crate::ids::split_header_body(&m.2).0.to_vec(),
            })
            .collect())
    }
    async fn fetch(&mut self, uids: &[u32]) -> MailboxResult<Vec<FetchedMessage>> {
        self.log(format!("FETCH BODY {uids:?}"));
        Ok(self
            .folder()?
            .messages
            .iter()
            .filter(|m| uids.contains(&m.0))
            .map(|m| FetchedMessage {
                uid: m.0,
                raw: m.2.clone(),
            })
            .collect())
    }
    async fn fetch_head(&mut self, uid: u32, max_bytes: u64) -> MailboxResult<FetchedMessage> {
        self.log(format!("FETCH HEAD {uid}"));
        let m = self
            .folder()?
            .messages
            .iter()
            .find(|m| m.0 == uid)
            .ok_or_else(|| MailboxError::new(ErrorKind::Protocol, "no such uid"))?;
        Ok(FetchedMessage {
            uid,
            raw: m.2[..m.2.len().min(max_bytes as usize)].to_vec(),
        })
    }
    async fn logout(self) {}
}
