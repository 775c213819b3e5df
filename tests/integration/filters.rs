//! Filters against the real stack (R-X1..R-X4): header skips never download the body (the
//! IMAP server's own log says so), body skips run after parsing, user actions touch only that
//! user's copy, and every skipped message is listed.

use mailroom::cycle;
use mailroom_core::filters::{Action, Filter, Pattern, Scope};
use mailroom_core::ports::EmailStore;
use mailroom_core::schedule::Selection;

use crate::cases::{mail, simple, Mail};
use crate::harness::*;

fn filter(name: &str, scope: Scope, action: Action) -> Filter {
    Filter {
        v: 1,
        name: name.into(),
        scope,
        from: None,
        to: None,
        subject: None,
        body_any: vec![],
        body_all: vec![],
        action,
        folder: None,
    }
}

/// A group account `support` on `mb` whose mail goes to team `l1`.
async fn add_team_account(env: &TestEnv, mb: &TestMailbox) {
    mailroom::accounts::add(
        &env.ctx,
        mailroom::accounts::NewAccount {
            name: "support".into(),
            kind: mailroom_core::model::AccountKind::Group,
            address: Some(mb.user.clone()),
            owner: None,
            imap_host: "127.0.0.1".into(),
            imap_port: stack().imaps_port,
            imap_user: mb.user.clone(),
            security: mailroom_core::model::Security::ImplicitTls,
            folders: vec![],
            fetch_since: None,
            teams: vec!["l1".into()],
        },
        mailroom_core::model::Secret::new(&mb.password),
    )
    .await
    .unwrap();
}

/// `fetch_body_count` of every logout of `user` in Dovecot's log.
fn bodies_fetched_by_server(user: &str) -> Vec<u32> {
    let log =
        std::fs::read_to_string(mailroom::local::local_dir().join("log/dovecot.log")).unwrap();
    log.lines()
        .filter(|l| l.contains(&format!("imap({user})")) && l.contains("Logged out"))
        .filter_map(|l| l.split("fetch_body_count=").nth(1))
        .filter_map(|n| n.trim().parse().ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_global_header_skip_keeps_mail_out_of_every_account_without_fetching_its_body() {
    let env = env("gskip").await;
    let a = mailbox("gskip-a");
    let b = mailbox("gskip-b");
    let news = |i: u32| {
        simple(
            &format!("news-{i}@shop.example"),
            "news@shop.example",
            &format!("Weekly NEWSLETTER {i}"),
        )
    };
    deliver(&a, &[news(1), news(2)]).await;
    deliver(&b, &[news(1), news(3)]).await;
    env.add_account("sales", &a).await;
    env.add_account("support", &b).await;
    let mut f = filter("no-newsletters", Scope::Global, Action::Skip);
    f.subject = Some(Pattern::new("*newsletter*").unwrap());
    env.ctx.adapters().store.add_filter(&f).await.unwrap();

    let totals = cycle::run(&env.ctx, Selection::AllActive).await.unwrap();
    for name in ["sales", "support"] {
        let t = totals_for(&totals, name);
        assert_eq!((t.fetched, t.imported, t.skipped), (0, 0, 2), "{t:?}");
    }
    assert!(env
        .ctx
        .adapters()
        .store
        .list_emails()
        .await
        .unwrap()
        .is_empty());
    let skipped = env.ctx.adapters().store.list_skipped().await.unwrap();
    assert_eq!(skipped.len(), 4);
    assert!(skipped
        .iter()
        .all(|s| s.filter == "no-newsletters" && s.stage == "headers"));
    assert!(skipped
        .iter()
        .any(|s| s.message_id.as_deref() == Some("news-3@shop.example")
            && s.subject.as_deref() == Some("Weekly NEWSLETTER 3")
            && s.account == "support"));
    // The server's log: these sessions fetched no message body at all.
    for mb in [&a, &b] {
        let counts = bodies_fetched_by_server(&mb.user);
        assert!(!counts.is_empty(), "no logout line for {}", mb.user);
        assert!(counts.iter().all(|&n| n == 0), "{}: {counts:?}", mb.user);
    }
    // The watermark moved past them: the next poll is idle, nothing listed twice.
    let again = cycle::run(&env.ctx, Selection::AllActive).await.unwrap();
    assert!(again.iter().all(|t| t.skipped == 0 && t.fetched == 0));
    assert_eq!(
        env.ctx.adapters().store.list_skipped().await.unwrap().len(),
        4
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_scope_and_body_filters_skip_only_where_they_apply() {
    let env = env("bskip").await;
    let a = mailbox("bskip-a");
    let b = mailbox("bskip-b");
    let promo = mail(Mail {
        id: "promo@shop.example",
        from: "deals@shop.example",
        subject: "Deals",
        refs: &[],
        extra: "",
    });
    let promo = [promo, b"To unsubscribe click here.\r\n".to_vec()].concat();
    let normal = simple("normal@cust.example", "cust@cust.example", "Question");
    deliver(&a, &[promo.clone(), normal.clone()]).await;
    deliver(&b, &[promo]).await;
    env.add_account("sales", &a).await;
    env.add_account("support", &b).await;
    // Body criterion, only for `sales`: decided after parsing.
    let mut f = filter(
        "sales-unsubscribe",
        Scope::Account("sales".into()),
        Action::Skip,
    );
    f.body_any = vec!["UNSUBSCRIBE".into(), "opt out".into()];
    env.ctx.adapters().store.add_filter(&f).await.unwrap();

    let totals = cycle::run(&env.ctx, Selection::AllActive).await.unwrap();
    let s = totals_for(&totals, "sales");
    assert_eq!((s.fetched, s.imported, s.skipped), (2, 1, 1), "{s:?}");
    let t = totals_for(&totals, "support");
    assert_eq!((t.fetched, t.imported, t.skipped), (1, 1, 0), "{t:?}");
    let skipped = env.ctx.adapters().store.list_skipped().await.unwrap();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].stage, "body");
    assert_eq!(skipped[0].account, "sales");
    let emails = env.ctx.adapters().store.list_emails().await.unwrap();
    let promo = emails
        .iter()
        .find(|e| e.message_id == "promo@shop.example")
        .unwrap();
    assert_eq!(promo.accounts, vec!["support"], "imported for support only");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_filter_moves_only_that_users_copy() {
    let env = env("ucopy").await;
    let mb = mailbox("ucopy");
    let store = &env.ctx.adapters().store;
    store.add_team("l1").await.unwrap();
    for u in ["alice", "bob"] {
        mailroom::records::add_user(
            &env.ctx,
            u,
            &[format!("{u}@corp.example")],
            &["l1".into()],
            true,
        )
        .await
        .unwrap();
    }
    deliver(
        &mb,
        &[simple(
            "rcpt@shop.example",
            "billing@shop.example",
            "Your receipt #42",
        )],
    )
    .await;
    add_team_account(&env, &mb).await;
    let mut mv = filter(
        "alice-receipts",
        Scope::User("alice".into()),
        Action::MoveToFolder,
    );
    mv.subject = Some(Pattern::new("*RECEIPT*").unwrap());
    mv.folder = Some("Receipts".into());
    store.add_filter(&mv).await.unwrap();
    let mut quiet = filter(
        "alice-quiet",
        Scope::User("alice".into()),
        Action::SkipNotification,
    );
    quiet.from = Some(Pattern::new("billing@*").unwrap());
    store.add_filter(&quiet).await.unwrap();

    cycle::run(&env.ctx, Selection::AllActive).await.unwrap();
    let alice = store.inbox("alice").await.unwrap();
    let bob = store.inbox("bob").await.unwrap();
    assert_eq!((alice.len(), bob.len()), (1, 1), "one email, two copies");
    assert_eq!(alice[0].email_id, bob[0].email_id);
    assert_eq!(alice[0].folder, "Receipts");
    assert!(!alice[0].notify);
    assert_eq!(bob[0].folder, "Inbox");
    assert!(bob[0].notify && !bob[0].read);
    let emails = store.list_emails().await.unwrap();
    assert_eq!(emails.len(), 1);
    assert_eq!(emails[0].teams, ["l1"], "R-I4: the group account's teams");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_scope_holds_at_most_one_hundred_filters() {
    let env = env("ulimit").await;
    let store = &env.ctx.adapters().store;
    for i in 0..100 {
        let mut f = filter(
            &format!("u{i:03}"),
            Scope::User("ann".into()),
            Action::MarkRead,
        );
        f.subject = Some(Pattern::new(&format!("*{i}*")).unwrap());
        store.add_filter(&f).await.unwrap();
    }
    let mut extra = filter("u100", Scope::User("ann".into()), Action::MarkRead);
    extra.subject = Some(Pattern::new("*x*").unwrap());
    let err = store.add_filter(&extra).await.unwrap_err();
    assert!(
        err.to_string().contains("at most 100") || format!("{err:?}").contains("at most 100"),
        "{err:?}"
    );
    // Another user's scope and the global scope are not limited by ann's.
    let mut other = filter("b000", Scope::User("bob".into()), Action::MarkRead);
    other.subject = Some(Pattern::new("*x*").unwrap());
    store.add_filter(&other).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_body_filter_sees_a_text_body_too_large_for_the_item() {
    let env = env("bigbody").await;
    let mb = mailbox("bigbody");
    let store = &env.ctx.adapters().store;
    store.add_team("l1").await.unwrap();
    mailroom::records::add_user(
        &env.ctx,
        "alice",
        &["alice@corp.example".into()],
        &["l1".into()],
        true,
    )
    .await
    .unwrap();
    let mut raw = simple("big@x.example", "c@x.example", "long report");
    raw.extend("lorem ipsum dolor sit amet ".repeat(6000).into_bytes());
    raw.extend(b"\r\nthe needle is here\r\n");
    deliver(&mb, &[raw]).await;
    add_team_account(&env, &mb).await;
    let mut f = filter("needles", Scope::User("alice".into()), Action::MarkRead);
    f.body_any = vec!["THE NEEDLE".into()];
    store.add_filter(&f).await.unwrap();
    cycle::run(&env.ctx, Selection::AllActive).await.unwrap();
    let email = &store.list_emails().await.unwrap()[0];
    assert!(
        matches!(email.text, Some(mailroom_core::model::Body::Stored { .. })),
        "the body is in S3"
    );
    let copy = &store.inbox("alice").await.unwrap()[0];
    assert!(copy.read, "the filter read the stored body");
}
