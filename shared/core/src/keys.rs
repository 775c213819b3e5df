//! Every storage key format of the project, in one leaf module (it imports nothing of the
//! crate): S3 object keys here, DynamoDB partition and sort keys beside them. Adapters and
//! services build keys only through these functions, so a format is changed in one place and
//! the IAM check can list every prefix.
//!
//! | S3 prefix      | holds                                   | written by | lifetime                |
//! |----------------|-----------------------------------------|------------|-------------------------|
//! | `raw/`         | raw messages as fetched                 | poller     | bucket lifecycle rule   |
//! | `bodies/`      | text/HTML bodies too large for an item  | ingest     | kept                    |
//! | `attachments/` | attachments and inline parts            | ingest     | kept                    |
//! | `quarantine/`  | raw copies of quarantined messages      | ingest     | kept (replayable, R-F9) |

/// Every S3 prefix the project writes or reads, for the IAM check.
pub const S3_PREFIXES: [&str; 4] = ["raw/", "bodies/", "attachments/", "quarantine/"];

/// The S3 key of a raw message. Deterministic, so a re-run overwrites instead of duplicating.
pub fn raw_key(account: &str, folder: &str, uidvalidity: u32, uid: u32) -> String {
    format!(
        "raw/{account}/{}/{uidvalidity}/{uid}.eml",
        encode_path_part(folder)
    )
}

/// A body too large for the email item (R-F6): `name` is `text` or `html`.
pub fn body_key(email_id: &str, name: &str) -> String {
    format!("bodies/{email_id}/{name}")
}

/// The `index`th attachment of an email; the file name (already shortened) is kept readable.
pub fn attachment_key(email_id: &str, index: usize, filename: Option<&str>) -> String {
    match filename {
        Some(name) => format!("attachments/{email_id}/{index}-{}", encode_path_part(name)),
        None => format!("attachments/{email_id}/{index}"),
    }
}

/// The durable raw copy of a quarantined message.
pub fn quarantine_key(id: &str) -> String {
    format!("quarantine/{id}.eml")
}

/// The sort key of a skipped-message record: one per account, folder, UIDVALIDITY and UID.
pub fn skipped_key(account: &str, folder: &str, uidvalidity: u32, uid: u32) -> String {
    format!(
        "{account}#{}#{uidvalidity}#{uid:010}",
        encode_path_part(folder)
    )
}

/// Folder names may hold `/`, spaces or any Unicode; keys get a reversible, plain form.
pub fn encode_path_part(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_plain_and_every_prefix_is_listed() {
        assert_eq!(
            raw_key("support", "INBOX/Sub folder", 7, 42),
            "raw/support/INBOX%2FSub%20folder/7/42.eml"
        );
        assert_eq!(
            attachment_key("e1", 2, Some("a b.pdf")),
            "attachments/e1/2-a%20b.pdf"
        );
        assert_eq!(skipped_key("a", "INBOX", 3, 9), "a#INBOX#3#0000000009");
        for key in [
            raw_key("a", "f", 1, 1),
            body_key("e", "text"),
            attachment_key("e", 0, None),
            quarantine_key("q"),
        ] {
            assert!(S3_PREFIXES.iter().any(|p| key.starts_with(p)), "{key}");
        }
    }
}
