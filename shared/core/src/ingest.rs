//! One pointer's ingest (R-I1, R-I2): read the raw message, parse it, store bodies and
//! attachments, and upsert the one email record linked to the account; or quarantine it.
//!
//! Every write is keyed by content (email id, attachment index), so a redelivered pointer has
//! no second effect: the S3 puts rewrite the same bytes and the upsert reports `AlreadyLinked`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::bounds;
use crate::error::describe;
use crate::filters::{skip_decision, Filter, FilterInput, SkipDecision, SkippedRecord};
use crate::keys;
use crate::limits::Limits;
use crate::messages::IngestPointer;
use crate::model::{AttachmentMeta, Body, EmailRecord, QuarantineRecord};
use crate::parse::{parse, ParsedEmail};
use crate::ports::{BlobStore, EmailStore, FilterStore, StoreError, Upsert};
use crate::SCHEMA_VERSION;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum IngestOutcome {
    /// A new email record.
    Imported {
        email_id: String,
    },
    /// Already stored through another account; now linked to this one too.
    Linked {
        email_id: String,
    },
    /// Already stored and linked to this account: nothing changed.
    Duplicate {
        email_id: String,
    },
    Quarantined {
        id: String,
        reason: String,
    },
    /// A skip filter with body criteria matched: not imported, listed as skipped (R-X4).
    Skipped {
        filter: String,
    },
}

pub struct IngestService<'a, E, B, F> {
    pub emails: &'a E,
    pub blobs: &'a B,
    pub limits: &'a Limits,
    /// The filters in force (read once per batch); skip filters with body criteria decide
    /// here, after parsing (R-X3).
    pub filters: &'a [Filter],
    pub skips: &'a F,
}

impl<E: EmailStore, B: BlobStore, F: FilterStore> IngestService<'_, E, B, F> {
    pub async fn ingest(
        &self,
        pointer: &IngestPointer,
        now: DateTime<Utc>,
    ) -> Result<IngestOutcome, StoreError> {
        Ok(self.ingest_with_record(pointer, now).await?.0)
    }

    /// As [`Self::ingest`], also handing back the email as parsed (for linking), unless it
    /// was quarantined.
    pub async fn ingest_with_record(
        &self,
        pointer: &IngestPointer,
        now: DateTime<Utc>,
    ) -> Result<(IngestOutcome, Option<EmailRecord>), StoreError> {
        let raw = self
            .blobs
            .get(&pointer.key)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("raw message {}", pointer.key)))?;
        let parsed = match &pointer.fetch_error {
            Some(reason) => Err(reason.clone()),
            None => parse_guarded(&raw),
        };
        let mut parsed = match parsed {
            Ok(p) => p,
            Err(reason) => return self.quarantined(pointer, &raw, reason, now).await,
        };
        let dropped = bounds::bound(&mut parsed);
        if let Some(skipped) = self.body_skip(&parsed, pointer, now).await? {
            return Ok((skipped, None));
        }
        let stored = async {
            let record = self.store_parts(&parsed, pointer, dropped, now).await?;
            let email_id = record.email_id.clone();
            let outcome = match self.emails.upsert_email(&record, &pointer.account).await? {
                Upsert::Created => IngestOutcome::Imported { email_id },
                Upsert::Linked => IngestOutcome::Linked { email_id },
                Upsert::AlreadyLinked => IngestOutcome::Duplicate { email_id },
            };
            Ok::<_, StoreError>((outcome, record))
        };
        let (outcome, record) = match stored.await {
            Ok(done) => done,
            // A value the services refuse (a limit, a rejected value) is refused on every try:
            // the message is quarantined now instead of being retried into the dead-letter queue.
            Err(e) if e.is_refused() => {
                let reason = format!("refused by storage: {}", describe(&e));
                return self.quarantined(pointer, &raw, reason, now).await;
            }
            Err(e) => return Err(e),
        };
        if let Some(id) = &pointer.quarantine_id {
            self.emails.remove_quarantine(id).await?;
        }
        Ok((outcome, Some(record)))
    }

    /// Quarantines a message whose later step (linking) storage refused for its content; the
    /// email may already be stored, and a replay completes it once the cause is fixed.
    pub async fn quarantine_refused(
        &self,
        pointer: &IngestPointer,
        error: &StoreError,
        now: DateTime<Utc>,
    ) -> Result<IngestOutcome, StoreError> {
        let raw = self.blobs.get(&pointer.key).await?.unwrap_or_default();
        let reason = format!("refused by storage: {}", describe(error));
        Ok(self.quarantined(pointer, &raw, reason, now).await?.0)
    }

    async fn quarantined(
        &self,
        pointer: &IngestPointer,
        raw: &[u8],
        reason: String,
        now: DateTime<Utc>,
    ) -> Result<(IngestOutcome, Option<EmailRecord>), StoreError> {
        let record = self.quarantine(pointer, raw, reason, now).await?;
        Ok((
            IngestOutcome::Quarantined {
                id: record.id,
                reason: record.reason,
            },
            None,
        ))
    }

    async fn body_skip(
        &self,
        p: &ParsedEmail,
        pointer: &IngestPointer,
        now: DateTime<Utc>,
    ) -> Result<Option<IngestOutcome>, StoreError> {
        if !self
            .filters
            .iter()
            .any(|f| f.action == crate::filters::Action::Skip)
        {
            return Ok(None);
        }
        let input = FilterInput::from_parsed(p);
        let SkipDecision::Skip(m) = skip_decision(self.filters, &pointer.account, &input) else {
            return Ok(None);
        };
        let record = SkippedRecord {
            v: SCHEMA_VERSION,
            account: pointer.account.clone(),
            folder: pointer.folder.clone(),
            uidvalidity: pointer.uidvalidity,
            uid: pointer.uid,
            message_id: (!p.synthetic_id).then(|| p.message_id.clone()),
            subject: p.subject.clone(),
            from: p.from.as_ref().map(|f| f.address.clone()),
            filter: m.filter.clone(),
            reasons: m.reasons,
            stage: crate::filters::SkipStage::Body,
            at: now,
        };
        self.skips.put_skipped(&record).await?;
        Ok(Some(IngestOutcome::Skipped { filter: m.filter }))
    }

    /// Bodies too large for the item and all attachments go to S3 under the email id.
    async fn store_parts(
        &self,
        p: &ParsedEmail,
        pointer: &IngestPointer,
        dropped: bounds::Dropped,
        now: DateTime<Utc>,
    ) -> Result<EmailRecord, StoreError> {
        let text = if p.text.is_empty() {
            None
        } else {
            Some(
                self.body(
                    &p.email_id,
                    "text.txt",
                    "text/plain; charset=utf-8",
                    &p.text,
                )
                .await?,
            )
        };
        let html = match &p.html {
            Some(h) => Some(
                self.body(&p.email_id, "body.html", "text/html; charset=utf-8", h)
                    .await?,
            ),
            None => None,
        };
        let mut attachments = Vec::new();
        if !pointer.truncated {
            let mut puts = Vec::new();
            for (i, a) in p.attachments.iter().enumerate() {
                let key = keys::attachment_key(&p.email_id, i, a.filename.as_deref());
                attachments.push(AttachmentMeta {
                    filename: a.filename.clone(),
                    content_type: a.content_type.clone(),
                    size: a.data.len() as u64,
                    inline: a.inline,
                    content_id: a.content_id.clone(),
                    key: key.clone(),
                });
                let content_type = a.content_type.clone();
                puts.push(async move { self.blobs.put(&key, a.data.clone(), &content_type).await });
            }
            futures::future::try_join_all(puts).await?;
        }
        Ok(EmailRecord {
            v: SCHEMA_VERSION,
            email_id: p.email_id.clone(),
            message_id: p.message_id.clone(),
            synthetic_id: p.synthetic_id,
            subject: p.subject.clone(),
            from: p.from.clone(),
            to: p.to.clone(),
            cc: p.cc.clone(),
            reply_to: p.reply_to.clone(),
            date: p.date,
            in_reply_to: p.in_reply_to.clone(),
            references: p.references.clone(),
            auto_submitted: p.auto_submitted,
            list: p.list,
            bounce: p.bounce,
            dmarc_fail: p.dmarc_fail,
            signals: p.signals.clone(),
            bounce_of: p.bounce_of.clone(),
            parent: None,
            case: None,
            teams: Vec::new(),
            size: pointer.size.max(p.size),
            attachments_skipped: pointer.truncated || dropped.attachments > 0,
            text,
            html,
            attachments,
            accounts: vec![pointer.account.clone()],
            raw_key: pointer.key.clone(),
            received_at: now,
            arrived: pointer.arrived,
        })
    }

    async fn body(
        &self,
        email_id: &str,
        name: &str,
        content_type: &str,
        content: &str,
    ) -> Result<Body, StoreError> {
        if content.len() <= self.limits.inline_body_bytes {
            return Ok(Body::Inline(content.to_string()));
        }
        let key = keys::body_key(email_id, name);
        self.blobs
            .put(&key, content.as_bytes().to_vec(), content_type)
            .await?;
        Ok(Body::Stored {
            key,
            bytes: content.len() as u64,
        })
    }

    async fn quarantine(
        &self,
        pointer: &IngestPointer,
        raw: &[u8],
        reason: String,
        now: DateTime<Utc>,
    ) -> Result<QuarantineRecord, StoreError> {
        let id = pointer
            .quarantine_id
            .clone()
            .unwrap_or_else(|| quarantine_id(&pointer.key));
        let raw_key = keys::quarantine_key(&id);
        // Raw objects expire with the bucket's lifecycle rule; quarantine copies never do.
        if pointer.key != raw_key {
            self.blobs
                .put(&raw_key, raw.to_vec(), "message/rfc822")
                .await?;
        }
        let record = QuarantineRecord {
            v: SCHEMA_VERSION,
            id,
            account: pointer.account.clone(),
            folder: pointer.folder.clone(),
            uid: pointer.uid,
            message_id: sniff_message_id(raw),
            reason,
            raw_key,
            size: pointer.size,
            truncated: pointer.truncated,
            quarantined_at: now,
        };
        self.emails.put_quarantine(&record).await?;
        Ok(record)
    }
}

pub fn quarantine_id(raw_key: &str) -> String {
    let digest = Sha256::digest(raw_key.as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// Best effort: a Message-ID line in whatever could not be parsed, so an admin can find it.
fn sniff_message_id(raw: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(&raw[..raw.len().min(64 * 1024)]);
    text.lines()
        .take_while(|l| !l.trim().is_empty())
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("message-id")
                .then(|| crate::ids::normalize_message_id(value))
                .flatten()
        })
}

/// Parses, turning a panic of the parser into a quarantine reason: the message caused it, so
/// a retry would panic again.
fn parse_guarded(raw: &[u8]) -> Result<ParsedEmail, String> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| parse(raw))) {
        Ok(parsed) => parsed.map_err(|e| e.to_string()),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(format!("the parser failed on this message: {what}"))
        }
    }
}
