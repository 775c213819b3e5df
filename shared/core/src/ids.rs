//! Identities: Message-IDs as received, the email identity used for dedupe (R-I2), and stable
//! synthetic ids for messages that have none.

use sha2::{Digest, Sha256};

/// Message-ID as received: surrounding whitespace and one pair of angle brackets removed, the
/// rest verbatim, even when it is not RFC-valid (R-I2). `None` when nothing is left.
pub fn normalize_message_id(raw: &str) -> Option<String> {
    let mut s = unfold(raw).trim().to_string();
    if s.starts_with('<') && s.ends_with('>') && s.len() >= 2 {
        s = s[1..s.len() - 1].trim().to_string();
    }
    (!s.is_empty()).then_some(s)
}

/// Ids in an In-Reply-To or References header, brackets stripped, in order.
pub fn message_id_list(raw: &str) -> Vec<String> {
    let raw = unfold(raw);
    let mut out = Vec::new();
    let mut rest = raw.as_str();
    if !rest.contains('<') {
        // Broken senders write bare ids separated by whitespace.
        return rest.split_whitespace().map(str::to_string).collect();
    }
    while let Some(start) = rest.find('<') {
        match rest[start + 1..].find('>') {
            Some(end) => {
                let id = rest[start + 1..start + 1 + end].trim();
                if !id.is_empty() {
                    out.push(id.to_string());
                }
                rest = &rest[start + 1 + end + 1..];
            }
            None => break,
        }
    }
    out
}

fn unfold(raw: &str) -> String {
    raw.replace("\r\n", "").replace('\n', "")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The identity of one email. The Message-ID alone is not enough: a broken sender that reuses a
/// Message-ID for other mail (other From, Date or Subject) must not have that mail swallowed.
pub fn email_id(message_id: &str, from: &str, date: &str, subject: &str) -> String {
    let mut h = Sha256::new();
    for part in ["v1", message_id, &from.to_ascii_lowercase(), date, subject] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    hex(&h.finalize()[..16])
}

/// Header fields added in transit: two copies of one message differ in them, so the synthetic
/// id ignores them.
const TRACE_HEADERS: &[&str] = &[
    "received",
    "return-path",
    "delivered-to",
    "x-original-to",
    "x-received",
    "authentication-results",
    "arc-seal",
    "arc-message-signature",
    "arc-authentication-results",
    "received-spf",
    "x-spam-status",
    "x-spam-score",
    "x-spam-flag",
    "x-virus-scanned",
];

/// A stable id for a message without Message-ID, derived from its content (R-I2): the header
/// section without trace fields, and the body, line endings normalised. The same message fetched
/// again, or received through another account, gets the same id.
pub fn synthetic_message_id(raw: &[u8]) -> String {
    let (head, body) = split_header_body(raw);
    let mut h = Sha256::new();
    h.update(b"mailroom-synthetic-v1\0");
    let head = String::from_utf8_lossy(head).replace("\r\n", "\n");
    let mut keep = true;
    for line in head.split('\n') {
        let continuation = line.starts_with(' ') || line.starts_with('\t');
        if !continuation {
            let name = line
                .split(':')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            keep = !TRACE_HEADERS.contains(&name.as_str());
        }
        if keep {
            h.update(line.trim_end().as_bytes());
            h.update(b"\n");
        }
    }
    h.update(b"\0");
    let mut prev_cr = false;
    let mut buf = Vec::with_capacity(body.len());
    for &b in body {
        if b == b'\n' && prev_cr {
            buf.pop();
        }
        buf.push(b);
        prev_cr = b == b'\r';
    }
    h.update(&buf);
    format!("{}@synthetic.mailroom.invalid", hex(&h.finalize()[..16]))
}

/// Splits at the first empty line (CRLF or LF); the whole input is header when there is none.
pub fn split_header_body(raw: &[u8]) -> (&[u8], &[u8]) {
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'\n' {
            let rest = &raw[i + 1..];
            if rest.starts_with(b"\r\n") {
                return (&raw[..i + 1], &rest[2..]);
            }
            if rest.starts_with(b"\n") {
                return (&raw[..i + 1], &rest[1..]);
            }
        }
        i += 1;
    }
    (raw, &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_are_kept_verbatim() {
        assert_eq!(normalize_message_id(" <a@b> ").as_deref(), Some("a@b"));
        assert_eq!(
            normalize_message_id("<not a valid id>").as_deref(),
            Some("not a valid id")
        );
        assert_eq!(normalize_message_id("12345").as_deref(), Some("12345"));
        assert_eq!(normalize_message_id("<>"), None);
        assert_eq!(normalize_message_id("   "), None);
    }

    #[test]
    fn reference_lists_keep_order() {
        assert_eq!(
            message_id_list("<a@x>\r\n <b@y> <c@z>"),
            vec!["a@x", "b@y", "c@z"]
        );
        assert_eq!(
            message_id_list("bare@id other@id"),
            vec!["bare@id", "other@id"]
        );
        assert!(message_id_list("").is_empty());
    }

    #[test]
    fn reused_message_id_with_other_content_is_another_email() {
        let a = email_id("x@y", "a@example.com", "d1", "Hello");
        assert_eq!(a, email_id("x@y", "A@Example.com", "d1", "Hello"));
        assert_ne!(a, email_id("x@y", "b@example.com", "d1", "Hello"));
        assert_ne!(a, email_id("x@y", "a@example.com", "d2", "Hello"));
        assert_ne!(a, email_id("x@y", "a@example.com", "d1", "Other"));
    }

    #[test]
    fn synthetic_id_ignores_trace_headers_and_line_endings() {
        let a = b"Received: from a\nSubject: hi\nFrom: x@y\n\nbody\nline\n";
        let b = b"Received: from b\r\n  by c\r\nSubject: hi\r\nFrom: x@y\r\n\r\nbody\r\nline\r\n";
        assert_eq!(synthetic_message_id(a), synthetic_message_id(b));
        let c = b"Subject: hi\nFrom: x@y\n\nother body\n";
        assert_ne!(synthetic_message_id(a), synthetic_message_id(c));
    }
}
