//! The other side of the IAM check (`shared/aws/tests/iam.rs` holds `template.yaml` to the
//! table): every request the three functions make, recorded at the SDK while they run a cycle
//! against the local stack (linking, a case, a reply, filters on headers and bodies, a
//! quarantined message replayed), is a row of `mailroom_aws::iam::GRANTS` for that function.
//! moto enforces no IAM, so a call added without its row would otherwise pass here and be
//! denied in AWS.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use chrono::Utc;
use mailroom::cycle::to_sqs_event;
use mailroom_aws::iam::{self, Principal, Resource, Via};
use mailroom_aws::Adapters;
use mailroom_core::ports::{BlobStore, EmailStore, Outgoing, Queue};
use mailroom_core::schedule::Selection;

use crate::harness::*;

/// What one request asks of AWS, in the IAM table's terms.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Call {
    action: String,
    on: String,
    /// The partition key (table) or object key (bucket).
    key: Option<String>,
}

/// Records every request of the clients it is put on (`Clients::intercepted`).
#[derive(Clone, Default)]
struct Recorder {
    calls: Arc<Mutex<Vec<Call>>>,
    queues: Arc<Vec<(String, &'static str)>>,
}

fn partition(item: &serde_json::Value) -> Option<String> {
    item.get("pk")?.get("S")?.as_str().map(str::to_string)
}

impl Recorder {
    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    fn calls_of(
        &self,
        target: &str,
        body: &serde_json::Value,
        uri: &str,
        method: &str,
    ) -> Vec<Call> {
        let call = |action: &str, on: &str, key: Option<String>| Call {
            action: action.to_string(),
            on: on.to_string(),
            key,
        };
        let (service, op) = target.split_once('.').unwrap_or(("", target));
        match service {
            s if s.starts_with("DynamoDB") => {
                let table = |key: Option<String>| call(&format!("dynamodb:{op}"), "table", key);
                match op {
                    "GetItem" | "UpdateItem" | "DeleteItem" => vec![table(partition(&body["Key"]))],
                    "PutItem" => vec![table(partition(&body["Item"]))],
                    "Query" => {
                        let pk = body["ExpressionAttributeValues"][":pk"]["S"]
                            .as_str()
                            .map(str::to_string);
                        match body["IndexName"].as_str() {
                            Some(index) => {
                                vec![call("dynamodb:Query", &format!("index/{index}"), pk)]
                            }
                            None => vec![table(pk)],
                        }
                    }
                    "BatchGetItem" => body["RequestItems"]
                        .as_object()
                        .into_iter()
                        .flat_map(|t| t.values())
                        .flat_map(|t| t["Keys"].as_array().cloned().unwrap_or_default())
                        .map(|k| table(partition(&k)))
                        .collect(),
                    "BatchWriteItem" => body["RequestItems"]
                        .as_object()
                        .into_iter()
                        .flat_map(|t| t.values())
                        .flat_map(|t| t.as_array().cloned().unwrap_or_default())
                        .map(|r| match r.get("DeleteRequest") {
                            Some(d) => table(partition(&d["Key"])),
                            None => table(partition(&r["PutRequest"]["Item"])),
                        })
                        .collect(),
                    // No IAM action of its own: each item is authorised by its own action.
                    "TransactWriteItems" => body["TransactItems"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .flat_map(|i| i.as_object().cloned().unwrap_or_default())
                        .map(|(kind, op)| {
                            let (action, key) = match kind.as_str() {
                                "Put" => ("PutItem", partition(&op["Item"])),
                                "Update" => ("UpdateItem", partition(&op["Key"])),
                                "Delete" => ("DeleteItem", partition(&op["Key"])),
                                _ => ("ConditionCheckItem", partition(&op["Key"])),
                            };
                            call(&format!("dynamodb:{action}"), "table", key)
                        })
                        .collect(),
                    // A Scan names no partition: only a row without keys allows it.
                    "Scan" => vec![table(None)],
                    other => vec![table(Some(format!("({other})")))],
                }
            }
            "AmazonSQS" => {
                let url = body["QueueUrl"].as_str().unwrap_or_default();
                let queue = self
                    .queues
                    .iter()
                    .find(|(u, _)| u == url)
                    .map(|(_, q)| *q)
                    .unwrap_or(url);
                let action = op.trim_end_matches("Batch");
                vec![call(&format!("sqs:{action}"), queue, None)]
            }
            "TrentService" => {
                let on = if body["EncryptionContext"][mailroom_aws::secrets::CONTEXT_KEY]
                    == mailroom_aws::secrets::CONTEXT_VALUE
                {
                    "data key"
                } else {
                    "key"
                };
                vec![call(&format!("kms:{op}"), on, None)]
            }
            // SES v2 (REST): /v2/email/outbound-emails, /v2/email/identities[/<identity>]. A
            // raw send is authorised as both send actions (iam.rs), so it is recorded as the one
            // named by the operation.
            _ if uri.contains("/v2/email/") => {
                let path = uri.split("/v2/email/").nth(1).unwrap_or_default();
                let action = match (method, path.split('/').next().unwrap_or_default()) {
                    ("POST", "outbound-emails") => "ses:SendEmail",
                    ("POST", "identities") => "ses:CreateEmailIdentity",
                    ("GET", "identities") => "ses:GetEmailIdentity",
                    (m, p) => return vec![call(&format!("ses:({m} {p})"), "identity", None)],
                };
                vec![call(action, "identity", None)]
            }
            // S3 (REST, path style): /<bucket>/<key>?x-id=<Operation>
            _ => {
                let path = uri.split_once("://").map_or(uri, |(_, rest)| rest);
                let path = path.split_once('/').map_or("", |(_, p)| p);
                let path = path.split('?').next().unwrap_or_default();
                let key = path
                    .split_once('/')
                    .map(|(_, k)| k.to_string())
                    .filter(|k| !k.is_empty());
                let action = match (method, &key) {
                    ("PUT", Some(_)) => "s3:PutObject",
                    ("GET", Some(_)) => "s3:GetObject",
                    ("DELETE", Some(_)) => "s3:DeleteObject",
                    _ => "s3:ListBucket",
                };
                vec![call(action, "bucket", key)]
            }
        }
    }
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Recorder")
    }
}

impl aws_sdk_dynamodb::config::Intercept for Recorder {
    fn name(&self) -> &'static str {
        "Recorder"
    }

    fn read_before_transmit(
        &self,
        context: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &aws_sdk_dynamodb::config::RuntimeComponents,
        _cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        let request = context.request();
        let target = request.headers().get("x-amz-target").unwrap_or_default();
        let body = request
            .body()
            .bytes()
            .filter(|_| !target.is_empty())
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or(serde_json::Value::Null);
        let calls = self.calls_of(target, &body, request.uri(), request.method());
        self.calls.lock().unwrap().extend(calls);
        Ok(())
    }
}

/// Whether a row of `who` allows the call.
fn allowed(who: Principal, call: &Call) -> bool {
    let key_matches = |rows_keys: &[&str]| match &call.key {
        None => rows_keys.is_empty(),
        Some(k) => rows_keys.iter().any(|r| {
            if r.ends_with('#') {
                k.starts_with(r)
            } else {
                k == r
            }
        }),
    };
    iam::grants_of(who).any(|g| {
        g.actions
            .iter()
            .any(|a| a.eq_ignore_ascii_case(&call.action))
            && match g.on {
                Resource::Table => call.on == "table" && key_matches(g.keys),
                Resource::Index(i) => call.on == format!("index/{i}"),
                Resource::Objects(p) => {
                    call.on == "bucket" && call.key.as_deref().is_some_and(|k| k.starts_with(p))
                }
                Resource::Bucket => call.on == "bucket" && call.key.is_none(),
                Resource::Queue(q) => q == "*" || call.on == q,
                Resource::Key(Via::DataKey) => call.on == "data key",
                Resource::Identities => call.on == "identity",
                _ => false,
            }
    })
}

/// A message from the contact, with a text body too large for the item (stored under bodies/)
/// that a user's body filter reads, and an attachment.
fn order(id: &str, reply_to: Option<&str>, to: &str) -> Vec<u8> {
    let mut m = format!(
        "From: Bob <bob@cust.example>\r\nTo: {to}\r\nSubject: Order {id}\r\n\
         Date: Tue, 3 Mar 2026 10:00:00 +0000\r\nMessage-ID: <{id}@cust.example>\r\n"
    );
    if let Some(parent) = reply_to {
        m.push_str(&format!("In-Reply-To: <{parent}@cust.example>\r\n"));
    }
    m.push_str(
        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n",
    );
    for _ in 0..2_000 {
        m.push_str("Please find the invoice for our order attached, thank you.\r\n");
    }
    m.push_str(
        "--b\r\nContent-Type: application/pdf; name=\"invoice.pdf\"\r\n\
         Content-Disposition: attachment; filename=\"invoice.pdf\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b--\r\n",
    );
    m.into_bytes()
}

/// Runs `mailroom <args>` under `prefix` with `stdin`, failing the test on an error.
fn run_cli(prefix: &str, args: &[&str], stdin: &str) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mailroom"))
        .args(args)
        .env("MAILROOM_PREFIX", prefix)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_the_functions_make_is_a_row_of_the_iam_table() {
    let env = env("iamcalls").await;
    let prefix = env.ctx.prefix.clone();
    let mb = mailbox("iamcalls");
    let cli = |args: &[&str], stdin: &str| run_cli(&prefix, args, stdin);
    // A team of two (least-busy reads both loads and checks the other's), a contact, a body
    // filter of a user, a global skip filter the poller applies on headers.
    cli(&["teams", "add", "l1"], "");
    cli(
        &[
            "users",
            "add",
            "ann",
            "--email",
            "ann@corp.example",
            "--team",
            "l1",
        ],
        "",
    );
    cli(
        &[
            "users",
            "add",
            "cid",
            "--email",
            "cid@corp.example",
            "--team",
            "l1",
        ],
        "",
    );
    cli(
        &[
            "records",
            "add",
            "contact",
            "--name",
            "Bob",
            "--email",
            "bob@cust.example",
        ],
        "",
    );
    let port = stack().imaps_port.to_string();
    cli(
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
            "--fetch-since",
            "2020-01-01",
            "--team",
            "l1",
        ],
        &format!("{}\n", mb.password),
    );
    cli(
        &[
            "account",
            "set-case",
            "support",
            "--create-case",
            "--distribution",
            "least-busy",
            "--target-team",
            "l1",
            "--reopen-on-reply",
        ],
        "",
    );
    cli(
        &[
            "filters",
            "add",
            "--scope",
            "user:ann",
            "--name",
            "invoices",
            "--body-any",
            "invoice",
            "--action",
            "mark-read",
        ],
        "",
    );
    cli(
        &[
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
        ],
        "",
    );
    deliver(
        &mb,
        &[
            order("o1", None, &mb.user),
            message(Some("digest@x.example"), "weekly digest 9"),
        ],
    )
    .await;

    let r = &env.ctx.config().resources;
    let queues = Arc::new(vec![
        (r.poll_queue_url.clone(), "PollQueue"),
        (r.ingest_queue_url.clone(), "IngestQueue"),
        (r.dispatch_queue_url.clone(), "DispatchQueue"),
    ]);
    let recorder = || Recorder {
        calls: Default::default(),
        queues: queues.clone(),
    };
    let adapters = |rec: &Recorder| {
        Adapters::new(
            &env.ctx.clients.clone().intercepted(rec.clone()),
            env.ctx.config().clone(),
        )
    };
    let (sched, poll, ingest_rec) = (recorder(), recorder(), recorder());
    let scheduler_adapters = adapters(&sched);
    let poller = poller::Poller::new(adapters(&poll)).unwrap();
    let ingest_adapters = adapters(&ingest_rec);
    // The event sources (SAM's grants, not the table's) are the unrecorded CLI clients.
    let local = env.ctx.adapters();
    let drain = |round: u32| {
        let poller = &poller;
        let ingest_adapters = &ingest_adapters;
        let scheduler_adapters = &scheduler_adapters;
        async move {
            let mut tick = EventBridgeEvent::default();
            tick.id = Some(format!("iam-{round}-{}", unique("tick")));
            tick.time = Some(Utc::now());
            scheduler::handle(
                &scheduler::Scheduler::aws(scheduler_adapters),
                tick,
                &Selection::AllActive,
            )
            .await
            .unwrap();
            loop {
                let batch = local.poll_queue.receive(10, 0).await.unwrap();
                if batch.is_empty() {
                    break;
                }
                let event = to_sqs_event(&local.poll_queue, &batch);
                let (response, _) =
                    poller::handle(&poller.service(), &poller.adapters.dispatch_queue, event).await;
                assert!(response.batch_item_failures.is_empty());
                let done: Vec<_> = batch.iter().map(|m| m.receipt_handle.clone()).collect();
                local.poll_queue.delete(&done).await.unwrap();
            }
            loop {
                let batch = local.ingest_queue.receive(10, 0).await.unwrap();
                if batch.is_empty() {
                    break;
                }
                let (response, _) = ingest::handle(
                    &ingest_adapters.intake(),
                    to_sqs_event(&local.ingest_queue, &batch),
                )
                .await;
                assert!(response.batch_item_failures.is_empty());
                let done: Vec<_> = batch.iter().map(|m| m.receipt_handle.clone()).collect();
                local.ingest_queue.delete(&done).await.unwrap();
            }
        }
    };
    drain(1).await;
    // A reply joins the case; a message the server would not hand over is quarantined, then
    // replayed into an email (which removes its quarantine record).
    deliver(&mb, &[order("o2", Some("o1"), &mb.user)]).await;
    let raw_key = mailroom_core::keys::raw_key("support", "INBOX", 1, 999_999);
    local
        .blobs
        .put(
            &raw_key,
            message(Some("late@x.example"), "late"),
            "message/rfc822",
        )
        .await
        .unwrap();
    let pointer = mailroom_core::messages::IngestPointer {
        v: mailroom_core::SCHEMA_VERSION,
        account: "support".into(),
        folder: "INBOX".into(),
        uidvalidity: 1,
        uid: 999_999,
        key: raw_key,
        size: 100,
        arrived: None,
        truncated: false,
        quarantine_id: None,
        fetch_error: Some("NO [SERVERBUG] test".into()),
    };
    local
        .ingest_queue
        .send(&[Outgoing::plain(pointer)])
        .await
        .unwrap();
    drain(2).await;
    let quarantined = local.store.list_quarantine().await.unwrap();
    assert_eq!(quarantined.len(), 1, "{quarantined:?}");
    local
        .ingest_queue
        .send(&[Outgoing::plain(quarantined[0].replay_pointer())])
        .await
        .unwrap();
    drain(3).await;
    assert!(local.store.list_quarantine().await.unwrap().is_empty());
    let cases = local.store.list_cases().await.unwrap();
    // The order thread (its reply joined it) and the replayed message.
    assert_eq!(cases.len(), 2, "{cases:?}");

    let mut outside = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (who, rec) in [
        (Principal::Scheduler, &sched),
        (Principal::Poller, &poll),
        (Principal::Ingest, &ingest_rec),
    ] {
        for call in rec.calls() {
            if !allowed(who, &call) {
                outside.push(format!("{who:?}: {call:?}"));
            }
            let key = call.key.as_deref().map(|k| {
                k.split_inclusive(['#', '/'])
                    .next()
                    .unwrap_or(k)
                    .to_string()
            });
            seen.insert(format!(
                "{who:?} {} {} {}",
                call.action,
                call.on,
                key.unwrap_or_default()
            ));
        }
    }
    outside.sort();
    outside.dedup();
    assert!(
        outside.is_empty(),
        "calls beyond shared/aws/src/iam.rs (add the row, and the grant to template.yaml):\n  {}",
        outside.join("\n  ")
    );
    // The paths that matter were taken: the check did not pass for want of calls.
    for expected in [
        "Scheduler dynamodb:Query index/sched SCHED#",
        "Scheduler sqs:SendMessage PollQueue ",
        "Poller kms:Decrypt data key ",
        "Poller dynamodb:GetItem table CONFIG",
        "Poller dynamodb:PutItem table SKIPPED",
        "Poller s3:PutObject bucket raw/",
        "Ingest s3:GetObject bucket bodies/",
        "Ingest s3:GetObject bucket quarantine/",
        "Ingest s3:PutObject bucket attachments/",
        "Ingest dynamodb:PutItem table MSGID#",
        "Ingest dynamodb:UpdateItem table COUNTER",
        "Ingest dynamodb:BatchWriteItem table INBOX#",
        "Ingest dynamodb:DeleteItem table QUARANTINE",
        "Ingest sqs:SendMessage DispatchQueue ",
    ] {
        assert!(
            seen.contains(expected),
            "{expected:?} not seen in {seen:#?}"
        );
    }
}

/// The dispatch store's calls (`DispatchStore`, `Followers`), each through a recorded client:
/// those dispatch makes are rows of dispatch, the listings and `mark_read` rows of the CLI. The
/// dispatch function's handler does not drive these yet, so they are called one by one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dispatch_store_call_is_a_row_of_dispatch_or_the_cli() {
    use mailroom_aws::dynamo::DynamoStore;
    use mailroom_core::dispatch::records::{
        FailingAddress, Notification, NotificationKind, SentKind, SentRecord, SuppressedRecord,
    };
    use mailroom_core::ports::{DispatchStore, Followers};
    use mailroom_core::records::RecordRef;

    let env = env("iamdispatch").await;
    let table = env.ctx.config().resources.table.clone();
    let store = |rec: &Recorder| {
        DynamoStore::new(
            env.ctx.clients.clone().intercepted(rec.clone()).dynamodb,
            &table,
        )
    };
    let (dispatch_rec, cli_rec) = (Recorder::default(), Recorder::default());
    let (dispatch, cli) = (store(&dispatch_rec), store(&cli_rec));
    let now = Utc::now();
    let sent = SentRecord {
        v: 1,
        id: "e1#auto-reply".into(),
        kind: SentKind::AutoReply,
        account: "support".into(),
        from: "support@example.test".into(),
        to: vec!["bob@cust.example".into()],
        subject: "Re: hi".into(),
        in_reply_to: None,
        message_id: "m@mailroom.example".into(),
        ses_message_id: "s@ses.example".into(),
        user: None,
        email_id: Some("e1".into()),
        parent: None,
        case: None,
        sent_at: now,
    };
    let note = |user: &str| Notification {
        v: 1,
        user: user.into(),
        key: "e1".into(),
        kind: NotificationKind::Inbox,
        email: None,
        email_id: Some("e1".into()),
        record: None,
        account: "support".into(),
        summary: "hi".into(),
        read: false,
        at: now,
    };
    dispatch.sent(&sent.id).await.unwrap();
    dispatch.put_sent(&sent).await.unwrap();
    dispatch
        .put_suppressed(&SuppressedRecord {
            v: 1,
            id: "e2#auto-reply".into(),
            kind: SentKind::AutoReply,
            account: "support".into(),
            email_id: "e2".into(),
            message_id: "m2@cust.example".into(),
            to: None,
            reason: "precedence".into(),
            detail: None,
            at: now,
        })
        .await
        .unwrap();
    dispatch
        .take_allowance("bob@cust.example#w", "e1", 5, now)
        .await
        .unwrap();
    // One (a conditional put), then several (which exist; a transaction of the others).
    dispatch.put_notifications(&[note("ann")]).await.unwrap();
    dispatch
        .put_notifications(&[note("ann"), note("bob"), note("cid")])
        .await
        .unwrap();
    dispatch
        .mark_failing(&FailingAddress {
            v: 1,
            address: "bob@cust.example".into(),
            reason: "bounce".into(),
            since: now,
            until: now + chrono::Duration::days(1),
        })
        .await
        .unwrap();
    dispatch
        .failing(&["bob@cust.example".into()], now)
        .await
        .unwrap();
    dispatch.follow("ann", &RecordRef::case(1)).await.unwrap();
    dispatch.followers(&RecordRef::case(1)).await.unwrap();
    cli.list_sent().await.unwrap();
    cli.list_suppressed().await.unwrap();
    cli.notifications("ann").await.unwrap();
    assert!(cli.mark_read("ann", "e1").await.unwrap());
    cli.followers(&RecordRef::case(1)).await.unwrap();

    let mut outside = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (who, rec) in [
        (Principal::Dispatch, &dispatch_rec),
        (Principal::Cli, &cli_rec),
    ] {
        for call in rec.calls() {
            if !allowed(who, &call) {
                outside.push(format!("{who:?}: {call:?}"));
            }
            let key = call.key.clone().unwrap_or_default();
            let key = key
                .split_inclusive('#')
                .next()
                .unwrap_or_default()
                .to_string();
            seen.insert(format!("{who:?} {} {key}", call.action));
        }
    }
    outside.sort();
    outside.dedup();
    assert!(
        outside.is_empty(),
        "calls beyond shared/aws/src/iam.rs:\n  {}",
        outside.join("\n  ")
    );
    for expected in [
        "Dispatch dynamodb:GetItem SENT",
        "Dispatch dynamodb:PutItem SENT",
        "Dispatch dynamodb:PutItem SUPPRESSED",
        "Dispatch dynamodb:UpdateItem RATE#",
        "Dispatch dynamodb:PutItem NOTIF#",
        "Dispatch dynamodb:BatchGetItem NOTIF#",
        "Dispatch dynamodb:PutItem FAILING",
        "Dispatch dynamodb:BatchGetItem FAILING",
        "Dispatch dynamodb:PutItem FOLLOW#",
        "Dispatch dynamodb:Query FOLLOW#",
        "Cli dynamodb:Query SENT",
        "Cli dynamodb:Query SUPPRESSED",
        "Cli dynamodb:Query NOTIF#",
        "Cli dynamodb:UpdateItem NOTIF#",
    ] {
        assert!(
            seen.contains(expected),
            "{expected:?} not seen in {seen:#?}"
        );
    }
}

/// The api function's side: every request the API makes while each of its operations runs
/// once over HTTP (as an admin and as a user with a `team` role), through recorded clients, is
/// a row of `api` in the IAM table. Every call is checked to succeed, so no path is skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_the_api_makes_is_a_row_of_the_iam_table() {
    use crate::api_support::ApiServer;
    use serde_json::json;

    let env = env("iamapi").await;
    let prefix = env.ctx.prefix.clone();
    let mb = mailbox("iamapi");
    let personal = mailbox("iamapi-own");
    let sales = mailbox("iamapi-sales");
    let cli = |args: &[&str], stdin: &str| run_cli(&prefix, args, stdin);
    cli(&["teams", "add", "l1"], "");
    cli(
        &[
            "roles",
            "add",
            "agent",
            "--group-account-permission",
            "team",
        ],
        "",
    );
    cli(
        &[
            "users",
            "add",
            "root",
            "--email",
            "root@corp.example",
            "--admin",
        ],
        "",
    );
    cli(
        &[
            "users",
            "add",
            "ann",
            "--email",
            "ann@corp.example",
            "--team",
            "l1",
            "--role",
            "agent",
        ],
        "",
    );
    cli(
        &[
            "records",
            "add",
            "contact",
            "--name",
            "Bob",
            "--email",
            "bob@cust.example",
        ],
        "",
    );
    let port = stack().imaps_port.to_string();
    cli(
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
            "--team",
            "l1",
        ],
        &format!("{}\n", mb.password),
    );
    cli(
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
        "",
    );
    deliver(&mb, &[order("a1", None, &mb.user)]).await;
    cli(&["poll"], "");

    let rec = Recorder {
        calls: Default::default(),
        queues: Arc::new({
            let r = &env.ctx.config().resources;
            vec![
                (r.ingest_queue_url.clone(), "IngestQueue"),
                (r.poll_queue_url.clone(), "PollQueue"),
                // Their dead-letter queues, named as provisioning and the template name them.
                (
                    format!("{}-dlq", r.ingest_queue_url),
                    "IngestDeadLetterQueue",
                ),
                (
                    r.poll_queue_url.replace(".fifo", "-dlq.fifo"),
                    "PollDeadLetterQueue",
                ),
            ]
        }),
    };
    let api = ApiServer::start_on(Adapters::new(
        &env.ctx.clients.clone().intercepted(rec.clone()),
        env.ctx.config().clone(),
    ))
    .await;
    let ok = |what: &str, (status, body): (u16, serde_json::Value)| {
        assert!((200..300).contains(&status), "{what}: {status} {body}");
        body
    };
    let emails = ok(
        "list emails",
        api.call("ann", "GET", "/v1/emails", None).await,
    );
    let email = emails["items"][0]["id"]
        .as_str()
        .expect("an email")
        .to_string();
    let case = ok(
        "list cases",
        api.call("ann", "GET", "/v1/cases", None).await,
    )["items"][0]["number"]
        .as_u64()
        .expect("a case");
    let calls: Vec<(&str, &str, String, Option<serde_json::Value>)> = vec![
        ("root", "GET", "/v1/me".into(), None),
        ("root", "GET", "/v1/users".into(), None),
        ("root", "GET", "/v1/users/ann".into(), None),
        ("root", "GET", "/v1/teams".into(), None),
        ("root", "GET", "/v1/roles".into(), None),
        (
            "root",
            "POST",
            "/v1/teams".into(),
            Some(json!({"name": "l2"})),
        ),
        (
            "root",
            "POST",
            "/v1/roles".into(),
            Some(json!({"name": "all", "group_account_permission": "all"})),
        ),
        (
            "root",
            "POST",
            "/v1/users".into(),
            Some(json!({"name": "dan", "emails": ["dan@corp.example"], "teams": ["l1"]})),
        ),
        ("root", "GET", "/v1/accounts".into(), None),
        ("root", "GET", "/v1/accounts/support".into(), None),
        ("root", "GET", "/v1/accounts/support/status".into(), None),
        (
            "root",
            "PATCH",
            "/v1/accounts/support".into(),
            Some(json!({"active": true})),
        ),
        (
            "root",
            "POST",
            "/v1/accounts/support/reset".into(),
            Some(json!({"fetch_since": "2020-01-01"})),
        ),
        (
            "ann",
            "POST",
            "/v1/accounts/personal".into(),
            Some(json!({
            "name": "ann-own", "address": personal.user, "imap_host": "127.0.0.1",
            "imap_port": stack().imaps_port, "imap_user": personal.user,
            "password": personal.password, "security": "implicit-tls", "folders": ["INBOX"],
            "fetch_since": "2020-01-01"})),
        ),
        (
            "root",
            "POST",
            "/v1/accounts/group".into(),
            Some(json!({
            "name": "sales", "address": sales.user, "imap_host": "127.0.0.1",
            "imap_port": stack().imaps_port, "imap_user": sales.user,
            "password": sales.password, "security": "implicit-tls", "teams": ["l1"]})),
        ),
        ("root", "GET", "/v1/quarantine".into(), None),
        ("root", "GET", "/v1/dead-letters".into(), None),
        (
            "root",
            "POST",
            "/v1/dead-letters/replay".into(),
            Some(json!({"queue": "ingest"})),
        ),
        (
            "ann",
            "POST",
            "/v1/filters".into(),
            Some(json!({"scope": "user:ann",
            "name": "quiet", "subject": "weekly*", "action": "mark-read"})),
        ),
        ("ann", "GET", "/v1/filters".into(), None),
        ("ann", "GET", "/v1/filters/quiet".into(), None),
        ("ann", "DELETE", "/v1/filters/quiet".into(), None),
        ("ann", "GET", format!("/v1/emails/{email}"), None),
        (
            "ann",
            "GET",
            format!("/v1/emails/{email}/attachments/0"),
            None,
        ),
        (
            "ann",
            "GET",
            format!("/v1/emails/{email}/reply-draft?all=true"),
            None,
        ),
        (
            "ann",
            "POST",
            format!("/v1/emails/{email}/reply"),
            Some(json!({"text": "On it."})),
        ),
        (
            "ann",
            "POST",
            "/v1/emails".into(),
            Some(json!({"account": "support",
            "to": ["bob@cust.example"], "subject": "Your order", "text": "Shipped.",
            "parent": {"type": "case", "number": case}})),
        ),
        ("ann", "GET", format!("/v1/cases/{case}"), None),
        (
            "ann",
            "PATCH",
            format!("/v1/cases/{case}"),
            Some(json!({"status": "Pending", "assigned_user": "dan"})),
        ),
        ("ann", "GET", "/v1/records/contact".into(), None),
        (
            "ann",
            "GET",
            "/v1/records/contact/bob@cust.example".into(),
            None,
        ),
        (
            "ann",
            "POST",
            "/v1/records/lead".into(),
            Some(json!({"name": "Eve", "email": "eve@lead.example"})),
        ),
        (
            "ann",
            "GET",
            "/v1/records/contact/bob@cust.example/stream".into(),
            None,
        ),
        (
            "ann",
            "PUT",
            "/v1/records/contact/bob@cust.example/followers/ann".into(),
            None,
        ),
        (
            "ann",
            "GET",
            "/v1/records/contact/bob@cust.example/followers".into(),
            None,
        ),
        (
            "ann",
            "DELETE",
            "/v1/records/contact/bob@cust.example/followers/ann".into(),
            None,
        ),
    ];
    for (user, method, path, body) in &calls {
        ok(
            &format!("{user} {method} {path}"),
            api.call(user, method, path, body.as_ref()).await,
        );
    }
    let notes = ok(
        "notifications",
        api.call("ann", "GET", "/v1/notifications", None).await,
    );
    let key = notes["items"][0]["key"]
        .as_str()
        .expect("ann was told of the case")
        .to_string();
    ok(
        "mark read",
        api.call(
            "ann",
            "POST",
            &format!("/v1/notifications/{key}/read"),
            None,
        )
        .await,
    );
    // Every operation ran (the route table is the list), but quarantine replay: it needs a
    // quarantined message, and its calls are the CLI's (PollService::replay_pointer), whose
    // rows the api holds too.
    let mut ran: Vec<&str> = calls
        .iter()
        .map(|(_, m, p, _)| (*m, p.split('?').next().unwrap()))
        .chain([
            ("GET", "/v1/emails"),
            ("GET", "/v1/cases"),
            ("GET", "/v1/notifications"),
            ("POST", "/v1/notifications/k/read"),
        ])
        .map(|(m, p)| match mailroom_api::routes::find(m, p) {
            mailroom_api::routes::Found::Route(r, _) => r.operation,
            _ => panic!("{m} {p} is no route"),
        })
        .collect();
    ran.sort();
    ran.dedup();
    let mut all: Vec<&str> = mailroom_api::routes::all()
        .iter()
        .map(|r| r.operation)
        .filter(|o| *o != "replayQuarantine")
        .collect();
    all.sort();
    assert_eq!(ran, all, "one call per operation");

    let mut outside: Vec<String> = rec
        .calls()
        .into_iter()
        .filter(|c| !allowed(Principal::Api, c))
        .map(|c| format!("{c:?}"))
        .collect();
    outside.sort();
    outside.dedup();
    assert!(
        outside.is_empty(),
        "api calls beyond shared/aws/src/iam.rs (add the row, and the grant to template.yaml):\n  {}",
        outside.join("\n  ")
    );
}
