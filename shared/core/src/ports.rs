//! The capabilities the core needs, one small trait each. Adapters (DynamoDB, S3, SQS, KMS,
//! IMAP) implement them in other crates; [`crate::memory`] has in-memory fakes for unit tests.
//!
//! Methods return `impl Future + Send` so services stay generic and spawnable without boxing.

use std::future::Future;

use chrono::{DateTime, NaiveDate, Utc};

use crate::model::{
    Account, AccountStatus, EmailRecord, ErrorKind, FolderState, ImapSettings, QuarantineRecord,
    SealedSecret, Secret,
};

pub use crate::error::{ErrorClass, StoreError, StoreResult};

pub trait AccountStore: Send + Sync {
    fn create_account(&self, account: &Account) -> impl Future<Output = StoreResult<()>> + Send;
    fn get_account(&self, name: &str) -> impl Future<Output = StoreResult<Option<Account>>> + Send;
    fn list_accounts(&self) -> impl Future<Output = StoreResult<Vec<Account>>> + Send;
    /// Advance one folder's watermark (only after its messages are in S3 and enqueued, R-F5).
    fn save_folder_state(
        &self,
        account: &str,
        folder: &str,
        state: &FolderState,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    fn save_status(
        &self,
        account: &str,
        status: &AccountStatus,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Forget all watermarks and start again from `fetch_since` (R-F9).
    fn reset_account(
        &self,
        account: &str,
        fetch_since: NaiveDate,
    ) -> impl Future<Output = StoreResult<()>> + Send;
}

/// What storing an email did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upsert {
    /// First time Mailroom saw this email.
    Created,
    /// Already stored (another account got it first); now linked to this account too.
    Linked,
    /// Already stored and linked to this account: a redelivery or a re-fetch.
    AlreadyLinked,
}

pub trait EmailStore: Send + Sync {
    fn upsert_email(
        &self,
        email: &EmailRecord,
        account: &str,
    ) -> impl Future<Output = StoreResult<Upsert>> + Send;
    fn list_emails(&self) -> impl Future<Output = StoreResult<Vec<EmailRecord>>> + Send;
    fn put_quarantine(
        &self,
        record: &QuarantineRecord,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    fn get_quarantine(
        &self,
        id: &str,
    ) -> impl Future<Output = StoreResult<Option<QuarantineRecord>>> + Send;
    fn list_quarantine(&self) -> impl Future<Output = StoreResult<Vec<QuarantineRecord>>> + Send;
    fn remove_quarantine(&self, id: &str) -> impl Future<Output = StoreResult<()>> + Send;
}

pub trait BlobStore: Send + Sync {
    /// Idempotent: the same key always receives the same bytes.
    fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    fn get(&self, key: &str) -> impl Future<Output = StoreResult<Option<Vec<u8>>>> + Send;
}

/// Sends queue messages; the adapter batches them (10 per SQS request).
pub trait Queue<M>: Send + Sync {
    /// `group` is the FIFO message group (the account), ignored by standard queues;
    /// `dedupe` the FIFO deduplication id.
    fn send(&self, messages: &[Outgoing<M>]) -> impl Future<Output = StoreResult<()>> + Send;
}

#[derive(Debug, Clone)]
pub struct Outgoing<M> {
    pub message: M,
    pub group: Option<String>,
    pub dedupe: Option<String>,
}

impl<M> Outgoing<M> {
    pub fn plain(message: M) -> Self {
        Outgoing {
            message,
            group: None,
            dedupe: None,
        }
    }
}

/// Filters and what they did (R-X).
pub trait FilterStore: Send + Sync {
    fn filters(&self) -> impl Future<Output = StoreResult<Vec<crate::filters::Filter>>> + Send;
    /// Idempotent: keyed by account, folder, UIDVALIDITY and UID.
    fn put_skipped(
        &self,
        record: &crate::filters::SkippedRecord,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Creates the copy unless it exists (a redelivery must not undo what the user did).
    fn put_copy(
        &self,
        copy: &crate::filters::InboxCopy,
    ) -> impl Future<Output = StoreResult<()>> + Send;
}

/// Seals and opens account credentials (R-F8): envelope encryption, account name as AAD.
pub trait SecretBox: Send + Sync {
    fn seal(
        &self,
        account: &str,
        secret: &Secret,
    ) -> impl Future<Output = StoreResult<SealedSecret>> + Send;
    fn open(
        &self,
        account: &str,
        sealed: &SealedSecret,
    ) -> impl Future<Output = StoreResult<Secret>> + Send;
}

/// An IMAP failure, classified for the account status (R-F7).
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{kind} error: {message}")]
pub struct MailboxError {
    pub kind: ErrorKind,
    pub message: String,
}

impl MailboxError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        MailboxError {
            kind,
            message: message.into(),
        }
    }
}

pub type MailboxResult<T> = Result<T, MailboxError>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FolderInfo {
    pub uidvalidity: u32,
    /// `None` when the server did not say; the poller then searches.
    pub uidnext: Option<u32>,
    pub exists: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageMeta {
    pub uid: u32,
    pub size: u64,
    pub arrived: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedMessage {
    pub uid: u32,
    pub raw: Vec<u8>,
}

/// Opens read-only sessions on IMAP servers.
pub trait Mailbox: Send + Sync {
    type Session: MailboxSession;
    fn connect(
        &self,
        settings: &ImapSettings,
        password: &Secret,
    ) -> impl Future<Output = MailboxResult<Self::Session>> + Send;
}

/// A logged-in session. Every operation is read-only (R-F4): EXAMINE and BODY.PEEK only.
pub trait MailboxSession: Send {
    fn examine(&mut self, folder: &str) -> impl Future<Output = MailboxResult<FolderInfo>> + Send;
    /// UIDs of messages that arrived on or after `since` (INTERNALDATE, IMAP SEARCH SINCE);
    /// every message when `None`.
    fn search_since(
        &mut self,
        since: Option<NaiveDate>,
    ) -> impl Future<Output = MailboxResult<Vec<u32>>> + Send;
    /// UIDs strictly above `uid`.
    fn search_above(&mut self, uid: u32) -> impl Future<Output = MailboxResult<Vec<u32>>> + Send;
    /// Size and arrival date of each UID (one command for the whole set).
    fn metadata(
        &mut self,
        uids: &[u32],
    ) -> impl Future<Output = MailboxResult<Vec<MessageMeta>>> + Send;
    /// Header sections of `uids` (BODY.PEEK[HEADER]), in one UID FETCH: header-only filters
    /// decide before any body is downloaded (R-X3).
    fn fetch_headers(
        &mut self,
        uids: &[u32],
    ) -> impl Future<Output = MailboxResult<Vec<FetchedMessage>>> + Send;
    /// Whole raw messages for `uids`, in one UID FETCH.
    fn fetch(
        &mut self,
        uids: &[u32],
    ) -> impl Future<Output = MailboxResult<Vec<FetchedMessage>>> + Send;
    /// The first `max_bytes` of one message (oversize messages, R-F6).
    fn fetch_head(
        &mut self,
        uid: u32,
        max_bytes: u64,
    ) -> impl Future<Output = MailboxResult<FetchedMessage>> + Send;
    fn logout(self) -> impl Future<Output = ()> + Send;
}
