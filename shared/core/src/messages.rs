//! Queue message contracts. Each carries `v`; a reader refuses versions newer than it knows
//! instead of guessing, so a message from a newer release waits in the queue (then the DLQ) for
//! code that understands it.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::records::RecordRef;
use crate::SCHEMA_VERSION;

/// Scheduler -> poller: poll this account once.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PollJob {
    pub v: u32,
    pub account: String,
    /// The schedule tick that asked for it; with the account it forms the FIFO dedupe id, so a
    /// retried scheduler run does not queue a second poll.
    pub cycle: String,
}

impl PollJob {
    pub fn new(account: impl Into<String>, cycle: impl Into<String>) -> Self {
        PollJob {
            v: SCHEMA_VERSION,
            account: account.into(),
            cycle: cycle.into(),
        }
    }
}

/// Poller -> ingest: a raw message is in S3 under `key`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct IngestPointer {
    pub v: u32,
    pub account: String,
    pub folder: String,
    pub uidvalidity: u32,
    pub uid: u32,
    pub key: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arrived: Option<DateTime<Utc>>,
    /// Only the head of an oversize message was fetched (R-F6).
    #[serde(default)]
    pub truncated: bool,
    /// Set when an operator replays a quarantined message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantine_id: Option<String>,
    /// Why the poller could not get the message's content; ingest quarantines it so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fetch_error: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("message body is not valid JSON for this message type: {0}")]
    Json(#[from] serde_json::Error),
    #[error("message schema version {found} is newer than this release understands ({known})")]
    Version { found: u32, known: u32 },
}

/// Decode a queue body, checking its schema version first.
pub fn decode<T: DeserializeOwned>(body: &str) -> Result<T, DecodeError> {
    #[derive(Deserialize)]
    struct Probe {
        v: u32,
    }
    let probe: Probe = serde_json::from_str(body)?;
    if probe.v > SCHEMA_VERSION {
        return Err(DecodeError::Version {
            found: probe.v,
            known: SCHEMA_VERSION,
        });
    }
    Ok(serde_json::from_str(body)?)
}

pub fn encode<T: Serialize>(message: &T) -> String {
    serde_json::to_string(message).expect("queue messages serialise")
}

/// What a [`DispatchEvent`] announces; serialised as `case.created` and `email.linked`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub enum EventKind {
    #[serde(rename = "case.created")]
    CaseCreated,
    #[serde(rename = "email.linked")]
    EmailLinked,
    /// The email is in its users' inboxes (after the filters): who is to be told.
    #[serde(rename = "email.delivered")]
    EmailDelivered,
    /// An account has been failing for a while (R-F7); `email_id` and `message_id` are empty.
    #[serde(rename = "account.failing")]
    AccountFailing,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::CaseCreated => "case.created",
            EventKind::EmailLinked => "email.linked",
            EventKind::EmailDelivered => "email.delivered",
            EventKind::AccountFailing => "account.failing",
        }
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// Event for dispatch (auto-replies, notifications). `id` is deterministic, so a redelivered
/// email re-emits the same id and the consumer drops it: exactly once in effect.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DispatchEvent {
    pub v: u32,
    pub id: String,
    pub kind: EventKind,
    pub email_id: String,
    pub message_id: String,
    pub account: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<RecordRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case: Option<crate::types::CaseNumber>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assigned_user: Option<String>,
    /// `email.delivered`: inbox users to notify (R-N2).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inbox: Vec<String>,
    /// `email.delivered`: users whose filters said no notification (or hid the email).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quiet: Vec<String>,
}

impl DispatchEvent {
    /// An event of `kind` about one email in one account, with nothing else set.
    pub fn about(kind: EventKind, email_id: &str, message_id: &str, account: &str) -> Self {
        let id = match kind {
            EventKind::AccountFailing => format!("{kind}:{account}"),
            _ => format!("{kind}:{email_id}:{account}"),
        };
        DispatchEvent {
            v: SCHEMA_VERSION,
            id,
            kind,
            email_id: email_id.into(),
            message_id: message_id.into(),
            account: account.into(),
            parent: None,
            case: None,
            assigned_user: None,
            inbox: Vec::new(),
            quiet: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_version_gate() {
        let job = PollJob::new("support", "2026-11-27T06:00:00Z");
        let back: PollJob = decode(&encode(&job)).unwrap();
        assert_eq!(back, job);
        let future = r#"{"v":99,"account":"a","cycle":"c"}"#;
        assert!(matches!(
            decode::<PollJob>(future),
            Err(DecodeError::Version { found: 99, .. })
        ));
        assert!(matches!(
            decode::<PollJob>("not json"),
            Err(DecodeError::Json(_))
        ));
    }
}
