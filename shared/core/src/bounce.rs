//! Bounces (R-A4): what a delivery status notification says about the mail it returns, read
//! at parse time into a [`BounceInfo`].
//!
//! Two ways in:
//! - **A DSN** (RFC 3464): `multipart/report; report-type=delivery-status` (or the SMTPUTF8
//!   `global-delivery-status`). Its `message/delivery-status` part gives each recipient's
//!   Final-Recipient / Original-Recipient, Action and Status; the returned original
//!   (`message/rfc822` or `text/rfc822-headers`) gives its Message-ID, else the report's
//!   `X-Original-Message-ID` (Gmail). Postfix, Exchange, Gmail and SES all send these.
//! - **Best effort**, for mail that is a bounce without a proper report (qmail's "failure
//!   notice", Exim's plain bounce): From is `MAILER-DAEMON` or `postmaster`, or the message
//!   has `X-Failed-Recipients`, or it has an empty Return-Path and a bounce's subject. The
//!   recipients then come from `X-Failed-Recipients`, else from lines of the text that name
//!   an address alone (`<a@b>:`); the original's Message-ID from an attached original or a
//!   `Message-ID:` line of the copy quoted in the text. (A DSN whose report names no
//!   recipient at all is read the same way; one that names only successes marks nobody.)
//!
//! A recipient's failure is permanent when its Status is 5.x.x, transient when 4.x.x (RFC 3463
//! classes; the status says more about the address than the action: Postfix reports a message
//! it gave up on after days of 4.4.1 as `Action: failed`). Without a status, `Action: failed`
//! is permanent and `delayed` transient. Success notices (`delivered`, `relayed`, `expanded`,
//! 2.x.x) name no failed recipient. Everything is bounded ([`crate::bounds`]): at most
//! [`bounds::BOUNCE_RECIPIENTS`] recipients, de-duplicated by address, the rest counted.

use mail_parser::{Message, MimeHeaders};
use serde::{Deserialize, Serialize};

use crate::bounds::{self, cut};
use crate::ids::normalize_message_id;
use crate::model::MailAddr;
use crate::types::EmailAddress;

/// What a bounce says about the mail it returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BounceInfo {
    pub source: BounceSource,
    /// The returned mail's Message-ID, brackets stripped: what links the bounce to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_message_id: Option<String>,
    /// The returned mail's `X-Mailroom-Id`: our own mail bounced (R-I3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_mailroom_id: Option<String>,
    /// Failed recipients, each address once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recipients: Vec<BouncedRecipient>,
    /// Further distinct recipients the report named beyond the bound.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub recipients_dropped: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BounceSource {
    /// A delivery status notification (`multipart/report`).
    Dsn,
    /// Mail from a mailer daemon without a proper report: read as well as it can be.
    BestEffort,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BouncedRecipient {
    /// Normalised (Final-Recipient, else Original-Recipient).
    pub address: String,
    /// Original-Recipient when it differs (the address before forwarding or aliasing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original: Option<String>,
    /// `failed` or `delayed`, lower case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// The RFC 3463 code (`5.1.1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    pub permanent: bool,
    /// The remote server's words (`smtp; 550 5.1.1 User unknown`), for operators.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnostic: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl BounceInfo {
    /// The SES message id of the returned mail, when SES sent it: SES gives its mail the
    /// Message-ID `<id@email.amazonses.com>` (us-east-1) or `<id@<region>.amazonses.com>`.
    pub fn ses_message_id(&self) -> Option<&str> {
        let (id, domain) = self.original_message_id.as_deref()?.rsplit_once('@')?;
        let sub = domain
            .to_ascii_lowercase()
            .strip_suffix(".amazonses.com")?
            .to_string();
        let one_label = !sub.is_empty() && !sub.contains('.');
        (one_label && !id.is_empty()).then_some(id)
    }
}

/// A mailer daemon's address: `MAILER-DAEMON` or `postmaster` (any case, `-`, `_`, `.`
/// ignored, a `+tag` ignored).
pub fn is_daemon_address(address: &str) -> bool {
    matches!(local_key(address).as_str(), "mailerdaemon" | "postmaster")
}

/// The local part, lower case, without `+tag` and without `-`, `_`, `.`: the form robot
/// names are compared in.
pub(crate) fn local_key(address: &str) -> String {
    let a = address.trim().trim_start_matches('<');
    let local = a.rsplit_once('@').map_or(a, |(l, _)| l);
    let local = local.split('+').next().unwrap_or("");
    local
        .chars()
        .filter(|c| !matches!(c, '-' | '_' | '.'))
        .collect::<String>()
        .to_lowercase()
}

/// What the parser already knows about the message.
pub(crate) struct Context<'a> {
    pub message_id: &'a str,
    pub from: Option<&'a MailAddr>,
    pub to: &'a [MailAddr],
    pub subject: Option<&'a str>,
    pub text: &'a str,
    pub null_sender: bool,
}

/// Subjects of bounces whose sender is not named as a daemon (read only with an empty
/// Return-Path).
const BOUNCE_SUBJECTS: &[&str] = &[
    "undelivered mail",
    "undeliverable",
    "delivery status notification",
    "mail delivery failed",
    "mail delivery failure",
    "delivery failure",
    "failure notice",
    "returned mail",
    "delivery has failed",
];

pub(crate) fn is_delivery_report(m: &Message<'_>) -> bool {
    m.root_part().content_type().is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case("multipart")
            && ct
                .subtype()
                .is_some_and(|s| s.eq_ignore_ascii_case("report"))
            && ct.attribute("report-type").is_some_and(|r| {
                r.eq_ignore_ascii_case("delivery-status")
                    || r.eq_ignore_ascii_case("global-delivery-status")
            })
    })
}

/// The bounce facts of a message, `None` when it is no bounce.
pub(crate) fn read(m: &Message<'_>, cx: &Context<'_>) -> Option<BounceInfo> {
    let report = is_delivery_report(m);
    let failed_header: Vec<String> = m
        .headers_raw()
        .filter(|(n, _)| n.eq_ignore_ascii_case("X-Failed-Recipients"))
        .flat_map(|(_, v)| {
            crate::signals::unfold(v)
                .split(',')
                .filter_map(|a| EmailAddress::parse(a).ok())
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect();
    let daemon = cx.from.is_some_and(|f| is_daemon_address(&f.address));
    let subject_says = cx.null_sender
        && cx.subject.is_some_and(|s| {
            let s = s.trim_start().to_lowercase();
            BOUNCE_SUBJECTS.iter().any(|p| s.starts_with(p))
        });
    if !(report || daemon || subject_says || !failed_header.is_empty()) {
        return None;
    }
    let mut b = Builder::new(if report {
        BounceSource::Dsn
    } else {
        BounceSource::BestEffort
    });
    let mut report_original: Option<String> = None;
    let mut status_read = false;
    // A report that names its recipients is trusted, also when it names only successes.
    let mut report_named = false;
    for part in m.parts.iter().skip(1) {
        let Some(ct) = part.content_type() else {
            continue;
        };
        let ctype = ct.ctype().to_ascii_lowercase();
        let sub = ct.subtype().unwrap_or("").to_ascii_lowercase();
        match (ctype.as_str(), sub.as_str()) {
            ("message", "delivery-status" | "global-delivery-status") if !status_read => {
                status_read = true;
                let body = part.contents();
                let body = &body[..body.len().min(bounds::REPORT_SCAN_BYTES)];
                let text = String::from_utf8_lossy(body);
                for (i, group) in groups(&text).iter().enumerate() {
                    let get = |n: &str| field(group, n);
                    if get("Final-Recipient").is_some() || get("Original-Recipient").is_some() {
                        report_named = true;
                        b.report_recipient(&get);
                    } else if i == 0 {
                        report_original =
                            get("X-Original-Message-ID").and_then(|v| normalize_message_id(&v));
                    }
                }
            }
            ("message", "rfc822" | "global") if b.original.is_none() => match part.message() {
                Some(inner) => {
                    let h = |n: &str| inner.header_raw(n).map(crate::signals::unfold);
                    b.set_original(h("Message-ID"), h("X-Mailroom-Id"), cx.message_id);
                }
                None => b.original_from_headers(&String::from_utf8_lossy(part.contents()), cx),
            },
            ("text", "rfc822-headers") | ("message", "global-headers") if b.original.is_none() => {
                b.original_from_headers(&String::from_utf8_lossy(part.contents()), cx)
            }
            _ => {}
        }
    }
    if b.original.is_none() {
        b.set_original(report_original, None, cx.message_id);
    }
    for a in failed_header {
        b.add(BouncedRecipient {
            address: a,
            original: None,
            action: None,
            status: None,
            permanent: true,
            diagnostic: None,
        });
    }
    let text = prefix(cx.text, bounds::BOUNCE_TEXT_SCAN_BYTES);
    if b.recipients.is_empty() && !report_named {
        b.text_recipients(text, cx);
    }
    if b.original.is_none() {
        let quoted = text.lines().find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("Message-ID")
                .then(|| value.to_string())
        });
        b.set_original(quoted, None, cx.message_id);
    }
    Some(b.finish())
}

struct Builder {
    source: BounceSource,
    original: Option<String>,
    original_mailroom_id: Option<String>,
    recipients: Vec<BouncedRecipient>,
    dropped: u32,
}

impl Builder {
    fn new(source: BounceSource) -> Self {
        Builder {
            source,
            original: None,
            original_mailroom_id: None,
            recipients: Vec::new(),
            dropped: 0,
        }
    }

    /// The first id found wins; the bounce's own id is never its original.
    fn set_original(&mut self, id: Option<String>, mailroom: Option<String>, own: &str) {
        let Some(mut id) = id.as_deref().and_then(normalize_message_id) else {
            return;
        };
        if id == own {
            return;
        }
        cut(&mut id, bounds::ORIGINAL_ID_BYTES);
        self.original = Some(id);
        self.original_mailroom_id = mailroom.map(|mut m| {
            m = m.trim().to_string();
            cut(&mut m, bounds::MAILROOM_ID_BYTES);
            m
        });
    }

    fn original_from_headers(&mut self, text: &str, cx: &Context<'_>) {
        let text = prefix(text, bounds::REPORT_SCAN_BYTES);
        if let Some(head) = groups(text).first() {
            self.set_original(
                field(head, "Message-ID"),
                field(head, "X-Mailroom-Id"),
                cx.message_id,
            );
        }
    }

    /// One per-recipient group of a delivery-status part.
    fn report_recipient(&mut self, get: &dyn Fn(&str) -> Option<String>) {
        let addr = |n: &str| {
            get(n).and_then(|v| {
                let a = v.split_once(';').map_or(v.as_str(), |(_, a)| a);
                EmailAddress::parse(a).ok().map(String::from)
            })
        };
        let (final_r, original_r) = (addr("Final-Recipient"), addr("Original-Recipient"));
        let Some(address) = final_r.clone().or(original_r.clone()) else {
            return;
        };
        let action = get("Action").map(|a| {
            let mut a = a.trim().to_ascii_lowercase();
            cut(&mut a, bounds::SIGNAL_VALUE_BYTES);
            a
        });
        let status = get("Status").and_then(|s| status_code(&s));
        let permanent = match status.as_deref().and_then(|s| s.chars().next()) {
            Some('5') => true,
            Some('4') => false,
            Some(_) => return, // 2.x.x: delivered
            None => match action.as_deref() {
                Some("failed") => true,
                Some("delayed") => false,
                _ => return, // delivered, relayed, expanded, or nothing said
            },
        };
        if matches!(
            action.as_deref(),
            Some("delivered" | "relayed" | "expanded")
        ) {
            return;
        }
        let diagnostic = get("Diagnostic-Code").map(|mut d| {
            cut(&mut d, bounds::DIAGNOSTIC_BYTES);
            d
        });
        self.add(BouncedRecipient {
            original: original_r.filter(|o| final_r.is_some() && o != &address),
            address,
            action,
            status,
            permanent,
            diagnostic,
        });
    }

    /// Best effort: lines that name an address alone (`<a@b>:` of qmail and Postfix's text,
    /// an indented address of Exim's), before the copy of the original begins. The bounce's
    /// own From and To (the daemon and us) are never the failed recipients.
    fn text_recipients(&mut self, text: &str, cx: &Context<'_>) {
        let ours: Vec<String> = cx
            .from
            .into_iter()
            .chain(cx.to)
            .map(|a| crate::records::normalize_address(&a.address))
            .collect();
        let mut window_end = text.len();
        let mut found = Vec::new();
        let mut offset = 0;
        for line in text.split_inclusive('\n') {
            let start = offset;
            offset += line.len();
            let l = line.trim();
            let lower = l.to_ascii_lowercase();
            let copy_begins = lower.contains("copy of the message")
                || lower.contains("original message")
                || lower.starts_with("received:")
                || lower.starts_with("return-path:");
            if copy_begins {
                window_end = start;
                break;
            }
            let candidate = match l.strip_prefix('<') {
                Some(rest) => rest
                    .split_once('>')
                    .filter(|(_, after)| after.is_empty() || after.starts_with(':'))
                    .map(|(a, _)| a),
                None => Some(l.trim_end_matches(':')),
            };
            if let Some(a) = candidate.and_then(|a| EmailAddress::parse(a).ok()) {
                let a = String::from(a);
                if !ours.contains(&a) {
                    found.push(a);
                }
            }
        }
        let permanent = !transient_words(&text[..window_end]);
        for address in found {
            self.add(BouncedRecipient {
                address,
                original: None,
                action: None,
                status: None,
                permanent,
                diagnostic: None,
            });
        }
    }

    /// Adds a recipient once; a later permanent failure of the same address replaces a
    /// transient one.
    fn add(&mut self, r: BouncedRecipient) {
        if let Some(existing) = self.recipients.iter_mut().find(|e| e.address == r.address) {
            if r.permanent && !existing.permanent {
                *existing = r;
            }
            return;
        }
        if self.recipients.len() == bounds::BOUNCE_RECIPIENTS {
            self.dropped = self.dropped.saturating_add(1);
            return;
        }
        self.recipients.push(r);
    }

    fn finish(self) -> BounceInfo {
        BounceInfo {
            source: self.source,
            original_message_id: self.original,
            original_mailroom_id: self.original_mailroom_id,
            recipients: self.recipients,
            recipients_dropped: self.dropped,
        }
    }
}

/// Whether a bounce's text reads as a delay rather than a failure: it speaks of a delay or a
/// 4.x.x / 4xx code, and of no 5.x.x / 5xx code and nothing permanent.
fn transient_words(text: &str) -> bool {
    let lower = text.to_lowercase();
    let (mut has4, mut has5) = (false, false);
    for token in lower.split(|c: char| c.is_whitespace() || "(),;:[]<>".contains(c)) {
        let code = status_code(token).or_else(|| {
            let head: String = token.chars().take(4).collect();
            let digits = head.trim_end_matches('-');
            (digits.len() == 3 && digits.chars().all(|c| c.is_ascii_digit()))
                .then(|| digits.to_string())
        });
        match code.as_deref().and_then(|c| c.chars().next()) {
            Some('4') => has4 = true,
            Some('5') => has5 = true,
            _ => {}
        }
    }
    let delay = [
        "delayed",
        "will retry",
        "will be retried",
        "still trying",
        "temporar",
        "not yet been delivered",
    ]
    .iter()
    .any(|w| lower.contains(w));
    (has4 || delay) && !has5 && !lower.contains("permanent")
}

/// The RFC 3463 code at the start of a Status value: `class.subject.detail`.
fn status_code(value: &str) -> Option<String> {
    let token = value.split_whitespace().next()?;
    let parts: Vec<&str> = token.split('.').collect();
    let ok = parts.len() == 3
        && matches!(parts[0], "2" | "4" | "5")
        && parts[1..]
            .iter()
            .all(|p| (1..=3).contains(&p.len()) && p.chars().all(|c| c.is_ascii_digit()));
    ok.then(|| token.to_string())
}

/// Header-style field groups separated by blank lines (a delivery-status body, or a header
/// section), folded lines joined.
fn groups(text: &str) -> Vec<Vec<(String, String)>> {
    let mut out: Vec<Vec<(String, String)>> = Vec::new();
    let mut current: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = current.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            current.push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

fn field(group: &[(String, String)], name: &str) -> Option<String> {
    group
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.clone())
}

/// At most `max` bytes of `s`, on a character boundary.
fn prefix(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daemon_addresses() {
        assert!(is_daemon_address("MAILER-DAEMON@mx.example.test"));
        assert!(is_daemon_address("<Mailer_Daemon+x@mx.example>"));
        assert!(is_daemon_address("postmaster@example.org"));
        assert!(!is_daemon_address("postmasters@example.org"));
        assert!(!is_daemon_address("daemon@example.org"));
    }

    #[test]
    fn status_codes_and_delay_words() {
        assert_eq!(status_code("5.1.1").as_deref(), Some("5.1.1"));
        assert_eq!(
            status_code(" 4.4.1 (connection timed out)").as_deref(),
            Some("4.4.1")
        );
        assert_eq!(status_code("5.1"), None);
        assert_eq!(status_code("x.1.1"), None);
        assert!(transient_words("Delivery delayed; 451 4.4.1 will retry"));
        assert!(!transient_words("550 5.1.1 user unknown"));
        assert!(!transient_words(
            "This is a permanent error; I've given up."
        ));
        assert!(!transient_words("delivery failed"));
    }

    #[test]
    fn ses_message_ids() {
        let info = |id: &str| BounceInfo {
            source: BounceSource::Dsn,
            original_message_id: Some(id.into()),
            original_mailroom_id: None,
            recipients: vec![],
            recipients_dropped: 0,
        };
        assert_eq!(
            info("0100018d-abc-000000@email.amazonses.com").ses_message_id(),
            Some("0100018d-abc-000000")
        );
        assert_eq!(
            info("0102abc@eu-west-1.amazonses.com").ses_message_id(),
            Some("0102abc")
        );
        assert_eq!(info("x@mail.example.com").ses_message_id(), None);
        assert_eq!(info("x@a.b.amazonses.com").ses_message_id(), None);
        assert_eq!(info("x@amazonses.com").ses_message_id(), None);
    }

    #[test]
    fn hostile_reports_are_bounded() {
        let long = "x".repeat(100_000);
        let raw = format!(
            "From: MAILER-DAEMON@mx.example\r\nMessage-ID: <b@mx.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=B\r\n\r\n--B\r\nContent-Type: message/delivery-status\r\n\r\nFinal-Recipient: rfc822; a@x.example\r\nAction: {long}\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; {long}\r\n\r\n--B\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <{long}@x.example>\r\nX-Mailroom-Id: {long}\r\n--B--\r\n"
        );
        let p = crate::parse::parse(raw.as_bytes()).unwrap();
        let b = p.bounce_of.expect("a bounce");
        assert!(p.bounce);
        assert_eq!(
            b.original_message_id.unwrap().len(),
            bounds::ORIGINAL_ID_BYTES
        );
        assert_eq!(
            b.original_mailroom_id.unwrap().len(),
            bounds::MAILROOM_ID_BYTES
        );
        let r = &b.recipients[0];
        assert_eq!(r.address, "a@x.example");
        assert!(r.permanent, "5.1.1 decides, whatever the action says");
        assert_eq!(r.action.as_ref().unwrap().len(), bounds::SIGNAL_VALUE_BYTES);
        assert_eq!(
            r.diagnostic.as_ref().unwrap().len(),
            bounds::DIAGNOSTIC_BYTES
        );
    }

    #[test]
    fn mail_that_is_no_bounce_has_no_bounce_facts() {
        let p = crate::parse::parse(
            b"From: ann@x.example\r\nReturn-Path: <>\r\nSubject: hello\r\n\r\nnothing failed\r\n",
        )
        .unwrap();
        assert_eq!((p.bounce, p.bounce_of), (false, None));
        let p = crate::parse::parse(
            b"From: ann@x.example\r\nReturn-Path: <>\r\nSubject: Undeliverable: hello\r\n\r\n<b@y.example>: gone\r\n",
        )
        .unwrap();
        let b = p
            .bounce_of
            .expect("an empty Return-Path and a bounce's subject");
        assert_eq!(b.source, BounceSource::BestEffort);
        assert_eq!(b.recipients[0].address, "b@y.example");
    }

    #[test]
    fn field_groups_unfold() {
        let g = groups("\nReporting-MTA: dns; a\n\nFinal-Recipient: rfc822; b@x.example\nDiagnostic-Code: smtp; 550\n  user unknown\n");
        assert_eq!(g.len(), 2);
        assert_eq!(
            field(&g[1], "diagnostic-code").as_deref(),
            Some("smtp; 550 user unknown")
        );
    }
}
