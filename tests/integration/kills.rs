//! The exactly-once promise when the whole cycle is killed (issue 8, R-F5, R-I2, R-C4, R-Q4):
//! `mailroom poll` is SIGKILLed at random moments while mail is in flight (in provisioning and
//! scheduling, in the IMAP fetch, S3 writes and SQS sends, in ingest and linking), more mail
//! arriving between some kills. After the visibility timeout, cycles run to the end, and then
//! every message is one email, every thread one case holding all its emails, and round-robin
//! moved once per case.
//!
//! The prefix's queues get a visibility timeout of a few seconds
//! (`MAILROOM_LOCAL_VISIBILITY_TIMEOUT`, read only by local provisioning): what a killed
//! process had received then comes back in seconds, as it would after 360 s when deployed.
//! `MAILROOM_TEST_KILLS` (default 50) sets the number of kills and `MAILROOM_TEST_KILL_SEED`
//! replays a run (the seed is printed).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use mailroom_aws::provision::VISIBILITY_VAR;
use mailroom_core::ports::Crm;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

use crate::harness::*;

/// The visibility timeout this test's queues are created with, in seconds.
const TEST_VISIBILITY: &str = "3";
const THREADS: usize = 40;
const PER_THREAD: usize = 3;
/// Delivery rounds, spread over the kills: replies often arrive rounds after their thread began.
const ROUNDS: usize = 25;
/// Kills land from this long after a run starts up to a little past the longest of the last
/// few runs that ended by themselves (within 1 s to [`LATEST_KILL`]): late enough for ingest
/// and linking, and not so late that most runs escape.
const EARLIEST_KILL: Duration = Duration::from_millis(50);
const LATEST_KILL: Duration = Duration::from_millis(3000);
const MEMBERS: [&str; 3] = ["ann", "ben", "cid"];
/// The handlers' own log lines tell which phase a killed run was in.
const LOG: &str = "warn,scheduler=info,poller=info,ingest=info";

fn cli(prefix: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mailroom"));
    c.env("MAILROOM_PREFIX", prefix)
        .env(VISIBILITY_VAR, TEST_VISIBILITY)
        .env("RUST_LOG", "warn");
    c
}

fn run(prefix: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = cli(prefix)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mailroom runs");
    {
        let mut input = child.stdin.take().expect("piped");
        if let Some(s) = stdin {
            input.write_all(s.as_bytes()).expect("stdin written");
        }
    }
    let out = child.wait_with_output().expect("mailroom ends");
    assert!(
        out.status.success(),
        "mailroom {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn json(prefix: &str, args: &[&str]) -> Value {
    let out = run(prefix, args, None);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "mailroom {args:?}: stdout is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn array(v: &Value) -> &Vec<Value> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a JSON list: {v}"))
}

/// Message `j` of thread `t`: the first email, then replies naming the whole thread so far.
struct Mail {
    thread: usize,
    /// Its place in the thread: 0 for the first email.
    j: usize,
    id: String,
    raw: Vec<u8>,
}

fn thread_mail(tag: &str, t: usize, j: usize) -> Mail {
    let id = |j: usize| format!("k{t}.{j}.{tag}@customer.example");
    let subject = format!("Order {t} arrived broken");
    let mut m = format!(
        "From: Customer {t} <c{t}@customer.example>\r\nTo: support@example.test\r\nSubject: {}{subject}\r\nMessage-ID: <{}>\r\nDate: Tue, 3 Mar 2026 10:{t:02}:{j:02} +0000\r\n",
        if j == 0 { "" } else { "Re: " },
        id(j)
    );
    if j > 0 {
        let refs: Vec<String> = (0..j).map(|k| format!("<{}>", id(k))).collect();
        m.push_str(&format!(
            "In-Reply-To: <{}>\r\nReferences: {}\r\n",
            id(j - 1),
            refs.join(" ")
        ));
    }
    m.push_str("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n");
    m.push_str(&format!("Message {j} about order {t}.\r\n"));
    Mail {
        thread: t,
        j,
        id: id(j),
        raw: m.into_bytes(),
    }
}

/// Where a killed run was, from the handler lines it logged: before any poll (process start,
/// provisioning, the scheduler), in the poll (IMAP, S3 writes, SQS sends, watermark), or after
/// it (receiving, ingest and linking).
fn phase(text: &str) -> &'static str {
    if text.contains(" polled") || text.contains("poll failed") {
        "ingest"
    } else if text.contains("cycle scheduled") {
        "poll"
    } else {
        "start"
    }
}

async fn depth(q: &mailroom_aws::SqsQueue) -> (u64, u64) {
    q.depth().await.expect("queue attributes")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_poll_cycles_lose_nothing_and_duplicate_nothing() {
    let s = stack();
    let kills: usize = std::env::var("MAILROOM_TEST_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let seed: u64 = std::env::var("MAILROOM_TEST_KILL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(rand::random);
    println!("kills: seed {seed} (replay with MAILROOM_TEST_KILL_SEED={seed})");
    let mut rng = StdRng::seed_from_u64(seed);
    let started = Instant::now();

    // A group account with round-robin email-to-case over a team of three, all through the CLI.
    let prefix = unique("kills").to_lowercase();
    let mb = mailbox("kills");
    run(&prefix, &["teams", "add", "l1"], None);
    for m in MEMBERS {
        let email = format!("{m}@corp.example");
        run(
            &prefix,
            &["users", "add", m, "--email", &email, "--team", "l1"],
            None,
        );
    }
    let port = s.imaps_port.to_string();
    run(
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
        ],
        Some(&mb.password),
    );
    run(
        &prefix,
        &[
            "account",
            "set-case",
            "support",
            "--create-case",
            "--distribution",
            "round-robin",
            "--target-team",
            "l1",
        ],
        None,
    );
    // The queues exist now, with the CLI's visibility timeout: this connection keeps them.
    let ctx = mailroom::context::connect(&prefix).await.expect("connects");
    let a = ctx.adapters();
    let (poll_dlq, ingest_dlq) = (a.poll_queue.dead_letter(), a.ingest_queue.dead_letter());
    let mut visibility = 0;
    for q in [&a.poll_queue, &a.ingest_queue] {
        visibility = visibility.max(q.visibility_timeout().await.expect("attribute"));
    }
    assert!(
        visibility.to_string() == TEST_VISIBILITY,
        "the prefix's queues should hide a received message for {TEST_VISIBILITY} s, not {visibility} s: {VISIBILITY_VAR} was not applied"
    );

    // Every thread's first email and replies, each in a delivery round no earlier than the
    // email before it; a round goes in before the kill count reaches its turn.
    let tag = prefix.replace('-', "");
    let mut rounds: Vec<Vec<Mail>> = (0..ROUNDS).map(|_| Vec::new()).collect();
    let mut all = Vec::new();
    for t in 0..THREADS {
        let mut round = 0;
        for j in 0..PER_THREAD {
            round = rng.gen_range(round..ROUNDS);
            let m = thread_mail(&tag, t, j);
            all.push((m.id.clone(), m.thread));
            rounds[round].push(m);
        }
    }
    // Within a round, earlier messages of a thread are appended first.
    for r in &mut rounds {
        r.sort_by_key(|m| (m.j, m.thread));
    }
    // Every round is in by four fifths of the kills, so the last kills still find mail in flight.
    let turn = |round: usize| round * kills * 4 / (5 * ROUNDS);
    let logs = std::env::temp_dir().join(format!("{prefix}-logs"));
    std::fs::create_dir_all(&logs).unwrap();

    let (mut killed, mut runs, mut completed) = (0usize, 0usize, 0usize);
    let mut next_round = 0;
    // Durations of the last runs that ended by themselves; a run that ends by itself found
    // nothing more to do, so the next round of mail goes in before the next run.
    let mut recent: std::collections::VecDeque<Duration> = std::collections::VecDeque::new();
    let mut idle = false;
    let mut phases: BTreeMap<&str, usize> = BTreeMap::new();
    let (mut ingested_by_killed, mut killed_mid_ingest) = (0usize, 0usize);
    // Errors the runs that ended by themselves reported (retried, so not failures of the test).
    let mut run_errors: BTreeMap<String, usize> = BTreeMap::new();
    while killed < kills {
        assert!(
            runs < kills * 4 + 20,
            "{runs} runs for {killed} kills: runs end before they can be killed"
        );
        while next_round < ROUNDS && (killed >= turn(next_round) || idle) {
            let batch: Vec<Vec<u8>> = rounds[next_round].iter().map(|m| m.raw.clone()).collect();
            if !batch.is_empty() {
                deliver(&mb, &batch).await;
            }
            next_round += 1;
            idle = false;
        }
        let latest = match recent.iter().max() {
            Some(d) => d.mul_f64(1.5).clamp(Duration::from_secs(1), LATEST_KILL),
            None => LATEST_KILL,
        };
        let delay = rng.gen_range(EARLIEST_KILL..=latest);
        let log = logs.join(format!("run-{runs:03}.log"));
        let out = logs.join(format!("run-{runs:03}.json"));
        let mut child = cli(&prefix)
            .args(["poll", "--json"])
            .env("RUST_LOG", LOG)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("mailroom poll runs");
        let began = Instant::now();
        let deadline = began + delay;
        while Instant::now() < deadline && child.try_wait().expect("waits").is_none() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // SIGKILL, unless it ended by itself (a run that is already gone is reaped unharmed).
        let _ = child.kill();
        let status = child.wait().expect("reaped");
        runs += 1;
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if status.signal() == Some(9) {
            killed += 1;
            *phases.entry(phase(&text)).or_default() += 1;
            let ingested = text.matches(" ingested").count();
            ingested_by_killed += ingested;
            killed_mid_ingest += usize::from(ingested > 0);
        } else {
            completed += 1;
            idle = true;
            recent.push_back(began.elapsed());
            if recent.len() > 5 {
                recent.pop_front();
            }
            assert!(
                status.success(),
                "a poll that was not killed failed ({status}): see {}",
                log.display()
            );
            let cycle: Value = serde_json::from_slice(&std::fs::read(&out).unwrap())
                .expect("poll --json prints JSON");
            for row in array(&cycle) {
                if row["errors"].as_u64().unwrap_or(0) > 0 {
                    let e = row["error"].as_str().unwrap_or("?").to_string();
                    *run_errors.entry(e).or_default() +=
                        row["errors"].as_u64().unwrap_or(0) as usize;
                }
            }
        }
    }
    for round in &rounds[next_round..] {
        let batch: Vec<Vec<u8>> = round.iter().map(|m| m.raw.clone()).collect();
        if !batch.is_empty() {
            deliver(&mb, &batch).await;
        }
    }
    let kill_phase = started.elapsed();

    // What the killed processes held comes back after one visibility timeout; then cycles run
    // until one fetches and ingests nothing and every queue is empty. Pointers that a run of
    // kills pushed past the ingest queue's five receives wait in its dead-letter queue, and go
    // back the operator's way (`dlq redrive`).
    tokio::time::sleep(Duration::from_secs(visibility + 1)).await;
    let (mut drains, mut redriven) = (0usize, 0u64);
    loop {
        drains += 1;
        assert!(drains <= 20, "the cycle never settles after {drains} runs");
        let cycle = json(&prefix, &["poll", "--json"]);
        let row = array(&cycle)
            .iter()
            .find(|r| r["account"] == "support")
            .cloned()
            .unwrap_or_default();
        let n = |k: &str| row[k].as_u64().unwrap_or(0);
        let busy = [
            "fetched",
            "imported",
            "duplicates",
            "quarantined",
            "skipped",
        ]
        .iter()
        .any(|k| n(k) > 0);
        let mut dead = false;
        for (q, name) in [(&ingest_dlq, "ingest"), (&poll_dlq, "poll")] {
            let (visible, hidden) = depth(q).await;
            if visible + hidden > 0 {
                if name == "ingest" && redriven == 0 {
                    // What waiting alone left undone: messages without an email on a case.
                    let on_case: BTreeSet<String> =
                        array(&json(&prefix, &["emails", "list", "--json"]))
                            .iter()
                            .filter(|e| e["case"].is_u64())
                            .filter_map(|e| e["message_id"].as_str().map(str::to_string))
                            .collect();
                    let undone = all.iter().filter(|(id, _)| !on_case.contains(id)).count();
                    println!(
                        "kills: before any redrive, {} pointers are dead-lettered and {undone} of {} messages are not yet an email on a case",
                        visible + hidden,
                        all.len()
                    );
                }
                let moved = json(&prefix, &["dlq", "redrive", name, "--json"]);
                println!("kills: {moved}");
                if name == "ingest" {
                    redriven += moved["moved"].as_u64().unwrap_or(0);
                }
                dead = true;
            }
        }
        let (poll, ingest) = (depth(&a.poll_queue).await, depth(&a.ingest_queue).await);
        if !busy && !dead && n("errors") == 0 && poll == (0, 0) && ingest == (0, 0) {
            break;
        }
        if poll.1 + ingest.1 > 0 {
            tokio::time::sleep(Duration::from_secs(visibility + 1)).await;
        }
    }

    // Every message is exactly one email (by Message-ID) or one quarantine entry.
    let emails = json(&prefix, &["emails", "list", "--json"]);
    let quarantine = json(&prefix, &["quarantine", "list", "--json"]);
    let mut count: HashMap<String, usize> = HashMap::new();
    for e in array(&emails).iter().chain(array(&quarantine)) {
        if let Some(id) = e["message_id"].as_str() {
            *count.entry(id.to_string()).or_default() += 1;
        }
    }
    let lost: Vec<&str> = all
        .iter()
        .filter(|(id, _)| !count.contains_key(id))
        .map(|(id, _)| id.as_str())
        .collect();
    let duplicated: Vec<&str> = all
        .iter()
        .filter(|(id, _)| count.get(id).is_some_and(|&n| n > 1))
        .map(|(id, _)| id.as_str())
        .collect();

    // Every thread is one case, holding every email of that thread once and nothing else.
    let cases = json(&prefix, &["cases", "list", "--json"]);
    let cases = array(&cases);
    let case_of: HashMap<&str, u64> = array(&emails)
        .iter()
        .filter_map(|e| Some((e["message_id"].as_str()?, e["case"].as_u64()?)))
        .collect();
    let mut problems = Vec::new();
    for t in 0..THREADS {
        let ids: BTreeSet<&str> = all
            .iter()
            .filter(|(_, th)| *th == t)
            .map(|(id, _)| id.as_str())
            .collect();
        let numbers: BTreeSet<Option<u64>> =
            ids.iter().map(|id| case_of.get(id).copied()).collect();
        let [Some(number)] = numbers.iter().copied().collect::<Vec<_>>()[..] else {
            problems.push(format!("thread {t}: its emails are on cases {numbers:?}"));
            continue;
        };
        let case = cases.iter().find(|c| c["number"] == number);
        let on_case: Vec<&str> = case
            .map(|c| {
                array(&c["emails"])
                    .iter()
                    .filter_map(Value::as_str)
                    .collect()
            })
            .unwrap_or_default();
        let distinct: BTreeSet<&str> = on_case.iter().copied().collect();
        if distinct != ids || on_case.len() != ids.len() {
            problems.push(format!(
                "thread {t}: case {number}'s stream holds {on_case:?}, not {ids:?} once each"
            ));
        }
    }
    for c in cases {
        let listed = array(&c["emails"]);
        let distinct: BTreeSet<&str> = listed.iter().filter_map(Value::as_str).collect();
        if distinct.len() != listed.len() {
            problems.push(format!(
                "case {}: an email appears twice in its stream: {listed:?}",
                c["number"]
            ));
        }
    }

    // Round-robin moved once per case: shares within one, three in a row all different, and
    // the counter equal to the number of cases.
    let mut by_number: Vec<(u64, String)> = cases
        .iter()
        .map(|c| {
            (
                c["number"].as_u64().unwrap_or(0),
                c["assigned_user"].as_str().unwrap_or("-").to_string(),
            )
        })
        .collect();
    by_number.sort();
    let mut shares: BTreeMap<&str, usize> = MEMBERS.iter().map(|m| (*m, 0)).collect();
    for (_, user) in &by_number {
        *shares.entry(user.as_str()).or_default() += 1;
    }
    let counter = a
        .store
        .counter(&mailroom_core::keys::round_robin_sk("support"))
        .await
        .expect("counter read");

    println!(
        "kills: {killed} SIGKILLs of `mailroom poll` in {runs} runs ({completed} ended by themselves), by phase {phases:?}, {killed_mid_ingest} after ingesting some of their records ({ingested_by_killed} in all); errors reported by runs that ended by themselves: {run_errors:?}; {:.0} s killing, {drains} cycles to settle, {redriven} pointers redriven from the dead-letter queue; {} messages in {THREADS} threads: {} lost, {} duplicated, {} quarantined; {} cases, shares {shares:?}, round-robin counter {counter}; {:.0} s in all; logs in {}",
        kill_phase.as_secs_f64(),
        all.len(),
        lost.len(),
        duplicated.len(),
        array(&quarantine).len(),
        cases.len(),
        started.elapsed().as_secs_f64(),
        logs.display(),
    );
    assert!(
        lost.is_empty() && duplicated.is_empty(),
        "lost {lost:?}, duplicated {duplicated:?} (logs in {})",
        logs.display()
    );
    assert!(
        array(&quarantine).is_empty(),
        "well-formed mail was quarantined: {quarantine}"
    );
    assert_eq!(
        array(&emails).len(),
        all.len(),
        "emails that were never delivered"
    );
    assert!(problems.is_empty(), "{problems:#?}");
    assert_eq!(cases.len(), THREADS, "one case per thread");
    assert!(
        shares.len() == MEMBERS.len()
            && shares.values().max().unwrap() - shares.values().min().unwrap() <= 1,
        "round-robin shares {shares:?}"
    );
    for w in by_number.windows(MEMBERS.len()) {
        let distinct: BTreeSet<&str> = w.iter().map(|(_, u)| u.as_str()).collect();
        assert_eq!(
            distinct.len(),
            MEMBERS.len(),
            "round-robin skipped or repeated a member: {by_number:?}"
        );
    }
    assert_eq!(
        counter,
        cases.len() as u64,
        "the round-robin counter moved once per case"
    );
    // Kept when an assertion above failed: every run's log and JSON.
    let _ = std::fs::remove_dir_all(&logs);
}
