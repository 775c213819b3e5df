//! What Mailroom stores: accounts (config, watermarks, status), emails and quarantine records.
//!
//! These types serialise with serde; the DynamoDB adapter maps them to items, so the core never
//! sees an `AttributeValue`. Every one carries `v`, the schema version it was written with.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::SCHEMA_VERSION;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum AccountKind {
    /// A shared mailbox managed by admins; receives and sends.
    Group,
    /// A user's own mailbox, monitored for that user.
    Personal,
}

/// How the IMAP connection is secured (R-F8). Plaintext only when an account says so.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Security {
    #[default]
    ImplicitTls,
    Starttls,
    Plain,
}

impl std::str::FromStr for Security {
    type Err = crate::error::Invalid;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "implicit-tls" => Ok(Security::ImplicitTls),
            "starttls" => Ok(Security::Starttls),
            "plain" => Ok(Security::Plain),
            other => Err(crate::error::Invalid::value(format!(
                "unknown security {other:?} (expected implicit-tls, starttls or plain)"
            ))),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ImapSettings {
    pub host: String,
    pub port: u16,
    pub user: String,
    #[serde(default)]
    pub security: Security,
}

/// A credential sealed with AES-256-GCM under the deployment's data key (R-F8). The account name
/// is the associated data, so a sealed secret copied onto another account does not open.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SealedSecret {
    /// Which wrapped data key sealed it (lets keys rotate without re-reading every account).
    pub key_id: String,
    pub nonce: String,
    pub ciphertext: String,
}

impl std::fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedSecret")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// A password in memory. Its `Debug` never shows the value, so it cannot leak through logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Per folder: where the last run stopped (R-F2).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FolderState {
    pub uidvalidity: u32,
    pub last_uid: u32,
    /// Arrival date (INTERNALDATE) of the newest message taken; a UIDVALIDITY change re-reads
    /// the folder from that day (R-F3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_arrival: Option<DateTime<Utc>>,
}

/// Kinds of account failure an admin can act on (R-F7).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    Connect,
    Tls,
    Auth,
    Folder,
    Protocol,
    /// The stored credential could not be opened (key or data problem, not the IMAP server).
    Credentials,
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Tls => "tls",
            ErrorKind::Auth => "auth",
            ErrorKind::Folder => "folder",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Credentials => "credentials",
        };
        f.write_str(s)
    }
}

/// Account health, as the poller last saw it (R-F7).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccountStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error_kind: Option<ErrorKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub consecutive_failures: u32,
    /// Start of the current failure streak; drives the "failing for 10 minutes" notice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<DateTime<Utc>>,
    /// The scheduler leaves the account alone until then (exponential back-off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_until: Option<DateTime<Utc>>,
    /// Last time a poll found new mail; drives the adaptive interval (R-F10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_mail_at: Option<DateTime<Utc>>,
}

/// A watched mailbox: configuration, watermarks and status in one item, so an idle poll needs
/// one read and no write (R-F10); the scheduler reads its schedule index entry instead.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Account {
    #[serde(default = "crate::default_version")]
    pub v: u32,
    pub name: String,
    pub kind: AccountKind,
    /// The group address (group accounts), used later for sending and loop safety.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The user a personal account belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    pub imap: ImapSettings,
    pub secret: SealedSecret,
    pub folders: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fetch_since: Option<NaiveDate>,
    #[serde(default)]
    pub teams: Vec<String>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub folder_state: BTreeMap<String, FolderState>,
    #[serde(default)]
    pub status: AccountStatus,
    /// Email-to-case settings (group accounts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case: Option<CaseSettings>,
    /// Link mail from a contact to the contact itself, not to its account (R-L3).
    #[serde(default)]
    pub person_centric: bool,
    /// Last email-to-case problem (e.g. no eligible assignee; the case was still created).
    /// Written by ingest, so it lives outside `status`, which the poller rewrites whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case_error_at: Option<DateTime<Utc>>,
    /// Auto-reply settings (group accounts, R-A1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_reply: Option<crate::dispatch::settings::AutoReply>,
    /// Whether SES lets the group address send, as last asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<crate::ports::IdentityStatus>,
    /// Last refusal of a send by the mail service, in its words: why an expected auto-reply
    /// did not go. Written by dispatch, so it lives outside `status`, which the poller rewrites.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_error_at: Option<DateTime<Utc>>,
    /// How a user's mail through the API names a group account (R-S3): From the group
    /// address (the default), or From the user's own verified address with the group
    /// address as Reply-To.
    #[serde(default)]
    pub send_as: SendAs,
}

/// Whose address a group account's outgoing user mail is From (R-S3). Either way the group
/// address is its Reply-To, so the customer's answer reaches the group mailbox.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SendAs {
    #[default]
    From,
    ReplyTo,
}

impl std::str::FromStr for SendAs {
    type Err = crate::error::Invalid;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "from" => Ok(SendAs::From),
            "reply_to" | "reply-to" => Ok(SendAs::ReplyTo),
            _ => Err(crate::error::Invalid::value(format!(
                "{s:?}: a group account sends as from or reply_to"
            ))),
        }
    }
}

impl Account {
    /// A new, active account: no teams, watermarks, status or case settings yet.
    pub fn new(
        name: impl Into<String>,
        kind: AccountKind,
        imap: ImapSettings,
        secret: SealedSecret,
        created_at: DateTime<Utc>,
    ) -> Account {
        Account {
            v: crate::SCHEMA_VERSION,
            name: name.into(),
            kind,
            address: None,
            owner: None,
            imap,
            secret,
            folders: vec!["INBOX".into()],
            fetch_since: None,
            teams: Vec::new(),
            active: true,
            created_at,
            folder_state: BTreeMap::new(),
            status: AccountStatus::default(),
            case: None,
            person_centric: false,
            case_error: None,
            case_error_at: None,
            auto_reply: None,
            identity: None,
            send_error: None,
            send_error_at: None,
            send_as: SendAs::default(),
        }
    }
}

/// Account names are keys, S3 path parts and AES-GCM associated data: keep them plain.
pub fn validate_account_name(name: &str) -> Result<(), crate::error::Invalid> {
    if name.is_empty() || name.len() > 64 {
        return Err(crate::error::Invalid::value(
            "account name must be 1 to 64 characters",
        ));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'))
    {
        return Err(crate::error::Invalid::value(format!(
            "account name {name:?} may only hold letters, digits, '-', '_', '.' and '@'"
        )));
    }
    Ok(())
}

/// An address with its display name.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MailAddr {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub address: String,
}

/// Where a body lives: in the item when small, in S3 when large (400 KB item limit, R-F6).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Body {
    Inline(String),
    Stored { key: String, bytes: u64 },
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AttachmentMeta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    pub content_type: String,
    pub size: u64,
    pub inline: bool,
    /// Lets `cid:` references in the HTML body resolve to the stored part (R-I1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_id: Option<String>,
    pub key: String,
}

/// One email, however many accounts received it (R-I2).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EmailRecord {
    #[serde(default = "crate::default_version")]
    pub v: u32,
    pub email_id: String,
    /// As received, angle brackets stripped; synthetic when the message had none.
    pub message_id: String,
    pub synthetic_id: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<MailAddr>,
    #[serde(default)]
    pub to: Vec<MailAddr>,
    #[serde(default)]
    pub cc: Vec<MailAddr>,
    #[serde(default)]
    pub reply_to: Vec<MailAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<DateTime<Utc>>,
    #[serde(default)]
    pub in_reply_to: Vec<String>,
    #[serde(default)]
    pub references: Vec<String>,
    pub auto_submitted: bool,
    pub list: bool,
    pub bounce: bool,
    /// The receiving server recorded `dmarc=fail` (Authentication-Results): no `[#N]` trust.
    #[serde(default)]
    pub dmarc_fail: bool,
    /// The headers loop safety reads (R-A2); `auto_submitted` and `list` agree with them.
    /// Emails stored before they existed read as having none.
    #[serde(default)]
    pub signals: crate::signals::LoopSignals,
    /// What a bounce says about the mail it returns (R-A4); set exactly when `bounce` is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bounce_of: Option<crate::bounce::BounceInfo>,
    /// The record this email is filed under (R-L).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<crate::records::RecordRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case: Option<crate::types::CaseNumber>,
    /// Teams the email belongs to (R-I4); stored as a set, added to by linking.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub teams: Vec<String>,
    pub size: u64,
    /// Above the size limit: headers and text only, attachments skipped (R-F6).
    pub attachments_skipped: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<Body>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<Body>,
    #[serde(default)]
    pub attachments: Vec<AttachmentMeta>,
    /// Names of the accounts that received it; stored as a set so linking is idempotent.
    #[serde(default)]
    pub accounts: Vec<String>,
    pub raw_key: String,
    pub received_at: DateTime<Utc>,
    /// When the mailbox received it (IMAP INTERNALDATE), if the server said: mail that came
    /// in long before Mailroom read it (a first import, a reset) is not answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arrived: Option<DateTime<Utc>>,
}

/// A message that could not be imported, kept durably with its reason (R-I1, R-F9).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct QuarantineRecord {
    #[serde(default = "crate::default_version")]
    pub v: u32,
    pub id: String,
    pub account: String,
    pub folder: String,
    pub uid: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    pub reason: String,
    /// Copy of the raw message under `quarantine/`, which no lifecycle rule expires.
    pub raw_key: String,
    pub size: u64,
    /// Only the head of an oversize message was kept: a replay must not treat it as whole.
    #[serde(default)]
    pub truncated: bool,
    pub quarantined_at: DateTime<Utc>,
}

impl QuarantineRecord {
    /// The pointer that feeds this message to ingest again (R-F9); on success ingest removes
    /// the quarantine record.
    pub fn replay_pointer(&self) -> crate::messages::IngestPointer {
        crate::messages::IngestPointer {
            v: SCHEMA_VERSION,
            account: self.account.clone(),
            folder: self.folder.clone(),
            uidvalidity: 0,
            uid: self.uid,
            key: self.raw_key.clone(),
            size: self.size,
            arrived: None,
            truncated: self.truncated,
            quarantine_id: Some(self.id.clone()),
            fetch_error: None,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Distribution {
    Direct,
    RoundRobin,
    LeastBusy,
}

impl std::str::FromStr for Distribution {
    type Err = crate::error::Invalid;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "direct" => Ok(Distribution::Direct),
            "round-robin" => Ok(Distribution::RoundRobin),
            "least-busy" => Ok(Distribution::LeastBusy),
            other => Err(crate::error::Invalid::value(format!(
                "unknown distribution {other:?} (direct, round-robin, least-busy)"
            ))),
        }
    }
}

/// Email-to-case settings of a group account.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CaseSettings {
    pub create_case: bool,
    pub distribution: Distribution,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assign_to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_team: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<String>,
    #[serde(default)]
    pub reopen_on_reply: bool,
}

impl CaseSettings {
    /// Refuses settings that cannot work on `account`, naming the flag at fault: only group
    /// accounts create cases; round-robin and least-busy need a known target team; direct
    /// distribution needs a known assignee. `teams` are the known teams; `assignee_known` says
    /// whether `assign_to` names a known user.
    pub fn check(
        &self,
        account: &Account,
        teams: &[String],
        assignee_known: bool,
    ) -> Result<(), crate::error::Invalid> {
        use crate::error::Invalid;
        if account.kind != AccountKind::Group {
            return Err(Invalid::value(format!(
                "account {:?} is a personal account: only group accounts create cases",
                account.name
            )));
        }
        let distribution = self.distribution;
        if let Some(t) = &self.target_team {
            if !teams.contains(t) {
                return Err(Invalid::new("--target-team", format!("unknown team {t:?}")));
            }
        } else if self.create_case && distribution != Distribution::Direct {
            return Err(Invalid::new(
                "--target-team",
                format!("required for {distribution:?} distribution"),
            ));
        }
        if distribution == Distribution::Direct {
            let Some(u) = &self.assign_to else {
                return Err(Invalid::new(
                    "--assign-to",
                    "required for direct distribution",
                ));
            };
            if !assignee_known {
                return Err(Invalid::new("--assign-to", format!("unknown user {u:?}")));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_settings_are_checked_against_the_account_teams_and_users() {
        let group = crate::memory::test_account("support", Utc::now());
        let mut s = CaseSettings {
            create_case: true,
            distribution: Distribution::RoundRobin,
            assign_to: None,
            target_team: None,
            position: None,
            reopen_on_reply: false,
        };
        let teams = ["l1".to_string()];
        let err = s.check(&group, &teams, false).unwrap_err();
        assert_eq!(err.field, "--target-team");
        s.target_team = Some("l2".into());
        assert_eq!(
            s.check(&group, &teams, false).unwrap_err().to_string(),
            "--target-team: unknown team \"l2\""
        );
        s.target_team = Some("l1".into());
        assert_eq!(s.check(&group, &teams, false), Ok(()));
        s.distribution = Distribution::Direct;
        assert_eq!(
            s.check(&group, &teams, false).unwrap_err().field,
            "--assign-to"
        );
        s.assign_to = Some("ann".into());
        assert!(s.check(&group, &teams, false).is_err());
        assert_eq!(s.check(&group, &teams, true), Ok(()));
        let mut personal = group.clone();
        personal.kind = AccountKind::Personal;
        assert!(s.check(&personal, &teams, true).is_err());
    }
}
