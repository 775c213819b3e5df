//! What filters leave behind: skipped-message records (R-X4) and users' inbox copies.

use serde::{Deserialize, Serialize};

/// Where a skip was decided; serialised as `headers` and `body`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SkipStage {
    /// In the poller, on `BODY.PEEK[HEADER]`: the body was never fetched.
    Headers,
    /// In ingest, after parsing (a skip filter with body criteria).
    Body,
}

impl SkipStage {
    pub fn as_str(self) -> &'static str {
        match self {
            SkipStage::Headers => "headers",
            SkipStage::Body => "body",
        }
    }
}

impl std::fmt::Display for SkipStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl PartialEq<&str> for SkipStage {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// A message a filter kept out, so no mail disappears without trace (R-X4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedRecord {
    #[serde(default = "crate::default_version")]
    pub v: u32,
    pub account: String,
    pub folder: String,
    pub uidvalidity: u32,
    pub uid: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    pub filter: String,
    pub reasons: Vec<String>,
    pub stage: SkipStage,
    pub at: chrono::DateTime<chrono::Utc>,
}

impl SkippedRecord {
    pub fn key(&self) -> String {
        crate::keys::skipped_key(&self.account, &self.folder, self.uidvalidity, self.uid)
    }
}

/// One user's copy of an email: where it sits for them and how it was filtered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxCopy {
    #[serde(default = "crate::default_version")]
    pub v: u32,
    pub user: String,
    pub email_id: String,
    pub message_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    pub account: String,
    pub folder: String,
    pub read: bool,
    pub notify: bool,
    #[serde(default)]
    pub filters: Vec<String>,
    pub at: chrono::DateTime<chrono::Utc>,
}
