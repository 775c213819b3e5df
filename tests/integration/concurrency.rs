//! R-C4 under load: 50 threads x 3 emails, shuffled, with duplicate deliveries, processed by
//! several concurrent ingest workers: exactly 50 cases, every email on its thread's case,
//! round-robin balanced, and the round-robin counter advanced exactly once per case.

use std::collections::{HashMap, HashSet};

use mailroom_core::messages::IngestPointer;
use mailroom_core::ports::Crm;
use mailroom_core::ports::{BlobStore, EmailStore, Outgoing, Queue};
use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::cases::{case_env, mail, rr, Mail};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_threads_of_three_emails_out_of_order_with_duplicates_make_fifty_cases() {
    let c = case_env("conc", &["ann", "ben", "cat"], rr("l1")).await;
    let a = c.env.ctx.adapters();
    let mut pointers = Vec::new();
    for t in 0..50 {
        let root = format!("c{t}-0@x.example");
        let r1 = format!("c{t}-1@x.example");
        let r2 = format!("c{t}-2@x.example");
        let msgs = [
            mail(Mail {
                id: &root,
                from: "cust@x.example",
                subject: &format!("thread {t}"),
                refs: &[],
                extra: "",
            }),
            mail(Mail {
                id: &r1,
                from: "cust@x.example",
                subject: &format!("Re: thread {t}"),
                refs: &[&root],
                extra: "",
            }),
            mail(Mail {
                id: &r2,
                from: "cust@x.example",
                subject: &format!("Re: thread {t}"),
                refs: &[&root, &r1],
                extra: "",
            }),
        ];
        for (i, raw) in msgs.into_iter().enumerate() {
            let uid = (t * 3 + i + 1) as u32;
            let key = format!("raw/support/INBOX/1/{uid}.eml");
            a.blobs
                .put(&key, raw.clone(), "message/rfc822")
                .await
                .unwrap();
            pointers.push(IngestPointer {
                v: 1,
                account: "support".into(),
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
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut deliveries = pointers.clone();
    deliveries.extend(pointers.choose_multiple(&mut rng, 30).cloned()); // redeliveries
    deliveries.shuffle(&mut rng);
    let out: Vec<_> = deliveries.into_iter().map(Outgoing::plain).collect();
    a.ingest_queue.send(&out).await.unwrap();

    // Four workers, as four concurrent Lambda invocations would.
    let ctx = &c.env.ctx;
    let worker = || async move {
        let mut failures = 0;
        let mut done = 0;
        let mut idle = 0;
        while idle < 3 {
            let batch = ctx.adapters().ingest_queue.receive(10, 0).await.unwrap();
            if batch.is_empty() {
                idle += 1;
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
            idle = 0;
            let mut event = aws_lambda_events::event::sqs::SqsEvent::default();
            event.records = batch
                .iter()
                .map(|m| {
                    let mut r = aws_lambda_events::event::sqs::SqsMessage::default();
                    r.message_id = Some(m.message_id.clone());
                    r.body = Some(m.body.clone());
                    r
                })
                .collect();
            let (resp, results) = ingest::handle(&ctx.adapters().intake(), event).await;
            for r in &results {
                if let Err(e) = &r.result {
                    eprintln!("record failed: {e:?}");
                }
            }
            failures += resp.batch_item_failures.len();
            let failed: HashSet<_> = resp
                .batch_item_failures
                .iter()
                .map(|f| f.item_identifier.clone())
                .collect();
            let ok: Vec<_> = batch
                .iter()
                .filter(|m| !failed.contains(&m.message_id))
                .map(|m| m.receipt_handle.clone())
                .collect();
            done += ok.len();
            ctx.adapters().ingest_queue.delete(&ok).await.unwrap();
        }
        (done, failures)
    };
    let results = futures::future::join_all((0..4).map(|_| worker())).await;
    let (done, failures): (usize, usize) = results
        .iter()
        .fold((0, 0), |(d, f), (d2, f2)| (d + d2, f + f2));
    assert_eq!(failures, 0, "no record failed");
    assert_eq!(done, 180);

    let cases = c.cases().await;
    assert_eq!(cases.len(), 50, "exactly one case per thread");
    let emails = a.store.list_emails().await.unwrap();
    assert_eq!(emails.len(), 150);
    let mut thread_case: HashMap<String, mailroom_core::types::CaseNumber> = HashMap::new();
    for e in &emails {
        let thread = e.message_id.split('-').next().unwrap().to_string();
        let case = e
            .case
            .unwrap_or_else(|| panic!("{} has no case", e.message_id));
        let first = *thread_case.entry(thread.clone()).or_insert(case);
        assert_eq!(first, case, "all emails of {thread} on one case");
    }
    assert_eq!(thread_case.len(), 50);
    let mut per_user: HashMap<String, i64> = HashMap::new();
    for k in &cases {
        *per_user
            .entry(k.assigned_user.clone().unwrap())
            .or_default() += 1;
    }
    let (min, max) = (
        per_user.values().min().unwrap(),
        per_user.values().max().unwrap(),
    );
    assert!(max - min <= 1, "round-robin balanced: {per_user:?}");
    assert_eq!(
        a.store.counter("rr#support").await.unwrap(),
        50,
        "advanced once per case"
    );
    let mut numbers: Vec<u64> = cases.iter().map(|c| c.number.get()).collect();
    numbers.dedup();
    assert_eq!(numbers.len(), 50, "numbers unique");
    // Each case's stream holds its three emails.
    for k in &cases {
        let stream = a
            .store
            .stream(&mailroom_core::records::RecordRef::case(k.number.get()))
            .await
            .unwrap();
        assert_eq!(
            stream.iter().filter(|e| e.kind == "email_received").count(),
            3,
            "case {}",
            k.number
        );
    }
    let loads = a
        .store
        .open_loads(&["ann".into(), "ben".into(), "cat".into()])
        .await
        .unwrap();
    assert_eq!(
        loads.values().sum::<u64>(),
        50,
        "open counts exact: {loads:?}"
    );
}
