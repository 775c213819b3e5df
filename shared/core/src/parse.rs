//! Raw message bytes to a [`ParsedEmail`], or the reason it must be quarantined (R-I1).
//!
//! mail-parser is lenient by design (broken MIME still yields text); we only refuse input that
//! is not an email at all, so nothing that a person could read is lost.

use chrono::{DateTime, Utc};
use mail_parser::{Address, HeaderValue, Message, MessageParser, MimeHeaders, PartType};

use crate::ids::{
    email_id, message_id_list, normalize_message_id, split_header_body, synthetic_message_id,
};
use crate::model::MailAddr;

#[derive(Debug, Clone, PartialEq)]
pub struct ParsedAttachment {
    pub filename: Option<String>,
    pub content_type: String,
    pub content_id: Option<String>,
    pub inline: bool,
    pub data: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ParsedEmail {
    pub email_id: String,
    pub message_id: String,
    pub synthetic_id: bool,
    pub subject: Option<String>,
    pub from: Option<MailAddr>,
    pub to: Vec<MailAddr>,
    pub cc: Vec<MailAddr>,
    pub reply_to: Vec<MailAddr>,
    pub date: Option<DateTime<Utc>>,
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
    /// `Auto-Submitted` other than `no`, or `X-Autoreply` / `X-Autorespond` (R-C5).
    pub auto_submitted: bool,
    /// List or bulk mail: `List-Id`, `List-Unsubscribe`, or `Precedence` list/bulk/junk.
    pub list: bool,
    /// A bounce (R-A4): a delivery status notification, or mailer-daemon mail read as one;
    /// exactly when `bounce_of` is set.
    pub bounce: bool,
    /// Authentication-Results of the receiving server says `dmarc=fail`.
    pub dmarc_fail: bool,
    /// The headers loop safety reads (R-A2); `auto_submitted` and `list` derive from them.
    pub signals: crate::signals::LoopSignals,
    pub bounce_of: Option<crate::bounce::BounceInfo>,
    /// Empty when the message has no readable text (mail-parser derives it from HTML otherwise).
    pub text: String,
    pub html: Option<String>,
    pub attachments: Vec<ParsedAttachment>,
    pub size: u64,
}

/// Why a message was quarantined instead of imported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unparseable {
    #[error("empty message")]
    Empty,
    #[error("no header section: the message does not start with a header field")]
    NoHeaders,
    #[error("binary data (NUL bytes) in the header section")]
    BinaryHeaders,
    #[error("the MIME parser could not read the message")]
    Parser,
}

/// Parse a raw message. Accepts LF or CRLF line endings.
pub fn parse(raw: &[u8]) -> Result<ParsedEmail, Unparseable> {
    if raw.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(Unparseable::Empty);
    }
    let (head, _) = split_header_body(raw);
    if head.contains(&0) {
        return Err(Unparseable::BinaryHeaders);
    }
    if !starts_with_header_field(raw) {
        return Err(Unparseable::NoHeaders);
    }
    let message = MessageParser::default()
        .parse(raw)
        .ok_or(Unparseable::Parser)?;
    if message.headers().is_empty() {
        return Err(Unparseable::NoHeaders);
    }
    Ok(from_message(&message, raw))
}

/// A header section begins with `name:` where name is printable ASCII without a colon; mbox
/// `From ` separator lines are tolerated.
fn starts_with_header_field(raw: &[u8]) -> bool {
    let start = raw
        .iter()
        .position(|b| !matches!(b, b'\r' | b'\n'))
        .unwrap_or(raw.len());
    let raw = &raw[start..];
    if raw.starts_with(b"From ") {
        return true;
    }
    let line_end = raw.iter().position(|&b| b == b'\n').unwrap_or(raw.len());
    let line = &raw[..line_end];
    match line.iter().position(|&b| b == b':') {
        Some(0) | None => false,
        Some(colon) => line[..colon].iter().all(|&b| (33..=126).contains(&b)),
    }
}

fn from_message(m: &Message<'_>, raw: &[u8]) -> ParsedEmail {
    let header_text = |name: &str| m.header_raw(name).map(|s| s.trim().to_string());

    let (message_id, synthetic_id) = match m.header_raw("Message-ID").and_then(normalize_message_id)
    {
        Some(id) => (id, false),
        None => (synthetic_message_id(raw), true),
    };
    let subject = m.subject().map(|s| s.to_string());
    let from = m.from().and_then(|a| addrs(a).into_iter().next());
    let date = m
        .date()
        .and_then(|d| DateTime::from_timestamp(d.to_timestamp(), 0))
        .or_else(|| m.header_raw("Date").and_then(lenient_date));
    let date_key = date
        .map(|d| d.to_rfc3339())
        .or_else(|| header_text("Date"))
        .unwrap_or_default();
    let email_id = email_id(
        &message_id,
        from.as_ref().map(|f| f.address.as_str()).unwrap_or(""),
        &date_key,
        subject.as_deref().unwrap_or(""),
    );

    // The loop signals decide the older flags, so the two never disagree.
    let signals = crate::signals::read(m);
    let auto_submitted = signals.is_auto_submitted();
    let list = signals.is_list();

    let dmarc_fail = m
        .header_values("Authentication-Results")
        .filter_map(|v| v.as_text())
        .any(|v| {
            v.to_ascii_lowercase()
                .replace(' ', "")
                .contains("dmarc=fail")
        });

    let text = (0..m.text_body_count())
        .filter_map(|i| m.body_text(i))
        .collect::<Vec<_>>()
        .join("\n");
    let to = m.to().map(addrs).unwrap_or_default();
    let bounce_of = crate::bounce::read(
        m,
        &crate::bounce::Context {
            message_id: &message_id,
            from: from.as_ref(),
            to: &to,
            subject: subject.as_deref(),
            text: &text,
            null_sender: signals.return_path == crate::signals::ReturnPath::Empty,
        },
    );
    let bounce = bounce_of.is_some();
    let html = if m.html_body_count() > 0 && m.html_bodies().any(|p| p.is_text_html()) {
        m.body_html(0).map(|h| h.into_owned())
    } else {
        None
    };

    // A multipart whose boundary never appears is reported as a part of its own; it is
    // structure, not an attachment.
    let attachments = m
        .attachments()
        .filter(|p| !matches!(p.body, PartType::Multipart(_)))
        .filter(|p| {
            !p.content_type()
                .is_some_and(|ct| ct.ctype().eq_ignore_ascii_case("multipart"))
        })
        .map(attachment)
        .collect();

    ParsedEmail {
        email_id,
        message_id,
        synthetic_id,
        subject,
        from,
        to,
        cc: m.cc().map(addrs).unwrap_or_default(),
        reply_to: m.reply_to().map(addrs).unwrap_or_default(),
        date,
        in_reply_to: id_list(m.in_reply_to(), m.header_raw("In-Reply-To")),
        references: id_list(m.references(), m.header_raw("References")),
        auto_submitted,
        list,
        bounce,
        dmarc_fail,
        signals,
        bounce_of,
        text,
        html,
        attachments,
        size: raw.len() as u64,
    }
}

fn attachment(part: &mail_parser::MessagePart<'_>) -> ParsedAttachment {
    let content_type = part
        .content_type()
        .map(|ct| match ct.subtype() {
            Some(sub) => format!("{}/{}", ct.ctype(), sub),
            None => ct.ctype().to_string(),
        })
        .unwrap_or_else(|| match &part.body {
            PartType::Message(_) => "message/rfc822".to_string(),
            PartType::Text(_) => "text/plain".to_string(),
            _ => "application/octet-stream".to_string(),
        })
        .to_ascii_lowercase();
    let content_id = part
        .content_id()
        .and_then(normalize_message_id)
        .filter(|s| !s.is_empty());
    let disposition_inline = part
        .content_disposition()
        .is_some_and(|d| d.ctype().eq_ignore_ascii_case("inline"));
    let data = match &part.body {
        PartType::Message(inner) => inner.raw_message().to_vec(),
        PartType::Text(t) | PartType::Html(t) => {
            let declared_text = part
                .content_type()
                .is_none_or(|ct| ct.ctype().eq_ignore_ascii_case("text"));
            if declared_text {
                t.as_bytes().to_vec()
            } else {
                undecoded_base64(part, t.as_bytes())
            }
        }
        PartType::Binary(b) | PartType::InlineBinary(b) => undecoded_base64(part, b),
        PartType::Multipart(_) => Vec::new(),
    };
    ParsedAttachment {
        filename: part.attachment_name().map(str::to_string),
        content_type,
        inline: disposition_inline || content_id.is_some(),
        content_id,
        data,
    }
}

/// mail-parser leaves a base64 part undecoded when the message ends inside it (no closing
/// boundary); decode it here so the attachment holds its content, not its transfer encoding.
fn undecoded_base64(part: &mail_parser::MessagePart<'_>, body: &[u8]) -> Vec<u8> {
    use base64::Engine;
    // Only when mail-parser did not decode it; a decoded part that happens to be plain ASCII
    // letters must not be decoded twice.
    let declared = matches!(part.encoding, mail_parser::Encoding::None)
        && part
            .content_transfer_encoding()
            .is_some_and(|e| e.trim().eq_ignore_ascii_case("base64"));
    let looks_encoded = !body.is_empty()
        && body.iter().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(b, b'+' | b'/' | b'=' | b'\r' | b'\n' | b' ' | b'\t')
        });
    if !(declared && looks_encoded) {
        return body.to_vec();
    }
    let mut clean: Vec<u8> = body
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace() && *b != b'=')
        .collect();
    clean.truncate(
        clean.len() / 4 * 4
            + if clean.len() % 4 >= 2 {
                clean.len() % 4
            } else {
                0
            },
    );
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(&clean)
        .unwrap_or_else(|_| body.to_vec())
}

/// Obsolete and sloppy Date forms mail-parser refuses: no seconds (`18:30 PST`), two-digit
/// years, named North American zones (RFC 5322 section 4.3).
pub fn lenient_date(raw: &str) -> Option<DateTime<Utc>> {
    let cleaned = raw.replace(',', " ");
    let mut tokens: Vec<&str> = cleaned.split_whitespace().collect();
    if tokens
        .first()
        .is_some_and(|t| t.chars().all(|c| c.is_ascii_alphabetic()) && t.len() >= 3)
    {
        tokens.remove(0); // day of week
    }
    if tokens.len() < 4 {
        return None;
    }
    let day: u32 = tokens[0].parse().ok()?;
    let month = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ]
    .iter()
    .position(|m| tokens[1].to_ascii_lowercase().starts_with(m))? as u32
        + 1;
    let mut year: i32 = tokens[2].parse().ok()?;
    year = match year {
        0..=49 => 2000 + year,
        50..=999 => 1900 + year,
        y => y,
    };
    let mut hms = tokens[3].split(':').map(|p| p.parse::<u32>());
    let (h, mi) = (hms.next()?.ok()?, hms.next()?.ok()?);
    let s = hms.next().and_then(|r| r.ok()).unwrap_or(0);
    let offset_minutes: i32 = match tokens.get(4).map(|z| z.to_ascii_uppercase()) {
        None => 0,
        Some(z) => match z.as_str() {
            "GMT" | "UT" | "UTC" | "Z" => 0,
            "EST" => -300,
            "EDT" => -240,
            "CST" => -360,
            "CDT" => -300,
            "MST" => -420,
            "MDT" => -360,
            "PST" => -480,
            "PDT" => -420,
            z if (z.starts_with('+') || z.starts_with('-')) && z.len() == 5 => {
                let n: i32 = z[1..].parse().ok()?;
                let m = (n / 100) * 60 + n % 100;
                if z.starts_with('-') {
                    -m
                } else {
                    m
                }
            }
            _ => 0,
        },
    };
    let naive = chrono::NaiveDate::from_ymd_opt(year, month, day)?.and_hms_opt(h, mi, s)?;
    // Checked: a year at the calendar's edge must give no date, not a panic.
    naive
        .and_utc()
        .checked_sub_signed(chrono::Duration::minutes(offset_minutes as i64))
}

fn addrs(a: &Address<'_>) -> Vec<MailAddr> {
    a.iter()
        .filter_map(|addr| {
            let address = addr.address()?.trim().to_string();
            if address.is_empty() {
                return None;
            }
            Some(MailAddr {
                name: addr
                    .name()
                    .map(|n| n.trim().to_string())
                    .filter(|n| !n.is_empty()),
                address,
            })
        })
        .collect()
}

/// Prefers the raw header (verbatim ids) and falls back to mail-parser's view.
fn id_list(parsed: &HeaderValue<'_>, raw: Option<&str>) -> Vec<String> {
    if let Some(raw) = raw {
        let ids = message_id_list(raw);
        if !ids.is_empty() {
            return ids;
        }
    }
    match parsed {
        HeaderValue::Text(t) => vec![t.to_string()],
        HeaderValue::TextList(l) => l.iter().map(|t| t.to_string()).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_is_not_mail() {
        assert_eq!(parse(b""), Err(Unparseable::Empty));
        assert_eq!(parse(b"\r\n \n"), Err(Unparseable::Empty));
        assert_eq!(
            parse(b"Hello there, this is just text\nmore\n"),
            Err(Unparseable::NoHeaders)
        );
        assert_eq!(
            parse(b"Subject: a\0b\n\nbody"),
            Err(Unparseable::BinaryHeaders)
        );
    }

    #[test]
    fn parses_a_simple_message() {
        let raw = b"From: \"Jane Doe\" <jane@example.com>\r\nTo: support@example.test\r\nSubject: =?UTF-8?B?SGVsbG8gd8O2cmxk?=\r\nMessage-ID: <abc@example.com>\r\nDate: Tue, 3 Mar 2026 10:00:00 +0200\r\nIn-Reply-To: <p@x>\r\nReferences: <o@x> <p@x>\r\nAuto-Submitted: auto-replied\r\n\r\nHi there\r\n";
        let p = parse(raw).unwrap();
        assert_eq!(p.message_id, "abc@example.com");
        assert!(!p.synthetic_id);
        assert_eq!(p.subject.as_deref(), Some("Hello wörld"));
        assert_eq!(p.from.as_ref().unwrap().name.as_deref(), Some("Jane Doe"));
        assert_eq!(p.date.unwrap().to_rfc3339(), "2026-03-03T08:00:00+00:00");
        assert_eq!(p.in_reply_to, vec!["p@x"]);
        assert_eq!(p.references, vec!["o@x", "p@x"]);
        assert!(p.auto_submitted);
        assert!(p.text.contains("Hi there"));
    }

    #[test]
    fn a_decoded_attachment_of_base64_letters_is_not_decoded_twice() {
        let raw = b"From: a@example.com\r\nSubject: x\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nQUJDREVGR0g=\r\n--b--\r\n";
        let p = parse(raw).unwrap();
        assert_eq!(p.attachments[0].data, b"ABCDEFGH");
    }

    #[test]
    fn lenient_dates() {
        let d = |s| lenient_date(s).map(|d| d.to_rfc3339());
        assert_eq!(
            d("Thu, 21 Feb 2002 18:30 PST").unwrap(),
            "2002-02-22T02:30:00+00:00"
        );
        assert_eq!(
            d("5 Nov 99 23:59 GMT").unwrap(),
            "1999-11-05T23:59:00+00:00"
        );
        assert_eq!(
            d("Mon, 2 Mar 2026 10:00:00 +0130").unwrap(),
            "2026-03-02T08:30:00+00:00"
        );
        assert_eq!(d("yesterday"), None);
        // At the calendar's edge: no date, and no panic.
        assert_eq!(d("Fri, 31 Dec 262142 23:59 EST"), None);
        assert_eq!(d("Fri, 1 Jan -262143 00:00 +0100"), None);
    }

    #[test]
    fn no_message_id_gets_a_stable_synthetic_one() {
        let raw = b"From: a@example.com\nSubject: x\n\nbody\n";
        let a = parse(raw).unwrap();
        assert!(a.synthetic_id);
        assert_eq!(a.message_id, parse(raw).unwrap().message_id);
        assert_eq!(a.email_id, parse(raw).unwrap().email_id);
    }
}
