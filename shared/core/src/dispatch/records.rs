//! What dispatch stores: sent mail, suppressed auto-replies, notifications, failing addresses.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::records::RecordRef;
use crate::types::CaseNumber;

/// Why Mailroom sent a message; serialised as `auto-reply`, `notification`, `reply`, `api`
/// (a user's message sent through the API: compose, reply, reply-all).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum SentKind {
    AutoReply,
    Notification,
    Reply,
    Api,
}

impl SentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SentKind::AutoReply => "auto-reply",
            SentKind::Notification => "notification",
            SentKind::Reply => "reply",
            SentKind::Api => "api",
        }
    }
}

/// One message Mailroom sent (R-I3, R-S4). `id` is the idempotency key: one send per email
/// and kind (and recipient, for notifications), whatever the redeliveries.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SentRecord {
    #[serde(default = "crate::default_version")]
    pub v: u32,
    pub id: String,
    pub kind: SentKind,
    /// The account it was sent for (its address is the From, or the Reply-To).
    pub account: String,
    pub from: String,
    pub to: Vec<String>,
    pub subject: String,
    /// The Message-ID answered, if any (without angle brackets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_reply_to: Option<String>,
    /// The Message-ID we wrote (SES keeps it in `X-Mailroom-Id` form only; see `ses_message_id`).
    pub message_id: String,
    /// The Message-ID the recipient sees, as SES assigned it (without angle brackets).
    pub ses_message_id: String,
    /// The email this answers or tells about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<RecordRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case: Option<CaseNumber>,
    pub sent_at: DateTime<Utc>,
    /// The user who sent it through the API (none for what dispatch sends on its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// An auto-reply or notification email that was deliberately not sent, with why (R-A2, R-A3).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SuppressedRecord {
    #[serde(default = "crate::default_version")]
    pub v: u32,
    /// The same key the send would have had.
    pub id: String,
    pub kind: SentKind,
    pub account: String,
    pub email_id: String,
    pub message_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// A stable reason: a loop rule (`auto_submitted`, `precedence`, ...), `rate_limit`,
    /// `failing_address`, `identity_refused`.
    pub reason: String,
    /// The service's or the check's own words, when there are some.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub at: DateTime<Utc>,
}

/// Why a user is told; serialised as `follower`, `inbox`, `assigned`, `account_failing`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// A new case was assigned to the user (they now follow it).
    Assigned,
    /// The user follows the email's record or that record's account (R-N1).
    Follower,
    /// The email reached the user's inbox (R-N2).
    Inbox,
    /// An account the user answers for has been failing (R-F7).
    AccountFailing,
}

impl NotificationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationKind::Assigned => "assigned",
            NotificationKind::Follower => "follower",
            NotificationKind::Inbox => "inbox",
            NotificationKind::AccountFailing => "account_failing",
        }
    }
}

/// One in-app notification for one user. `key` is deterministic (the email's id, or the
/// account and day of a failure notice), so each is created exactly once (R-N4).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Notification {
    #[serde(default = "crate::default_version")]
    pub v: u32,
    pub user: String,
    pub key: String,
    pub kind: NotificationKind,
    /// The email's Message-ID (without angle brackets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<RecordRef>,
    pub account: String,
    /// One line for a list: the subject, or what failed.
    pub summary: String,
    pub read: bool,
    /// When what it tells of happened (the email's arrival): fixed, so a redelivery writes the
    /// same item.
    pub at: DateTime<Utc>,
}

/// An address that bounced or complained: no notification email goes to it until `until`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FailingAddress {
    #[serde(default = "crate::default_version")]
    pub v: u32,
    pub address: String,
    pub reason: String,
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
}
