//! What a caller asks to send, and its validation (R-S5). Nothing that reaches a header can
//! carry a line break: addresses are a strict `addr-spec` subset, display names, subjects and
//! file names refuse every control character (CR, LF, NUL, tab, ...), a content type is a plain
//! `type/subtype`. `dispatch::mime` is safe by construction as well; refusing here tells the
//! caller which field was wrong instead of sending something they did not write.
//!
//! Size limits: an API request body stops at 10 MB (API Gateway's limit, and the API's own),
//! and base64 makes a file a third larger, so the decoded attachments of one message are at
//! most [`MAX_ATTACHMENTS_BYTES`] (7 MB) in all, each at most [`MAX_ATTACHMENT_BYTES`]. SES v2
//! itself takes raw messages up to 40 MB (`ports::MAX_RAW_MAIL_BYTES`).

use base64::Engine;
use serde::Deserialize;

use crate::dispatch::mime::{is_media_type, Attachment, Mailbox};
use crate::error::Invalid;
use crate::records::{RecordKind, RecordRef};
use crate::types::{CaseNumber, EmailAddress};

/// Recipients of one message, To, Cc and Bcc together.
pub const MAX_RECIPIENTS: usize = 50;
/// RFC 5321's limits on a path and a local part.
pub const MAX_ADDRESS_BYTES: usize = 254;
pub const MAX_LOCAL_PART_BYTES: usize = 64;
/// Characters of a display name.
pub const MAX_NAME_CHARS: usize = 100;
/// Characters of a subject (before a case tag and a `Re:`).
pub const MAX_SUBJECT_CHARS: usize = 250;
/// Bytes of each body, text and HTML.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Files on one message.
pub const MAX_ATTACHMENTS: usize = 10;
/// Decoded bytes of one attachment, and of all of a message's together.
pub const MAX_ATTACHMENT_BYTES: usize = 7 * 1024 * 1024;
pub const MAX_ATTACHMENTS_BYTES: usize = 7 * 1024 * 1024;
/// Characters of a file name.
pub const MAX_FILENAME_CHARS: usize = 100;

/// `POST /v1/emails`: a new message.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SendRequest {
    /// The account it is sent from (its name).
    pub account: String,
    /// `address` or `Display Name <address>`.
    pub to: Vec<String>,
    #[serde(default)]
    pub cc: Vec<String>,
    #[serde(default)]
    pub bcc: Vec<String>,
    pub subject: String,
    pub text: String,
    #[serde(default)]
    pub html: Option<String>,
    #[serde(default)]
    pub parent: Option<ParentIn>,
    #[serde(default)]
    pub attachments: Vec<AttachmentIn>,
}

/// `POST /v1/emails/{id}/reply`: an answer to a stored email; recipients come from it.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct ReplyRequest {
    /// The account it is sent from; by default the case's account, or the first account
    /// the email came through that the caller may send from.
    #[serde(default)]
    pub account: Option<String>,
    /// Reply to all: the email's To and Cc too.
    #[serde(default)]
    pub all: bool,
    pub text: String,
    #[serde(default)]
    pub html: Option<String>,
    /// Added to the prepared Cc.
    #[serde(default)]
    pub cc: Vec<String>,
    #[serde(default)]
    pub bcc: Vec<String>,
    #[serde(default)]
    pub attachments: Vec<AttachmentIn>,
}

/// A parent record: `{"type": "case", "number": N}` or `{"type": "contact", "id": "..."}`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ParentIn {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub number: Option<u64>,
    #[serde(default)]
    pub id: Option<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AttachmentIn {
    pub filename: String,
    pub content_type: String,
    pub content_base64: String,
}

/// The body of a message, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content {
    pub text: String,
    pub html: Option<String>,
    pub attachments: Vec<Attachment>,
}

/// A new message, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    pub bcc: Vec<Mailbox>,
    pub subject: String,
    pub content: Content,
}

impl ParentIn {
    /// The record it names; `parent.type`, `parent.number` or `parent.id` named when wrong.
    pub fn record(&self) -> Result<RecordRef, Invalid> {
        let kind: RecordKind = self
            .kind
            .parse()
            .map_err(|e: Invalid| Invalid::new("parent.type", e.message))?;
        match kind {
            RecordKind::Case => {
                let n = self
                    .number
                    .ok_or_else(|| Invalid::new("parent.number", "a case parent needs a number"))?;
                let n = CaseNumber::new(n).map_err(|e| Invalid::new("parent.number", e.message))?;
                Ok(RecordRef::case(n.get()))
            }
            _ => {
                let id = self.id.as_deref().unwrap_or("").trim();
                if id.is_empty() || id.len() > 200 || id.chars().any(char::is_control) {
                    return Err(Invalid::new(
                        "parent.id",
                        "a record parent needs an id of 1 to 200 characters, no control characters",
                    ));
                }
                Ok(RecordRef::new(kind, id))
            }
        }
    }
}

impl SendRequest {
    /// The message to send, or the first field at fault.
    pub fn message(&self) -> Result<Message, Invalid> {
        if self.to.is_empty() {
            return Err(Invalid::new("to", "at least one recipient is needed"));
        }
        let to = mailboxes("to", &self.to)?;
        let cc = mailboxes("cc", &self.cc)?;
        let bcc = mailboxes("bcc", &self.bcc)?;
        check_count(&[("to", &to), ("cc", &cc), ("bcc", &bcc)])?;
        let subject = subject(&self.subject)?;
        let content = content(&self.text, self.html.as_deref(), &self.attachments)?;
        Ok(Message {
            to,
            cc,
            bcc,
            subject,
            content,
        })
    }
}

/// Refuses more than [`MAX_RECIPIENTS`], naming the list where the count passes it.
pub fn check_count(lists: &[(&str, &[Mailbox])]) -> Result<(), Invalid> {
    let mut n = 0;
    for (field, list) in lists {
        n += list.len();
        if n > MAX_RECIPIENTS {
            return Err(Invalid::new(
                *field,
                format!("at most {MAX_RECIPIENTS} recipients in to, cc and bcc together"),
            ));
        }
    }
    Ok(())
}

/// Each entry of a recipient list, `field[i]` named when one is refused.
pub fn mailboxes(field: &str, list: &[String]) -> Result<Vec<Mailbox>, Invalid> {
    list.iter()
        .enumerate()
        .map(|(i, r)| recipient(r).map_err(|m| Invalid::new(format!("{field}[{i}]"), m)))
        .collect()
}

/// `address` or `Display Name <address>` (the name may be quoted).
fn recipient(raw: &str) -> Result<Mailbox, String> {
    if raw.chars().any(char::is_control) {
        return Err("a recipient must not contain control characters (CR, LF, NUL, ...)".into());
    }
    let raw = raw.trim();
    let (name, address) = match raw.rfind('<') {
        Some(i) if raw.ends_with('>') => (raw[..i].trim(), &raw[i + 1..raw.len() - 1]),
        _ => ("", raw),
    };
    let name = name
        .strip_prefix('"')
        .and_then(|n| n.strip_suffix('"'))
        .unwrap_or(name);
    display_name(name)?;
    Ok(Mailbox::new(name, address_spec(address)?))
}

/// A display name: no control characters, at most [`MAX_NAME_CHARS`].
pub fn display_name(name: &str) -> Result<(), String> {
    if name.chars().any(char::is_control) {
        return Err("a display name must not contain control characters (CR, LF, NUL, ...)".into());
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(format!(
            "a display name has at most {MAX_NAME_CHARS} characters"
        ));
    }
    Ok(())
}

/// An address as RFC 5322's `addr-spec` in the subset SES sends to: a dot-atom local part
/// (ASCII letters, digits and ``!#$%&'*+/=?^_`{|}~-``, dots between them) of at most 64
/// bytes, `@`, a host name of two or more labels (letters, digits, inner hyphens).
pub fn address_spec(raw: &str) -> Result<EmailAddress, String> {
    let refuse = |why: &str| Err(format!("{raw:?} is not an email address: {why}"));
    if raw.len() > MAX_ADDRESS_BYTES {
        return refuse("longer than 254 bytes");
    }
    let Some((local, domain)) = raw.rsplit_once('@') else {
        return refuse("no @");
    };
    let atext = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+/=?^_`{|}~-".contains(&b);
    let dot_atom = !local.is_empty()
        && local
            .split('.')
            .all(|w| !w.is_empty() && w.bytes().all(atext));
    if !dot_atom || local.len() > MAX_LOCAL_PART_BYTES {
        return refuse("the part before @ must be 1 to 64 letters, digits or !#$%&'*+/=?^_`{|}~- with single dots between");
    }
    let labels: Vec<&str> = domain.split('.').collect();
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if labels.len() < 2 || !labels.iter().all(label_ok) {
        return refuse(
            "the domain must be a host name like example.com (ASCII; punycode for others)",
        );
    }
    EmailAddress::parse(raw).map_err(|e| e.message)
}

/// A subject: not empty, no control characters, at most [`MAX_SUBJECT_CHARS`].
pub fn subject(s: &str) -> Result<String, Invalid> {
    if s.chars().any(char::is_control) {
        return Err(Invalid::new(
            "subject",
            "a subject must not contain control characters (CR, LF, NUL, tab, ...)",
        ));
    }
    let s = s.trim();
    if s.is_empty() {
        return Err(Invalid::new("subject", "a subject is required"));
    }
    if s.chars().count() > MAX_SUBJECT_CHARS {
        return Err(Invalid::new(
            "subject",
            format!("a subject has at most {MAX_SUBJECT_CHARS} characters"),
        ));
    }
    Ok(s.to_string())
}

/// Bodies and attachments, each within its limit.
pub fn content(
    text: &str,
    html: Option<&str>,
    attachments: &[AttachmentIn],
) -> Result<Content, Invalid> {
    for (field, body) in [("text", Some(text)), ("html", html)] {
        if body.is_some_and(|b| b.len() > MAX_BODY_BYTES) {
            return Err(Invalid::new(
                field,
                format!("a body has at most {MAX_BODY_BYTES} bytes"),
            ));
        }
    }
    if attachments.len() > MAX_ATTACHMENTS {
        return Err(Invalid::new(
            "attachments",
            format!("at most {MAX_ATTACHMENTS} attachments"),
        ));
    }
    let mut total = 0;
    let mut files = Vec::with_capacity(attachments.len());
    for (i, a) in attachments.iter().enumerate() {
        let file = attachment(i, a)?;
        total += file.content.len();
        if total > MAX_ATTACHMENTS_BYTES {
            return Err(Invalid::new(
                format!("attachments[{i}].content_base64"),
                format!("the attachments are over {MAX_ATTACHMENTS_BYTES} bytes together"),
            ));
        }
        files.push(file);
    }
    Ok(Content {
        text: text.to_string(),
        html: html.map(str::to_string),
        attachments: files,
    })
}

fn attachment(i: usize, a: &AttachmentIn) -> Result<Attachment, Invalid> {
    let field = |f: &str| format!("attachments[{i}].{f}");
    let name = a.filename.trim();
    let bad_name = name.is_empty()
        || name.chars().count() > MAX_FILENAME_CHARS
        || name == "."
        || name == ".."
        || name
            .chars()
            .any(|c| c.is_control() || c == '/' || c == '\\' || c == '"');
    if bad_name {
        return Err(Invalid::new(
            field("filename"),
            format!(
                "a file name has 1 to {MAX_FILENAME_CHARS} characters, no control characters, \
                 slashes, backslashes or double quotes"
            ),
        ));
    }
    let content_type = a.content_type.trim().to_ascii_lowercase();
    if !is_media_type(&content_type) {
        return Err(Invalid::new(
            field("content_type"),
            "a content type is a plain type/subtype, like application/pdf",
        ));
    }
    // Refused before decoding: base64 of the largest file allowed, with its padding.
    let encoded = a.content_base64.trim();
    if encoded.len() > MAX_ATTACHMENT_BYTES.div_ceil(3) * 4 {
        return Err(Invalid::new(
            field("content_base64"),
            format!("an attachment has at most {MAX_ATTACHMENT_BYTES} bytes"),
        ));
    }
    let content = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|e| Invalid::new(field("content_base64"), format!("not base64: {e}")))?;
    if content.len() > MAX_ATTACHMENT_BYTES {
        return Err(Invalid::new(
            field("content_base64"),
            format!("an attachment has at most {MAX_ATTACHMENT_BYTES} bytes"),
        ));
    }
    Ok(Attachment {
        filename: name.to_string(),
        content_type,
        content,
    })
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
