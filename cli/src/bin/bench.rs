//! `mailroom-bench`: throughput figures quoted in notes (not timed tests).
//!
//! - `ingest-core`: parse + dedupe/quarantine decisions + record building over the fixture
//!   corpus, with in-memory stores (no I/O): emails/s and MB/s.
//! - `poller`: 2,000 small messages from the local Dovecot, fetched with batched UID FETCH
//!   (as the poller does) versus one UID FETCH per message; and one full poll into moto.
//!
//! - `requests`: DynamoDB requests per email on the common ingest paths (new thread with a
//!   case, reply joining a case, email with no case), against the local stack. `--accounts N`
//!   first adds N more accounts (with addresses), a user and a filter per hundred of them, so
//!   the figure shows whether requests per email grow with the deployment: run it against a
//!   moto of its own (`MAILROOM_LOCAL_DIR` naming a `stack.json` whose `aws_endpoint` is that
//!   moto), as the emulator keeps everything in memory.
//!
//! - `filters`: filter evaluation per email with 1,000 filters defined (header skip decision
//!   plus one user's copy, body criteria included), over the fixture corpus.
//!
//! - `scheduler`: one scheduler tick over `--accounts N` seeded accounts (`--busy`: all due),
//!   timed, with its peak memory measured in a process of its own ([`scheduler`]).
//!
//! Run with `cargo run --release --bin mailroom-bench -- <ingest-core|poller|requests|filters|scheduler> [--json]`.

#[path = "bench/scheduler.rs"]
mod scheduler;

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use chrono::Utc;
use mailroom::local;
use mailroom_core::ingest::IngestService;
use mailroom_core::limits::Limits;
use mailroom_core::memory::{MemoryBlobs, MemoryStore};
use mailroom_core::messages::IngestPointer;
use mailroom_core::model::Secret;
use mailroom_core::poll::plan_batches;
use mailroom_core::ports::{BlobStore, Mailbox, MailboxSession};
use serde_json::json;

fn corpus() -> Result<Vec<Vec<u8>>> {
    let files = local::fixture_files(&["rfc", "legacy", "thirdparty", "malformed"])?;
    if files.is_empty() {
        bail!(
            "no fixtures found under {}",
            local::repo_root().join("tests/fixtures/eml").display()
        );
    }
    Ok(files.iter().map(std::fs::read).collect::<Result<_, _>>()?)
}

async fn ingest_core(json_out: bool) -> Result<()> {
    let corpus = corpus()?;
    let bytes: usize = corpus.iter().map(Vec::len).sum();
    let limits = Limits::default();
    // Warm up, then run for at least two seconds.
    let mut rounds = 0u64;
    let mut emails = 0u64;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(2) || rounds < 3 {
        let store = MemoryStore::default();
        let blobs = MemoryBlobs::default();
        let service = IngestService {
            emails: &store,
            blobs: &blobs,
            limits: &limits,
            filters: &[],
            skips: &store,
        };
        for (i, raw) in corpus.iter().enumerate() {
            let key = format!("raw/bench/INBOX/1/{i}.eml");
            blobs.put(&key, raw.clone(), "message/rfc822").await?;
            let pointer = IngestPointer {
                v: 1,
                account: "bench".into(),
                folder: "INBOX".into(),
                uidvalidity: 1,
                uid: i as u32,
                key,
                size: raw.len() as u64,
                arrived: None,
                truncated: false,
                quarantine_id: None,
                fetch_error: None,
            };
            service.ingest(&pointer, Utc::now()).await?;
            emails += 1;
        }
        rounds += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    let per_sec = emails as f64 / secs;
    let mb_per_sec = (bytes as f64 * rounds as f64) / secs / 1e6;
    let parse_only = {
        let start = Instant::now();
        let mut n = 0u64;
        while start.elapsed() < Duration::from_secs(1) {
            for raw in &corpus {
                let _ = mailroom_core::parse::parse(raw);
                n += 1;
            }
        }
        n as f64 / start.elapsed().as_secs_f64()
    };
    if json_out {
        println!(
            "{}",
            json!({"bench": "ingest-core", "corpus_messages": corpus.len(), "corpus_bytes": bytes,
                   "emails_per_sec": per_sec, "mb_per_sec": mb_per_sec, "parse_only_per_sec": parse_only})
        );
    } else {
        println!(
            "ingest core: {:.0} emails/s ({:.1} MB/s) over {} corpus messages ({} bytes); parse alone {:.0}/s",
            per_sec,
            mb_per_sec,
            corpus.len(),
            bytes,
            parse_only
        );
    }
    Ok(())
}

async fn poller(messages: usize, json_out: bool) -> Result<()> {
    let info = local::up()?;
    let user = format!("bench-poller-{messages}@example.test");
    let password = "bench-pass".to_string();
    local::mailbox_add(&user, &password)?;
    let connector = local::connector(&info)?;
    let settings = local::imap_settings(&info, &user);
    let secret = Secret::new(&password);
    let mut session = connector.connect(&settings, &secret).await?;
    let existing = session.examine("INBOX").await?.exists as usize;
    session.logout().await;
    if existing < messages {
        let batch: Vec<Vec<u8>> = (existing..messages)
            .map(|i| {
                format!(
                    "From: c{i}@example.com\r\nTo: {user}\r\nSubject: bench {i}\r\nMessage-ID: <bench-{i}@example.com>\r\nDate: Tue, 3 Mar 2026 10:00:00 +0000\r\n\r\nA small message body, number {i}, about two hundred bytes long in all.\r\n"
                )
                .into_bytes()
            })
            .collect();
        eprintln!("appending {} messages…", batch.len());
        local::deliver(&info, &user, &password, "INBOX", &batch).await?;
    }

    let limits = Limits::default();
    let mut session = connector.connect(&settings, &secret).await?;
    session.examine("INBOX").await?;
    let uids = session.search_since(None).await?;
    let uids = &uids[..messages.min(uids.len())];

    let start = Instant::now();
    let metas = session.metadata(uids).await?;
    let mut fetched = 0usize;
    let batches = plan_batches(&metas, &limits);
    for b in &batches {
        if let mailroom_core::poll::Batch::Whole(m) = b {
            let ids: Vec<u32> = m.iter().map(|m| m.uid).collect();
            fetched += session.fetch(&ids).await?.len();
        }
    }
    let batched = start.elapsed();

    let start = Instant::now();
    let mut single = 0usize;
    for uid in uids {
        single += session.fetch(&[*uid]).await?.len();
    }
    let one_by_one = start.elapsed();
    session.logout().await;
    if fetched != uids.len() || single != uids.len() {
        bail!(
            "fetched {fetched} batched and {single} singly of {}",
            uids.len()
        );
    }
    let b_rate = fetched as f64 / batched.as_secs_f64();
    let s_rate = single as f64 / one_by_one.as_secs_f64();
    if json_out {
        println!(
            "{}",
            json!({"bench": "poller", "messages": fetched, "batches": batches.len(),
                   "batched_per_sec": b_rate, "single_per_sec": s_rate, "speedup": b_rate / s_rate})
        );
    } else {
        println!(
            "poller IMAP fetch of {fetched} messages: batched UID FETCH {:.0} msg/s ({} commands), one FETCH per message {:.0} msg/s; {:.1}x",
            b_rate,
            batches.len() + 1,
            s_rate,
            b_rate / s_rate
        );
    }
    Ok(())
}

fn filters_bench(json_out: bool) -> Result<()> {
    use mailroom_core::filters::*;
    let corpus = corpus()?;
    let parsed: Vec<_> = corpus
        .iter()
        .filter_map(|raw| mailroom_core::parse::parse(raw).ok())
        .collect();
    let inputs: Vec<FilterInput> = parsed.iter().map(FilterInput::from_parsed).collect();
    let mut filters = Vec::new();
    for i in 0..1000 {
        let scope = match i % 4 {
            0 => Scope::Global,
            1 => Scope::Account("support".into()),
            2 => Scope::User("ann".into()),
            _ => Scope::User(format!("user{}", i % 50)),
        };
        let pattern = |p: String| Some(Pattern::new(&p).expect("valid"));
        let mut f = Filter {
            v: 1,
            name: format!("f{i:04}"),
            scope,
            from: None,
            to: None,
            subject: None,
            body_any: vec![],
            body_all: vec![],
            action: [
                Action::Skip,
                Action::MoveToFolder,
                Action::MarkRead,
                Action::SkipNotification,
            ][i % 4],
            folder: None,
        };
        match i % 5 {
            0 => f.from = pattern(format!("*@vendor{i}.example")),
            1 => f.subject = pattern(format!("*ticket {i}*")),
            2 => f.to = pattern(format!("team{i}@*")),
            3 => f.body_any = vec![format!("order number {i}"), "unsubscribe now".into()],
            _ => {
                f.from = pattern(format!("news{i}@*"));
                f.subject = pattern("*weekly*".into());
            }
        }
        if f.action == Action::MoveToFolder {
            f.folder = Some("Elsewhere".into());
        }
        filters.push(f);
    }
    let start = Instant::now();
    let mut emails = 0u64;
    let mut matched = 0u64;
    while start.elapsed() < Duration::from_secs(2) {
        for input in &inputs {
            if let SkipDecision::Skip(_) = skip_decision(&filters, "support", input) {
                matched += 1;
            }
            let copy = user_copy(&filters, "support", "ann", input);
            matched += copy.filters.len() as u64;
            emails += 1;
        }
    }
    let per_email = start.elapsed().as_secs_f64() / emails as f64;
    if json_out {
        println!(
            "{}",
            json!({"bench": "filters", "filters": filters.len(), "micros_per_email": per_email * 1e6, "emails_per_sec": 1.0 / per_email, "matches_seen": matched})
        );
    } else {
        println!(
            "filters: {:.1} µs per email with {} filters (skip decision + one user's copy), {:.0} emails/s",
            per_email * 1e6,
            filters.len(),
            1.0 / per_email
        );
    }
    Ok(())
}

async fn requests(extra_accounts: usize, json_out: bool) -> Result<()> {
    use mailroom_aws::{Adapters, RequestCounter};
    use mailroom_core::model::*;
    use mailroom_core::model::{CaseSettings, Distribution};
    use mailroom_core::ports::{AccountStore, SecretBox};

    // A stack already described and answering (the shared one, or a moto of the run's own)
    // is used as it is.
    if !local::read_stack()?.is_some_and(|info| local::aws_reachable(&info)) {
        local::up()?;
    }
    let prefix = format!("bench-req-{}", Utc::now().format("%H%M%S"));
    let ctx = mailroom::context::connect(&prefix).await?;
    let store = &ctx.adapters().store;
    store.add_team("l1").await?;
    for u in ["ann", "ben", "cat"] {
        mailroom::records::add_user(
            &ctx,
            u,
            &[format!("{u}@corp.example")],
            &["l1".into()],
            true,
        )
        .await?;
    }
    store
        .add_record(&mailroom_core::admin::NewRecord::Contact(
            mailroom_core::records::Contact {
                v: 1,
                name: "Known".into(),
                email: "known@cust.example".into(),
                account: None,
            },
        ))
        .await?;
    for (name, case) in [("support", true), ("archive", false)] {
        let secret = ctx.adapters().secrets.seal(name, &Secret::new("x")).await?;
        store
            .create_account(&Account {
                secret,
                case: case.then(|| CaseSettings {
                    create_case: true,
                    distribution: Distribution::RoundRobin,
                    assign_to: None,
                    target_team: Some("l1".into()),
                    position: None,
                    reopen_on_reply: false,
                }),
                ..mailroom_core::memory::test_account(name, Utc::now())
            })
            .await?;
    }
    add_accounts(&ctx, extra_accounts).await?;
    let counter = RequestCounter::default();
    let clients = ctx.clients.clone().counting_dynamodb(counter.clone());
    let adapters = Adapters::new(&clients, ctx.config().clone());

    const N: usize = 20;
    let mut results = serde_json::Map::new();
    /// (Message-ID, extra headers) of the i-th email of a scenario.
    type MakeMail = fn(usize) -> (String, String);
    let scenarios: [(&str, &str, MakeMail); 3] = [
        ("new_thread_with_case", "support", |i| {
            (format!("root-{i}@cust.example"), String::new())
        }),
        ("reply_joining_case", "support", |i| {
            (format!("reply-{i}@cust.example"), format!("In-Reply-To: <root-{i}@cust.example>\r\nReferences: <root-{i}@cust.example>\r\n"))
        }),
        ("email_without_case", "archive", |i| {
            (format!("plain-{i}@cust.example"), String::new())
        }),
    ];
    let mut uid = 0u32;
    for (label, account, make) in scenarios {
        let mut pointers = vec![];
        for i in 0..N {
            uid += 1;
            let (id, extra) = make(i);
            let raw = format!(
                "From: known@cust.example\r\nTo: {account}@example.test\r\nSubject: question {i}\r\nMessage-ID: <{id}>\r\nDate: Tue, 3 Mar 2026 10:00:00 +0000\r\n{extra}\r\nPlease help.\r\n"
            );
            let key = format!("raw/{account}/INBOX/1/{uid}.eml");
            ctx.adapters()
                .blobs
                .put(&key, raw.clone().into_bytes(), "message/rfc822")
                .await?;
            pointers.push(IngestPointer {
                v: 1,
                account: account.into(),
                folder: "INBOX".into(),
                uidvalidity: 1,
                uid,
                key,
                size: raw.len() as u64,
                arrived: None,
                truncated: false,
                quarantine_id: None,
                fetch_error: None,
            });
        }
        counter.take();
        // Batches of ten, as the event source mapping delivers them.
        for chunk in pointers.chunks(10) {
            let mut event = aws_lambda_events::event::sqs::SqsEvent::default();
            event.records = chunk
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let mut r = aws_lambda_events::event::sqs::SqsMessage::default();
                    r.message_id = Some(format!("{label}-{i}"));
                    r.body = Some(mailroom_core::messages::encode(p));
                    r
                })
                .collect();
            let (resp, _) = ingest::handle(&adapters.intake(), event).await;
            if !resp.batch_item_failures.is_empty() {
                bail!("{label}: {} records failed", resp.batch_item_failures.len());
            }
        }
        let counts = counter.take();
        let total: u64 = counts.values().sum();
        let per_email = total as f64 / N as f64;
        if !json_out {
            println!("{label:<22} {per_email:>5.2} DynamoDB requests/email  {counts:?}");
        }
        results.insert(
            label.into(),
            json!({"per_email": per_email, "by_operation": counts}),
        );
    }
    results.insert("accounts".into(), json!(extra_accounts + 2));
    if json_out {
        println!("{}", serde_json::Value::Object(results));
    }
    Ok(())
}

/// `n` more accounts, half group (team `l1`) and half personal, each with its own address;
/// one user and one filter per hundred accounts. The accounts are written as `create_account`
/// leaves them, and the users as `add_user` does, by BatchWriteItem: moto copies the whole
/// table for every transaction, so 10,000 creations one by one took it past 6 GB. Filters are
/// single puts, one at a time.
async fn add_accounts(ctx: &mailroom::context::Context, n: usize) -> Result<()> {
    use futures::stream::{self, StreamExt, TryStreamExt};
    use mailroom_core::filters::{Action, Filter, Scope};
    use mailroom_core::model::AccountKind;
    use mailroom_core::ports::SecretBox;
    if n == 0 {
        return Ok(());
    }
    let started = Instant::now();
    let store = &ctx.adapters().store;
    // Never opened: ingest does not read credentials.
    let secret = &ctx
        .adapters()
        .secrets
        .seal("bench", &Secret::new("x"))
        .await?;
    let accounts: Vec<_> = (0..n)
        .map(|i| {
            let name = format!("acct{i:06}");
            let mut account = mailroom_core::memory::test_account(&name, Utc::now());
            account.secret = secret.clone();
            account.address = Some(format!("{name}@corp.example"));
            if i % 2 == 1 {
                account.kind = AccountKind::Personal;
                account.owner = Some(format!("user{:04}", i / 100));
                account.teams = vec![];
            }
            account
        })
        .collect();
    stream::iter(accounts.chunks(100))
        .map(|c| store.seed_accounts(c))
        .buffer_unordered(4)
        .try_collect::<Vec<()>>()
        .await?;
    let users: Vec<_> = (0..n)
        .step_by(100)
        .map(|i| {
            let name = format!("user{:04}", i / 100);
            mailroom_core::records::User {
                v: 1,
                emails: vec![format!("{name}@corp.example")],
                name,
                teams: vec![],
                active: true,
                created_at: Utc::now(),
                admin: false,
                notify_email: false,
                role: None,
            }
        })
        .collect();
    store.seed_users(&users).await?;
    for i in (0..n).step_by(100) {
        store
            .add_filter(&Filter {
                v: 1,
                name: format!("bench-{i:06}"),
                scope: Scope::Account(format!("acct{i:06}")),
                from: None,
                to: None,
                subject: Some(mailroom_core::filters::Pattern::new("*never-matches*")?),
                body_any: vec![],
                body_all: vec![],
                action: Action::MarkRead,
                folder: None,
            })
            .await?;
    }
    eprintln!(
        "added {n} accounts in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let json_out = args.iter().any(|a| a == "--json");
    let messages = args
        .iter()
        .position(|a| a == "--messages")
        .and_then(|i| args.get(i + 1))
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(2000);
    let accounts = args
        .iter()
        .position(|a| a == "--accounts")
        .and_then(|i| args.get(i + 1))
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(0);
    match args.first().map(String::as_str) {
        Some("ingest-core") => ingest_core(json_out).await,
        Some("poller") => poller(messages, json_out).await,
        Some("requests") => requests(accounts, json_out).await,
        Some("filters") => filters_bench(json_out),
        Some("scheduler") => {
            let busy = args.iter().any(|a| a == "--busy");
            let count = args.iter().any(|a| a == "--count-sends");
            scheduler::seed_and_tick(accounts, busy, count, json_out).await
        }
        Some("scheduler-tick") => {
            let value = |name: &str| {
                args.iter()
                    .position(|a| a == name)
                    .and_then(|i| args.get(i + 1))
                    .cloned()
                    .ok_or_else(|| anyhow::anyhow!("scheduler-tick needs {name}"))
            };
            let count = args.iter().any(|a| a == "--count-sends");
            scheduler::tick_only(&value("--prefix")?, &value("--at")?, count).await
        }
        _ => bail!(
            "usage: mailroom-bench <ingest-core|poller|requests|filters|scheduler> [--messages N] [--accounts N] [--busy] [--count-sends] [--json]"
        ),
    }
}
