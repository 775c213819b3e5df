use chrono::TimeZone;
use mail_parser::MessageParser;
use serde_json::json;

use super::*;
use crate::access::{GroupAccountPermission, Role};
use crate::memory::{test_account, FakeMailer, MemoryCrm, MemoryDispatch, MemoryStore};
use crate::model::AccountKind;
use crate::ports::{EmailLink, Upsert};
use crate::records::{Case, CaseStatus, TeamMembership, User};

/// Group accounts `support` (team l1) and `sales` (team l2), ann's personal account, and a
/// customer's email on case 1 of `support`, to support, sales, dave and ann; on fakes.
struct World {
    store: MemoryStore,
    dispatch: MemoryDispatch,
    crm: MemoryCrm,
    mailer: FakeMailer,
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 3, 10, 0, 0).unwrap()
}

fn user(name: &str, team: &str, admin: bool) -> User {
    User {
        v: 1,
        name: name.into(),
        emails: vec![format!("{name}@corp.example")],
        teams: vec![TeamMembership {
            team: team.into(),
            position: None,
        }],
        active: true,
        created_at: t0(),
        admin,
        notify_email: false,
        role: Some("agent".into()),
    }
}

fn caller(name: &str, team: &str) -> Caller {
    let role = Role {
        v: 1,
        name: "agent".into(),
        group_account_permission: GroupAccountPermission::Team,
    };
    Caller::new(user(name, team, false), Some(role))
}

fn email_json(id: &str, message_id: &str, extra: serde_json::Value) -> EmailRecord {
    let mut e = json!({
        "email_id": id, "message_id": message_id, "synthetic_id": false,
        "auto_submitted": false, "list": false, "bounce": false, "size": 1,
        "attachments_skipped": false, "raw_key": "k", "received_at": t0(), "subject": "Help",
        "from": {"address": "carol@customer.example", "name": "Carol"},
        "references": ["root@customer.example"],
        "to": [{"address": "Support@corp.example"}, {"address": "sales@corp.example"},
               {"address": "dave@customer.example"}],
        "cc": [{"address": "ann@corp.example"}, {"address": "ann.private@mail.example"}]
    });
    e.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    serde_json::from_value(e).unwrap()
}

async fn world() -> World {
    let store = MemoryStore::default();
    for (name, address, team) in [
        ("support", "support@corp.example", "l1"),
        ("sales", "sales@corp.example", "l2"),
    ] {
        let mut a = test_account(name, t0());
        a.address = Some(address.into());
        a.teams = vec![team.into()];
        store.create_account(&a).await.unwrap();
    }
    let mut personal = test_account("ann-mail", t0());
    personal.kind = AccountKind::Personal;
    personal.owner = Some("ann".into());
    personal.address = Some("ann.private@mail.example".into());
    store.create_account(&personal).await.unwrap();

    let crm = MemoryCrm::default();
    crm.add_user(user("ann", "l1", false)).unwrap();
    crm.add_user(user("bob", "l2", false)).unwrap();
    // Case 1 from the customer's first email (root) and a second one (m1) joining it.
    let case: Case = serde_json::from_value(json!({
        "number": 1, "name": "Help", "status": CaseStatus::Assigned, "assigned_user": "ann",
        "teams": ["l1"], "mail_account": "support", "thread_key": "root@customer.example",
        "created_at": t0()
    }))
    .unwrap();
    let n = CaseNumber::new(1).unwrap();
    for (i, (id, mid)) in [
        ("e0", "root@customer.example"),
        ("e1", "m1@customer.example"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut e = email_json(
            id,
            mid,
            json!({"case": 1, "parent": {"kind": "case", "id": "1"}}),
        );
        e.received_at = t0() + chrono::Duration::minutes(i as i64);
        assert_eq!(
            store.upsert_email(&e, "support").await.unwrap(),
            Upsert::Created
        );
        crm.add_email(id);
        let link = EmailLink {
            email_id: id.into(),
            message_id: mid.into(),
            parent: Some(RecordRef::case(1)),
            thread_key: "root@customer.example".into(),
            subject: Some("Help".into()),
            at: e.received_at,
            participants: vec![],
            teams: vec!["l1".into()],
            ours: false,
        };
        match i {
            0 => {
                crm.claim_case(&case, None, &link).await.unwrap();
            }
            _ => crm.join_case(n, &link, false).await.unwrap(),
        }
    }
    // Personal mail of ann's, on no case.
    let private = email_json(
        "p1",
        "p1@friend.example",
        json!({"from": {"address": "friend@friend.example"}, "to": [{"address": "ann.private@mail.example"}], "cc": []}),
    );
    store.upsert_email(&private, "ann-mail").await.unwrap();

    let mailer = FakeMailer::default();
    for a in ["support@corp.example", "sales@corp.example"] {
        mailer
            .verify_identity(&EmailAddress::parse(a).unwrap())
            .await
            .unwrap();
    }
    World {
        store,
        dispatch: MemoryDispatch::default(),
        crm,
        mailer,
    }
}

impl World {
    fn outbox(&self) -> Outbox<'_, MemoryStore, MemoryDispatch, MemoryCrm, FakeMailer> {
        Outbox {
            store: &self.store,
            dispatch: &self.dispatch,
            crm: &self.crm,
            mailer: &self.mailer,
        }
    }
    fn sent_count(&self) -> usize {
        self.mailer.sent.lock().unwrap().len()
    }
    async fn stored(&self) -> usize {
        self.dispatch.list_sent().await.unwrap().len()
    }
}

fn request(extra: serde_json::Value) -> SendRequest {
    let mut body = json!({
        "account": "support", "to": ["Carol <carol@customer.example>"],
        "subject": "Your printer", "text": "It is fixed.",
        "parent": {"type": "case", "number": 1}
    });
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    serde_json::from_value(body).unwrap()
}

fn header(raw: &[u8], name: &str) -> Option<String> {
    let m = MessageParser::default().parse(raw).unwrap();
    m.header_raw(name).map(|v| v.trim().to_string())
}

#[tokio::test]
async fn a_reply_on_a_case_goes_from_the_group_with_its_tag_and_thread_and_is_recorded() {
    let w = world().await;
    let id = send_id(t0(), 0xabc);
    let now = t0() + chrono::Duration::hours(1);
    let sent = w
        .outbox()
        .send(&caller("ann", "l1"), &request(json!({})), &id, now)
        .await
        .unwrap();
    assert_eq!(sent.subject, "[#1] Your printer");
    assert_eq!(sent.from, "support@corp.example");
    assert_eq!(sent.kind, SentKind::Api);
    assert_eq!(sent.user.as_deref(), Some("ann"));
    assert_eq!(sent.case, CaseNumber::new(1).ok());
    assert_eq!(sent.in_reply_to.as_deref(), Some("m1@customer.example"));
    assert_eq!(sent.ses_message_id, "fake-000001@email.amazonses.com");

    let mails = w.mailer.sent.lock().unwrap().clone();
    assert_eq!(mails.len(), 1);
    let raw = &mails[0].raw;
    let m = MessageParser::default().parse(raw).unwrap();
    assert_eq!(m.subject(), Some("[#1] Your printer"));
    assert_eq!(
        m.from().and_then(|f| f.first()).and_then(|a| a.address()),
        Some("support@corp.example")
    );
    assert_eq!(
        header(raw, "Reply-To").as_deref(),
        Some("support@corp.example")
    );
    assert_eq!(m.in_reply_to().as_text(), Some("m1@customer.example"));
    assert_eq!(
        header(raw, "References").as_deref(),
        Some("<root@customer.example> <m1@customer.example>")
    );
    assert_eq!(m.message_id(), Some(sent.message_id.as_str()));
    assert_eq!(
        sent.message_id,
        mime::message_id(&id, &EmailAddress::parse("support@corp.example").unwrap()).as_str()
    );
    assert_eq!(header(raw, "X-Mailroom-Id").as_deref(), Some(id.as_str()));
    assert!(header(raw, "Auto-Submitted").is_none(), "human mail");

    // Stored, indexed on the case's thread (both ids, ours), in the case's stream.
    assert_eq!(w.dispatch.list_sent().await.unwrap(), vec![sent.clone()]);
    let st = w.crm.state();
    for mid in [&sent.message_id, &sent.ses_message_id] {
        let e = &st.messages[mid];
        assert!(e.ours && e.thread_key == "root@customer.example", "{e:?}");
    }
    let stream = w.crm.stream(&RecordRef::case(1));
    let last = stream.last().unwrap();
    assert_eq!(last.kind, crate::records::StreamKind::EmailSent);
    assert_eq!(
        last.message_id.as_deref(),
        Some(sent.ses_message_id.as_str())
    );

    // The next reply on the case answers the last message: ours, as the customer saw it.
    let again = w
        .outbox()
        .send(
            &caller("ann", "l1"),
            &request(json!({"subject": "Re: [#1] Your printer"})),
            &send_id(now, 2),
            now + chrono::Duration::minutes(1),
        )
        .await
        .unwrap();
    assert_eq!(
        again.in_reply_to.as_deref(),
        Some(sent.ses_message_id.as_str())
    );
    assert_eq!(again.subject, "Re: [#1] Your printer");
}

#[tokio::test]
async fn no_permission_is_403_before_the_parent_or_the_fields_are_looked_at() {
    let w = world().await;
    let bob = caller("bob", "l2");
    for extra in [
        json!({}),
        json!({"parent": {"type": "case", "number": 999}}),
        json!({"subject": "a\r\nBcc: x@evil.example"}),
    ] {
        let e = w
            .outbox()
            .send(&bob, &request(extra), "api:x:1", t0())
            .await
            .unwrap_err();
        assert!(matches!(e, SendError::Forbidden(_)), "{e}");
    }
    // No role: no group sending; admins always; nobody sends from ann's personal account
    // but ann.
    let no_role = Caller::new(user("ann", "l1", false), None);
    let e = w
        .outbox()
        .send(&no_role, &request(json!({})), "i", t0())
        .await;
    assert!(matches!(e, Err(SendError::Forbidden(_))));
    let admin = Caller::new(user("root", "ops", true), None);
    let personal = request(json!({"account": "ann-mail", "parent": null}));
    let e = w.outbox().send(&admin, &personal, "i", t0()).await;
    assert!(matches!(e, Err(SendError::Forbidden(_))));
    assert_eq!((w.sent_count(), w.stored().await), (0, 0));
    w.outbox()
        .send(&admin, &request(json!({})), "api:admin:1", t0())
        .await
        .unwrap();
    assert_eq!(w.sent_count(), 1);
}

#[tokio::test]
async fn bad_input_names_its_field_and_sends_and_stores_nothing() {
    let w = world().await;
    let ann = caller("ann", "l1");
    let cases = [
        (json!({"parent": {"type": "case", "number": 999}}), "parent"),
        (
            json!({"parent": {"type": "contact", "id": "nobody@x.example"}}),
            "parent",
        ),
        (json!({"account": "nope"}), "account"),
        (json!({"account": ""}), "account"),
        (json!({"account": "a\u{0}b"}), "account"),
        (json!({"to": []}), "to"),
        (
            json!({"to": ["carol@customer.example\r\nBcc: x@evil.example"]}),
            "to[0]",
        ),
        (json!({"subject": "x\nBcc: x@evil.example"}), "subject"),
        (json!({"cc": ["Eve\r\n <eve@x.example>"]}), "cc[0]"),
    ];
    for (extra, field) in cases {
        let e = w
            .outbox()
            .send(&ann, &request(extra.clone()), "i", t0())
            .await
            .unwrap_err();
        let got = match &e {
            SendError::Invalid(i) => i.field.clone(),
            SendError::NotFound { field, .. } => field.clone().unwrap_or_default(),
            other => panic!("{extra}: {other}"),
        };
        assert_eq!(got, field, "{extra}: {e}");
    }
    assert_eq!((w.sent_count(), w.stored().await), (0, 0));
    assert!(w.crm.state().messages.values().all(|m| !m.ours));
}

#[tokio::test]
async fn reply_all_is_prepared_without_any_mailroom_or_own_address() {
    let w = world().await;
    let ann = caller("ann", "l1");
    let plan = w.outbox().reply_plan(&ann, "e1", None, true).await.unwrap();
    let addresses =
        |l: &[Mailbox]| -> Vec<String> { l.iter().map(|m| m.address.to_string()).collect() };
    assert_eq!(plan.account.name, "support", "the case's account");
    assert_eq!(addresses(&plan.to), ["carol@customer.example"]);
    assert_eq!(addresses(&plan.cc), ["dave@customer.example"]);
    assert_eq!(plan.subject, "Re: [#1] Help");
    assert_eq!(
        plan.in_reply_to.as_ref().map(|m| m.as_str()),
        Some("m1@customer.example")
    );
    assert_eq!(plan.parent, Some(RecordRef::case(1)));
    let plain = w
        .outbox()
        .reply_plan(&ann, "e1", None, false)
        .await
        .unwrap();
    assert!(plain.cc.is_empty());
    assert_eq!(
        (w.sent_count(), w.stored().await),
        (0, 0),
        "a draft sends nothing"
    );

    // And sent: extra Cc once, the thread's headers, on the case.
    let req: ReplyRequest = serde_json::from_value(json!({
        "all": true, "text": "On it.", "cc": ["dave@customer.example", "boss@customer.example"]
    }))
    .unwrap();
    let sent = w
        .outbox()
        .reply(&ann, "e1", &req, &send_id(t0(), 9), t0())
        .await
        .unwrap();
    assert_eq!(
        sent.to,
        [
            "carol@customer.example",
            "dave@customer.example",
            "boss@customer.example"
        ]
    );
    assert_eq!(sent.email_id.as_deref(), Some("e1"));
    assert_eq!(sent.subject, "Re: [#1] Help");
    let raw = w.mailer.sent.lock().unwrap()[0].raw.clone();
    assert_eq!(
        header(&raw, "References").as_deref(),
        Some("<root@customer.example> <m1@customer.example>")
    );
    let st = w.crm.state();
    assert_eq!(
        st.messages[&sent.ses_message_id].thread_key,
        "root@customer.example"
    );
}

#[tokio::test]
async fn replies_need_a_readable_email_then_a_sendable_account() {
    let w = world().await;
    let bob = caller("bob", "l2");
    let req: ReplyRequest = serde_json::from_value(json!({"text": "hi"})).unwrap();
    // Ann's personal mail is hers alone (R-P4): 404 for bob, as for a missing email.
    let long = "e".repeat(300);
    for id in ["p1", "missing", "", long.as_str()] {
        let e = w
            .outbox()
            .reply(&bob, id, &req, "i", t0())
            .await
            .unwrap_err();
        assert!(matches!(e, SendError::NotFound { field: None, .. }), "{e}");
    }
    // Group mail with a parent is readable by anyone active, but bob may not send from
    // support: 403, nothing sent.
    let e = w
        .outbox()
        .reply(&bob, "e1", &req, "i", t0())
        .await
        .unwrap_err();
    assert!(matches!(e, SendError::Forbidden(_)), "{e}");
    assert_eq!((w.sent_count(), w.stored().await), (0, 0));
    // Bob may answer it from his own team's account, named.
    let from_sales = ReplyRequest {
        account: Some("sales".into()),
        ..req.clone()
    };
    let sent = w
        .outbox()
        .reply(&bob, "e1", &from_sales, "api:b:1", t0())
        .await
        .unwrap();
    assert_eq!(sent.from, "sales@corp.example");
    assert_eq!(sent.to, ["carol@customer.example"]);

    // Ann answers her personal mail From her own verified address, without Reply-To.
    let ann = caller("ann", "l1");
    let sent = w
        .outbox()
        .reply(&ann, "p1", &req, "api:a:1", t0())
        .await
        .unwrap();
    assert_eq!(sent.from, "ann.private@mail.example");
    assert_eq!(sent.to, ["friend@friend.example"]);
    let raw = w.mailer.sent.lock().unwrap().last().unwrap().raw.clone();
    assert!(header(&raw, "Reply-To").is_none());
}

#[tokio::test]
async fn an_account_sending_as_reply_to_uses_the_users_verified_address() {
    let w = world().await;
    let mut desk = test_account("desk", t0());
    desk.address = Some("desk@corp.example".into());
    desk.teams = vec!["l1".into()];
    desk.send_as = SendAs::ReplyTo;
    w.store.create_account(&desk).await.unwrap();
    let sent = w
        .outbox()
        .send(
            &caller("ann", "l1"),
            &request(json!({"account": "desk"})),
            "api:r:1",
            t0(),
        )
        .await
        .unwrap();
    assert_eq!(sent.from, "ann@corp.example");
    let raw = w.mailer.sent.lock().unwrap()[0].raw.clone();
    assert_eq!(
        header(&raw, "Reply-To").as_deref(),
        Some("desk@corp.example")
    );
    assert_eq!(
        header(&raw, "Subject").as_deref(),
        Some("[#1] Your printer")
    );
}

#[test]
fn send_ids_are_plain_tokens() {
    let id = send_id(t0(), u64::MAX);
    assert_eq!(id, "api:20260303T100000000Z:ffffffffffffffff");
}
