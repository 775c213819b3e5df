//! Servers that will not return a message (R-F5, issue 8): a batch FETCH answered NO by a
//! scripted IMAP server on loopback, and a message file Dovecot cannot read. Either way the
//! message is quarantined in the same poll with the server's words, the good ones around it
//! are imported, and the account keeps polling.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use mailroom::cycle;
use mailroom_core::model::Security;
use mailroom_core::ports::{AccountStore, EmailStore};
use mailroom_core::schedule::Selection;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use crate::harness::*;

fn named(n: &str) -> Selection {
    Selection::Named(vec![n.to_string()])
}

/// Just enough IMAP4rev1 for the poller: greeting, CAPABILITY, LOGIN, EXAMINE/SELECT,
/// UID SEARCH, UID FETCH and LOGOUT, over plaintext on loopback. A UID in `refuse` makes
/// any FETCH of its body end in a tagged NO with those words, after the responses for the
/// UIDs before it (as Exchange does for a message it cannot convert).
#[derive(Default)]
struct Script {
    messages: BTreeMap<u32, Vec<u8>>,
    refuse: BTreeMap<u32, String>,
    /// Every command line received, LOGIN included (the password really went over the wire).
    received: Vec<String>,
}

struct ScriptedServer {
    port: u16,
    script: Arc<Mutex<Script>>,
}

impl ScriptedServer {
    async fn start(script: Script) -> ScriptedServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let script = Arc::new(Mutex::new(script));
        let shared = script.clone();
        tokio::spawn(async move {
            // Ends with the test's runtime; each connection is served on its own.
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve(socket, shared.clone()));
            }
        });
        ScriptedServer { port, script }
    }

    fn received(&self) -> Vec<String> {
        self.script.lock().unwrap().received.clone()
    }
}

async fn serve(socket: tokio::net::TcpStream, script: Arc<Mutex<Script>>) {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read).lines();
    if write
        .write_all(b"* OK [CAPABILITY IMAP4rev1] scripted server ready\r\n")
        .await
        .is_err()
    {
        return;
    }
    while let Ok(Some(line)) = lines.next_line().await {
        let reply = answer(&line, &mut script.lock().unwrap());
        if write.write_all(&reply).await.is_err() || line.contains(" LOGOUT") {
            return;
        }
    }
}

fn answer(line: &str, script: &mut Script) -> Vec<u8> {
    script.received.push(line.to_string());
    let mut words = line.splitn(3, ' ');
    let tag = words.next().unwrap_or("*");
    let command = words.next().unwrap_or("").to_ascii_uppercase();
    let rest = words.next().unwrap_or("");
    let mut out = Vec::new();
    let uids: Vec<u32> = script.messages.keys().copied().collect();
    match command.as_str() {
        "CAPABILITY" => out.extend_from_slice(b"* CAPABILITY IMAP4rev1\r\n"),
        "LOGIN" => {}
        "EXAMINE" | "SELECT" => {
            let next = uids.last().map_or(1, |u| u + 1);
            out.extend_from_slice(
                format!(
                    "* {} EXISTS\r\n* OK [UIDVALIDITY 77] UIDs valid\r\n* OK [UIDNEXT {next}] next\r\n",
                    uids.len()
                )
                .as_bytes(),
            );
            out.extend_from_slice(format!("{tag} OK [READ-ONLY] done\r\n").as_bytes());
            return out;
        }
        "LOGOUT" => out.extend_from_slice(b"* BYE logging out\r\n"),
        "UID" => {
            let (sub, args) = rest.split_once(' ').unwrap_or((rest, ""));
            match sub.to_ascii_uppercase().as_str() {
                "SEARCH" => {
                    let list: Vec<String> = uids.iter().map(u32::to_string).collect();
                    out.extend_from_slice(format!("* SEARCH {}\r\n", list.join(" ")).as_bytes());
                }
                "FETCH" => {
                    let (set, items) = args.split_once(' ').unwrap_or((args, ""));
                    for uid in parse_set(set) {
                        let Some(seq) = uids.iter().position(|&u| u == uid) else {
                            continue;
                        };
                        let raw = &script.messages[&uid];
                        let wants_body = items.contains("BODY.PEEK[]");
                        if wants_body {
                            if let Some(words) = script.refuse.get(&uid) {
                                out.extend_from_slice(format!("{tag} NO {words}\r\n").as_bytes());
                                return out;
                            }
                        }
                        let mut attrs = format!("UID {uid}").into_bytes();
                        if items.contains("RFC822.SIZE") {
                            attrs.extend_from_slice(
                                format!(
                                    " RFC822.SIZE {} INTERNALDATE \"03-Mar-2026 10:00:00 +0000\"",
                                    raw.len()
                                )
                                .as_bytes(),
                            );
                        }
                        if items.contains("BODY.PEEK[HEADER]") {
                            let end = raw
                                .windows(4)
                                .position(|w| w == b"\r\n\r\n")
                                .map_or(raw.len(), |p| p + 4);
                            literal(&mut attrs, "BODY[HEADER]", &raw[..end]);
                        }
                        if wants_body {
                            literal(&mut attrs, "BODY[]", raw);
                        }
                        out.extend_from_slice(format!("* {} FETCH (", seq + 1).as_bytes());
                        out.extend_from_slice(&attrs);
                        out.extend_from_slice(b")\r\n");
                    }
                }
                other => {
                    return format!("{tag} BAD unknown UID command {other}\r\n").into_bytes();
                }
            }
        }
        "NOOP" => {}
        other => return format!("{tag} BAD unknown command {other}\r\n").into_bytes(),
    }
    out.extend_from_slice(format!("{tag} OK done\r\n").as_bytes());
    out
}

fn literal(attrs: &mut Vec<u8>, name: &str, bytes: &[u8]) {
    attrs.extend_from_slice(format!(" {name} {{{}}}\r\n", bytes.len()).as_bytes());
    attrs.extend_from_slice(bytes);
}

/// `1:3,5` -> 1, 2, 3, 5 (`*` is taken as the highest UID there could be).
fn parse_set(set: &str) -> Vec<u32> {
    let num = |s: &str| {
        if s == "*" {
            u32::MAX
        } else {
            s.parse().unwrap_or(0)
        }
    };
    let mut out = Vec::new();
    for part in set.split(',') {
        match part.split_once(':') {
            Some((a, b)) => {
                let (a, b) = (num(a), num(b));
                let (lo, hi) = (a.min(b), a.max(b));
                out.extend((lo..=hi.min(lo.saturating_add(100_000))).take(100_000));
            }
            None => out.push(num(part)),
        }
    }
    out
}

fn scripted_mailbox() -> TestMailbox {
    TestMailbox {
        user: "scripted@example.test".into(),
        password: format!("pw-{:08x}", rand::random::<u32>()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_fetch_answered_no_quarantines_the_refused_message_and_moves_on() {
    let env = env("fetchno").await;
    let words = "[SERVERBUG] The message could not be converted to RFC-822 format.";
    let mut script = Script::default();
    for uid in 1..=5 {
        let m = message(
            Some(&format!("fetchno-{uid}@example.com")),
            &format!("m {uid}"),
        );
        script.messages.insert(uid, m);
    }
    script.refuse.insert(3, words.into());
    let server = ScriptedServer::start(script).await;
    let mb = scripted_mailbox();
    env.add_account_with("support", &mb, &mb.password, server.port, Security::Plain)
        .await;

    let totals = cycle::run(&env.ctx, named("support")).await.unwrap();
    let t = totals_for(&totals, "support");
    assert_eq!(
        (t.fetched, t.imported, t.quarantined, t.errors),
        (5, 4, 1, 0),
        "{t:?}"
    );
    let store = &env.ctx.adapters().store;
    let q = store.list_quarantine().await.unwrap();
    assert_eq!(q.len(), 1, "{q:?}");
    assert_eq!(q[0].uid, 3);
    assert!(q[0].reason.contains(words), "{}", q[0].reason);
    // The good messages before and after it are imported.
    let mut ids: Vec<String> = store
        .list_emails()
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.message_id)
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        [1, 2, 4, 5].map(|u| format!("fetchno-{u}@example.com"))
    );
    // The refused FETCH was split down to UID 3 alone.
    assert!(
        server
            .received()
            .iter()
            .any(|l| l.ends_with("UID FETCH 3 (UID BODY.PEEK[])")),
        "{:?}",
        server.received()
    );
    let account = store.get_account("support").await.unwrap().unwrap();
    assert_eq!(account.status.consecutive_failures, 0);
    assert_eq!(account.status.last_error, None);
    assert_eq!(account.folder_state["INBOX"].last_uid, 5);

    let second = cycle::run(&env.ctx, named("support")).await.unwrap();
    let t = totals_for(&second, "support");
    assert_eq!((t.fetched, t.imported, t.errors), (0, 0, 0), "{t:?}");

    // `mailroom quarantine replay` reads it from the server again: still refused, it stays
    // quarantined with the server's words...
    let id = q[0].id.clone();
    let out = replay(&env.ctx.prefix, &id).await;
    assert_eq!(out["quarantined"], true, "{out}");
    assert!(
        out["reason"].as_str().unwrap_or("").contains(words),
        "{out}"
    );
    // ... and once the server can serve it, the replay imports it and clears the entry.
    server.script.lock().unwrap().refuse.clear();
    let out = replay(&env.ctx.prefix, &id).await;
    assert_eq!(
        (out["quarantined"].clone(), out["imported"].clone()),
        (false.into(), 1.into()),
        "{out}"
    );
    assert!(store.list_quarantine().await.unwrap().is_empty());
    assert_eq!(store.list_emails().await.unwrap().len(), 5);
}

/// `mailroom quarantine replay ID --json`, run as the binary.
async fn replay(prefix: &str, id: &str) -> serde_json::Value {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_mailroom"))
        .args(["quarantine", "replay", id, "--json"])
        .env("MAILROOM_PREFIX", prefix)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .expect("mailroom runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_file_dovecot_cannot_read_is_quarantined_and_the_rest_imported() {
    use std::os::unix::fs::PermissionsExt;
    let env = env("unread").await;
    let mb = mailbox("unread");
    let msgs: Vec<Vec<u8>> = (1..=5)
        .map(|i| message(Some(&format!("unread-{i}@example.com")), &format!("u {i}")))
        .collect();
    deliver(&mb, &msgs).await;
    // Make the second message's file unreadable for Dovecot (which runs as another user).
    let maildir = std::path::Path::new(&stack().local_dir)
        .join("mail")
        .join(&mb.user)
        .join("Maildir");
    let mut broken = None;
    for sub in ["new", "cur"] {
        for f in std::fs::read_dir(maildir.join(sub)).unwrap() {
            let path = f.unwrap().path();
            if std::fs::read_to_string(&path)
                .unwrap()
                .contains("unread-2@example.com")
            {
                broken = Some(path);
            }
        }
    }
    let broken = broken.expect("the second message's file");
    std::fs::set_permissions(&broken, std::fs::Permissions::from_mode(0o000)).unwrap();
    env.add_account("support", &mb).await;

    let totals = cycle::run(&env.ctx, named("support")).await.unwrap();
    let t = totals_for(&totals, "support");
    assert_eq!(
        (t.fetched, t.imported, t.quarantined, t.errors),
        (5, 4, 1, 0),
        "{t:?}"
    );
    let store = &env.ctx.adapters().store;
    let q = store.list_quarantine().await.unwrap();
    assert_eq!(q.len(), 1, "{q:?}");
    assert_eq!(q[0].uid, 2);
    // Dovecot's own words: it closes the session with BYE after a FETCH it cannot serve.
    assert!(q[0].reason.contains("Internal error"), "{}", q[0].reason);
    let account = store.get_account("support").await.unwrap().unwrap();
    assert_eq!(account.status.consecutive_failures, 0);
    assert_eq!(account.status.last_error, None);

    // Nothing is fetched again, and new mail after it still comes in.
    deliver(&mb, &[message(Some("unread-6@example.com"), "u 6")]).await;
    let second = cycle::run(&env.ctx, named("support")).await.unwrap();
    let t = totals_for(&second, "support");
    assert_eq!((t.fetched, t.imported, t.errors), (1, 1, 0), "{t:?}");
    std::fs::set_permissions(&broken, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// What the test subscriber wrote, shared with the test.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// On the test's own thread (current-thread runtime): the subscriber is this thread's default,
// so the other tests running in this binary neither see it nor write to it.
#[tokio::test]
async fn the_imap_password_never_reaches_the_logs_even_at_trace() {
    use mailroom_core::model::{ImapSettings, Secret};
    use mailroom_core::ports::{Mailbox, MailboxSession};
    let mut script = Script::default();
    script
        .messages
        .insert(1, message(Some("trace-1@example.com"), "trace"));
    let server = ScriptedServer::start(script).await;
    let password = format!("sekrit-{:08x}", rand::random::<u32>());

    let captured = Captured::default();
    mailroom_runtime::bridge_log_records();
    let writer = captured.clone();
    let _default = tracing::subscriber::set_default(mailroom_runtime::log_subscriber(
        "trace",
        true,
        move || writer.clone(),
    ));
    // The scripted server speaks plaintext on loopback, as the local stack allows.
    let connector = mailroom_imap::ImapConnector::new(mailroom_imap::ImapOptions {
        allow_private_hosts: true,
        allow_plaintext: true,
        ..Default::default()
    })
    .unwrap();
    let settings = ImapSettings {
        host: "127.0.0.1".into(),
        port: server.port,
        user: "trace@example.test".into(),
        security: Security::Plain,
    };
    let mut session = connector
        .connect(&settings, &Secret::new(&password))
        .await
        .expect("logs in");
    session.examine("INBOX").await.unwrap();
    assert_eq!(session.fetch(&[1]).await.unwrap().len(), 1);
    session.logout().await;
    drop(_default);

    // The password went over the wire in the LOGIN line...
    assert!(
        server
            .received()
            .iter()
            .any(|l| l.contains("LOGIN") && l.contains(&password)),
        "{:?}",
        server.received()
    );
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    // ... the subscriber was live at TRACE for this session ...
    assert!(logs.contains("IMAP login accepted"), "{logs}");
    assert!(logs.contains("trace@example.test"), "{logs}");
    // ... and it never reached the logs, nor did the mail's content.
    assert!(!logs.contains(&password), "password in the logs: {logs}");
    assert!(
        !logs.contains("trace-1@example.com"),
        "mail in the logs: {logs}"
    );
}
