//! Dispatch against the local stack, as a user drives it (IMAP APPEND, `mailroom poll`, the
//! listings): auto-replies (R-A1, R-A5) with their headers read back from what moto's SES
//! recorded, loop safety (R-A2: one test per rule; R-A3), bounces (R-A4), our own mail
//! (R-I3), notifications (R-N1..R-N4) and failure notices (R-F7).
//!
//! Tests that read what SES sent run on an emulator of their own ([`OwnMoto`]): reading it
//! back serialises the emulator's whole state.

use chrono::Utc;
use mail_parser::{HeaderValue, MessageParser};
use mailroom::cycle;
use mailroom_core::admin::NewRecord;
use mailroom_core::dispatch::records::{NotificationKind, SentKind, SentRecord};
use mailroom_core::dispatch::settings::AutoReply;
use mailroom_core::model::{AccountKind, Secret, Security};
use mailroom_core::ports::{AccountStore, DispatchStore, EmailStore, Followers};
use mailroom_core::records::{Contact, RecordRef};
use mailroom_core::schedule::Selection;

use crate::cases::{mail, rr, simple, Mail};
use crate::harness::*;

/// A group account `support` on its own mailbox, in team `l1` with users ann and bob (their
/// addresses `<name>@corp.example`), auto-reply on, optionally email-to-case round-robin.
pub struct DispatchEnv {
    pub env: TestEnv,
    pub mb: TestMailbox,
    pub account: String,
}

pub fn auto_reply() -> AutoReply {
    AutoReply {
        enabled: true,
        subject: "Re: {{subject}}".into(),
        body: "Hello {{contact_name}}, we have your message about {{subject}} \
               (case {{case_number}}: {{case_name}})."
            .into(),
        html: Some("<p>Hello {{contact_name}}</p>".into()),
        from_name: Some("Support Team".into()),
        reply_to: None,
        limit: 5,
        window_minutes: 120,
    }
}

pub async fn dispatch_env(env: TestEnv, tag: &str, cases: bool) -> DispatchEnv {
    let mb = mailbox(tag);
    let ctx = &env.ctx;
    let store = &ctx.adapters().store;
    store.add_team("l1").await.unwrap();
    for name in ["ann", "bob"] {
        let emails = [format!("{name}@corp.example")];
        mailroom::records::add_user(ctx, name, &emails, &["l1".to_string()], true)
            .await
            .unwrap();
    }
    group_account(&env, "support", &mb).await;
    if cases {
        store.set_case_settings("support", &rr("l1")).await.unwrap();
    }
    store
        .set_auto_reply("support", Some(&auto_reply()))
        .await
        .unwrap();
    DispatchEnv {
        env,
        mb,
        account: "support".into(),
    }
}

/// A group account in team `l1` on `mb`, its address verified with SES.
pub async fn group_account(env: &TestEnv, name: &str, mb: &TestMailbox) {
    let mut new = env.new_account(name, mb, stack().imaps_port, Security::ImplicitTls);
    new.teams = vec!["l1".into()];
    mailroom::accounts::add_group(&env.ctx, new, Secret::new(&mb.password))
        .await
        .expect("group account added");
}

/// A contact record; returns its reference.
async fn add_contact(ctx: &mailroom::context::Context, name: &str, email: &str) -> RecordRef {
    let contact = NewRecord::Contact(Contact {
        v: 1,
        name: name.into(),
        email: email.into(),
        account: None,
    });
    ctx.adapters().store.add_record(&contact).await.unwrap();
    contact.reference()
}

impl DispatchEnv {
    pub async fn receive(&self, messages: &[Vec<u8>]) -> Vec<cycle::AccountCycle> {
        deliver(&self.mb, messages).await;
        self.poll().await
    }
    pub async fn poll(&self) -> Vec<cycle::AccountCycle> {
        let totals = cycle::run(&self.env.ctx, Selection::Named(vec![self.account.clone()]))
            .await
            .unwrap();
        assert!(
            totals.iter().all(|t| t.errors == 0),
            "a poll without errors: {totals:?}"
        );
        totals
    }
    pub async fn sent(&self) -> Vec<SentRecord> {
        self.env.ctx.adapters().store.list_sent().await.unwrap()
    }
    pub async fn suppressed_reasons(&self) -> Vec<String> {
        let store = &self.env.ctx.adapters().store;
        let mut r: Vec<String> = store
            .list_suppressed()
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.reason)
            .collect();
        r.sort();
        r
    }
}

fn header<'a>(m: &'a mail_parser::Message<'a>, name: &str) -> Option<String> {
    m.header(name).map(|h| match h {
        HeaderValue::Text(t) => t.to_string(),
        HeaderValue::TextList(l) => l.join(" "),
        other => format!("{other:?}"),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_case_gets_one_auto_reply_with_rfc3834_headers_and_its_case_tag() {
    let moto = OwnMoto::start();
    let d = dispatch_env(moto.env("arcase").await, "arcase", true).await;
    let store = &d.env.ctx.adapters().store;
    add_contact(&d.env.ctx, "Carol Customer", "carol@customer.example").await;
    let totals = d
        .receive(&[simple(
            "printer-1@customer.example",
            "Carol <carol@customer.example>",
            "Printer on fire",
        )])
        .await;
    let t = totals_for(&totals, "support");
    assert_eq!(
        (t.imported, t.cases_created, t.auto_replies),
        (1, 1, 1),
        "{t:?}"
    );
    let sent = d.sent().await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    let s = &sent[0];
    assert_eq!(s.kind, SentKind::AutoReply);
    assert_eq!(s.to, ["carol@customer.example"]);
    assert_eq!(s.subject, "Re: [#1] Printer on fire");
    assert_eq!(s.in_reply_to.as_deref(), Some("printer-1@customer.example"));
    assert!(s.ses_message_id.ends_with(".amazonses.com"), "{s:?}");

    // What SES was handed, byte for byte.
    let raws = moto.sent_raw().await;
    assert_eq!(raws.len(), 1, "one message reached SES");
    let m = MessageParser::default().parse(raws[0].as_bytes()).unwrap();
    assert_eq!(m.subject(), Some("Re: [#1] Printer on fire"));
    let from = m.from().and_then(|f| f.first()).unwrap();
    assert_eq!(from.address(), Some(d.mb.user.as_str()));
    assert_eq!(from.name(), Some("Support Team"));
    assert_eq!(
        header(&m, "Auto-Submitted").as_deref(),
        Some("auto-replied")
    );
    assert_eq!(
        header(&m, "X-Auto-Response-Suppress").as_deref(),
        Some("All")
    );
    assert_eq!(header(&m, "X-Mailroom-Id").as_deref(), Some(s.id.as_str()));
    assert_eq!(
        m.in_reply_to().as_text(),
        Some("printer-1@customer.example")
    );
    assert_eq!(m.references().as_text(), Some("printer-1@customer.example"));
    assert_eq!(m.message_id(), Some(s.message_id.as_str()));
    let text = m.body_text(0).unwrap();
    assert!(
        text.contains("Hello Carol Customer, we have your message about Printer on fire (case 1: Printer on fire)."),
        "{text}"
    );
    assert!(m
        .body_html(0)
        .unwrap()
        .contains("<p>Hello Carol Customer</p>"));

    // A poll finding nothing new sends nothing; nor does a redelivered event.
    let again = d.poll().await;
    assert_eq!(totals_for(&again, "support").auto_replies, 0);
    let email = store.list_emails().await.unwrap().remove(0);
    let mut event = mailroom_core::messages::DispatchEvent::about(
        mailroom_core::messages::EventKind::EmailLinked,
        &email.email_id,
        &email.message_id,
        "support",
    );
    event.case = email.case;
    event.parent = email.parent.clone();
    let done = d
        .env
        .ctx
        .adapters()
        .dispatch()
        .handle(&event, Utc::now())
        .await
        .unwrap();
    assert_eq!((done.sent.len(), done.already_sent), (0, 1));
    assert_eq!(moto.sent_raw().await.len(), 1, "still one message at SES");

    // The customer's answer to the auto-reply (to the Message-ID SES gave it) joins case 1.
    let answer = mail(Mail {
        id: "printer-2@customer.example",
        from: "Carol <carol@customer.example>",
        subject: "Re: [#1] Re: Printer on fire",
        refs: &["printer-1@customer.example", &s.ses_message_id],
        extra: "",
    });
    let totals = d.receive(&[answer]).await;
    let t = totals_for(&totals, "support");
    assert_eq!((t.imported, t.cases_created), (1, 0), "{t:?}");
    let reply = store
        .list_emails()
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.message_id == "printer-2@customer.example")
        .unwrap();
    assert_eq!(reply.parent, Some(RecordRef::case(1)));
}

/// One R-A2 rule: mail carrying `extra` headers (or from `from`) gets no auto-reply, and the
/// suppression is recorded with `reason`.
async fn no_auto_reply(tag: &str, from: &str, extra: &str, reason: &str) {
    let d = dispatch_env(env(tag).await, tag, false).await;
    let id = format!("{tag}@customer.example");
    let m = mail(Mail {
        id: &id,
        from,
        subject: "Out of office",
        refs: &[],
        extra,
    });
    let totals = d.receive(&[m]).await;
    let t = totals_for(&totals, "support");
    assert_eq!(
        (t.imported, t.auto_replies, t.suppressed),
        (1, 0, 1),
        "{t:?}"
    );
    assert!(d.sent().await.is_empty());
    assert_eq!(d.suppressed_reasons().await, [reason]);
}

macro_rules! suppressed_by {
    ($($name:ident: $from:expr, $extra:expr => $reason:expr;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            // The test's own name (its tail) tags its prefix and mailbox.
            let name = stringify!($name).replace('_', "-");
            let tag = &name[name.len().saturating_sub(14)..];
            no_auto_reply(tag.trim_start_matches('-'), $from, $extra, $reason).await;
        }
    )*};
}

const CUSTOMER: &str = "Customer <customer@example.com>";

suppressed_by! {
    no_auto_reply_to_auto_submitted: CUSTOMER, "Auto-Submitted: auto-replied\r\n" => "auto_submitted";
    no_auto_reply_to_x_autoreply: CUSTOMER, "X-Autoreply: yes\r\n" => "x_autoreply";
    no_auto_reply_to_x_autorespond: CUSTOMER, "X-Autorespond: yes\r\n" => "x_autorespond";
    no_auto_reply_to_x_auto_response_suppress_all: CUSTOMER, "X-Auto-Response-Suppress: All\r\n" => "auto_response_suppress";
    no_auto_reply_to_x_auto_response_suppress_autoreply: CUSTOMER, "X-Auto-Response-Suppress: DR, AutoReply\r\n" => "auto_response_suppress";
    no_auto_reply_to_precedence_bulk: CUSTOMER, "Precedence: bulk\r\n" => "precedence";
    no_auto_reply_to_precedence_junk: CUSTOMER, "Precedence: junk\r\n" => "precedence";
    no_auto_reply_to_precedence_list: CUSTOMER, "Precedence: list\r\n" => "precedence";
    no_auto_reply_to_precedence_auto_reply: CUSTOMER, "Precedence: auto_reply\r\n" => "precedence";
    no_auto_reply_to_list_id: CUSTOMER, "List-Id: <users.lists.example>\r\n" => "list_id";
    no_auto_reply_to_list_unsubscribe: CUSTOMER, "List-Unsubscribe: <mailto:leave@lists.example>\r\n" => "list_unsubscribe";
    no_auto_reply_to_an_empty_return_path: CUSTOMER, "Return-Path: <>\r\n" => "empty_return_path";
    // Mail from a mailer daemon or postmaster is a bounce (R-A4) before it is a robot's.
    no_auto_reply_to_mailer_daemon: "MAILER-DAEMON@mx.example.com", "" => "bounce";
    no_auto_reply_to_postmaster: "postmaster@mx.example.com", "" => "bounce";
    no_auto_reply_to_a_do_not_reply_sender: "Bank <do-not-reply@bank.example>", "" => "robot_sender";
    no_auto_reply_to_no_reply: "Shop <no-reply@shop.example>", "" => "robot_sender";
    no_auto_reply_to_spam: CUSTOMER, "X-Spam-Flag: YES\r\n" => "spam";
    no_auto_reply_to_dmarc_fail: CUSTOMER, "Authentication-Results: mx.example.test; dmarc=fail (p=reject) header.from=example.com\r\n" => "dmarc_fail";
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_submitted_no_and_a_missing_return_path_still_get_an_answer() {
    let d = dispatch_env(env("arno").await, "arno", false).await;
    let m = mail(Mail {
        id: "arno@customer.example",
        from: CUSTOMER,
        subject: "A question",
        refs: &[],
        extra: "Auto-Submitted: no\r\n",
    });
    let totals = d.receive(&[m]).await;
    assert_eq!(totals_for(&totals, "support").auto_replies, 1, "{totals:?}");
    assert!(d.suppressed_reasons().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_from_a_mailroom_address_gets_no_auto_reply() {
    let d = dispatch_env(env("arown").await, "arown", false).await;
    let other = mailbox("arown2");
    group_account(&d.env, "sales", &other).await;
    let m = simple("arown@x.example", &other.user, "From our own sales address");
    d.receive(&[m]).await;
    assert!(d.sent().await.is_empty());
    assert_eq!(d.suppressed_reasons().await, ["own_address"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_sender_limit_holds_within_its_window() {
    let d = dispatch_env(env("arlim").await, "arlim", false).await;
    let store = &d.env.ctx.adapters().store;
    let mut settings = auto_reply();
    settings.limit = 2;
    store
        .set_auto_reply("support", Some(&settings))
        .await
        .unwrap();
    let mut msgs: Vec<Vec<u8>> = (0..4)
        .map(|i| {
            simple(
                &format!("arlim-{i}@customer.example"),
                CUSTOMER,
                &format!("Question {i}"),
            )
        })
        .collect();
    msgs.push(simple(
        "arlim-x@other.example",
        "other@other.example",
        "Another",
    ));
    d.receive(&msgs).await;
    let sent = d.sent().await;
    let to_customer = sent
        .iter()
        .filter(|s| s.to == ["customer@example.com"])
        .count();
    assert_eq!(to_customer, 2, "{sent:?}");
    assert_eq!(
        sent.len(),
        3,
        "the other sender has an allowance of its own"
    );
    assert_eq!(d.suppressed_reasons().await, ["rate_limit", "rate_limit"]);
    // Polling again (the same emails, redelivered or not) uses up nothing more.
    d.poll().await;
    assert_eq!(d.sent().await.len(), 3);
}

/// A delivery status notification for an auto-reply we sent.
fn dsn(id: &str, to: &str, original: &str, bounced: &str) -> Vec<u8> {
    format!(
        "From: Mail Delivery System <MAILER-DAEMON@mx.customer.example>\r\n\
         To: {to}\r\nSubject: Undelivered Mail Returned to Sender\r\nMessage-ID: <{id}>\r\n\
         Date: Tue, 3 Mar 2026 10:05:00 +0000\r\nAuto-Submitted: auto-replied\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"b1\"\r\n\r\n\
         --b1\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n\
         --b1\r\nContent-Type: message/delivery-status\r\n\r\n\
         Reporting-MTA: dns; mx.customer.example\r\n\r\n\
         Final-Recipient: rfc822; {bounced}\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n\
         --b1\r\nContent-Type: text/rfc822-headers\r\n\r\n\
         From: {to}\r\nTo: {bounced}\r\nSubject: Re: hello\r\nMessage-ID: <{original}>\r\n\r\n\
         --b1--\r\n"
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bounce_is_linked_to_what_it_bounces_marks_the_address_and_is_never_answered() {
    let d = dispatch_env(env("arbnc").await, "arbnc", true).await;
    d.receive(&[simple(
        "arbnc-1@customer.example",
        "gone@customer.example",
        "Hello",
    )])
    .await;
    let sent = d.sent().await;
    assert_eq!(sent.len(), 1);
    let bounce = dsn(
        "arbnc-dsn@mx.customer.example",
        &d.mb.user,
        &sent[0].ses_message_id,
        "gone@customer.example",
    );
    let totals = d.receive(&[bounce]).await;
    let t = totals_for(&totals, "support");
    assert_eq!(
        (t.imported, t.cases_created, t.auto_replies),
        (1, 0, 0),
        "{t:?}"
    );
    let store = &d.env.ctx.adapters().store;
    let email = store
        .list_emails()
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.message_id == "arbnc-dsn@mx.customer.example")
        .unwrap();
    assert_eq!(
        email.parent,
        Some(RecordRef::case(1)),
        "linked to the bounced thread"
    );
    assert_eq!(
        store
            .failing(&["gone@customer.example".into()], Utc::now())
            .await
            .unwrap(),
        ["gone@customer.example"]
    );
    let reasons = d.suppressed_reasons().await;
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert_eq!(d.sent().await.len(), 1, "no auto-reply to the bounce");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_of_our_own_auto_reply_coming_back_threads_but_opens_no_case() {
    let d = dispatch_env(env("arcopy").await, "arcopy", true).await;
    d.receive(&[simple("arcopy-1@customer.example", CUSTOMER, "Help")])
        .await;
    let s = d.sent().await.remove(0);
    // The group address was on the auto-reply's Bcc, or it sits in a Sent folder: either way
    // the copy arrives with the Message-ID SES gave it, and our X-Mailroom-Id.
    let copy = format!(
        "From: Support Team <{}>\r\nTo: customer@example.com\r\nSubject: {}\r\n\
         Message-ID: <{}>\r\nIn-Reply-To: <arcopy-1@customer.example>\r\n\
         References: <arcopy-1@customer.example>\r\nAuto-Submitted: auto-replied\r\n\
         X-Mailroom-Id: {}\r\nDate: Tue, 3 Mar 2026 10:01:00 +0000\r\n\r\nHello\r\n",
        d.mb.user, s.subject, s.ses_message_id, s.id
    );
    let totals = d.receive(&[copy.into_bytes()]).await;
    let t = totals_for(&totals, "support");
    assert_eq!((t.cases_created, t.auto_replies), (0, 0), "{t:?}");
    assert_eq!(d.sent().await.len(), 1);
    let store = &d.env.ctx.adapters().store;
    let copy = store
        .list_emails()
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.message_id == s.ses_message_id)
        .unwrap();
    assert_eq!(copy.parent, Some(RecordRef::case(1)), "it threads");
    assert_eq!(d.suppressed_reasons().await, ["own_mail"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_inbox_users_and_the_assignee_are_told_once_and_the_sender_never() {
    let moto = OwnMoto::start();
    let d = dispatch_env(moto.env("ntf").await, "ntf", true).await;
    let ctx = &d.env.ctx;
    let store = &ctx.adapters().store;
    store.set_auto_reply("support", None).await.unwrap();
    // All three follow the customer's contact and are in no team: cid wants notification
    // emails too; dan is on Cc; erin is a user whose address sent the mail.
    for (name, email) in [
        ("cid", "cid@corp.example"),
        ("dan", "dan@corp.example"),
        ("erin", "carol@customer.example"),
    ] {
        mailroom::records::add_user(ctx, name, &[email.to_string()], &[], true)
            .await
            .unwrap();
    }
    store.set_notify_email("cid", true).await.unwrap();
    let contact = add_contact(ctx, "Carol", "carol@customer.example").await;
    for u in ["cid", "dan", "erin"] {
        store.follow(u, &contact).await.unwrap();
    }
    let first = mail(Mail {
        id: "ntf-1@customer.example",
        from: "Carol <carol@customer.example>",
        subject: "Broken",
        refs: &[],
        extra: "Cc: dan@corp.example\r\n",
    });
    let totals = d.receive(&[first]).await;
    let case = store.list_cases().await.unwrap().remove(0);
    let assignee = case.assigned_user.clone().unwrap();
    let kinds = |user: &'static str| async move {
        store
            .notifications(user)
            .await
            .unwrap()
            .into_iter()
            .map(|n| (n.kind, n.email.unwrap_or_default(), n.read))
            .collect::<Vec<_>>()
    };
    let mail_id = "ntf-1@customer.example".to_string();
    for user in ["ann", "bob"] {
        let want = if user == assignee {
            NotificationKind::Assigned
        } else {
            NotificationKind::Inbox
        };
        assert_eq!(
            kinds(user).await,
            [(want, mail_id.clone(), false)],
            "{user}"
        );
    }
    assert_eq!(
        kinds("cid").await,
        [(NotificationKind::Follower, mail_id.clone(), false)],
        "a follower not in To is told"
    );
    assert!(
        kinds("dan").await.is_empty(),
        "dan is on Cc: he has the mail"
    );
    assert!(kinds("erin").await.is_empty(), "the sender is never told");
    // cid's notification email: Reply-To the group address, so an answer joins the case.
    let sent = d.sent().await;
    let emails: Vec<_> = sent
        .iter()
        .filter(|s| s.kind == SentKind::Notification)
        .collect();
    assert_eq!(emails.len(), 1, "{sent:?}");
    assert_eq!(emails[0].to, ["cid@corp.example"]);
    assert!(
        emails[0].subject.contains("[#1]"),
        "{:?}",
        emails[0].subject
    );
    let raws = moto.sent_raw().await;
    let raw = raws
        .iter()
        .find(|r| r.contains(&format!("X-Mailroom-Id: {}", emails[0].id)))
        .expect("the notification email reached SES");
    let m = MessageParser::default().parse(raw.as_bytes()).unwrap();
    let reply_to = m
        .reply_to()
        .and_then(|r| r.first())
        .and_then(|a| a.address());
    assert_eq!(reply_to, Some(d.mb.user.as_str()));
    assert_eq!(
        header(&m, "Auto-Submitted").as_deref(),
        Some("auto-generated")
    );
    assert_eq!(
        totals_for(&totals, "support").notifications,
        3,
        "{totals:?}"
    );
    // The assignee follows the case now.
    let followers = store
        .followers(&RecordRef::case(case.number.get()))
        .await
        .unwrap();
    assert_eq!(followers, std::slice::from_ref(&assignee));
    // Polling again creates nothing twice.
    let totals = d.poll().await;
    assert_eq!(totals_for(&totals, "support").notifications, 0);
    assert_eq!(store.notifications("cid").await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_skip_notification_filter_is_honoured() {
    let d = dispatch_env(env("ntfq").await, "ntfq", false).await;
    let ctx = &d.env.ctx;
    let store = &ctx.adapters().store;
    store.set_auto_reply("support", None).await.unwrap();
    use mailroom_core::filters::{Action, Filter, Pattern, Scope};
    let quiet = Filter {
        v: 1,
        name: "ann-quiet".into(),
        scope: Scope::User("ann".into()),
        from: Some(Pattern::new("*@customer.example").unwrap()),
        to: None,
        subject: None,
        body_any: vec![],
        body_all: vec![],
        action: Action::SkipNotification,
        folder: None,
    };
    store.add_filter(&quiet).await.unwrap();
    d.receive(&[simple(
        "ntfq-1@customer.example",
        "carol@customer.example",
        "Hi",
    )])
    .await;
    assert!(store.notifications("ann").await.unwrap().is_empty());
    assert_eq!(store.notifications("bob").await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn personal_mail_linked_by_its_sender_notifies_no_follower() {
    let e = env("ntfp").await;
    let ctx = &e.ctx;
    let store = &ctx.adapters().store;
    let mb = mailbox("ntfp");
    for name in ["owner", "fred"] {
        let emails = [format!("{name}@corp.example")];
        mailroom::records::add_user(ctx, name, &emails, &[], true)
            .await
            .unwrap();
    }
    mailroom::accounts::add(
        ctx,
        mailroom::accounts::NewAccount {
            name: "owner-mail".into(),
            kind: AccountKind::Personal,
            address: Some(mb.user.clone()),
            owner: Some("owner".into()),
            imap_host: "127.0.0.1".into(),
            imap_port: stack().imaps_port,
            imap_user: mb.user.clone(),
            security: Security::ImplicitTls,
            folders: vec![],
            fetch_since: None,
            teams: vec![],
        },
        Secret::new(&mb.password),
    )
    .await
    .unwrap();
    let contact = add_contact(ctx, "Carol", "carol@customer.example").await;
    store.follow("fred", &contact).await.unwrap();
    deliver(
        &mb,
        &[simple(
            "ntfp-1@customer.example",
            "carol@customer.example",
            "Private",
        )],
    )
    .await;
    cycle::run(ctx, Selection::Named(vec!["owner-mail".into()]))
        .await
        .unwrap();
    let email = store.list_emails().await.unwrap().remove(0);
    assert_eq!(
        email.parent,
        Some(contact),
        "linked to the contact by its sender"
    );
    assert!(
        store.notifications("fred").await.unwrap().is_empty(),
        "shared with nobody"
    );
    let own = store.notifications("owner").await.unwrap();
    assert_eq!(own.len(), 1);
    assert_eq!(own[0].kind, NotificationKind::Inbox);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_account_notifies_its_admins_once_a_day() {
    let e = env("fail").await;
    let ctx = &e.ctx;
    let store = &ctx.adapters().store;
    mailroom::records::add_user(ctx, "root", &["root@corp.example".into()], &[], true)
        .await
        .unwrap();
    store.set_admin("root", true).await.unwrap();
    mailroom::records::add_user(ctx, "user", &["user@corp.example".into()], &[], true)
        .await
        .unwrap();
    let mb = mailbox("fail");
    e.add_account_with(
        "support",
        &mb,
        "wrong-password",
        stack().imaps_port,
        Security::ImplicitTls,
    )
    .await;
    // Failing since a quarter of an hour: each poll fails again (the back-off is lifted so
    // that the scheduler polls now).
    let mut status = store.get_account("support").await.unwrap().unwrap().status;
    status.failing_since = Some(Utc::now() - chrono::Duration::minutes(15));
    status.consecutive_failures = 4;
    for _ in 0..2 {
        status.backoff_until = None;
        store.save_status("support", &status).await.unwrap();
        let totals = cycle::run(ctx, Selection::Named(vec!["support".into()]))
            .await
            .unwrap();
        assert!(totals_for(&totals, "support").error.is_some(), "{totals:?}");
        status = store.get_account("support").await.unwrap().unwrap().status;
    }
    let told = store.notifications("root").await.unwrap();
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(told[0].kind, NotificationKind::AccountFailing);
    assert!(told[0].summary.contains("support"), "{told:?}");
    assert!(store.notifications("user").await.unwrap().is_empty());
}

/// Hands a message to Dovecot over LMTP, as a mail server delivering it would.
async fn lmtp_deliver(from: &str, to: &str, raw: &[u8]) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", stack().lmtp_port))
        .await
        .expect("LMTP answers");
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    // Reads one reply (its last line starts with the code and a space).
    async fn reply(
        lines: &mut tokio::io::Lines<tokio::io::BufReader<tokio::net::tcp::OwnedReadHalf>>,
        want: &str,
    ) {
        loop {
            let line = lines.next_line().await.unwrap().expect("an LMTP reply");
            if line.len() < 4 || line.as_bytes()[3] == b' ' {
                assert!(line.starts_with(want), "LMTP said {line:?}, wanted {want}");
                return;
            }
        }
    }
    reply(&mut lines, "220").await;
    for (cmd, want) in [
        ("LHLO mailroom.test".to_string(), "250"),
        (format!("MAIL FROM:<{from}>"), "250"),
        (format!("RCPT TO:<{to}>"), "250"),
        ("DATA".to_string(), "354"),
    ] {
        write
            .write_all(format!("{cmd}\r\n").as_bytes())
            .await
            .unwrap();
        reply(&mut lines, want).await;
    }
    let text = String::from_utf8_lossy(raw).replace("\r\n", "\n");
    let mut data = String::new();
    for line in text.lines() {
        // Dot-stuffing (RFC 5321 4.5.2).
        if line.starts_with('.') {
            data.push('.');
        }
        data.push_str(line);
        data.push_str("\r\n");
    }
    data.push_str(".\r\n");
    write.write_all(data.as_bytes()).await.unwrap();
    reply(&mut lines, "250").await;
    write.write_all(b"QUIT\r\n").await.unwrap();
}

/// A robot in the middle that drops every loop header (as broken forwarders and old
/// autoresponders do): only the per-sender limit is left to stop the exchange.
fn strip_loop_headers(raw: &str) -> String {
    raw.split_inclusive('\n')
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            !(l.starts_with("auto-submitted:")
                || l.starts_with("x-auto-response-suppress:")
                || l.starts_with("x-mailroom-id:"))
        })
        .collect()
}

/// Two deployments, each with a group account answering automatically, writing to each
/// other through Dovecot (the emulated SES delivers nothing, so the test relays over LMTP
/// whatever SES was handed). Returns how many auto-replies each sent before it stopped.
async fn exchange(tag: &str, relay: fn(&str) -> String) -> (usize, usize, usize) {
    let moto = OwnMoto::start();
    let a = dispatch_env(
        moto.env(&format!("{tag}a")).await,
        &format!("{tag}a"),
        false,
    )
    .await;
    let b = dispatch_env(
        moto.env(&format!("{tag}b")).await,
        &format!("{tag}b"),
        false,
    )
    .await;
    // The exchange starts with a person at B writing to A.
    let first = simple("start@b.example", &b.mb.user, "Hello from B");
    lmtp_deliver(&b.mb.user, &a.mb.user, &first).await;
    let (mut relayed, mut rounds) = (0, 0);
    loop {
        rounds += 1;
        assert!(rounds <= 30, "the exchange did not stop by itself");
        a.poll().await;
        b.poll().await;
        let raws = moto.sent_raw().await;
        if raws.len() == relayed {
            break;
        }
        for raw in &raws[relayed..] {
            let m = MessageParser::default().parse(raw.as_bytes()).unwrap();
            let to = m
                .to()
                .and_then(|t| t.first())
                .and_then(|t| t.address())
                .unwrap();
            let from = m
                .from()
                .and_then(|t| t.first())
                .and_then(|t| t.address())
                .unwrap();
            lmtp_deliver(from, to, relay(raw).as_bytes()).await;
        }
        relayed = raws.len();
    }
    (a.sent().await.len(), b.sent().await.len(), rounds)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_auto_responders_stop_after_one_reply_when_headers_pass() {
    let (a, b, rounds) = exchange("loop", |raw| raw.to_string()).await;
    eprintln!("loop with headers: A sent {a}, B sent {b}, in {rounds} rounds");
    // A answers B's person once; B sees Auto-Submitted on that answer and stays quiet.
    assert_eq!((a, b), (1, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_auto_responders_stop_at_the_per_sender_limit_when_headers_are_stripped() {
    let (a, b, rounds) = exchange("loopx", strip_loop_headers).await;
    eprintln!("loop without headers: A sent {a}, B sent {b}, in {rounds} rounds");
    // Each side answers the other at most `limit` (5) times in the window, then stops.
    assert_eq!((a, b), (5, 5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identity_ses_refuses_is_an_error_on_the_account_never_a_silent_drop() {
    let moto = OwnMoto::start();
    let e = moto.env("arref").await;
    let mb = mailbox("arref");
    // Added without `add-group`'s verification (an identity since deleted from SES, say).
    let new = e.new_account("support", &mb, stack().imaps_port, Security::ImplicitTls);
    mailroom::accounts::add(&e.ctx, new, Secret::new(&mb.password))
        .await
        .unwrap();
    let store = &e.ctx.adapters().store;
    store
        .set_auto_reply("support", Some(&auto_reply()))
        .await
        .unwrap();
    let d = DispatchEnv {
        env: e,
        mb,
        account: "support".into(),
    };
    d.receive(&[simple("arref-1@customer.example", CUSTOMER, "Hello")])
        .await;
    let store = &d.env.ctx.adapters().store;
    assert!(d.sent().await.is_empty());
    assert_eq!(d.suppressed_reasons().await, ["send_refused"]);
    let account = store.get_account("support").await.unwrap().unwrap();
    let said = account.send_error.unwrap_or_default();
    assert!(said.contains(&d.mb.user), "{said}");
    assert!(moto.sent_raw().await.is_empty());
}
