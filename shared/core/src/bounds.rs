//! Bounds on every value a message's content decides, applied right after parsing and before
//! the first write, so no message can push an item, a key or a request past a limit of AWS
//! (which the local emulator enforces only in part). Each bound names the limit it protects.
//!
//! | value                         | bound                       | protects                          |
//! |-------------------------------|-----------------------------|-----------------------------------|
//! | subject                       | 4 KiB                       | 400 KB items (email, case, stream, copies) |
//! | display name, address         | 256 B, 320 B                | 400 KB items                      |
//! | To + Cc + Reply-To            | 300 addresses, de-duplicated| 400 KB items; sets without duplicates |
//! | Message-ID                    | 64 KiB kept verbatim        | R-I2; keys from it are hashed     |
//! | In-Reply-To, References       | 20 ids; root + newest, 32 KiB | 400 KB items, BatchGetItem size |
//! | attachments stored            | 100 (the rest: `attachments_skipped`) | 400 KB items, S3 request count |
//! | attachment name, type, cid    | 255 B, 128 B, 256 B         | 400 KB items; S3 keys (keys.rs)   |
//! | loop signals (signals.rs)     | keywords 64 B, 16 tokens, `X-Mailroom-Id` 256 B, Return-Path 320 B | 400 KB items |
//! | bounce facts (bounce.rs)      | 20 recipients, de-duplicated (the rest counted); original id 2 KiB; diagnostic 256 B | 400 KB items |
//! | report parts read             | 256 KiB of a delivery-status part, 64 KiB of a text body | CPU per message |
//!
//! Dedupe is unaffected: the email id is computed from the values as received, before they are
//! bounded.

use crate::model::MailAddr;
use crate::parse::ParsedEmail;
use crate::records::normalize_address;
use crate::types::MAX_MESSAGE_ID_BYTES;

pub const SUBJECT_BYTES: usize = 4 * 1024;
pub const NAME_BYTES: usize = 256;
pub const ADDRESS_BYTES: usize = 320;
pub const ADDRESSES: usize = 300;
pub const REFERENCE_IDS: usize = 20;
pub const REFERENCE_BYTES: usize = 32 * 1024;
pub const ATTACHMENTS: usize = 100;
pub const FILENAME_BYTES: usize = 255;
pub const CONTENT_TYPE_BYTES: usize = 128;
pub const CONTENT_ID_BYTES: usize = 256;
/// A header keyword kept as a loop signal (`Auto-Submitted`, `Precedence`, a DSN `Action`).
pub const SIGNAL_VALUE_BYTES: usize = 64;
/// `X-Auto-Response-Suppress` tokens kept.
pub const SUPPRESS_TOKENS: usize = 16;
pub const MAILROOM_ID_BYTES: usize = 256;
/// Failed recipients kept per bounce; a report naming more counts the rest.
pub const BOUNCE_RECIPIENTS: usize = 20;
/// The bounced original's Message-ID: real ones are far shorter; a longer one matches nothing.
pub const ORIGINAL_ID_BYTES: usize = 2 * 1024;
pub const DIAGNOSTIC_BYTES: usize = 256;
/// How much of a `message/delivery-status` part is read.
pub const REPORT_SCAN_BYTES: usize = 256 * 1024;
/// How much of a bounce's text body the best-effort reading scans.
pub const BOUNCE_TEXT_SCAN_BYTES: usize = 64 * 1024;

/// What bounding dropped, so ingest can mark the email (nothing is silently lost: the raw
/// message stays in S3).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dropped {
    pub attachments: usize,
}

/// Bounds a parsed email in place (see the module table).
pub fn bound(p: &mut ParsedEmail) -> Dropped {
    if let Some(s) = &mut p.subject {
        cut(s, SUBJECT_BYTES);
    }
    cut(&mut p.message_id, MAX_MESSAGE_ID_BYTES);
    if let Some(f) = &mut p.from {
        bound_addr(f);
    }
    // One budget over the three lists, in order of importance for linking and replies.
    let mut seen = std::collections::HashSet::new();
    let mut budget = ADDRESSES;
    for list in [&mut p.reply_to, &mut p.to, &mut p.cc] {
        list.retain_mut(|a| {
            bound_addr(a);
            if budget == 0 || !seen.insert(normalize_address(&a.address)) {
                return false;
            }
            budget -= 1;
            true
        });
    }
    bound_ids(&mut p.in_reply_to, false);
    bound_ids(&mut p.references, true);
    let dropped = p.attachments.len().saturating_sub(ATTACHMENTS);
    p.attachments.truncate(ATTACHMENTS);
    for a in &mut p.attachments {
        if let Some(n) = &mut a.filename {
            cut(n, FILENAME_BYTES);
        }
        cut(&mut a.content_type, CONTENT_TYPE_BYTES);
        if let Some(c) = &mut a.content_id {
            cut(c, CONTENT_ID_BYTES);
        }
    }
    Dropped {
        attachments: dropped,
    }
}

fn bound_addr(a: &mut MailAddr) {
    if let Some(n) = &mut a.name {
        cut(n, NAME_BYTES);
    }
    cut(&mut a.address, ADDRESS_BYTES);
}

/// At most [`REFERENCE_IDS`] ids and [`REFERENCE_BYTES`] in all. For References the first id
/// (the thread's root, which every email of the thread agrees on) is kept, then the newest.
fn bound_ids(ids: &mut Vec<String>, keep_root: bool) {
    let mut seen = std::collections::HashSet::new();
    ids.retain(|id| seen.insert(id.clone()));
    for id in ids.iter_mut() {
        cut(id, MAX_MESSAGE_ID_BYTES);
    }
    let root = if keep_root && !ids.is_empty() {
        Some(ids.remove(0))
    } else {
        None
    };
    let mut bytes = root.as_ref().map_or(0, String::len);
    let room = REFERENCE_IDS - usize::from(root.is_some());
    let mut newest: Vec<String> = Vec::new();
    for id in ids.drain(..).rev() {
        if newest.len() == room || bytes + id.len() > REFERENCE_BYTES {
            break;
        }
        bytes += id.len();
        newest.push(id);
    }
    newest.reverse();
    ids.extend(root);
    ids.extend(newest);
}

/// Shortens to at most `max` bytes, on a character boundary.
pub fn cut(s: &mut String, max: usize) {
    if s.len() <= max {
        return;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse;

    fn parsed(headers: &str) -> ParsedEmail {
        parse(format!("{headers}\r\n\r\nbody\r\n").as_bytes()).unwrap()
    }

    #[test]
    fn long_values_are_cut_on_character_boundaries() {
        let mut s = "é".repeat(10);
        cut(&mut s, 5);
        assert_eq!(s, "éé");
        let mut p = parsed(&format!(
            "From: a@x.example\r\nSubject: {}\r\nMessage-ID: <id@x>",
            "Ж".repeat(10_000)
        ));
        let id = p.email_id.clone();
        bound(&mut p);
        assert!(p.subject.as_ref().unwrap().len() <= SUBJECT_BYTES);
        assert_eq!(
            p.email_id, id,
            "dedupe identity is computed before bounding"
        );
    }

    #[test]
    fn recipients_share_one_budget_without_duplicates() {
        let to: Vec<String> = (0..1000)
            .map(|i| format!("u{}@x.example", i % 400))
            .collect();
        let mut p = parsed(&format!(
            "From: a@x.example\r\nTo: {}\r\nCc: {}\r\nReply-To: r@x.example",
            to.join(", "),
            to.join(", ")
        ));
        bound(&mut p);
        assert_eq!(p.reply_to.len(), 1);
        assert_eq!(p.to.len(), ADDRESSES - 1);
        assert!(
            p.cc.is_empty(),
            "every Cc address is a duplicate or over budget"
        );
        let mut all: Vec<_> = p.to.iter().map(|a| a.address.clone()).collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), p.to.len());
    }

    #[test]
    fn references_keep_the_root_and_the_newest() {
        let refs: Vec<String> = (0..500).map(|i| format!("<r{i}@x>")).collect();
        let mut p = parsed(&format!(
            "From: a@x.example\r\nReferences: {}\r\nIn-Reply-To: <r499@x>",
            refs.join(" ")
        ));
        bound(&mut p);
        assert_eq!(p.references.len(), REFERENCE_IDS);
        assert_eq!(p.references[0], "r0@x");
        assert_eq!(p.references.last().unwrap(), "r499@x");
        assert_eq!(p.in_reply_to, ["r499@x"]);
    }

    #[test]
    fn attachments_over_the_limit_are_counted_as_dropped() {
        let mut m = String::from(
            "From: a@x.example\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n",
        );
        for i in 0..(ATTACHMENTS + 7) {
            m.push_str(&format!(
                "--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"{i}-{}.bin\"\r\n\r\nx\r\n",
                "n".repeat(400)
            ));
        }
        m.push_str("--b--\r\n");
        let mut p = parse(m.as_bytes()).unwrap();
        let dropped = bound(&mut p);
        assert_eq!(dropped.attachments, 7);
        assert_eq!(p.attachments.len(), ATTACHMENTS);
        assert!(p
            .attachments
            .iter()
            .all(|a| a.filename.as_ref().unwrap().len() <= FILENAME_BYTES));
    }
}
