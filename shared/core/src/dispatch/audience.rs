//! Who is told of a delivered email, and why (R-N1, R-N2, R-L4): pure, so every rule is a
//! unit test.

use std::collections::BTreeMap;

use super::records::NotificationKind;
use crate::access::may_read;
use crate::messages::DispatchEvent;
use crate::model::{Account, EmailRecord};
use crate::records::{normalize_address, Case, RecordRef, User};

pub struct Audience<'a> {
    pub event: &'a DispatchEvent,
    pub email: &'a EmailRecord,
    pub account: &'a Account,
    pub case: Option<&'a Case>,
    pub users: &'a [User],
    /// Followers of the email's parent and of the parent's account, with what they follow.
    pub following: &'a BTreeMap<String, RecordRef>,
}

/// Each user to notify once, with the strongest reason (assigned, then follower, then inbox).
/// Never the sender. The assignee of a new case is always told. Inbox users are told unless
/// their filters asked for quiet (R-N2). Followers are told unless quiet, already in To or Cc
/// (they have the mail), or not allowed to read it: a personal account's mail linked by its
/// sender shares it with nobody (R-N1, R-P4).
pub fn audience<'u>(a: &Audience<'u>) -> Vec<(&'u User, NotificationKind)> {
    let email = a.email;
    let addresses = |list: &[crate::model::MailAddr]| -> Vec<String> {
        list.iter().map(|m| normalize_address(&m.address)).collect()
    };
    let sender: Vec<String> = email
        .from
        .iter()
        .map(|f| normalize_address(&f.address))
        .collect();
    let mut on_mail = addresses(&email.to);
    on_mail.extend(addresses(&email.cc));
    let holds = |u: &User, list: &[String]| {
        u.emails
            .iter()
            .any(|e| list.contains(&normalize_address(e)))
    };
    let mut out: BTreeMap<&str, (&User, NotificationKind)> = BTreeMap::new();
    let mut add = |u: &'u User, kind: NotificationKind| {
        let e = out.entry(u.name.as_str()).or_insert((u, kind));
        e.1 = e.1.min(kind);
    };
    for u in a.users.iter().filter(|u| u.active && !holds(u, &sender)) {
        let name = &u.name;
        if a.event.assigned_user.as_ref() == Some(name) {
            add(u, NotificationKind::Assigned);
        }
        if a.event.quiet.contains(name) {
            continue;
        }
        let reads = || may_read(u, email, a.account, a.case);
        if a.following.contains_key(name) && !holds(u, &on_mail) && reads() {
            add(u, NotificationKind::Follower);
        }
        if a.event.inbox.contains(name) {
            add(u, NotificationKind::Inbox);
        }
    }
    out.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::EventKind;
    use crate::model::{AccountKind, MailAddr};
    use crate::records::TeamMembership;
    use chrono::Utc;

    fn user(name: &str, team: Option<&str>) -> User {
        User {
            v: 1,
            name: name.into(),
            emails: vec![format!("{name}@crm.example")],
            teams: team
                .map(|t| TeamMembership {
                    team: t.into(),
                    position: None,
                })
                .into_iter()
                .collect(),
            active: true,
            created_at: Utc::now(),
            admin: false,
            notify_email: false,
            role: None,
        }
    }

    fn email(to: &[&str]) -> EmailRecord {
        let mut e: EmailRecord = serde_json::from_value(serde_json::json!({
            "email_id": "e1", "message_id": "m1@customer.example", "synthetic_id": false,
            "auto_submitted": false, "list": false, "bounce": false, "size": 1,
            "attachments_skipped": false, "raw_key": "k",
            "received_at": "2026-03-03T10:00:00Z",
            "from": {"address": "Carol@Customer.example"},
            "parent": {"kind": "contact", "id": "carol@customer.example"}
        }))
        .unwrap();
        e.to = to
            .iter()
            .map(|a| MailAddr {
                name: None,
                address: a.to_string(),
            })
            .collect();
        e
    }

    fn names(told: &[(&User, NotificationKind)]) -> Vec<(String, NotificationKind)> {
        told.iter().map(|(u, k)| (u.name.clone(), *k)).collect()
    }

    #[test]
    fn followers_inbox_users_and_the_assignee_are_told_once_with_the_strongest_reason() {
        use NotificationKind::*;
        let users = [
            user("ann", Some("l1")),
            user("bob", Some("l1")),
            user("cid", None),
            user("dan", None),
        ];
        let mut event = DispatchEvent::about(EventKind::EmailDelivered, "e1", "m1", "support");
        event.inbox = vec!["ann".into(), "bob".into()];
        event.assigned_user = Some("bob".into());
        let contact = RecordRef::new(
            crate::records::RecordKind::Contact,
            "carol@customer.example",
        );
        let following: BTreeMap<_, _> = [
            ("ann".to_string(), contact.clone()),
            ("cid".into(), contact),
        ]
        .into_iter()
        .collect();
        let mut account = crate::memory::test_account("support", Utc::now());
        account.teams = vec!["l1".into()];
        // cid is in To: has the mail already; dan follows nothing.
        let mail = email(&["support@example.test", "CID@crm.example"]);
        let told = audience(&Audience {
            event: &event,
            email: &mail,
            account: &account,
            case: None,
            users: &users,
            following: &following,
        });
        assert_eq!(
            names(&told),
            [("ann".into(), Follower), ("bob".into(), Assigned)]
        );
    }

    #[test]
    fn the_sender_and_quiet_users_are_not_told_and_personal_mail_reaches_no_follower() {
        let mut carol = user("carol", None);
        carol.emails = vec!["carol@customer.example".into()];
        let users = [user("ann", None), user("owner", None), carol];
        let mut event = DispatchEvent::about(EventKind::EmailDelivered, "e1", "m1", "own-mail");
        event.inbox = vec!["owner".into()];
        let contact = RecordRef::new(
            crate::records::RecordKind::Contact,
            "carol@customer.example",
        );
        let following: BTreeMap<_, _> = ["ann", "carol"]
            .iter()
            .map(|u| (u.to_string(), contact.clone()))
            .collect();
        let mut personal = crate::memory::test_account("own-mail", Utc::now());
        personal.kind = AccountKind::Personal;
        personal.owner = Some("owner".into());
        let mail = email(&["owner@crm.example"]);
        let a = Audience {
            event: &event,
            email: &mail,
            account: &personal,
            case: None,
            users: &users,
            following: &following,
        };
        // The owner's inbox got it (being in To does not matter for inbox users); ann follows
        // the contact but may not read personal mail; carol sent it.
        assert_eq!(
            names(&audience(&a)),
            [("owner".into(), NotificationKind::Inbox)]
        );
        let mail = email(&["ann@crm.example"]);
        let group = crate::memory::test_account("support", Utc::now());
        let told = audience(&Audience {
            email: &mail,
            account: &group,
            ..a
        });
        // In To: ann has the mail, so as a follower she is not told again.
        assert_eq!(names(&told), [("owner".into(), NotificationKind::Inbox)]);
        let mail = email(&[]);
        // A group account's mail reaches ann as a follower, unless her filter asked for quiet.
        let told = audience(&Audience {
            email: &mail,
            account: &group,
            ..a
        });
        assert_eq!(
            names(&told),
            [
                ("ann".into(), NotificationKind::Follower),
                ("owner".into(), NotificationKind::Inbox)
            ]
        );
        let mut quiet = event.clone();
        quiet.quiet = vec!["ann".into()];
        let told = audience(&Audience {
            event: &quiet,
            email: &mail,
            account: &group,
            ..a
        });
        assert_eq!(names(&told), [("owner".into(), NotificationKind::Inbox)]);
    }
}
