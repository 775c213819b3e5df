//! The pipeline end to end: Dovecot -> poller -> S3 + SQS -> ingest -> DynamoDB.

use mailroom::cycle;
use mailroom_core::model::{ErrorKind, Security};
use mailroom_core::ports::{AccountStore, BlobStore, EmailStore};
use mailroom_core::schedule::Selection;

use crate::harness::*;

fn named(n: &str) -> Selection {
    Selection::Named(vec![n.to_string()])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_are_imported_exactly_once_and_a_second_poll_imports_nothing() {
    let env = env("once").await;
    let mb = mailbox("once");
    let msgs: Vec<Vec<u8>> = (0..12)
        .map(|i| message(Some(&format!("once-{i}@example.com")), &format!("once {i}")))
        .collect();
    deliver(&mb, &msgs).await;
    env.add_account("support", &mb).await;

    let first = cycle::run(&env.ctx, named("support")).await.unwrap();
    let t = totals_for(&first, "support");
    assert_eq!(
        (t.fetched, t.imported, t.duplicates, t.errors),
        (12, 12, 0, 0),
        "{t:?}"
    );

    let second = cycle::run(&env.ctx, named("support")).await.unwrap();
    let t = totals_for(&second, "support");
    assert_eq!((t.fetched, t.imported, t.duplicates), (0, 0, 0), "{t:?}");

    let emails = env.ctx.adapters().store.list_emails().await.unwrap();
    assert_eq!(emails.len(), 12);
    let mut ids: Vec<_> = emails.iter().map(|e| e.message_id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 12);
    assert!(emails
        .iter()
        .all(|e| e.accounts == vec!["support".to_string()]));

    // New mail after that is picked up, and only it.
    deliver(&mb, &[message(Some("once-late@example.com"), "late")]).await;
    let third = cycle::run(&env.ctx, named("support")).await.unwrap();
    let t = totals_for(&third, "support");
    assert_eq!((t.fetched, t.imported), (1, 1));

    let status = env
        .ctx
        .adapters()
        .store
        .get_account("support")
        .await
        .unwrap()
        .unwrap();
    assert!(status.status.last_success.is_some());
    assert_eq!(status.status.consecutive_failures, 0);
    // The mailbox was not changed: nothing flagged \Seen by the poller (R-F4).
    let seen =
        mailroom::local::doveadm(&["search", "-u", &mb.user, "mailbox", "INBOX", "SEEN"]).unwrap();
    assert!(
        seen.trim().is_empty(),
        "poller marked messages seen: {seen}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_message_in_two_accounts_is_one_email_linked_to_both() {
    let env = env("two").await;
    let a = mailbox("two-a");
    let b = mailbox("two-b");
    let shared = message(Some("shared-1@example.com"), "to both of you");
    deliver(&a, std::slice::from_ref(&shared)).await;
    deliver(&b, &[shared]).await;
    env.add_account("sales", &a).await;
    env.add_account("support", &b).await;

    let totals = cycle::run(&env.ctx, Selection::AllActive).await.unwrap();
    let fetched: u32 = totals.iter().map(|t| t.fetched).sum();
    let imported: u32 = totals.iter().map(|t| t.imported).sum();
    let linked: u32 = totals.iter().map(|t| t.linked).sum();
    assert_eq!((fetched, imported, linked), (2, 1, 1), "{totals:?}");

    let emails = env.ctx.adapters().store.list_emails().await.unwrap();
    assert_eq!(emails.len(), 1);
    assert_eq!(emails[0].message_id, "shared-1@example.com");
    assert_eq!(emails[0].accounts, vec!["sales", "support"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_without_message_id_polled_twice_is_one_email() {
    let env = env("noid").await;
    let mb = mailbox("noid");
    let raw = message(None, "no id at all");
    deliver(&mb, std::slice::from_ref(&raw)).await;
    env.add_account("support", &mb).await;
    cycle::run(&env.ctx, named("support")).await.unwrap();

    // Poll it again from scratch (reset), and receive the same bytes once more (new UID).
    env.ctx
        .adapters()
        .store
        .reset_account(
            "support",
            chrono::NaiveDate::from_ymd_opt(2000, 1, 1).unwrap(),
        )
        .await
        .unwrap();
    deliver(&mb, &[raw]).await;
    let totals = cycle::run(&env.ctx, named("support")).await.unwrap();
    let t = totals_for(&totals, "support");
    assert_eq!((t.fetched, t.imported, t.duplicates), (2, 0, 2), "{t:?}");

    let emails = env.ctx.adapters().store.list_emails().await.unwrap();
    assert_eq!(emails.len(), 1);
    assert!(emails[0].synthetic_id);
    assert!(emails[0]
        .message_id
        .ends_with("@synthetic.mailroom.invalid"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_message_id_with_other_content_is_not_swallowed() {
    let env = env("reuse").await;
    let mb = mailbox("reuse");
    deliver(
        &mb,
        &[
            message(Some("same@broken.example"), "first subject"),
            message(Some("same@broken.example"), "another subject"),
        ],
    )
    .await;
    env.add_account("support", &mb).await;
    let totals = cycle::run(&env.ctx, named("support")).await.unwrap();
    assert_eq!(totals_for(&totals, "support").imported, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_uidvalidity_change_rereads_and_duplicates_nothing() {
    let env = env("uidv").await;
    let mb = mailbox("uidv");
    let msgs: Vec<Vec<u8>> = (0..4)
        .map(|i| message(Some(&format!("uidv-{i}@example.com")), &format!("uidv {i}")))
        .collect();
    deliver(&mb, &msgs).await;
    env.add_account("support", &mb).await;
    cycle::run(&env.ctx, named("support")).await.unwrap();
    let before = env
        .ctx
        .adapters()
        .store
        .get_account("support")
        .await
        .unwrap()
        .unwrap();
    let old = before.folder_state["INBOX"].uidvalidity;

    let new = old.wrapping_add(1000);
    mailroom::local::doveadm(&[
        "mailbox",
        "update",
        "--uid-validity",
        &new.to_string(),
        "-u",
        &mb.user,
        "INBOX",
    ])
    .unwrap();
    let totals = cycle::run(&env.ctx, named("support")).await.unwrap();
    let t = totals_for(&totals, "support");
    assert_eq!((t.fetched, t.imported, t.duplicates), (4, 0, 4), "{t:?}");
    let after = env
        .ctx
        .adapters()
        .store
        .get_account("support")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.folder_state["INBOX"].uidvalidity, new);
    assert_eq!(
        env.ctx.adapters().store.list_emails().await.unwrap().len(),
        4
    );
    // And the next poll is idle again.
    let totals = cycle::run(&env.ctx, named("support")).await.unwrap();
    assert_eq!(totals_for(&totals, "support").fetched, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_and_unreachable_host_are_recorded_without_affecting_others() {
    let env = env("fail").await;
    let good = mailbox("fail-good");
    let locked = mailbox("fail-auth");
    deliver(&good, &[message(Some("fail-good@example.com"), "fine")]).await;
    env.add_account("good", &good).await;
    env.add_account_with(
        "badpass",
        &locked,
        "not-the-password",
        stack().imaps_port,
        Security::ImplicitTls,
    )
    .await;
    // A closed loopback port: nothing listens on port 1.
    env.add_account_with("nohost", &good, &good.password, 1, Security::ImplicitTls)
        .await;

    let totals = cycle::run(&env.ctx, Selection::AllActive).await.unwrap();
    assert_eq!(totals_for(&totals, "good").imported, 1);
    assert_eq!(
        totals_for(&totals, "badpass").error_kind,
        Some(ErrorKind::Auth)
    );
    assert_eq!(
        totals_for(&totals, "nohost").error_kind,
        Some(ErrorKind::Connect)
    );

    let store = &env.ctx.adapters().store;
    for (name, kind) in [("badpass", ErrorKind::Auth), ("nohost", ErrorKind::Connect)] {
        let a = store.get_account(name).await.unwrap().unwrap();
        assert_eq!(a.status.last_error_kind, Some(kind), "{name}");
        assert_eq!(a.status.consecutive_failures, 1, "{name}");
        assert!(a.status.failing_since.is_some());
        assert!(a.status.backoff_until.is_some());
        let msg = a.status.last_error.unwrap();
        assert!(
            !msg.contains(&locked.password) && !msg.contains(&good.password),
            "{msg}"
        );
    }
    let ok = store.get_account("good").await.unwrap().unwrap();
    assert!(ok.status.last_success.is_some());
    assert_eq!(ok.status.last_error_kind, None);

    // A second failure counts up; fixing nothing keeps the account failing, not silent.
    cycle::run(&env.ctx, named("badpass")).await.unwrap();
    let a = store.get_account("badpass").await.unwrap().unwrap();
    assert_eq!(a.status.consecutive_failures, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_and_starttls_connections_work_when_configured() {
    let env = env("plain").await;
    let mb = mailbox("plain");
    deliver(&mb, &[message(Some("plain@example.com"), "plain")]).await;
    env.add_account_with(
        "plain",
        &mb,
        &mb.password,
        stack().imap_port,
        Security::Plain,
    )
    .await;
    env.add_account_with(
        "starttls",
        &mb,
        &mb.password,
        stack().imap_port,
        Security::Starttls,
    )
    .await;
    let totals = cycle::run(&env.ctx, Selection::AllActive).await.unwrap();
    assert_eq!(totals_for(&totals, "plain").fetched, 1, "{totals:?}");
    assert_eq!(totals_for(&totals, "starttls").fetched, 1, "{totals:?}");
    assert_eq!(
        env.ctx.adapters().store.list_emails().await.unwrap().len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_30_mb_message_is_imported_with_headers_and_text_and_attachments_skipped() {
    let env = env("big").await;
    let mb = mailbox("big");
    let mut raw = String::new();
    raw.push_str("From: big@example.com\r\nTo: support@example.test\r\nSubject: huge scan\r\n");
    raw.push_str("Message-ID: <big-1@example.com>\r\nDate: Tue, 3 Mar 2026 10:00:00 +0000\r\n");
    raw.push_str("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n");
    raw.push_str("--b\r\nContent-Type: text/plain\r\n\r\nPlease see the attached scan.\r\n");
    raw.push_str("--b\r\nContent-Type: application/octet-stream; name=\"scan.bin\"\r\n");
    raw.push_str("Content-Disposition: attachment; filename=\"scan.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n");
    let line = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0\r\n";
    while raw.len() < 30 * 1024 * 1024 {
        raw.push_str(line);
    }
    raw.push_str("--b--\r\n");
    let size = raw.len() as u64;
    // And a 3 MB one, under the limit, imported whole.
    let mut medium = raw[..raw.find("QUJD").unwrap()]
        .replace("big-1@", "medium-1@")
        .replace("huge", "medium");
    while medium.len() < 3 * 1024 * 1024 {
        medium.push_str(line);
    }
    medium.push_str("--b--\r\n");
    deliver(&mb, &[raw.into_bytes(), medium.into_bytes()]).await;
    env.add_account("support", &mb).await;

    let totals = cycle::run(&env.ctx, named("support")).await.unwrap();
    let t = totals_for(&totals, "support");
    assert_eq!(
        (t.fetched, t.imported, t.oversize, t.errors),
        (2, 2, 1, 0),
        "{t:?}"
    );
    let emails = env.ctx.adapters().store.list_emails().await.unwrap();
    let big = emails
        .iter()
        .find(|e| e.message_id == "big-1@example.com")
        .unwrap();
    assert!(big.attachments_skipped);
    assert!(big.attachments.is_empty());
    assert_eq!(big.size, size);
    match &big.text {
        Some(mailroom_core::model::Body::Inline(t)) => assert!(t.contains("attached scan")),
        other => panic!("text body expected, got {other:?}"),
    }
    let medium = emails
        .iter()
        .find(|e| e.message_id == "medium-1@example.com")
        .unwrap();
    assert!(!medium.attachments_skipped);
    assert_eq!(medium.attachments.len(), 1);
    let stored = env
        .ctx
        .adapters()
        .blobs
        .get(&medium.attachments[0].key)
        .await
        .unwrap()
        .expect("attachment in S3");
    assert_eq!(stored.len() as u64, medium.attachments[0].size);
    assert!(
        stored.starts_with(b"ABCDEFGH"),
        "{:?}",
        String::from_utf8_lossy(&stored[..80.min(stored.len())])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_mail_is_quarantined_durably_and_can_be_replayed() {
    let env = env("quar").await;
    let mb = mailbox("quar");
    let fixtures = mailroom::local::repo_root().join("tests/fixtures/eml/malformed");
    let garbage = std::fs::read(fixtures.join("no-headers.eml")).unwrap();
    let binary = std::fs::read(fixtures.join("binary.eml")).unwrap();
    deliver(
        &mb,
        &[
            garbage.clone(),
            binary,
            message(Some("fine@example.com"), "fine"),
        ],
    )
    .await;
    env.add_account("support", &mb).await;

    let totals = cycle::run(&env.ctx, named("support")).await.unwrap();
    let t = totals_for(&totals, "support");
    assert_eq!(
        (t.fetched, t.imported, t.quarantined, t.errors),
        (3, 1, 2, 0),
        "{t:?}"
    );

    let store = &env.ctx.adapters().store;
    let list = store.list_quarantine().await.unwrap();
    assert_eq!(list.len(), 2);
    // The text file was appended first (UID 1); the binary one may be reported either way,
    // depending on what Dovecot made of its NUL bytes.
    let q = list
        .iter()
        .find(|q| q.uid == 1)
        .expect("the text file is quarantined");
    assert!(q.reason.contains("no header section"), "{}", q.reason);
    assert!(list.iter().all(|q| !q.reason.is_empty()));
    assert_eq!(q.account, "support");
    let raw = env
        .ctx
        .adapters()
        .blobs
        .get(&q.raw_key)
        .await
        .unwrap()
        .expect("raw kept");
    // Dovecot may normalise line endings; the words are all there.
    assert_eq!(
        String::from_utf8_lossy(&raw).replace("\r\n", "\n"),
        String::from_utf8_lossy(&garbage).replace("\r\n", "\n")
    );
    assert!(q.raw_key.starts_with("quarantine/"));

    // A replay of an unfixed message quarantines it again under the same id: nothing is lost.
    mailroom_core::ports::Queue::send(
        &env.ctx.adapters().ingest_queue,
        &[mailroom_core::ports::Outgoing::plain(q.replay_pointer())],
    )
    .await
    .unwrap();
    let totals = cycle::run(&env.ctx, Selection::Named(vec![]))
        .await
        .unwrap();
    assert_eq!(totals_for(&totals, "support").quarantined, 1);
    assert_eq!(store.list_quarantine().await.unwrap().len(), 2);

    // Once the cause is fixed (here: the raw object repaired), a replay imports it and clears it.
    let fixed = [
        b"Subject: repaired\r\nMessage-ID: <fixed@example.com>\r\n\r\n".to_vec(),
        garbage,
    ]
    .concat();
    env.ctx
        .adapters()
        .blobs
        .put(&q.raw_key, fixed, "message/rfc822")
        .await
        .unwrap();
    mailroom_core::ports::Queue::send(
        &env.ctx.adapters().ingest_queue,
        &[mailroom_core::ports::Outgoing::plain(q.replay_pointer())],
    )
    .await
    .unwrap();
    let totals = cycle::run(&env.ctx, Selection::Named(vec![]))
        .await
        .unwrap();
    assert_eq!(totals_for(&totals, "support").imported, 1);
    assert_eq!(store.list_quarantine().await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fixture_corpus_goes_through_the_whole_pipeline() {
    let env = env("corpus").await;
    let mb = mailbox("corpus");
    let root = mailroom::local::repo_root().join("tests/fixtures/eml");
    let mut expected_ok = 0;
    let mut expected_quarantine = 0;
    let mut messages = vec![];
    for group in ["rfc", "legacy", "thirdparty", "malformed"] {
        let mut files: Vec<_> = std::fs::read_dir(root.join(group))
            .unwrap()
            .map(|f| f.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        files.sort();
        for f in files {
            let raw = std::fs::read(&f).unwrap();
            if raw.is_empty() {
                continue; // IMAP cannot hold an empty message
            }
            let expected: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(f.with_extension("json")).unwrap())
                    .unwrap();
            if expected["outcome"] == "quarantine" {
                expected_quarantine += 1;
            } else {
                expected_ok += 1;
            }
            messages.push(raw);
        }
    }
    assert!(messages.len() >= 30);
    deliver(&mb, &messages).await;
    env.add_account("support", &mb).await;
    let totals = cycle::run(&env.ctx, named("support")).await.unwrap();
    let t = totals_for(&totals, "support");
    assert_eq!(t.fetched as usize, messages.len(), "{t:?}");
    assert_eq!(
        (t.imported as usize, t.quarantined as usize),
        (expected_ok, expected_quarantine),
        "{t:?}"
    );
    assert_eq!(t.errors, 0);
}
