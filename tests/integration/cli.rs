//! The `mailroom` binary's contract: exact forms and JSON fields other checks use.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use crate::harness::*;

fn mailroom(prefix: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mailroom"))
        .args(args)
        .env("MAILROOM_PREFIX", prefix)
        .env("RUST_LOG", "trace")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mailroom runs");
    {
        let mut input = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            input.write_all(s.as_bytes()).unwrap();
        }
    }
    child.wait_with_output().unwrap()
}

/// `mailroom account add-group --name support ...` on the mailbox, over TLS.
fn add_support_account(prefix: &str, mb: &TestMailbox) {
    let port = stack().imaps_port.to_string();
    let add = mailroom(
        prefix,
        &[
            "account",
            "add-group",
            "--name",
            "support",
            "--address",
            &mb.user,
            "--imap-host",
            "127.0.0.1",
            "--imap-port",
            &port,
            "--imap-user",
            &mb.user,
            "--password-stdin",
        ],
        Some(&mb.password),
    );
    assert!(
        add.status.success(),
        "{}",
        String::from_utf8_lossy(&add.stderr)
    );
}

fn json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_contract_end_to_end_and_no_plaintext_credentials_anywhere() {
    let s = stack();
    let prefix = unique("cli").to_lowercase();
    let mb = mailbox("cli");
    deliver(&mb, &[message(Some("cli-1@example.com"), "via the cli")]).await;

    let up = json(&mailroom(&prefix, &["local", "up", "--json"], None));
    for key in [
        "aws_endpoint",
        "imap_host",
        "imap_port",
        "imaps_port",
        "mailboxes",
    ] {
        assert!(up.get(key).is_some(), "local up --json lacks {key}: {up}");
    }
    assert_eq!(up["imaps_port"], s.imaps_port);
    assert!(up["mailboxes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["user"] == mb.user.as_str() && m["password"] == mb.password.as_str()));

    let port = s.imaps_port.to_string();
    let add = mailroom(
        &prefix,
        &[
            "account",
            "add-group",
            "--name",
            "support",
            "--address",
            &mb.user,
            "--imap-host",
            "127.0.0.1",
            "--imap-port",
            &port,
            "--imap-user",
            &mb.user,
            "--password-stdin",
            "--security",
            "implicit-tls",
            "--folder",
            "INBOX",
            "--fetch-since",
            "2020-01-01",
            "--team",
            "l1",
        ],
        Some(&format!("{}\n", mb.password)),
    );
    assert!(
        add.status.success(),
        "{}",
        String::from_utf8_lossy(&add.stderr)
    );
    let personal = mailroom(
        &prefix,
        &[
            "account",
            "add-personal",
            "--owner",
            "alice",
            "--imap-host",
            "127.0.0.1",
            "--imap-port",
            &port,
            "--imap-user",
            &mb.user,
            "--password-stdin",
        ],
        Some(&mb.password),
    );
    assert!(
        personal.status.success(),
        "{}",
        String::from_utf8_lossy(&personal.stderr)
    );

    let list = json(&mailroom(&prefix, &["account", "list", "--json"], None));
    let names: Vec<_> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_string())
        .collect();
    assert!(names.contains(&"support".to_string()) && names.contains(&mb.user));

    let poll = mailroom(&prefix, &["poll", "--account", "support", "--json"], None);
    let poll_json = json(&poll);
    let row = poll_json
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["account"] == "support")
        .expect("a row for support");
    for key in ["fetched", "imported", "duplicates", "quarantined", "errors"] {
        assert!(row[key].is_u64(), "poll row lacks {key}: {row}");
    }
    assert_eq!(
        (row["fetched"].as_u64(), row["imported"].as_u64()),
        (Some(1), Some(1))
    );

    let emails = json(&mailroom(&prefix, &["emails", "list", "--json"], None));
    let e = &emails.as_array().unwrap()[0];
    assert_eq!(e["message_id"], "cli-1@example.com");
    assert_eq!(e["subject"], "via the cli");
    assert_eq!(e["from"], "customer@example.com");
    assert_eq!(e["accounts"], serde_json::json!(["support"]));

    let status = json(&mailroom(&prefix, &["status", "--json"], None));
    assert!(status
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["name"] == "support" && !a["last_success"].is_null()));
    let quarantine = json(&mailroom(&prefix, &["quarantine", "list", "--json"], None));
    assert!(quarantine.as_array().unwrap().is_empty());

    let reset = mailroom(
        &prefix,
        &["account", "reset", "support", "--fetch-since", "2026-01-01"],
        None,
    );
    assert!(reset.status.success());

    // The password never appears in plaintext: not in any stored item, not in any output or
    // log line (all of the above ran with RUST_LOG=trace).
    let env = env("cli-scan").await;
    let items = env
        .ctx
        .clients
        .dynamodb
        .scan()
        .table_name(format!("{prefix}-table"))
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default();
    assert!(!items.is_empty());
    let dump = format!("{items:?}");
    assert!(!dump.contains(&mb.password), "password stored in plaintext");
    for out in [&add, &personal, &poll] {
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!all.contains(&mb.password), "password in output or logs");
    }
}

#[test]
fn bad_input_fails_with_a_clear_message_and_non_zero_exit() {
    stack();
    let prefix = unique("bad").to_lowercase();
    let cases: &[(&[&str], Option<&str>, &str)] = &[
        (
            &["poll", "--account", "nobody-here"],
            None,
            "unknown account",
        ),
        (
            &[
                "account",
                "reset",
                "nobody-here",
                "--fetch-since",
                "2026-01-01",
            ],
            None,
            "unknown account",
        ),
        (
            &["account", "reset", "x", "--fetch-since", "2026-13-45"],
            None,
            "fetch-since",
        ),
        (
            &[
                "account",
                "add-group",
                "--name",
                "bad name!",
                "--address",
                "a@example.test",
                "--imap-host",
                "127.0.0.1",
                "--imap-port",
                "993",
                "--imap-user",
                "u",
                "--password-stdin",
            ],
            Some("pw"),
            "--name",
        ),
        (
            &[
                "account",
                "add-group",
                "--name",
                "x",
                "--address",
                "not-an-address",
                "--imap-host",
                "127.0.0.1",
                "--imap-port",
                "993",
                "--imap-user",
                "u",
                "--password-stdin",
            ],
            Some("pw"),
            "--address",
        ),
        (
            &[
                "account",
                "add-group",
                "--name",
                "x",
                "--address",
                "a@example.test",
                "--imap-host",
                "127.0.0.1",
                "--imap-port",
                "993",
                "--imap-user",
                "u",
                "--password-stdin",
            ],
            Some(""),
            "password",
        ),
        (
            &["quarantine", "replay", "nope"],
            None,
            "no quarantined message",
        ),
    ];
    for (args, stdin, expect) in cases {
        let out = mailroom(&prefix, args, *stdin);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(
            err.contains(expect),
            "{args:?}: stderr lacks {expect:?}: {err}"
        );
        assert!(
            out.stdout.is_empty(),
            "{args:?}: nothing on stdout on failure"
        );
    }

    // R-F8b: where private hosts are not allowed, a loopback IMAP host is refused.
    let mut child = Command::new(env!("CARGO_BIN_EXE_mailroom"))
        .args([
            "account",
            "add-group",
            "--name",
            "private",
            "--address",
            "a@example.test",
            "--imap-host",
            "127.0.0.1",
            "--imap-port",
            "993",
            "--imap-user",
            "u",
            "--password-stdin",
        ])
        .env("MAILROOM_PREFIX", &prefix)
        .env("MAILROOM_ALLOW_PRIVATE_HOSTS", "false")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"pw").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("private address"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_filters_cli_contract() {
    stack();
    let prefix = unique("fcli").to_lowercase();
    let mb = mailbox("fcli");
    deliver(
        &mb,
        &[
            message(Some("keep@example.com"), "a real question"),
            message(Some("drop@example.com"), "Weekly digest 12"),
        ],
    )
    .await;
    add_support_account(&prefix, &mb);
    let ok = |args: &[&str]| {
        let out = mailroom(&prefix, args, None);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    ok(&[
        "filters",
        "add",
        "--scope",
        "global",
        "--name",
        "digests",
        "--subject",
        "weekly digest*",
        "--action",
        "skip",
    ]);
    ok(&[
        "filters",
        "add",
        "--scope",
        "account:support",
        "--name",
        "sorted",
        "--from",
        "*@example.com",
        "--body-any",
        "question",
        "--action",
        "move-to-folder",
        "--folder",
        "Customers",
    ]);

    // Refused, with the field named, and nothing stored.
    for (args, expect) in [
        (
            vec![
                "filters", "add", "--scope", "global", "--name", "empty", "--action", "skip",
            ],
            "empty filter",
        ),
        (
            vec![
                "filters",
                "add",
                "--scope",
                "global",
                "--name",
                "nofolder",
                "--subject",
                "x",
                "--action",
                "move-to-folder",
            ],
            "--folder",
        ),
        (
            vec![
                "filters",
                "add",
                "--scope",
                "team:x",
                "--name",
                "badscope",
                "--subject",
                "x",
                "--action",
                "skip",
            ],
            "--scope",
        ),
        (
            vec![
                "filters",
                "add",
                "--scope",
                "user:nobody",
                "--name",
                "nouser",
                "--subject",
                "x",
                "--action",
                "skip",
            ],
            "--scope",
        ),
        (
            vec![
                "filters",
                "add",
                "--scope",
                "global",
                "--name",
                "badaction",
                "--subject",
                "x",
                "--action",
                "delete",
            ],
            "--action",
        ),
        (
            vec![
                "filters",
                "add",
                "--scope",
                "global",
                "--name",
                "digests",
                "--subject",
                "x",
                "--action",
                "skip",
            ],
            "already exists",
        ),
        (vec!["filters", "remove", "nope"], "no filter"),
    ] {
        let out = mailroom(&prefix, &args, None);
        assert!(!out.status.success(), "{args:?} should fail");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expect), "{args:?}: {err}");
    }
    let list = json(&ok(&["filters", "list", "--json"]));
    let names: Vec<_> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["digests", "sorted"]);

    // `filters test` explains a match, using a file.
    let eml = std::env::temp_dir().join(format!("{prefix}.eml"));
    std::fs::write(&eml, message(Some("t@example.com"), "Weekly Digest 13")).unwrap();
    let tested = json(&ok(&[
        "filters",
        "test",
        "all",
        eml.to_str().unwrap(),
        "--json",
    ]));
    let digests = tested
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["filter"] == "digests")
        .unwrap();
    assert_eq!(digests["matches"], true);
    assert!(digests["reasons"][0].as_str().unwrap().contains("subject"));
    let human = ok(&["filters", "test", "digests", eml.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&human.stdout).contains("MATCH"));

    let poll = json(&ok(&["poll", "--json"]));
    let row = &poll.as_array().unwrap()[0];
    assert_eq!(
        (row["imported"].as_u64(), row["skipped"].as_u64()),
        (Some(1), Some(1)),
        "{row}"
    );
    let skipped = json(&ok(&["skipped", "list", "--json"]));
    let s = &skipped.as_array().unwrap()[0];
    assert_eq!(s["message_id"], "drop@example.com");
    assert_eq!(s["account"], "support");
    assert_eq!(s["subject"], "Weekly digest 12");
    assert_eq!(s["filter"], "digests");

    ok(&["filters", "remove", "digests"]);
    assert_eq!(
        json(&ok(&["filters", "list", "--json"]))
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_records_and_cases_cli_contract() {
    stack();
    let prefix = unique("rcli").to_lowercase();
    let ok = |args: &[&str]| {
        let out = mailroom(&prefix, args, None);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    let fails = |args: &[&str], expect: &str| {
        let out = mailroom(&prefix, args, None);
        assert!(!out.status.success(), "{args:?} should fail");
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(err.contains(expect), "{args:?}: {err}");
    };
    ok(&["teams", "add", "l1"]);
    fails(&["teams", "add", "l1"], "already exists");
    ok(&[
        "users",
        "add",
        "ann",
        "--email",
        "ann@corp.example",
        "--team",
        "l1:Support L1",
    ]);
    ok(&[
        "users",
        "add",
        "ben",
        "--email",
        "ben@corp.example",
        "--team",
        "l1",
    ]);
    ok(&[
        "users",
        "add",
        "old",
        "--email",
        "old@corp.example",
        "--team",
        "l1",
        "--inactive",
    ]);
    fails(
        &[
            "users",
            "add",
            "cid",
            "--email",
            "cid@corp.example",
            "--team",
            "nope",
        ],
        "unknown team",
    );
    fails(
        &["users", "add", "cid", "--email", "not-an-address"],
        "--email",
    );
    ok(&[
        "records",
        "add",
        "account",
        "--name",
        "Acme",
        "--email",
        "info@acme.example",
    ]);
    ok(&[
        "records",
        "add",
        "contact",
        "--name",
        "Ann Buyer",
        "--email",
        "buyer@acme.example",
        "--account",
        "Acme",
    ]);
    ok(&[
        "records",
        "add",
        "lead",
        "--name",
        "Lee",
        "--email",
        "lee@lead.example",
    ]);
    fails(
        &[
            "records",
            "add",
            "contact",
            "--name",
            "X",
            "--email",
            "x@acme.example",
            "--account",
            "Nope",
        ],
        "no such record",
    );

    // Import: a bad file is reported by line and field and imports nothing.
    let dir = std::env::temp_dir();
    let bad = dir.join(format!("{prefix}-bad.jsonl"));
    std::fs::write(
        &bad,
        "{\"type\":\"account\",\"name\":\"Globex\"}\n{\"type\":\"contact\",\"name\":\"No Mail\"}\n{\"type\":\"contact\",\"name\":\"Hank\",\"email\":\"hank@globex.example\",\"account\":\"Initech\"}\nnot json\n",
    )
    .unwrap();
    let out = mailroom(&prefix, &["records", "import", bad.to_str().unwrap()], None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 2") && err.contains("\"email\""), "{err}");
    assert!(
        err.contains("line 3") && err.contains("\"account\""),
        "{err}"
    );
    assert!(err.contains("line 4"), "{err}");
    let accounts = json(&ok(&["records", "list", "account", "--json"]));
    assert!(
        !accounts
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["name"] == "Globex"),
        "nothing half-imported"
    );
    let good = dir.join(format!("{prefix}-good.jsonl"));
    std::fs::write(
        &good,
        "{\"type\":\"contact\",\"name\":\"Hank\",\"email\":\"hank@globex.example\",\"account\":\"Globex\"}\n{\"type\":\"account\",\"name\":\"Globex\",\"emails\":[\"hq@globex.example\"]}\n{\"type\":\"opportunity\",\"name\":\"Globex renewal\",\"account\":\"Globex\"}\n",
    )
    .unwrap();
    ok(&["records", "import", good.to_str().unwrap()]);
    let contacts = json(&ok(&["records", "list", "contact", "--json"]));
    assert!(contacts
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["email"] == "hank@globex.example" && c["account"] == "Globex"));

    ok(&["follow", "ann", "account:Acme"]);
    fails(&["follow", "ann", "account:Nope"], "no such record");
    fails(&["follow", "nobody", "account:Acme"], "unknown user");

    // A group account with email-to-case, mail from the contact, and the case it makes.
    let mb = mailbox("rcli");
    add_support_account(&prefix, &mb);
    fails(
        &[
            "account",
            "set-case",
            "support",
            "--create-case",
            "--distribution",
            "round-robin",
            "--target-team",
            "nope",
        ],
        "--target-team",
    );
    fails(
        &[
            "account",
            "set-case",
            "support",
            "--create-case",
            "--distribution",
            "direct",
            "--target-team",
            "l1",
        ],
        "--assign-to",
    );
    ok(&[
        "account",
        "set-case",
        "support",
        "--create-case",
        "--distribution",
        "least-busy",
        "--target-team",
        "l1",
        "--position",
        "Support L1",
        "--reopen-on-reply",
    ]);
    let first = "From: Ann Buyer <buyer@acme.example>\r\nTo: support@example.test\r\nSubject: Broken widget\r\nMessage-ID: <w1@acme.example>\r\nDate: Tue, 3 Mar 2026 10:00:00 +0000\r\n\r\nIt broke.\r\n";
    let reply = "From: Ann Buyer <buyer@acme.example>\r\nTo: support@example.test\r\nSubject: Re: Broken widget\r\nMessage-ID: <w2@acme.example>\r\nIn-Reply-To: <w1@acme.example>\r\nReferences: <w1@acme.example>\r\nDate: Tue, 3 Mar 2026 11:00:00 +0000\r\n\r\nStill broken.\r\n";
    deliver(&mb, &[first.as_bytes().to_vec(), reply.as_bytes().to_vec()]).await;
    ok(&["poll"]);
    let cases = json(&ok(&["cases", "list", "--json"]));
    let c = &cases.as_array().unwrap()[0];
    assert_eq!(cases.as_array().unwrap().len(), 1);
    assert_eq!(c["name"], "Broken widget");
    assert_eq!(c["status"], "Assigned");
    assert_eq!(c["assigned_user"], "ann", "only ann holds the position");
    assert_eq!(c["account"], "Acme");
    assert_eq!(c["contact"], "Ann Buyer");
    let mut emails: Vec<_> = c["emails"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap().to_string())
        .collect();
    emails.sort();
    assert_eq!(emails, ["w1@acme.example", "w2@acme.example"]);
    let number = c["number"].as_u64().unwrap().to_string();
    let listed = json(&ok(&["emails", "list", "--json"]));
    assert!(listed
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["parent"]["type"] == "case"
            && e["parent"]["number"].as_u64() == c["number"].as_u64()));
    let stream = json(&ok(&["stream", &format!("case:{number}"), "--json"]));
    assert!(
        stream.as_array().unwrap().len() >= 3,
        "case created + two emails: {stream}"
    );
    ok(&["cases", "set-status", &number, "Closed"]);
    fails(&["cases", "set-status", &number, "Bogus"], "status");
    fails(&["cases", "set-status", "99999", "Closed"], "no case");
    let cases = json(&ok(&["cases", "list", "--json"]));
    assert_eq!(cases[0]["status"], "Closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_lettered_pointer_is_redriven_and_imported() {
    use mailroom_core::ports::{BlobStore, EmailStore, Outgoing, Queue};
    let env = env("dlq").await;
    let a = env.ctx.adapters();
    let raw = message(Some("dlq-1@example.com"), "was stuck");
    a.blobs
        .put("raw/support/INBOX/1/1.eml", raw.clone(), "message/rfc822")
        .await
        .unwrap();
    let pointer = mailroom_core::messages::IngestPointer {
        v: 1,
        account: "support".into(),
        folder: "INBOX".into(),
        uidvalidity: 1,
        uid: 1,
        key: "raw/support/INBOX/1/1.eml".into(),
        size: raw.len() as u64,
        arrived: None,
        truncated: false,
        quarantine_id: None,
        fetch_error: None,
    };
    let dlq = a.ingest_queue.dead_letter();
    dlq.send(&[Outgoing::plain(pointer)]).await.unwrap();
    let prefix = env.ctx.prefix.clone();
    let out = mailroom(&prefix, &["dlq", "redrive", "ingest", "--json"], None);
    let v = json(&out);
    assert_eq!(v["moved"], 1);
    let emails = a.store.list_emails().await.unwrap();
    assert_eq!(emails.len(), 1);
    assert_eq!(emails[0].message_id, "dlq-1@example.com");
    assert!(dlq.receive(10, 0).await.unwrap().is_empty());
    let bad = mailroom(&prefix, &["dlq", "redrive", "nope"], None);
    assert!(!bad.status.success());
}
