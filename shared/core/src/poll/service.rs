//! [`PollService`]: one account's poll through the ports, store-then-enqueue-then-advance.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::plan::{plan_batches, Batch};
use super::session::{no_content, read_head, read_sizes, read_split, Conn, Part};
use super::status::{failure_notice_due, next_status};
use crate::filters::{skip_decision, Filter, FilterInput, SkipDecision, SkippedRecord};
use crate::keys::raw_key;
use crate::limits::Limits;
use crate::messages::IngestPointer;
use crate::model::{Account, ErrorKind, FolderState, QuarantineRecord};
use crate::ports::{
    AccountStore, BlobStore, FilterStore, Mailbox, MailboxError, MessageMeta, Outgoing, Queue,
    SecretBox, StoreError,
};
use crate::SCHEMA_VERSION;

/// What reading a quarantined message again came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refetch {
    /// Read and stored as the quarantine copy; `truncated` when only its head was kept.
    Fetched { truncated: bool },
    /// Still not readable, or not reachable: why, in the server's words where it said any.
    Failed(String),
}

/// What one poll did, for logs, the CLI and tests.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct PollReport {
    pub account: String,
    /// Messages downloaded from IMAP (whole, or the head of an oversize one).
    pub fetched: u32,
    /// Pointers put on the ingest queue.
    pub enqueued: u32,
    /// Messages above the size limit, fetched as headers and text only.
    pub oversize: u32,
    /// Messages a skip filter kept out on their headers alone: their bodies were not fetched.
    pub skipped: u32,
    /// Messages the server would not return (refused, NIL or empty at some FETCH stage): each
    /// went to ingest with its `fetch_error`, to be quarantined (included in `fetched`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unreadable: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<PollFailure>,
    /// Why the account was not polled at all (inactive, unknown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_polled: Option<String>,
    /// The account has failed for long enough that its admins or owner are to be told
    /// (R-F7); the poller's handler puts an `account.failing` event on the dispatch queue.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub failure_notice: bool,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PollFailure {
    pub kind: ErrorKind,
    pub message: String,
}

pub struct PollService<'a, A, S, M, B, Q, F> {
    pub accounts: &'a A,
    /// Skip filters decided on headers keep bodies from being downloaded at all (R-X3).
    pub filters: &'a F,
    pub secrets: &'a S,
    pub mailbox: &'a M,
    pub blobs: &'a B,
    pub ingest_queue: &'a Q,
    pub limits: &'a Limits,
}

enum Stop {
    Mailbox(MailboxError),
    Store(StoreError),
}

impl From<StoreError> for Stop {
    fn from(e: StoreError) -> Self {
        Stop::Store(e)
    }
}

impl From<MailboxError> for Stop {
    fn from(e: MailboxError) -> Self {
        Stop::Mailbox(e)
    }
}

impl<A, S, M, B, Q, F> PollService<'_, A, S, M, B, Q, F>
where
    A: AccountStore,
    F: FilterStore,
    S: SecretBox,
    M: Mailbox,
    B: BlobStore,
    Q: Queue<IngestPointer>,
{
    /// Polls one account. Mailbox failures are recorded in the account status and reported
    /// (`Ok`); a failing backing service returns `Err` so the poll job is retried.
    pub async fn poll(&self, name: &str, now: DateTime<Utc>) -> Result<PollReport, StoreError> {
        let mut report = PollReport {
            account: name.to_string(),
            ..PollReport::default()
        };
        let Some(account) = self.accounts.get_account(name).await? else {
            report.not_polled = Some("unknown account".into());
            return Ok(report);
        };
        if !account.active {
            report.not_polled = Some("inactive account".into());
            return Ok(report);
        }
        let outcome = self.poll_folders(&account, &mut report).await;
        let failure = match outcome {
            Ok(()) => None,
            Err(Stop::Mailbox(e)) => Some(e),
            Err(Stop::Store(e)) => return Err(e),
        };
        if let Some(status) = next_status(&account.status, report.fetched, failure.as_ref(), now) {
            self.accounts.save_status(name, &status).await?;
            report.failure_notice = failure.is_some() && failure_notice_due(&status, now);
        }
        report.error = failure.map(|e| PollFailure {
            kind: e.kind,
            message: e.message,
        });
        Ok(report)
    }

    /// The ingest pointer that imports a quarantined message again (R-F9): a message the
    /// server would not return was quarantined empty, so replaying it means reading it from
    /// its mailbox again first (a real message is never empty). The CLI's `quarantine replay`
    /// and the API's replay both send this to the ingest queue.
    pub async fn replay_pointer(&self, q: &QuarantineRecord) -> Result<IngestPointer, StoreError> {
        let mut pointer = q.replay_pointer();
        if self
            .blobs
            .get(&q.raw_key)
            .await?
            .is_none_or(|raw| raw.is_empty())
        {
            match self.refetch(q).await? {
                Refetch::Fetched { truncated } => pointer.truncated = truncated,
                Refetch::Failed(why) => pointer.fetch_error = Some(why),
            }
        }
        Ok(pointer)
    }

    /// Reads a quarantined message from its mailbox again: the replay of one the server would
    /// not return (R-F9). Its bytes replace the empty quarantine copy, so the replay pointer
    /// then imports it; nothing else changes (no watermark, no status).
    pub async fn refetch(&self, q: &QuarantineRecord) -> Result<Refetch, StoreError> {
        let Some(account) = self.accounts.get_account(&q.account).await? else {
            return Ok(Refetch::Failed(format!(
                "the account {:?} no longer exists",
                q.account
            )));
        };
        match self.refetch_from(&account, q).await {
            Ok(Ok((raw, truncated))) => {
                self.blobs.put(&q.raw_key, raw, "message/rfc822").await?;
                Ok(Refetch::Fetched { truncated })
            }
            Ok(Err(why)) => Ok(Refetch::Failed(why)),
            Err(Stop::Mailbox(e)) => Ok(Refetch::Failed(e.to_string())),
            Err(Stop::Store(e)) => Err(e),
        }
    }

    async fn refetch_from(
        &self,
        account: &Account,
        q: &QuarantineRecord,
    ) -> Result<Result<(Vec<u8>, bool), String>, Stop> {
        let mut conn = self.open(account).await?;
        let info = conn.examine(&q.folder).await?;
        // The record keeps no UIDVALIDITY, but its id is derived from the raw key, which has
        // it: a UID read under another UIDVALIDITY would be another message.
        let key = raw_key(&account.name, &q.folder, info.uidvalidity, q.uid);
        let result = if crate::ingest::quarantine_id(&key) != q.id {
            Err(format!(
                "the folder {:?} was renumbered since (UIDVALIDITY {}): UID {} no longer names this message",
                q.folder, info.uidvalidity, q.uid
            ))
        } else {
            let (metas, mut unreadable) = read_sizes(&mut conn, &[q.uid]).await?;
            match (unreadable.pop(), plan_batches(&metas, self.limits).first()) {
                (Some((_, why)), _) => Err(why),
                (None, Some(batch)) => {
                    let mut items = self.read_batch(&mut conn, batch).await?;
                    let item = items.pop().expect("a batch of one message");
                    item.content.map(|raw| (raw, item.truncated))
                }
                (None, None) => Err(no_content(q.uid, Part::Whole, None)),
            }
        };
        conn.logout().await;
        Ok(result)
    }

    /// Opens the account's stored credential and a session with it.
    async fn open<'c>(&'c self, account: &'c Account) -> Result<Conn<'c, M>, Stop> {
        let password = self
            .secrets
            .open(&account.name, &account.secret)
            .await
            .map_err(|e| {
                MailboxError::new(
                    ErrorKind::Credentials,
                    format!("stored credential could not be opened: {e}"),
                )
            })?;
        let session = self.mailbox.connect(&account.imap, &password).await?;
        Ok(Conn::new(self.mailbox, &account.imap, password, session))
    }

    async fn poll_folders(&self, account: &Account, report: &mut PollReport) -> Result<(), Stop> {
        let mut conn = self.open(account).await?;
        let mut budget = self.limits.fetch_portion;
        let mut result = Ok(());
        // A missing or renamed folder is reported, but the account's other folders still poll.
        let mut folder_error: Option<MailboxError> = None;
        // Loaded once, and only when some folder has new mail: idle polls read nothing more.
        let mut filters: Option<Vec<Filter>> = None;
        for folder in &account.folders {
            if budget == 0 {
                break;
            }
            match self
                .poll_folder(
                    &mut conn,
                    account,
                    folder,
                    &mut budget,
                    &mut filters,
                    report,
                )
                .await
            {
                Ok(()) => {}
                Err(Stop::Mailbox(e)) if e.kind == ErrorKind::Folder => {
                    folder_error.get_or_insert(e);
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        if let (Ok(()), Some(e)) = (&result, folder_error) {
            result = Err(Stop::Mailbox(e));
        }
        conn.logout().await;
        result
    }

    async fn poll_folder(
        &self,
        conn: &mut Conn<'_, M>,
        account: &Account,
        folder: &str,
        budget: &mut usize,
        filters: &mut Option<Vec<Filter>>,
        report: &mut PollReport,
    ) -> Result<(), Stop> {
        let info = conn.examine(folder).await?;
        let previous = account.folder_state.get(folder);
        // Which UIDs are new, and whether the found set is "everything since a date" (then
        // messages below the highest UID that were not found are older and may be passed over).
        let (mut uids, mut state, date_search) = match previous {
            Some(s) if s.uidvalidity == info.uidvalidity => {
                if info
                    .uidnext
                    .is_some_and(|next| next <= s.last_uid.saturating_add(1))
                {
                    return Ok(()); // idle: one EXAMINE, no search, no write
                }
                (conn.search_above(s.last_uid).await?, s.clone(), false)
            }
            Some(s) => {
                // UIDVALIDITY changed: UIDs mean nothing any more. Re-read from the last arrival
                // day we saw and let dedupe drop what was already imported (R-F3).
                // SEARCH SINCE compares the server's local date: start a day earlier so a
                // server west of UTC cannot hide the last evening's mail; dedupe absorbs it.
                let since = s
                    .last_arrival
                    .map(|d| (d - Duration::days(1)).date_naive())
                    .or(account.fetch_since);
                let state = FolderState {
                    uidvalidity: info.uidvalidity,
                    last_uid: 0,
                    last_arrival: s.last_arrival,
                };
                (conn.search_since(since).await?, state, true)
            }
            None => {
                let state = FolderState {
                    uidvalidity: info.uidvalidity,
                    last_uid: 0,
                    last_arrival: None,
                };
                (conn.search_since(account.fetch_since).await?, state, true)
            }
        };
        let mut saved = previous.cloned();
        uids.retain(|&u| u > state.last_uid);
        uids.sort_unstable();
        uids.dedup();
        let complete = uids.len() <= *budget;
        uids.truncate(*budget);
        *budget -= uids.len();

        if let Some(&highest) = uids.last() {
            let (mut metas, mut unreadable) = read_sizes(conn, &uids).await?;
            if filters.is_none() {
                *filters = Some(self.filters.filters().await?);
            }
            let (skipped, header_unreadable) = self
                .header_stage(
                    conn,
                    account,
                    folder,
                    &state,
                    &metas,
                    filters.as_deref().unwrap_or(&[]),
                )
                .await?;
            report.skipped += skipped.len() as u32;
            unreadable.extend(header_unreadable);
            metas.retain(|m| {
                !skipped.contains(&m.uid) && !unreadable.iter().any(|(u, _)| u.uid == m.uid)
            });
            // What the server refused before any body was asked for is quarantined first: the
            // batches below move the watermark, and it may pass a UID only once its entry exists.
            if !unreadable.is_empty() {
                let items = unreadable
                    .into_iter()
                    .map(|(meta, why)| Item {
                        meta,
                        content: Err(why),
                        truncated: false,
                    })
                    .collect();
                self.enqueue(account, folder, &state, items, report).await?;
            }
            for batch in plan_batches(&metas, self.limits) {
                self.fetch_batch(conn, account, folder, &batch, &mut state, report)
                    .await?;
                // Durable in S3 and on the queue: now, and only now, the watermark may move.
                self.accounts
                    .save_folder_state(&account.name, folder, &state)
                    .await?;
                saved = Some(state.clone());
            }
            // Every UID found is now enqueued, recorded as skipped, or quarantined: the
            // watermark may pass them all.
            state.last_uid = state.last_uid.max(highest);
        }
        // After a date search that took everything, UIDs up to UIDNEXT-1 are known to be older.
        if date_search && complete {
            if let Some(next) = info.uidnext {
                state.last_uid = state.last_uid.max(next.saturating_sub(1));
            }
        }
        if saved.as_ref() != Some(&state) {
            self.accounts
                .save_folder_state(&account.name, folder, &state)
                .await?;
        }
        Ok(())
    }

    /// Fetches headers of the new messages when a global or account skip filter exists, and
    /// records every message such a filter skips on headers alone. Returns the skipped UIDs,
    /// and the messages whose headers the server would not return (with why).
    async fn header_stage(
        &self,
        conn: &mut Conn<'_, M>,
        account: &Account,
        folder: &str,
        state: &FolderState,
        metas: &[MessageMeta],
        filters: &[Filter],
    ) -> Result<(Vec<u32>, Vec<(MessageMeta, String)>), Stop> {
        let relevant = filters.iter().any(|f| {
            f.action == crate::filters::Action::Skip
                && (f.scope == crate::filters::Scope::Global
                    || f.scope == crate::filters::Scope::Account(account.name.clone()))
                && !f.needs_body()
        });
        if !relevant || metas.is_empty() {
            return Ok((vec![], vec![]));
        }
        let mut skipped = Vec::new();
        let mut unreadable = Vec::new();
        for chunk in metas.chunks(self.limits.fetch_batch_messages.max(1) * 4) {
            let uids: Vec<u32> = chunk.iter().map(|m| m.uid).collect();
            let mut read = read_split(conn, Part::Header, &uids).await?;
            for meta in chunk {
                let raw = match read.remove(&meta.uid) {
                    Some(Ok(raw)) => raw,
                    Some(Err(why)) => {
                        unreadable.push((*meta, why));
                        continue;
                    }
                    None => continue,
                };
                let input = FilterInput::from_headers(&raw);
                if let SkipDecision::Skip(m) = skip_decision(filters, &account.name, &input) {
                    let parsed = mail_parser::MessageParser::default().parse_headers(&raw);
                    let record = SkippedRecord {
                        v: SCHEMA_VERSION,
                        account: account.name.clone(),
                        folder: folder.to_string(),
                        uidvalidity: state.uidvalidity,
                        uid: meta.uid,
                        message_id: parsed
                            .as_ref()
                            .and_then(|p| p.header_raw("Message-ID"))
                            .and_then(crate::ids::normalize_message_id),
                        subject: input.subject.clone(),
                        from: input.from.first().map(|f| f.1.clone()),
                        filter: m.filter,
                        reasons: m.reasons,
                        stage: crate::filters::SkipStage::Headers,
                        at: chrono::Utc::now(),
                    };
                    self.filters.put_skipped(&record).await?;
                    skipped.push(meta.uid);
                }
            }
        }
        Ok((skipped, unreadable))
    }

    async fn fetch_batch(
        &self,
        conn: &mut Conn<'_, M>,
        account: &Account,
        folder: &str,
        batch: &Batch,
        state: &mut FolderState,
        report: &mut PollReport,
    ) -> Result<(), Stop> {
        let items = self.read_batch(conn, batch).await?;
        self.enqueue(account, folder, state, items, report).await?;
        let metas = batch.metas();
        let last = metas.iter().map(|m| m.uid).max().unwrap_or(state.last_uid);
        state.last_uid = state.last_uid.max(last);
        let newest = metas.iter().filter_map(|m| m.arrived).max();
        state.last_arrival = state.last_arrival.max(newest);
        Ok(())
    }

    /// Reads one planned batch: every message in it gets its bytes or why the server gave none.
    async fn read_batch(
        &self,
        conn: &mut Conn<'_, M>,
        batch: &Batch,
    ) -> Result<Vec<Item>, MailboxError> {
        Ok(match batch {
            Batch::Whole(metas) => {
                let uids: Vec<u32> = metas.iter().map(|m| m.uid).collect();
                let mut read = read_split(conn, Part::Whole, &uids).await?;
                metas
                    .iter()
                    .map(|meta| Item {
                        meta: *meta,
                        content: read
                            .remove(&meta.uid)
                            .unwrap_or_else(|| Err(no_content(meta.uid, Part::Whole, None))),
                        truncated: false,
                    })
                    .collect()
            }
            Batch::Head(meta) => {
                let content = read_head(conn, meta.uid, self.limits.oversize_head_bytes).await?;
                vec![Item {
                    meta: *meta,
                    truncated: content.is_ok(),
                    content,
                }]
            }
            Batch::Unsized(meta) => {
                // One byte past the limit tells whether it is oversize, as RFC822.SIZE would have.
                let max = self.limits.max_message_bytes;
                let mut content = read_head(conn, meta.uid, max.saturating_add(1)).await?;
                let mut meta = *meta;
                let mut truncated = false;
                if let Ok(raw) = &mut content {
                    // Exact when within the limit; past it, a lower bound (all we read).
                    meta.size = Some(raw.len() as u64);
                    if raw.len() as u64 > max {
                        raw.truncate(self.limits.oversize_head_bytes as usize);
                        truncated = true;
                    }
                }
                vec![Item {
                    meta,
                    content,
                    truncated,
                }]
            }
        })
    }

    /// Stores each message under its raw key and puts its pointer on the ingest queue. A
    /// message the server would not return goes the same way, empty and with its
    /// `fetch_error`: never dropped silently, ingest quarantines it with that reason.
    async fn enqueue(
        &self,
        account: &Account,
        folder: &str,
        state: &FolderState,
        items: Vec<Item>,
        report: &mut PollReport,
    ) -> Result<(), Stop> {
        let mut pointers = Vec::with_capacity(items.len());
        let mut puts = Vec::with_capacity(items.len());
        for item in items {
            let (raw, fetch_error) = match item.content {
                Ok(raw) => (raw, None),
                Err(why) => (Vec::new(), Some(why)),
            };
            report.unreadable += u32::from(fetch_error.is_some());
            report.oversize += u32::from(item.truncated);
            let key = raw_key(&account.name, folder, state.uidvalidity, item.meta.uid);
            pointers.push(Outgoing::plain(IngestPointer {
                v: SCHEMA_VERSION,
                account: account.name.clone(),
                folder: folder.to_string(),
                uidvalidity: state.uidvalidity,
                uid: item.meta.uid,
                key: key.clone(),
                size: item.meta.size.unwrap_or(raw.len() as u64),
                arrived: item.meta.arrived,
                truncated: item.truncated,
                quarantine_id: None,
                fetch_error,
            }));
            puts.push(async move { self.blobs.put(&key, raw, "message/rfc822").await });
        }
        futures::future::try_join_all(puts).await?;
        report.fetched += pointers.len() as u32;
        if !pointers.is_empty() {
            self.ingest_queue.send(&pointers).await?;
            report.enqueued += pointers.len() as u32;
        }
        Ok(())
    }
}

/// One message on its way to ingest: its bytes, or why the server gave none.
struct Item {
    meta: MessageMeta,
    content: Result<Vec<u8>, String>,
    truncated: bool,
}
