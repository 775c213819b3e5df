//! Who a reply goes to (R-S5 and issue 10's reply rule): from the email answered, To is its
//! Reply-To or else its From; reply-all adds its To and Cc. Never in To or Cc: the sending
//! account's own address, any other Mailroom address (every account's, group or personal),
//! the user's own addresses. Each address once, compared case-insensitively.
//!
//! Answering mail that came from us (a copy of what we sent, in a Sent folder or CC'd back):
//! its From is ours and goes, so the answer goes to the recipients it had instead, as mail
//! clients do.

use std::collections::HashSet;

use crate::dispatch::mime::{one_line, Mailbox};
use crate::dispatch::template::tag_subject;
use crate::model::{EmailRecord, MailAddr};
use crate::records::normalize_address;
use crate::types::CaseNumber;

use super::request::{address_spec, MAX_NAME_CHARS, MAX_SUBJECT_CHARS};

/// The recipients of a reply.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Recipients {
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
}

/// Every address on `email` that could be answered (From, Reply-To, To, Cc), normalised:
/// the candidates to look up among Mailroom's own. The same set a case takes as participants.
pub fn candidates(email: &EmailRecord) -> Vec<String> {
    crate::cases::link::participants(email)
}

/// The recipients of a reply (or reply-all) to `email`, none of them in `excluded`
/// (normalised addresses: the account's, Mailroom's, the user's). An address that cannot be
/// sent to (not a plain ASCII address) is left out.
pub fn reply_recipients(email: &EmailRecord, all: bool, excluded: &[String]) -> Recipients {
    let excluded: HashSet<String> = excluded.iter().map(|a| normalize_address(a)).collect();
    let mut seen: HashSet<String> = HashSet::new();
    let mut take = |list: &[MailAddr]| -> Vec<Mailbox> {
        let mut out = Vec::new();
        for a in list {
            let Ok(address) = address_spec(&normalize_address(&a.address)) else {
                continue;
            };
            if excluded.contains(address.as_str()) || !seen.insert(address.to_string()) {
                continue;
            }
            let name: String = a
                .name
                .as_deref()
                .map(|n| one_line(n).split_whitespace().collect::<Vec<_>>().join(" "))
                .unwrap_or_default()
                .chars()
                .take(MAX_NAME_CHARS)
                .collect();
            out.push(Mailbox::new(name, address));
        }
        out
    };
    let answered = if email.reply_to.is_empty() {
        email.from.iter().cloned().collect::<Vec<_>>()
    } else {
        email.reply_to.clone()
    };
    let mut to = take(&answered);
    let from_us = to.is_empty()
        && !answered.is_empty()
        && answered
            .iter()
            .all(|a| excluded.contains(&normalize_address(&a.address)));
    if from_us {
        to = take(&email.to);
    }
    let cc = match all {
        true => {
            let mut cc = take(&email.to);
            cc.extend(take(&email.cc));
            cc
        }
        false => Vec::new(),
    };
    match to.is_empty() {
        // Nobody left to answer but people copied: the first of them is who it goes to.
        true if !cc.is_empty() => {
            let mut cc = cc;
            let first = cc.remove(0);
            Recipients {
                to: vec![first],
                cc,
            }
        }
        _ => Recipients { to, cc },
    }
}

/// A reply's subject: the one answered with one `Re:` (none added when it has one), on one
/// line, tagged `[#N]` for a case (R-S3), at most [`MAX_SUBJECT_CHARS`] before the tag.
pub fn reply_subject(original: Option<&str>, case: Option<CaseNumber>) -> String {
    let s: String = one_line(original.unwrap_or(""))
        .chars()
        .take(MAX_SUBJECT_CHARS)
        .collect();
    let replied = s.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("re:"));
    let s = match replied {
        true => s,
        false => format!("Re: {s}").trim_end().to_string(),
    };
    match case {
        Some(n) => tag_subject(&s, n),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(a: &str, name: Option<&str>) -> MailAddr {
        MailAddr {
            name: name.map(str::to_string),
            address: a.into(),
        }
    }

    fn email(from: &str, reply_to: &[&str], to: &[&str], cc: &[&str]) -> EmailRecord {
        let list = |l: &[&str]| -> Vec<MailAddr> { l.iter().map(|a| addr(a, None)).collect() };
        let mut e: EmailRecord = serde_json::from_value(serde_json::json!({
            "email_id": "e1", "message_id": "m1@customer.example", "synthetic_id": false,
            "auto_submitted": false, "list": false, "bounce": false, "size": 1,
            "attachments_skipped": false, "raw_key": "k", "received_at": "2026-03-03T10:00:00Z",
            "subject": "Help"
        }))
        .unwrap();
        e.from = Some(addr(from, Some("Carol \r\nBcc: x@evil.example")));
        e.reply_to = list(reply_to);
        e.to = list(to);
        e.cc = list(cc);
        e
    }

    fn addresses(list: &[Mailbox]) -> Vec<&str> {
        list.iter().map(|m| m.address.as_str()).collect()
    }

    #[test]
    fn a_reply_goes_to_reply_to_else_from() {
        let e = email(
            "carol@customer.example",
            &[],
            &["support@corp.example"],
            &[],
        );
        let r = reply_recipients(&e, false, &["support@corp.example".into()]);
        assert_eq!(addresses(&r.to), ["carol@customer.example"]);
        assert!(r.cc.is_empty());
        // The name on the one line it may take.
        assert_eq!(r.to[0].name, "Carol Bcc: x@evil.example");
        let e = email(
            "carol@customer.example",
            &["tickets@customer.example"],
            &["support@corp.example"],
            &[],
        );
        let r = reply_recipients(&e, false, &[]);
        assert_eq!(addresses(&r.to), ["tickets@customer.example"]);
    }

    /// The bug users of the reference CRM keep reporting: reply-all copies the group
    /// address, other Mailroom mailboxes and the agent themself.
    #[test]
    fn reply_all_never_copies_ours_or_the_users_own_and_lists_each_once() {
        let e = email(
            "Carol@Customer.example",
            &[],
            &[
                "SUPPORT@corp.example",
                "dave@customer.example",
                "sales@corp.example",
            ],
            &[
                "ann@corp.example",
                "carol@customer.example",
                "Dave@customer.example",
                "eve@partner.example",
                "ann.private@mail.example",
                "not an address",
                "zoë@ünicode.example",
            ],
        );
        let excluded = [
            "support@corp.example".to_string(), // the sending account
            "sales@corp.example".into(),        // another group account
            "ann.private@mail.example".into(),  // a personal account
            "Ann@corp.example".into(),          // the user's own address
        ];
        let r = reply_recipients(&e, true, &excluded);
        assert_eq!(addresses(&r.to), ["carol@customer.example"]);
        assert_eq!(
            addresses(&r.cc),
            ["dave@customer.example", "eve@partner.example"]
        );
        // A plain reply copies nobody.
        assert!(reply_recipients(&e, false, &excluded).cc.is_empty());
    }

    #[test]
    fn answering_our_own_mail_goes_to_its_recipients() {
        let e = email(
            "support@corp.example",
            &[],
            &["carol@customer.example", "ann@corp.example"],
            &["dave@customer.example"],
        );
        let excluded = ["support@corp.example".into(), "ann@corp.example".into()];
        let r = reply_recipients(&e, false, &excluded);
        assert_eq!(addresses(&r.to), ["carol@customer.example"]);
        assert!(r.cc.is_empty());
        let r = reply_recipients(&e, true, &excluded);
        assert_eq!(addresses(&r.to), ["carol@customer.example"]);
        assert_eq!(addresses(&r.cc), ["dave@customer.example"]);
        // Only Mailroom on it: nobody to answer.
        let e = email("support@corp.example", &[], &["ann@corp.example"], &[]);
        assert_eq!(reply_recipients(&e, true, &excluded), Recipients::default());
    }

    #[test]
    fn reply_subjects_have_one_re_and_the_case_tag() {
        let n = CaseNumber::new(7).unwrap();
        assert_eq!(reply_subject(Some("Help"), None), "Re: Help");
        assert_eq!(reply_subject(Some("RE: Help"), None), "RE: Help");
        assert_eq!(reply_subject(Some("Help"), Some(n)), "Re: [#7] Help");
        assert_eq!(
            reply_subject(Some("Re: [#7] Help"), Some(n)),
            "Re: [#7] Help"
        );
        assert_eq!(
            reply_subject(Some("a\r\nBcc: x@evil.example"), None),
            "Re: a Bcc: x@evil.example"
        );
        assert_eq!(reply_subject(None, None), "Re:");
    }
}
