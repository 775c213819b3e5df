//! What an email's headers say about where it came from, read once at parse time, so the
//! loop-safety rules (R-A2, [`crate::dispatch::loops`]) run on the stored record without the
//! raw message.
//!
//! Only facts are kept here (a header's value, its presence); what they mean for an auto-reply
//! is decided in `dispatch::loops`. Every value is bounded ([`crate::bounds`]): a keyword to
//! [`bounds::SIGNAL_VALUE_BYTES`], at most [`bounds::SUPPRESS_TOKENS`] tokens, an address to
//! [`bounds::ADDRESS_BYTES`], the `X-Mailroom-Id` to [`bounds::MAILROOM_ID_BYTES`].
//!
//! Spam verdicts recognised (the receiving server's, R-A2 "no backscatter"):
//!
//! | header                           | spam when                     | written by               |
//! |----------------------------------|-------------------------------|--------------------------|
//! | `X-Spam-Flag`                    | `YES`                         | SpamAssassin             |
//! | `X-Spam-Status`                  | starts with `Yes`             | SpamAssassin             |
//! | `X-Spam`                         | `Yes` / `True`                | Rspamd (milter headers)  |
//! | `X-SES-Spam-Verdict`             | `FAIL`                        | SES receiving            |
//! | `X-SES-Virus-Verdict`            | `FAIL`                        | SES receiving            |
//! | `X-MS-Exchange-Organization-SCL` | 5 to 9                        | Exchange / Microsoft 365 |
//! | `X-Forefront-Antispam-Report`    | `SFV:SPM` or `SFV:SKS`        | Microsoft 365            |
//!
//! A sender can forge any of these, but forging one only stops the answer to its own mail.

use mail_parser::Message;
use serde::{Deserialize, Serialize};

use crate::bounds::{self, cut};

/// The loop-relevant headers of one email (R-A2, R-C5, R-I3). The default is a message with
/// none of them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoopSignals {
    /// `Auto-Submitted` keyword, lower case (`auto-replied`, `auto-generated`, `no`, ...);
    /// of several fields, the first that is not `no`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_submitted: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub x_autoreply: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub x_autorespond: bool,
    /// `X-Auto-Response-Suppress` tokens, lower case (`all`, `autoreply`, `oof`, `dr`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub auto_response_suppress: Vec<String>,
    /// `Precedence` keyword, lower case; of several fields, the first that asks for silence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precedence: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub list_id: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub list_unsubscribe: bool,
    /// The topmost `Return-Path`: the one the delivering server wrote.
    #[serde(default, skip_serializing_if = "ReturnPath::is_missing")]
    pub return_path: ReturnPath,
    /// Which spam verdicts of the receiving server said spam (see the module table).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spam: Vec<SpamVerdict>,
    /// `X-Mailroom-Id` as written: present only on mail Mailroom sent (R-I3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mailroom_id: Option<String>,
}

/// `Return-Path` as delivered. Missing and empty differ (R-A2): `<>` is the null reverse path
/// of bounces and auto-replies; a message without the field says nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReturnPath {
    #[default]
    Missing,
    Empty,
    Address(String),
}

impl ReturnPath {
    pub fn is_missing(&self) -> bool {
        matches!(self, ReturnPath::Missing)
    }
}

/// A receiving server's header that marked the email as spam (or virus).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpamVerdict {
    XSpamFlag,
    XSpamStatus,
    XSpam,
    SesSpam,
    SesVirus,
    MicrosoftScl,
    MicrosoftSfv,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl LoopSignals {
    /// `Auto-Submitted` present with a value other than `no`.
    pub fn auto_submitted_not_no(&self) -> bool {
        self.auto_submitted.as_deref().is_some_and(|v| v != "no")
    }

    /// Auto-submitted mail in the sense of R-C5 (never creates a case): `Auto-Submitted` other
    /// than `no`, `X-Autoreply`, `X-Autorespond`. This is what `EmailRecord::auto_submitted`
    /// holds.
    pub fn is_auto_submitted(&self) -> bool {
        self.auto_submitted_not_no() || self.x_autoreply || self.x_autorespond
    }

    /// List or bulk mail, what `EmailRecord::list` holds: `List-Id`, `List-Unsubscribe`, or
    /// `Precedence` list/bulk/junk. (Such mail may still create a case, R-C5.)
    pub fn is_list(&self) -> bool {
        self.list_id
            || self.list_unsubscribe
            || matches!(self.precedence.as_deref(), Some("list" | "bulk" | "junk"))
    }

    /// `Precedence` bulk/junk/list/auto_reply (R-A2).
    pub fn precedence_silences(&self) -> bool {
        self.precedence.as_deref().is_some_and(precedence_silences)
    }

    /// `X-Auto-Response-Suppress` All or AutoReply (R-A2). Other tokens (`OOF`, `DR`, ...)
    /// ask other kinds of automatic mail to stay away, not ours.
    pub fn suppresses_auto_reply(&self) -> bool {
        self.auto_response_suppress
            .iter()
            .any(|t| t == "all" || t == "autoreply")
    }
}

fn precedence_silences(p: &str) -> bool {
    matches!(p, "bulk" | "junk" | "list" | "auto_reply" | "auto-reply")
}

/// Reads the signals from a parsed message's top-level header fields.
pub(crate) fn read(m: &Message<'_>) -> LoopSignals {
    let mut s = LoopSignals::default();
    let mut return_path_seen = false;
    for (name, raw) in m.headers_raw() {
        let value = unfold(raw);
        let is = |n: &str| name.eq_ignore_ascii_case(n);
        if is("Auto-Submitted") {
            let k = keyword(&value);
            if s.auto_submitted.as_deref().is_none_or(|v| v == "no") {
                s.auto_submitted = Some(k);
            }
        } else if is("X-Autoreply") {
            s.x_autoreply = true;
        } else if is("X-Autorespond") {
            s.x_autorespond = true;
        } else if is("X-Auto-Response-Suppress") {
            for t in value.split(|c: char| c == ',' || c.is_whitespace()) {
                let mut t = t.trim().to_ascii_lowercase();
                cut(&mut t, bounds::SIGNAL_VALUE_BYTES);
                let room = s.auto_response_suppress.len() < bounds::SUPPRESS_TOKENS;
                if !t.is_empty() && room && !s.auto_response_suppress.contains(&t) {
                    s.auto_response_suppress.push(t);
                }
            }
        } else if is("Precedence") {
            let k = keyword(&value);
            if !s.precedence.as_deref().is_some_and(precedence_silences) {
                s.precedence = Some(k);
            }
        } else if is("List-Id") {
            s.list_id = true;
        } else if is("List-Unsubscribe") {
            s.list_unsubscribe = true;
        } else if is("Return-Path") {
            if !return_path_seen {
                return_path_seen = true;
                s.return_path = return_path(&value);
            }
        } else if is("X-Mailroom-Id") {
            if s.mailroom_id.is_none() {
                let mut id = value.trim().to_string();
                cut(&mut id, bounds::MAILROOM_ID_BYTES);
                s.mailroom_id = Some(id);
            }
        } else if let Some(v) = spam_verdict(name, &value) {
            if !s.spam.contains(&v) {
                s.spam.push(v);
            }
        }
    }
    s
}

/// The keyword of a structured value: up to `;`, a comment or whitespace, lower case.
fn keyword(value: &str) -> String {
    let end = value
        .find(|c: char| c == ';' || c == '(' || c.is_whitespace())
        .unwrap_or(value.len());
    let mut k = value[..end].to_ascii_lowercase();
    cut(&mut k, bounds::SIGNAL_VALUE_BYTES);
    k
}

fn return_path(value: &str) -> ReturnPath {
    let inner: String = value
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim()
        .to_string();
    if inner.is_empty() {
        return ReturnPath::Empty;
    }
    let mut a = inner;
    cut(&mut a, bounds::ADDRESS_BYTES);
    ReturnPath::Address(a)
}

fn spam_verdict(name: &str, value: &str) -> Option<SpamVerdict> {
    let is = |n: &str| name.eq_ignore_ascii_case(n);
    let v = value.trim();
    let starts = |p: &str| v.len() >= p.len() && v[..p.len()].eq_ignore_ascii_case(p);
    if is("X-Spam-Flag") {
        v.eq_ignore_ascii_case("yes")
            .then_some(SpamVerdict::XSpamFlag)
    } else if is("X-Spam-Status") {
        starts("yes").then_some(SpamVerdict::XSpamStatus)
    } else if is("X-Spam") {
        (v.eq_ignore_ascii_case("yes") || v.eq_ignore_ascii_case("true"))
            .then_some(SpamVerdict::XSpam)
    } else if is("X-SES-Spam-Verdict") {
        v.eq_ignore_ascii_case("fail")
            .then_some(SpamVerdict::SesSpam)
    } else if is("X-SES-Virus-Verdict") {
        v.eq_ignore_ascii_case("fail")
            .then_some(SpamVerdict::SesVirus)
    } else if is("X-MS-Exchange-Organization-SCL") {
        v.parse::<i32>()
            .is_ok_and(|scl| (5..=9).contains(&scl))
            .then_some(SpamVerdict::MicrosoftScl)
    } else if is("X-Forefront-Antispam-Report") {
        v.split(';')
            .map(|f| f.trim().to_ascii_uppercase())
            .any(|f| f == "SFV:SPM" || f == "SFV:SKS")
            .then_some(SpamVerdict::MicrosoftSfv)
    } else {
        None
    }
}

/// A raw header value on one line.
pub(crate) fn unfold(raw: &str) -> String {
    raw.replace("\r\n", "").replace('\n', "").trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_parser::MessageParser;

    fn signals(headers: &str) -> LoopSignals {
        let raw = format!("From: a@x.example\r\n{headers}\r\n\r\nbody\r\n");
        read(&MessageParser::default().parse(raw.as_bytes()).unwrap())
    }

    #[test]
    fn auto_submitted_keeps_the_keyword_and_prefers_a_value_other_than_no() {
        let s = signals("Auto-Submitted: Auto-Replied; owner-email=\"a@x.example\"");
        assert_eq!(s.auto_submitted.as_deref(), Some("auto-replied"));
        assert!(s.is_auto_submitted());
        let s = signals("Auto-Submitted: no (a person wrote this)");
        assert_eq!(s.auto_submitted.as_deref(), Some("no"));
        assert!(!s.is_auto_submitted());
        let s = signals("Auto-Submitted: no\r\nAuto-Submitted: auto-generated");
        assert_eq!(s.auto_submitted.as_deref(), Some("auto-generated"));
        assert_eq!(signals("Subject: x").auto_submitted, None);
    }

    #[test]
    fn return_path_missing_empty_or_an_address() {
        assert_eq!(signals("Subject: x").return_path, ReturnPath::Missing);
        assert_eq!(signals("Return-Path: <>").return_path, ReturnPath::Empty);
        assert_eq!(signals("Return-Path: < >").return_path, ReturnPath::Empty);
        assert_eq!(
            signals("Return-Path: <b@y.example>\r\nReturn-Path: <>").return_path,
            ReturnPath::Address("b@y.example".into()),
            "the topmost field is the delivering server's"
        );
    }

    #[test]
    fn suppress_tokens_are_split_deduplicated_and_capped() {
        let s = signals("X-Auto-Response-Suppress: DR, RN, NRN,OOF, AutoReply, dr");
        assert_eq!(
            s.auto_response_suppress,
            ["dr", "rn", "nrn", "oof", "autoreply"]
        );
        assert!(s.suppresses_auto_reply());
        assert!(!signals("X-Auto-Response-Suppress: OOF, DR").suppresses_auto_reply());
        let many: Vec<String> = (0..100).map(|i| format!("t{i}")).collect();
        let s = signals(&format!("X-Auto-Response-Suppress: {}", many.join(",")));
        assert_eq!(s.auto_response_suppress.len(), bounds::SUPPRESS_TOKENS);
    }

    #[test]
    fn spam_verdicts() {
        let spam = |h: &str| signals(h).spam;
        assert_eq!(spam("X-Spam-Flag: YES"), [SpamVerdict::XSpamFlag]);
        assert!(spam("X-Spam-Flag: NO").is_empty());
        assert_eq!(
            spam("X-Spam-Status: Yes, score=7.1 required=5.0"),
            [SpamVerdict::XSpamStatus]
        );
        assert!(spam("X-Spam-Status: No, score=0.1 required=5.0").is_empty());
        assert_eq!(spam("X-SES-Spam-Verdict: FAIL"), [SpamVerdict::SesSpam]);
        assert!(spam("X-SES-Spam-Verdict: PASS").is_empty());
        assert_eq!(spam("X-SES-Virus-Verdict: FAIL"), [SpamVerdict::SesVirus]);
        assert_eq!(spam("X-Spam: Yes"), [SpamVerdict::XSpam]);
        assert_eq!(
            spam("X-MS-Exchange-Organization-SCL: 5"),
            [SpamVerdict::MicrosoftScl]
        );
        assert!(spam("X-MS-Exchange-Organization-SCL: -1").is_empty());
        assert_eq!(
            spam("X-Forefront-Antispam-Report: CIP:1.2.3.4;CTRY:;SFV:SPM;SFS:(1)"),
            [SpamVerdict::MicrosoftSfv]
        );
        assert!(spam("X-Forefront-Antispam-Report: CIP:1.2.3.4;SFV:NSPM;").is_empty());
    }

    #[test]
    fn values_are_bounded() {
        let long = "x".repeat(10_000);
        let s = signals(&format!(
            "Auto-Submitted: {long}\r\nPrecedence: {long}\r\nX-Mailroom-Id: {long}\r\nReturn-Path: <{long}@y.example>"
        ));
        assert_eq!(s.auto_submitted.unwrap().len(), bounds::SIGNAL_VALUE_BYTES);
        assert_eq!(s.precedence.unwrap().len(), bounds::SIGNAL_VALUE_BYTES);
        assert_eq!(s.mailroom_id.unwrap().len(), bounds::MAILROOM_ID_BYTES);
        let ReturnPath::Address(a) = s.return_path else {
            panic!("an address")
        };
        assert_eq!(a.len(), bounds::ADDRESS_BYTES);
    }

    #[test]
    fn a_message_without_signals_serialises_to_an_empty_object() {
        let s = signals("Subject: hello");
        assert_eq!(serde_json::to_string(&s).unwrap(), "{}");
        let back: LoopSignals = serde_json::from_str("{}").unwrap();
        assert_eq!(back, s);
        let s = signals("Return-Path: <>\r\nX-Spam-Flag: YES");
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"return_path": "empty", "spam": ["x_spam_flag"]})
        );
        assert_eq!(serde_json::from_value::<LoopSignals>(json).unwrap(), s);
    }
}
