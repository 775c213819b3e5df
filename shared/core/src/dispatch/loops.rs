//! Loop safety (R-A2, R-A4): whether an auto-reply may answer an email, where it would go,
//! and which addresses a bounce says are failing. Pure: it reads only the stored
//! [`EmailRecord`] (its parse-time [`crate::signals::LoopSignals`] and bounce facts) and the
//! deployment's own addresses. The per-sender limit (R-A3) and the check of our own SES
//! Message-IDs against the message index need stores and live in the dispatch service.
//!
//! Where an auto-reply goes ([`reply_address`]): the first valid Reply-To, else From. An
//! acknowledgement is for the person who wrote, and Reply-To is where they asked answers to
//! go; Return-Path (RFC 3834's choice for answers "generated after delivery") is often a
//! bulk sender's bounce-processing address, nobody who reads.
//!
//! How that meets R-C5 ("a no-reply From with a Reply-To counts as sent by the Reply-To"):
//! [`Suppression::RobotSender`] judges the address the reply would go to, so a
//! `noreply@shop.example` with `Reply-To: help@shop.example` is answered, at help@; a no-reply
//! From without a Reply-To, or a no-reply Reply-To, is not. A mailer daemon or postmaster
//! From is never answered, whatever its Reply-To: it is a system speaking, not a person.
//! [`Suppression::OwnAddress`] also judges both: mail From us, or whose answer would come to
//! us (a Reply-To of one of our addresses), would have Mailroom write to itself.

use serde::{Deserialize, Serialize};

use crate::bounce::{is_daemon_address, local_key};
use crate::model::EmailRecord;
use crate::records::normalize_address;
use crate::signals::ReturnPath;
use crate::types::EmailAddress;

/// Why no auto-reply may answer an email: one reason per item of R-A2 (and R-A4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Suppression {
    /// `X-Mailroom-Id`: mail Mailroom sent, come back (R-I3).
    OwnMail,
    /// From (or the reply address) is one of Mailroom's addresses.
    OwnAddress,
    /// A bounce (R-A4).
    Bounce,
    /// `Auto-Submitted` other than `no`.
    AutoSubmitted,
    XAutoreply,
    XAutorespond,
    /// `X-Auto-Response-Suppress` All or AutoReply.
    AutoResponseSuppress,
    /// `Precedence` bulk, junk, list or auto_reply.
    Precedence,
    ListId,
    ListUnsubscribe,
    /// `Return-Path: <>` (a missing Return-Path is not empty).
    EmptyReturnPath,
    /// A mailer-daemon or postmaster From, or a no-reply address where the reply would go.
    RobotSender,
    /// The receiving server marked it as spam (or virus).
    Spam,
    /// The receiving server recorded a DMARC failure.
    DmarcFail,
    /// No address an answer could go to.
    NoSender,
}

impl Suppression {
    /// Every reason, in the order [`auto_reply_suppression`] reports the first that applies:
    /// what makes an email ours or a bounce first (the reason most worth recording), then
    /// the headers, then the sender.
    pub const ALL: [Suppression; 15] = [
        Suppression::OwnMail,
        Suppression::OwnAddress,
        Suppression::Bounce,
        Suppression::AutoSubmitted,
        Suppression::XAutoreply,
        Suppression::XAutorespond,
        Suppression::AutoResponseSuppress,
        Suppression::Precedence,
        Suppression::ListId,
        Suppression::ListUnsubscribe,
        Suppression::EmptyReturnPath,
        Suppression::RobotSender,
        Suppression::Spam,
        Suppression::DmarcFail,
        Suppression::NoSender,
    ];

    /// The stable name (also its serde form), as suppressed auto-replies record it.
    pub fn as_str(self) -> &'static str {
        match self {
            Suppression::OwnMail => "own_mail",
            Suppression::OwnAddress => "own_address",
            Suppression::Bounce => "bounce",
            Suppression::AutoSubmitted => "auto_submitted",
            Suppression::XAutoreply => "x_autoreply",
            Suppression::XAutorespond => "x_autorespond",
            Suppression::AutoResponseSuppress => "auto_response_suppress",
            Suppression::Precedence => "precedence",
            Suppression::ListId => "list_id",
            Suppression::ListUnsubscribe => "list_unsubscribe",
            Suppression::EmptyReturnPath => "empty_return_path",
            Suppression::RobotSender => "robot_sender",
            Suppression::Spam => "spam",
            Suppression::DmarcFail => "dmarc_fail",
            Suppression::NoSender => "no_sender",
        }
    }
}

impl std::fmt::Display for Suppression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Suppression {
    type Err = crate::error::Invalid;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Suppression::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| crate::error::Invalid::value(format!("unknown suppression {s:?}")))
    }
}

/// `None`: an auto-reply may answer `email` (the per-sender limit still applies). `Some`: the
/// first reason in [`Suppression::ALL`] order that forbids it. `own_addresses` are Mailroom's
/// addresses (group accounts, notification senders), in any case.
pub fn auto_reply_suppression(
    email: &EmailRecord,
    own_addresses: &[String],
) -> Option<Suppression> {
    suppressions(email, own_addresses).into_iter().next()
}

/// Every reason that forbids an auto-reply to `email`, in [`Suppression::ALL`] order.
pub fn suppressions(email: &EmailRecord, own_addresses: &[String]) -> Vec<Suppression> {
    let s = &email.signals;
    let own: Vec<String> = own_addresses.iter().map(|a| normalize_address(a)).collect();
    let from = email.from.as_ref().map(|f| normalize_address(&f.address));
    let reply = reply_address(email);
    let is_own = |a: &Option<String>| a.as_ref().is_some_and(|a| own.contains(a));
    let robot = from.as_deref().is_some_and(is_daemon_address)
        || reply.as_deref().is_some_and(is_robot_address);
    let fires = |r: Suppression| match r {
        Suppression::OwnMail => s.mailroom_id.is_some(),
        Suppression::OwnAddress => is_own(&from) || is_own(&reply),
        Suppression::Bounce => email.bounce || email.bounce_of.is_some(),
        Suppression::AutoSubmitted => s.auto_submitted_not_no(),
        Suppression::XAutoreply => s.x_autoreply,
        Suppression::XAutorespond => s.x_autorespond,
        Suppression::AutoResponseSuppress => s.suppresses_auto_reply(),
        Suppression::Precedence => s.precedence_silences(),
        Suppression::ListId => s.list_id,
        Suppression::ListUnsubscribe => s.list_unsubscribe,
        Suppression::EmptyReturnPath => s.return_path == ReturnPath::Empty,
        Suppression::RobotSender => robot,
        Suppression::Spam => !s.spam.is_empty(),
        Suppression::DmarcFail => email.dmarc_fail,
        Suppression::NoSender => reply.is_none(),
    };
    Suppression::ALL.into_iter().filter(|r| fires(*r)).collect()
}

/// Where an auto-reply to `email` would go: the first Reply-To that is an address, else
/// From; normalised. `None` when neither is (see the module docs for why not Return-Path).
pub fn reply_address(email: &EmailRecord) -> Option<String> {
    email
        .reply_to
        .iter()
        .chain(&email.from)
        .find_map(|a| EmailAddress::parse(&a.address).ok())
        .map(String::from)
}

/// A robot's address, never a person to answer: a mailer daemon or postmaster, or a no-reply
/// local part (`noreply`, `no-reply`, `do-not-reply`, `donotreply`, also as a prefix such as
/// `no-reply-billing`), in any case, `-`, `_` and `.` ignored.
pub fn is_robot_address(address: &str) -> bool {
    let local = local_key(address);
    is_daemon_address(address) || local.starts_with("noreply") || local.starts_with("donotreply")
}

/// The addresses a bounce says are failing, each once, with whether the failure is permanent
/// (5.x.x, or failed without a status) rather than transient (4.x.x, delayed). Empty for
/// mail that is no bounce, and for a bounce that names nobody.
pub fn bounced_addresses(email: &EmailRecord) -> Vec<(String, bool)> {
    email
        .bounce_of
        .iter()
        .flat_map(|b| &b.recipients)
        .map(|r| (r.address.clone(), r.permanent))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MailAddr;

    fn email() -> EmailRecord {
        serde_json::from_value(serde_json::json!({
            "email_id": "e", "message_id": "m@x.example", "synthetic_id": false,
            "auto_submitted": false, "list": false, "bounce": false, "size": 1,
            "attachments_skipped": false, "raw_key": "k", "received_at": "2026-03-03T10:00:00Z",
            "from": {"address": "Ann@Acme.example"}
        }))
        .unwrap()
    }

    fn addr(a: &str) -> MailAddr {
        MailAddr {
            name: None,
            address: a.into(),
        }
    }

    #[test]
    fn names_are_stable_and_round_trip() {
        for r in Suppression::ALL {
            assert_eq!(r.as_str().parse::<Suppression>().unwrap(), r);
            assert_eq!(
                serde_json::to_value(r).unwrap(),
                serde_json::json!(r.as_str())
            );
        }
        assert!("nope".parse::<Suppression>().is_err());
    }

    #[test]
    fn a_plain_email_may_be_answered_at_its_sender() {
        let e = email();
        assert_eq!(auto_reply_suppression(&e, &[]), None);
        assert_eq!(reply_address(&e).as_deref(), Some("ann@acme.example"));
    }

    #[test]
    fn a_no_reply_from_is_answered_at_its_reply_to() {
        let mut e = email();
        e.from = Some(addr("No-Reply@shop.example"));
        assert_eq!(
            auto_reply_suppression(&e, &[]),
            Some(Suppression::RobotSender)
        );
        e.reply_to = vec![addr("Help@Shop.example")];
        assert_eq!(auto_reply_suppression(&e, &[]), None);
        assert_eq!(reply_address(&e).as_deref(), Some("help@shop.example"));
        e.reply_to = vec![addr("do_not_reply@shop.example")];
        assert_eq!(
            auto_reply_suppression(&e, &[]),
            Some(Suppression::RobotSender)
        );
        // A daemon stays a daemon, whatever its Reply-To.
        e.from = Some(addr("MAILER-DAEMON@mx.example"));
        e.reply_to = vec![addr("help@shop.example")];
        assert_eq!(
            auto_reply_suppression(&e, &[]),
            Some(Suppression::RobotSender)
        );
    }

    #[test]
    fn robot_addresses() {
        for a in [
            "noreply@x.example",
            "No-Reply@x.example",
            "no_reply+tag@x.example",
            "do-not-reply@x.example",
            "DoNotReply@x.example",
            "no-reply-billing@x.example",
            "postmaster@x.example",
            "Mailer-Daemon@x.example",
        ] {
            assert!(is_robot_address(a), "{a}");
        }
        for a in ["ann@x.example", "reply@x.example", "nora@x.example"] {
            assert!(!is_robot_address(a), "{a}");
        }
    }

    #[test]
    fn own_addresses_count_as_from_and_as_reply_address() {
        let mut e = email();
        let own = ["support@example.test".to_string()];
        assert_eq!(auto_reply_suppression(&e, &own), None);
        e.reply_to = vec![addr("Support@Example.test")];
        assert_eq!(
            auto_reply_suppression(&e, &own),
            Some(Suppression::OwnAddress)
        );
        e.reply_to.clear();
        e.from = Some(addr("<SUPPORT@example.test>"));
        assert_eq!(
            auto_reply_suppression(&e, &own),
            Some(Suppression::OwnAddress)
        );
    }

    #[test]
    fn no_address_to_answer() {
        let mut e = email();
        e.from = None;
        assert_eq!(auto_reply_suppression(&e, &[]), Some(Suppression::NoSender));
        e.from = Some(addr("root"));
        assert_eq!(auto_reply_suppression(&e, &[]), Some(Suppression::NoSender));
        e.reply_to = vec![addr("not an address")];
        assert_eq!(reply_address(&e), None);
        e.reply_to.push(addr("ok@x.example"));
        assert_eq!(reply_address(&e).as_deref(), Some("ok@x.example"));
    }

    #[test]
    fn every_reason_is_listed_in_order() {
        let mut e = email();
        e.bounce = true;
        e.dmarc_fail = true;
        e.signals.return_path = ReturnPath::Empty;
        e.signals.auto_submitted = Some("auto-replied".into());
        assert_eq!(
            suppressions(&e, &[]),
            [
                Suppression::Bounce,
                Suppression::AutoSubmitted,
                Suppression::EmptyReturnPath,
                Suppression::DmarcFail
            ]
        );
        assert_eq!(auto_reply_suppression(&e, &[]), Some(Suppression::Bounce));
    }
}
