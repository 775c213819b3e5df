//! The capabilities the core needs, one small trait each. Adapters (DynamoDB, S3, SQS, KMS,
//! IMAP) implement them in other crates; [`crate::memory`] has in-memory fakes for unit tests.
//!
//! Methods return `impl Future + Send` so services stay generic and spawnable without boxing.

use std::collections::HashMap;
use std::future::Future;

use chrono::{DateTime, NaiveDate, Utc};

use crate::model::{
    Account, AccountStatus, EmailRecord, ErrorKind, FolderState, ImapSettings, QuarantineRecord,
    SealedSecret, Secret,
};
use crate::records::{Case, MessageEntry, RecordRef, ThreadClaim, User};
use crate::types::CaseNumber;

pub use crate::error::{ErrorClass, StoreError, StoreResult};

pub trait AccountStore: Send + Sync {
    fn create_account(&self, account: &Account) -> impl Future<Output = StoreResult<()>> + Send;
    fn get_account(&self, name: &str) -> impl Future<Output = StoreResult<Option<Account>>> + Send;
    /// The named accounts that exist, in as few requests as the store allows: an ingest batch
    /// reads its own accounts, never the listing, so its cost does not grow with the deployment.
    fn get_accounts(
        &self,
        names: &[String],
    ) -> impl Future<Output = StoreResult<Vec<Account>>> + Send;
    /// Which of these normalised addresses are an account's own address (mail from them is
    /// ours, R-L3): a look-up in an address index, not a listing of the accounts.
    fn own_addresses(
        &self,
        addresses: &[String],
    ) -> impl Future<Output = StoreResult<Vec<String>>> + Send;
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
    /// The mail service refused a send for good (an unverified identity, a paused account):
    /// kept on the account with when, so the operator sees why its auto-replies stopped.
    fn record_send_error(
        &self,
        account: &str,
        error: &str,
        at: DateTime<Utc>,
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
    fn get_email(
        &self,
        email_id: &str,
    ) -> impl Future<Output = StoreResult<Option<EmailRecord>>> + Send;
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

/// The users of the deployment, in round-robin order (join order): who receives a group
/// account's mail, whose personal accounts are polled.
pub trait Directory: Send + Sync {
    fn list_users(&self) -> impl Future<Output = StoreResult<Vec<User>>> + Send;
    /// The named users that exist, by key: a scheduler tick asks about the owners of the
    /// personal accounts it found due, never for the whole list.
    fn get_users(&self, names: &[String]) -> impl Future<Output = StoreResult<Vec<User>>> + Send;
}

/// The schedule index (`crate::schedule::index`): accounts by shard and last mail, with just
/// what the scheduling decision reads, so a tick reads the due accounts and nothing else.
pub trait ScheduleIndex: Send + Sync {
    /// One page of `range`, in sort-key order (descending unless `forward`), from `start`
    /// (a previous page's `next`; `None`: the beginning).
    fn schedule_page(
        &self,
        range: &crate::schedule::index::IndexRange,
        forward: bool,
        start: Option<String>,
    ) -> impl Future<Output = StoreResult<crate::schedule::index::SchedulePage>> + Send;
}

/// Filters and what they did (R-X).
pub trait FilterStore: Send + Sync {
    fn filters(&self) -> impl Future<Output = StoreResult<Vec<crate::filters::Filter>>> + Send;
    /// Idempotent: keyed by account, folder, UIDVALIDITY and UID.
    fn put_skipped(
        &self,
        record: &crate::filters::SkippedRecord,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Creates each copy unless it exists (a redelivery must not undo what the user did), in
    /// as few requests as the store allows: a large team's copies are a few batches.
    fn put_copies(
        &self,
        copies: &[crate::filters::InboxCopy],
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
    /// Set when the server itself refused the command (NO, BAD, or BYE in answer to it), as
    /// opposed to a network, TLS or timeout failure: a refused FETCH is about the messages
    /// asked for, so the poller splits it down to the one it cannot read instead of failing.
    pub refusal: Option<Refusal>,
}

/// How the server refused a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A tagged NO or BAD: the session is still usable.
    Answered,
    /// BYE: the server closed the session (Dovecot does so after a FETCH it cannot serve).
    Closed,
}

impl MailboxError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        MailboxError {
            kind,
            message: message.into(),
            refusal: None,
        }
    }

    /// The server refused the command; `message` carries its words.
    pub fn refused(refusal: Refusal, message: impl Into<String>) -> Self {
        MailboxError {
            kind: ErrorKind::Protocol,
            message: message.into(),
            refusal: Some(refusal),
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
    /// RFC822.SIZE; `None` when the server did not say (left out, or 0, which no real message
    /// has): such a message is fetched alone and bounded by the size limit as it is read.
    pub size: Option<u64>,
    pub arrived: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedMessage {
    pub uid: u32,
    pub raw: Vec<u8>,
}

/// The deployment's rules for IMAP servers, asked before an account is stored, so a refused
/// account never exists: plaintext only when allowed (R-F8), no host that resolves to a
/// private, loopback or link-local address unless allowed (R-F8b).
pub trait HostPolicy: Send + Sync {
    fn permits(&self, security: crate::model::Security) -> MailboxResult<()>;
    fn check_host(&self, host: &str, port: u16) -> impl Future<Output = MailboxResult<()>> + Send;
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
    /// Whole raw messages for `uids`, in one UID FETCH. A UID the server has no content for
    /// (NIL, or no answer) is left out; a refused command is an error with a [`Refusal`].
    fn fetch(
        &mut self,
        uids: &[u32],
    ) -> impl Future<Output = MailboxResult<Vec<FetchedMessage>>> + Send;
    /// The first `max_bytes` of one message (oversize messages, R-F6, and those of unknown
    /// size); `None` when the server returned no content for it.
    fn fetch_head(
        &mut self,
        uid: u32,
        max_bytes: u64,
    ) -> impl Future<Output = MailboxResult<Option<FetchedMessage>>> + Send;
    fn logout(self) -> impl Future<Output = ()> + Send;
}

/// A record found by address; a contact's account comes along so linking needs no second read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressRecord {
    pub record: RecordRef,
    pub account: Option<String>,
}

/// The writes that attach one email to its parent (idempotent: keyed by the email id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailLink {
    pub email_id: String,
    pub message_id: String,
    pub parent: Option<RecordRef>,
    pub thread_key: String,
    pub subject: Option<String>,
    pub at: DateTime<Utc>,
    /// Addresses on this email, added to the case's participants.
    pub participants: Vec<String>,
    /// Teams the email gets (R-I4): the group account's, and its case's when on a case.
    pub teams: Vec<String>,
    /// A copy of mail Mailroom sent (R-I3): its message index entry stays marked ours.
    pub ours: bool,
}

/// Items one DynamoDB transaction may hold. moto does not enforce it, so the adapter and the
/// fake refuse a larger claim themselves, and a local run fails where AWS would.
pub const MAX_TRANSACTION_ITEMS: usize = 100;

/// What an assignment was chosen under, and what it moves; the claim fails if the state read
/// moved. Its size does not grow with the team: a least-busy choice over 1,000 members checks
/// one member's count and one team version, so the claim stays one bounded transaction.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AssignmentGuard {
    /// Round-robin and least-busy: the account's counter as read, and its next value.
    pub counter: Option<CounterStep>,
    /// Least-busy: the chosen member's open count and the target team's load version as read.
    pub least_busy: Option<LeastBusyRead>,
    /// Every team the assignee is in: each one's load version moves with the assignee's count,
    /// so a least-busy choice in any of them sees the change (`keys::team_loads_sk`).
    pub assignee_teams: Vec<String>,
}

/// A counter's value as read and the value a claim sets, conditional on the read one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterStep {
    pub key: String,
    pub expected: u64,
    pub new: u64,
}

/// What a least-busy choice depends on beyond the counter. The team's load version is bumped
/// by every change of any member's open count (claims, status changes), and it was read before
/// the counts: if it still holds, no member's count moved since, so the choice still stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeastBusyRead {
    pub team: String,
    pub version: u64,
    /// The chosen member's open count (also covered by the version; checked as a second guard).
    pub load: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    Created,
    /// Another email of the thread claimed it first: join that case.
    ThreadTaken(ThreadClaim),
    /// The round-robin counter, a team's load version or the assignee's count moved under
    /// us: choose again.
    Moved,
}

/// Records and cases, as linking needs them.
pub trait Crm: Send + Sync {
    fn messages(
        &self,
        ids: &[String],
    ) -> impl Future<Output = StoreResult<Vec<MessageEntry>>> + Send;
    /// Records holding this address: contacts (with their account), accounts, leads.
    fn records_by_address(
        &self,
        address: &str,
    ) -> impl Future<Output = StoreResult<Vec<AddressRecord>>> + Send;
    fn contact_account(
        &self,
        email: &str,
    ) -> impl Future<Output = StoreResult<Option<String>>> + Send;
    /// A lead's conversion target, if converted.
    fn lead_target(
        &self,
        email: &str,
    ) -> impl Future<Output = StoreResult<Option<RecordRef>>> + Send;
    fn get_case(
        &self,
        number: CaseNumber,
    ) -> impl Future<Output = StoreResult<Option<Case>>> + Send;
    fn thread_case(
        &self,
        thread_key: &str,
    ) -> impl Future<Output = StoreResult<Option<ThreadClaim>>> + Send;
    /// Users of a team in round-robin order (join order).
    fn team_members(&self, team: &str) -> impl Future<Output = StoreResult<Vec<User>>> + Send;
    fn counter(&self, key: &str) -> impl Future<Output = StoreResult<u64>> + Send;
    fn open_loads(
        &self,
        users: &[String],
    ) -> impl Future<Output = StoreResult<HashMap<String, u64>>> + Send;
    /// Atomic, never reused; a crash may leave a gap (R-C7).
    fn next_case_number(&self) -> impl Future<Output = StoreResult<CaseNumber>> + Send;
    fn claim_case(
        &self,
        case: &Case,
        guard: Option<&AssignmentGuard>,
        link: &EmailLink,
    ) -> impl Future<Output = StoreResult<Claim>> + Send;
    /// Attaches the email to a case it belongs to; reopens a closed case when asked.
    fn join_case(
        &self,
        number: CaseNumber,
        link: &EmailLink,
        reopen: bool,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Records the email's parent (or none) and its thread in the message index.
    fn link_email(&self, link: &EmailLink) -> impl Future<Output = StoreResult<()>> + Send;
    fn record_case_error(
        &self,
        account: &str,
        error: &str,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// A record's name (an account's, contact's, lead's, opportunity's or case's), if it
    /// exists: what templates call it.
    fn record_name(
        &self,
        record: &RecordRef,
    ) -> impl Future<Output = StoreResult<Option<String>>> + Send;
    /// Records a message Mailroom sent (R-S4, R-I3): both its Message-IDs (ours and the one
    /// the recipient sees) in the message index, marked ours, on `thread_key`, so a reply
    /// threads and a copy coming back is known; and an `email_sent` entry in its parent's
    /// stream. Idempotent.
    fn index_sent(
        &self,
        sent: &crate::dispatch::records::SentRecord,
        thread_key: &str,
    ) -> impl Future<Output = StoreResult<()>> + Send;
}

/// One raw message for the mail service (SES v2 `SendEmail` with raw content).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMail {
    /// The envelope sender: a verified identity.
    pub from: crate::types::EmailAddress,
    /// Envelope recipients; the raw message's To/Cc say who it is shown to.
    pub destinations: Vec<crate::types::EmailAddress>,
    /// The complete RFC 5322 message, at most [`MAX_RAW_MAIL_BYTES`].
    pub raw: Vec<u8>,
}

/// SES v2 takes raw messages up to 40 MB.
pub const MAX_RAW_MAIL_BYTES: usize = 40 * 1024 * 1024;

/// Whether the mail service lets an address send yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityStatus {
    Verified,
    /// The owner was mailed a link (AWS); sending is refused until it is followed.
    Pending,
}

/// Outgoing mail (SES).
pub trait Mailer: Send + Sync {
    /// Sends one message; returns the id the service gave it (SES: the bare id, which becomes
    /// the delivered mail's Message-ID through [`Mailer::delivered_message_id`]).
    fn send_raw(&self, mail: &OutgoingMail) -> impl Future<Output = StoreResult<String>> + Send;
    /// Asks the service to verify `address` as a sending identity (idempotent).
    fn verify_identity(
        &self,
        address: &crate::types::EmailAddress,
    ) -> impl Future<Output = StoreResult<IdentityStatus>> + Send;
    /// The Message-ID the recipient sees for a service id, without angle brackets
    /// (SES replaces ours: `<id>@email.amazonses.com` in us-east-1, `<id>@<region>.amazonses.com`
    /// elsewhere).
    fn delivered_message_id(&self, service_id: &str) -> String;
}

/// Who follows which record (R-N1).
pub trait Followers: Send + Sync {
    fn followers(
        &self,
        record: &RecordRef,
    ) -> impl Future<Output = StoreResult<Vec<String>>> + Send;
    /// Idempotent.
    fn follow(
        &self,
        user: &str,
        record: &RecordRef,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Idempotent: unfollowing what one does not follow changes nothing.
    fn unfollow(
        &self,
        user: &str,
        record: &RecordRef,
    ) -> impl Future<Output = StoreResult<()>> + Send;
}

/// What dispatch remembers: sends (its idempotency records), suppressions, the per-sender
/// auto-reply allowance, notifications and failing addresses.
pub trait DispatchStore: Send + Sync {
    fn sent(
        &self,
        id: &str,
    ) -> impl Future<Output = StoreResult<Option<crate::dispatch::records::SentRecord>>> + Send;
    /// Idempotent (same id, same item).
    fn put_sent(
        &self,
        record: &crate::dispatch::records::SentRecord,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Oldest first.
    fn list_sent(
        &self,
    ) -> impl Future<Output = StoreResult<Vec<crate::dispatch::records::SentRecord>>> + Send;
    fn put_suppressed(
        &self,
        record: &crate::dispatch::records::SuppressedRecord,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    fn list_suppressed(
        &self,
    ) -> impl Future<Output = StoreResult<Vec<crate::dispatch::records::SuppressedRecord>>> + Send;
    /// Counts `email_id` in `bucket` (one sender's window) unless already counted; false when
    /// `limit` other emails are counted there. Counting the same email twice is one count, so a
    /// redelivery never uses up the allowance. The bucket may be forgotten after `expires`.
    fn take_allowance(
        &self,
        bucket: &str,
        email_id: &str,
        limit: u32,
        expires: DateTime<Utc>,
    ) -> impl Future<Output = StoreResult<bool>> + Send;
    /// Creates each notification unless one with its user and key exists (a redelivery must
    /// not mark a read one unread); returns how many were new.
    fn put_notifications(
        &self,
        notifications: &[crate::dispatch::records::Notification],
    ) -> impl Future<Output = StoreResult<usize>> + Send;
    /// Newest first.
    fn notifications(
        &self,
        user: &str,
    ) -> impl Future<Output = StoreResult<Vec<crate::dispatch::records::Notification>>> + Send;
    /// False when there is no such notification.
    fn mark_read(&self, user: &str, key: &str) -> impl Future<Output = StoreResult<bool>> + Send;
    fn mark_failing(
        &self,
        failing: &crate::dispatch::records::FailingAddress,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Those of `addresses` (normalised) still failing at `now`.
    fn failing(
        &self,
        addresses: &[String],
        now: DateTime<Utc>,
    ) -> impl Future<Output = StoreResult<Vec<String>>> + Send;
}

/// A record's stream (R-S3, R-S4): what a reply to a case threads onto, its last message.
pub trait Streams: Send + Sync {
    /// Timeline order, oldest first.
    fn stream(
        &self,
        record: &RecordRef,
    ) -> impl Future<Output = StoreResult<Vec<crate::records::StreamEntry>>> + Send;
}
