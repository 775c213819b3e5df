//! `mailroom-bench scheduler --accounts N [--busy]`: one scheduler tick over N accounts, timed,
//! with its peak memory.
//!
//! This process seeds N accounts into a prefix of its own (BatchWriteItem, 25 a request, 8 in
//! flight) and works out from them which accounts are due; a second process (this binary's
//! `scheduler-tick`) then runs one tick in-process, so its peak resident memory (`VmHWM`) is
//! the tick's and the SDK's, not the seeding's. It prints the tick's time, DynamoDB requests,
//! jobs sent (checked against the due count) and `VmHWM` before and after the tick.
//!
//! The accounts: 5% with mail within the hour (polled every minute), 15% within the day
//! (every 5 minutes), the rest idle for days (every 15), 1% backing off, one in ten personal
//! (its owner unknown to the directory, so it is polled). `--busy`: every account had mail a
//! minute ago, so every account is due: the worst tick. `--count-sends`: the jobs are counted
//! in-process instead of sent to moto's FIFO queue, whose duplicate check makes each send
//! slower the more it holds (the index reads stay in moto).
//!
//! Run it against a moto of its own (`MAILROOM_LOCAL_DIR` naming a `stack.json` whose
//! `aws_endpoint` is that moto): the emulator keeps every item in memory.

use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use chrono::{DateTime, Duration, Utc};
use futures::stream::{self, StreamExt, TryStreamExt};
use mailroom::local;
use mailroom_core::model::{Account, AccountKind, Secret};
use mailroom_core::ports::{ScheduleIndex, SecretBox};
use mailroom_core::schedule::{is_due, Selection};
use serde_json::{json, Value};

/// The i-th account of the mix, as of `now`.
fn account(i: usize, now: DateTime<Utc>, busy: bool, template: &Account) -> Account {
    let mut a = Account {
        name: format!("acct{i:07}"),
        created_at: now - Duration::days(40),
        ..template.clone()
    };
    a.imap.user = a.name.clone();
    a.address = Some(format!("{}@corp.example", a.name));
    let minutes = |m: usize| Some(now - Duration::minutes(m as i64));
    a.status.last_mail_at = if busy {
        minutes(1)
    } else {
        match i % 20 {
            0 => minutes(i % 59),
            1..=3 => minutes(60 + i % 1300),
            _ => minutes(1440 * (2 + i % 28)),
        }
    };
    if !busy && i % 100 == 99 {
        // Back-offs ending from 20 minutes ago to 40 minutes ahead.
        a.status.consecutive_failures = 3;
        a.status.backoff_until = Some(now + Duration::minutes((i % 60) as i64 - 20));
    }
    if i % 10 == 7 {
        a.kind = AccountKind::Personal;
        a.owner = Some(format!("owner{:05}", i / 10));
        a.teams = vec![];
    }
    a
}

fn vm_hwm_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

pub async fn seed_and_tick(n: usize, busy: bool, count_sends: bool, json_out: bool) -> Result<()> {
    if !local::read_stack()?.is_some_and(|info| local::aws_reachable(&info)) {
        bail!(
            "no stack answers at {}/stack.json: start a moto of the benchmark's own and point \
             MAILROOM_LOCAL_DIR at a stack.json naming it",
            local::local_dir().display()
        );
    }
    let prefix = format!("bench-sched-{}", Utc::now().format("%H%M%S"));
    let ctx = mailroom::context::connect(&prefix).await?;
    let store = &ctx.adapters().store;
    // Never opened: a tick does not read credentials.
    let secret = ctx
        .adapters()
        .secrets
        .seal("bench", &Secret::new("x"))
        .await?;
    let template = Account {
        secret,
        ..mailroom_core::memory::test_account("template", Utc::now())
    };
    // The tick's instant: a minute ahead, so the seeding's minutes do not matter.
    let now = Utc::now() + Duration::minutes(1);
    let started = Instant::now();
    let mut due = 0usize;
    let chunks: Vec<Vec<Account>> = (0..n)
        .collect::<Vec<_>>()
        .chunks(25)
        .map(|c| {
            c.iter()
                .map(|&i| account(i, now, busy, &template))
                .collect()
        })
        .collect();
    for chunk in &chunks {
        due += chunk.iter().filter(|a| is_due(a, now)).count();
    }
    stream::iter(chunks.iter())
        .map(|c| store.seed_accounts(c))
        .buffer_unordered(8)
        .try_collect::<Vec<()>>()
        .await?;
    let seeded = started.elapsed().as_secs_f64();
    drop(chunks);
    eprintln!("seeded {n} accounts in {seeded:.1}s; {due} are due at the tick");

    let mut child = std::process::Command::new(std::env::current_exe()?);
    child.args([
        "scheduler-tick",
        "--prefix",
        &prefix,
        "--at",
        &now.to_rfc3339(),
    ]);
    if count_sends {
        child.arg("--count-sends");
    }
    let out = child
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("running the tick's process")?;
    if !out.status.success() {
        bail!("the tick's process failed: {}", out.status);
    }
    let mut tick: Value = serde_json::from_slice(&out.stdout).context("the tick's report")?;
    if tick["jobs"].as_u64() != Some(due as u64) {
        bail!(
            "the tick sent {} jobs, {due} accounts are due",
            tick["jobs"]
        );
    }
    tick["accounts"] = json!(n);
    tick["due"] = json!(due);
    tick["busy"] = json!(busy);
    tick["seed_seconds"] = json!(seeded);
    if json_out {
        println!("{tick}");
    } else {
        println!(
            "{n} accounts{}: tick {:.2}s (its index reads alone {:.2}s), {} jobs sent (all due, \
             {}), {} index entries read, DynamoDB {}, VmHWM {} MB before the tick, {} MB after",
            if busy { " (all due)" } else { "" },
            tick["seconds"].as_f64().unwrap_or_default(),
            tick["index_only_seconds"].as_f64().unwrap_or_default(),
            tick["jobs"],
            tick["sends"].as_str().unwrap_or_default(),
            tick["entries_read"],
            tick["dynamodb"],
            tick["vmhwm_before_kb"].as_u64().unwrap_or_default() / 1024,
            tick["vmhwm_after_kb"].as_u64().unwrap_or_default() / 1024,
        );
    }
    Ok(())
}

/// Where `--count-sends` puts the jobs: counted, then dropped. moto's FIFO queue checks every
/// message it holds for a duplicate on each send, so a tick of 10,000 jobs spends minutes there;
/// real SQS does not.
#[derive(Default)]
struct CountingQueue(std::sync::atomic::AtomicUsize);

impl mailroom_core::ports::Queue<mailroom_core::messages::PollJob> for CountingQueue {
    async fn send(
        &self,
        messages: &[mailroom_core::ports::Outgoing<mailroom_core::messages::PollJob>],
    ) -> mailroom_core::error::StoreResult<()> {
        // Encoded as the SQS adapter would, so the tick does the same work but the request.
        for m in messages {
            std::hint::black_box(mailroom_core::messages::encode(&m.message));
        }
        self.0
            .fetch_add(messages.len(), std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}

/// The second process: one tick of the scheduler's own handler on the prefix, reported as JSON.
pub async fn tick_only(prefix: &str, at: &str, count_sends: bool) -> Result<()> {
    use mailroom_aws::{Adapters, RequestCounter};
    let now = DateTime::parse_from_rfc3339(at)?.with_timezone(&Utc);
    let ctx = mailroom::context::connect(prefix).await?;
    let counter = RequestCounter::default();
    let clients = ctx.clients.clone().counting_dynamodb(counter.clone());
    let adapters = Adapters::new(&clients, ctx.config().clone());
    drop(ctx);
    // The index reads alone first (no sends), to tell the emulator's Query time from its
    // SQS time; then VmHWM is read, so the tick's own peak is what follows.
    let read_started = Instant::now();
    let mut read = 0usize;
    let ranges = if count_sends {
        vec![]
    } else {
        mailroom_core::schedule::index::due_ranges(now)
    };
    for range in ranges {
        let mut start = None;
        loop {
            let page = adapters.store.schedule_page(&range, true, start).await?;
            read += page.entries.len();
            match page.next {
                Some(next) => start = Some(next),
                None => break,
            }
        }
    }
    let index_seconds = read_started.elapsed().as_secs_f64();
    counter.take();
    let before = vm_hwm_kb();
    let mut event = aws_lambda_events::event::eventbridge::EventBridgeEvent::default();
    event.id = Some(format!("bench-{prefix}"));
    event.time = Some(now);
    let started = Instant::now();
    let counted = CountingQueue::default();
    let report = if count_sends {
        let ports = scheduler::Scheduler {
            accounts: &adapters.store,
            users: &adapters.store,
            poll_queue: &counted,
        };
        scheduler::handle(&ports, event, &Selection::Due).await?
    } else {
        scheduler::handle(
            &scheduler::Scheduler::aws(&adapters),
            event,
            &Selection::Due,
        )
        .await?
    };
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{}",
        json!({
            "seconds": seconds,
            "sends": if count_sends { "counted in-process" } else { "SQS (moto)" },
            "index_only_seconds": index_seconds,
            "index_only_entries": read,
            "jobs": report.queued.len(),
            "entries_read": report.accounts,
            "not_due": report.not_due,
            "dynamodb": counter.take(),
            "vmhwm_before_kb": before,
            "vmhwm_after_kb": vm_hwm_kb(),
        })
    );
    Ok(())
}
