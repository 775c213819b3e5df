//! [`PollService`]: one account's poll through the ports, store-then-enqueue-then-advance.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::plan::{plan_batches, Batch};
use super::status::next_status;
use crate::filters::{skip_decision, Filter, FilterInput, SkipDecision, SkippedRecord};
use crate::keys::raw_key;
use crate::limits::Limits;
use crate::messages::IngestPointer;
use crate::model::{Account, ErrorKind, FolderState};
use crate::ports::{
    AccountStore, BlobStore, FilterStore, Mailbox, MailboxError, MailboxSession, MessageMeta,
    Outgoing, Queue, SecretBox, StoreError,
};
use crate::SCHEMA_VERSION;

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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<PollFailure>,
    /// Why the account was not polled at all (inactive, unknown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_polled: Option<String>,
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
        }
        report.error = failure.map(|e| PollFailure {
            kind: e.kind,
            message: e.message,
        });
        Ok(report)
    }

    async fn poll_folders(&self, account: &Account, report: &mut PollReport) -> Result<(), Stop> {
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
        let mut session = self.mailbox.connect(&account.imap, &password).await?;
        drop(password);
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
                    &mut session,
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
        session.logout().await;
        result
    }

    async fn poll_folder(
        &self,
        session: &mut M::Session,
        account: &Account,
        folder: &str,
        budget: &mut usize,
        filters: &mut Option<Vec<Filter>>,
        report: &mut PollReport,
    ) -> Result<(), Stop> {
        let info = session.examine(folder).await?;
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
                (session.search_above(s.last_uid).await?, s.clone(), false)
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
                (session.search_since(since).await?, state, true)
            }
            None => {
                let state = FolderState {
                    uidvalidity: info.uidvalidity,
                    last_uid: 0,
                    last_arrival: None,
                };
                (
                    session.search_since(account.fetch_since).await?,
                    state,
                    true,
                )
            }
        };
        let mut saved = previous.cloned();
        uids.retain(|&u| u > state.last_uid);
        uids.sort_unstable();
        uids.dedup();
        let complete = uids.len() <= *budget;
        uids.truncate(*budget);
        *budget -= uids.len();

        if !uids.is_empty() {
            let mut metas = session.metadata(&uids).await?;
            metas.sort_by_key(|m| m.uid);
            if filters.is_none() {
                *filters = Some(self.filters.filters().await?);
            }
            let skipped = self
                .header_stage(
                    session,
                    account,
                    folder,
                    &state,
                    &metas,
                    filters.as_deref().unwrap_or(&[]),
                )
                .await?;
            report.skipped += skipped.len() as u32;
            let highest = metas.iter().map(|m| m.uid).max();
            metas.retain(|m| !skipped.contains(&m.uid));
            for batch in plan_batches(&metas, self.limits) {
                self.fetch_batch(session, account, folder, &batch, &mut state, report)
                    .await?;
                // Durable in S3 and on the queue: now, and only now, the watermark may move.
                self.accounts
                    .save_folder_state(&account.name, folder, &state)
                    .await?;
                saved = Some(state.clone());
            }
            // Skipped messages are recorded: the watermark may pass them too.
            if let Some(h) = highest {
                state.last_uid = state.last_uid.max(h);
            }
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
    /// records every message such a filter skips on headers alone. Returns the skipped UIDs.
    async fn header_stage(
        &self,
        session: &mut M::Session,
        account: &Account,
        folder: &str,
        state: &FolderState,
        metas: &[MessageMeta],
        filters: &[Filter],
    ) -> Result<Vec<u32>, Stop> {
        let relevant = filters.iter().any(|f| {
            f.action == crate::filters::Action::Skip
                && (f.scope == crate::filters::Scope::Global
                    || f.scope == crate::filters::Scope::Account(account.name.clone()))
                && !f.needs_body()
        });
        if !relevant || metas.is_empty() {
            return Ok(vec![]);
        }
        let uids: Vec<u32> = metas.iter().map(|m| m.uid).collect();
        let mut skipped = Vec::new();
        for chunk in uids.chunks(self.limits.fetch_batch_messages.max(1) * 4) {
            for h in session.fetch_headers(chunk).await? {
                let input = FilterInput::from_headers(&h.raw);
                if let SkipDecision::Skip(m) = skip_decision(filters, &account.name, &input) {
                    let parsed = mail_parser::MessageParser::default().parse_headers(&h.raw);
                    let record = SkippedRecord {
                        v: SCHEMA_VERSION,
                        account: account.name.clone(),
                        folder: folder.to_string(),
                        uidvalidity: state.uidvalidity,
                        uid: h.uid,
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
                    skipped.push(h.uid);
                }
            }
        }
        Ok(skipped)
    }

    async fn fetch_batch(
        &self,
        session: &mut M::Session,
        account: &Account,
        folder: &str,
        batch: &Batch,
        state: &mut FolderState,
        report: &mut PollReport,
    ) -> Result<(), Stop> {
        let fetched = match batch {
            Batch::Whole(metas) => {
                let uids: Vec<u32> = metas.iter().map(|m| m.uid).collect();
                session.fetch(&uids).await?
            }
            Batch::Head(meta) => vec![
                session
                    .fetch_head(meta.uid, self.limits.oversize_head_bytes)
                    .await?,
            ],
        };
        let metas = batch.metas();
        let truncated = matches!(batch, Batch::Head(_));
        let mut pointers = Vec::with_capacity(fetched.len());
        let mut puts = Vec::with_capacity(fetched.len());
        let mut fetched: std::collections::HashMap<u32, Vec<u8>> =
            fetched.into_iter().map(|m| (m.uid, m.raw)).collect();
        for meta in metas {
            // No content for a UID we saw (expunged meanwhile, or unreadable on the server):
            // never dropped silently, it goes to ingest to be quarantined with that reason.
            let (raw, fetch_error) = match fetched.remove(&meta.uid) {
                Some(raw) => (raw, None),
                None => (
                    Vec::new(),
                    Some(format!(
                        "the server returned no content for UID {} (expunged during the poll, or unreadable)",
                        meta.uid
                    )),
                ),
            };
            let key = raw_key(&account.name, folder, state.uidvalidity, meta.uid);
            pointers.push(Outgoing::plain(IngestPointer {
                v: SCHEMA_VERSION,
                account: account.name.clone(),
                folder: folder.to_string(),
                uidvalidity: state.uidvalidity,
                uid: meta.uid,
                key: key.clone(),
                size: meta.size,
                arrived: meta.arrived,
                truncated,
                quarantine_id: None,
                fetch_error,
            }));
            puts.push(async move { self.blobs.put(&key, raw, "message/rfc822").await });
        }
        futures::future::try_join_all(puts).await?;
        report.fetched += pointers.len() as u32;
        if truncated {
            report.oversize += pointers.len() as u32;
        }
        if !pointers.is_empty() {
            self.ingest_queue.send(&pointers).await?;
            report.enqueued += pointers.len() as u32;
        }
        let last = metas.iter().map(|m| m.uid).max().unwrap_or(state.last_uid);
        state.last_uid = state.last_uid.max(last);
        let newest = metas.iter().filter_map(|m| m.arrived).max();
        state.last_arrival = state.last_arrival.max(newest);
        Ok(())
    }
}
