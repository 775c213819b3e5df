//! `mailroom demo`: the README's first command, everything a newcomer needs to see the
//! pipeline work: local stack, a demo mailbox with sample mail, one cycle, results.

use anyhow::Result;
use chrono::Utc;
use mailroom::accounts::{self, NewAccount};
use mailroom::context::connect;
use mailroom::{cycle, local, views};
use mailroom_core::model::{AccountKind, Secret, Security};
use mailroom_core::model::{CaseSettings, Distribution};
use mailroom_core::ports::{DispatchStore, EmailStore, Followers, StoreError};
use mailroom_core::records::RecordRef;
use mailroom_core::schedule::Selection;
use mailroom_core::SCHEMA_VERSION;

pub async fn run() -> Result<()> {
    let info = local::up()?;
    let stamp = Utc::now().format("%Y%m%d%H%M%S").to_string();
    // Resources of its own each run: the same sample mail imported again elsewhere would
    // (rightly) be duplicates, which is not what a first look should show.
    let prefix = format!("demo-{stamp}");
    let ctx = connect(&prefix).await?;
    views::note(format!("demo resources: prefix {prefix}"));
    let user = format!("demo-{stamp}@example.test");
    let password = format!("demo-{:08x}", rand::random::<u32>());
    local::mailbox_add(&user, &password)?;

    let mut files = local::fixture_files(&["rfc", "legacy", "thirdparty"])?;
    files.push(local::repo_root().join("tests/fixtures/eml/malformed/no-headers.eml"));
    files.sort();
    let messages: Vec<Vec<u8>> = files.iter().map(std::fs::read).collect::<Result<_, _>>()?;
    let n = local::deliver(&info, &user, &password, "INBOX", &messages).await?;
    views::note(format!("delivered {n} sample messages to {user}"));

    let name = format!("demo-{stamp}");
    accounts::add_group(
        &ctx,
        NewAccount {
            name: name.clone(),
            kind: AccountKind::Group,
            address: Some(user.clone()),
            owner: None,
            imap_host: info.imap_host.clone(),
            imap_port: info.imaps_port,
            imap_user: user.clone(),
            security: Security::ImplicitTls,
            folders: vec![],
            fetch_since: None,
            teams: vec!["support".into()],
        },
        Secret::new(password),
    )
    .await?;
    views::note(format!(
        "group account {name} added (IMAP over TLS, password sealed with KMS, address verified with SES)"
    ));

    // Email-to-case: a support team of three, round-robin, and one known customer.
    let store = &ctx.adapters().store;
    match store.add_team("support").await {
        Ok(()) | Err(StoreError::AlreadyExists(_)) => {}
        Err(e) => return Err(e.into()),
    }
    for user in ["ann", "ben", "cat"] {
        if store.get_user(user).await?.is_none() {
            mailroom::records::add_user(
                &ctx,
                user,
                &[format!("{user}@corp.example")],
                &["support:L1".into()],
                true,
            )
            .await?;
        }
    }
    let customer = mailroom_core::admin::NewRecord::Contact(mailroom_core::records::Contact {
        v: SCHEMA_VERSION,
        name: "Petra Schmidt".into(),
        email: "petra.schmidt@example.com".into(),
        account: None,
    });
    if !store.record_exists(&customer.reference()).await? {
        store.add_record(&customer).await?;
    }
    store
        .set_case_settings(
            &name,
            &CaseSettings {
                create_case: true,
                distribution: Distribution::RoundRobin,
                assign_to: None,
                target_team: Some("support".into()),
                position: None,
                reopen_on_reply: true,
            },
        )
        .await?;
    views::note("email-to-case on: round-robin over team support (ann, ben, cat)");
    // Auto-reply on (R-A1), and a follower of the customer who is in no team (R-N1).
    store
        .set_auto_reply(
            &name,
            Some(&mailroom_core::dispatch::settings::AutoReply {
                enabled: true,
                subject: "Re: {{subject}}".into(),
                body: "Hello {{contact_name}},\n\nwe received your message about \
                       \"{{subject}}\" and filed it as case {{case_number}}. We will be in \
                       touch.\n"
                    .into(),
                html: None,
                from_name: Some("Demo Support".into()),
                reply_to: None,
                limit: mailroom_core::dispatch::settings::DEFAULT_LIMIT,
                window_minutes: mailroom_core::dispatch::settings::DEFAULT_WINDOW_MINUTES,
            }),
        )
        .await?;
    if store.get_user("dora").await?.is_none() {
        mailroom::records::add_user(&ctx, "dora", &["dora@corp.example".into()], &[], true).await?;
    }
    store.follow("dora", &customer.reference()).await?;
    views::note("auto-reply on; dora (account manager, no team) follows Petra Schmidt");

    let totals = cycle::run(&ctx, Selection::Named(vec![name.clone()])).await?;
    views::demo_heading("poll cycle");
    views::print_cycle(&totals);
    let again = cycle::run(&ctx, Selection::Named(vec![name.clone()])).await?;
    views::demo_heading("second cycle (nothing new, nothing duplicated)");
    views::print_cycle(&again);

    views::demo_heading(&format!("emails of {name}"));
    let emails = store.list_emails().await?;
    for e in emails.iter().filter(|e| e.accounts.contains(&name)) {
        views::demo_email(e);
    }
    views::demo_heading(&format!(
        "cases created from {name} (auto-replies and bounces create none)"
    ));
    let mut cases: Vec<_> = store
        .list_cases()
        .await?
        .into_iter()
        .filter(|c| c.mail_account == name)
        .collect();
    cases.sort_by_key(|c| c.number);
    for c in &cases {
        let emails = store
            .stream(&RecordRef::case(c.number.get()))
            .await?
            .iter()
            .filter(|e| e.kind == "email_received")
            .count();
        views::demo_case(c, emails);
    }
    views::demo_heading(&format!(
        "sent by {name}: auto-replies (through SES), one per new email, none to robots"
    ));
    let sent = store.list_sent().await?;
    views::print_sent(&sent, false);
    views::demo_heading("auto-replies not sent, and why (loop safety, R-A2)");
    let suppressed = store.list_suppressed().await?;
    views::print_suppressed(&suppressed, false);
    for user in ["ann", "ben", "cat", "dora"] {
        views::demo_heading(&format!("notifications of {user}"));
        views::print_notifications(&store.notifications(user).await?, false);
    }
    views::demo_heading(&format!("quarantine of {name}"));
    for q in store
        .list_quarantine()
        .await?
        .iter()
        .filter(|q| q.account == name)
    {
        views::demo_quarantined(q);
    }
    views::demo_explore(&prefix);
    Ok(())
}
