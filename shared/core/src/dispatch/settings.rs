//! A group account's auto-reply settings (R-A1, R-A3).

use serde::{Deserialize, Serialize};

use crate::error::Invalid;
use crate::types::EmailAddress;

/// Default per-sender limit (R-A3): 5 auto-replies per 2 hours.
pub const DEFAULT_LIMIT: u32 = 5;
pub const DEFAULT_WINDOW_MINUTES: u32 = 120;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AutoReply {
    /// Off keeps the templates, so turning it back on needs no retyping.
    pub enabled: bool,
    pub subject: String,
    pub body: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_name: Option<String>,
    /// Defaults to the group address (From).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<EmailAddress>,
    #[serde(default = "default_limit")]
    pub limit: u32,
    #[serde(default = "default_window")]
    pub window_minutes: u32,
}

fn default_limit() -> u32 {
    DEFAULT_LIMIT
}

fn default_window() -> u32 {
    DEFAULT_WINDOW_MINUTES
}

impl AutoReply {
    /// Refuses what could not be sent, naming the flag: templates must parse, a display name
    /// cannot carry a header line, and the limit must allow at least one reply in a window of
    /// one minute to a week.
    pub fn check(&self) -> Result<(), Invalid> {
        use super::template::Template;
        Template::parse_subject(&self.subject).map_err(|e| Invalid::new("--subject", e.message))?;
        Template::parse(&self.body).map_err(|e| Invalid::new("--body", e.message))?;
        if let Some(h) = &self.html {
            Template::parse_html(h).map_err(|e| Invalid::new("--html", e.message))?;
        }
        if let Some(n) = &self.from_name {
            if n.chars().any(char::is_control) || n.len() > 200 {
                return Err(Invalid::new(
                    "--from-name",
                    "a display name of at most 200 characters, without control characters",
                ));
            }
        }
        if self.limit == 0 || self.limit > 1000 {
            return Err(Invalid::new("--limit", "between 1 and 1000"));
        }
        if self.window_minutes == 0 || self.window_minutes > 7 * 24 * 60 {
            return Err(Invalid::new(
                "--window",
                "between 1 and 10080 minutes (a week)",
            ));
        }
        Ok(())
    }
}
