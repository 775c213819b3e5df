//! Every sample event under `events/` through its function, as `cargo lambda watch` runs it: the
//! real function binary, started against a small Lambda Runtime API served here, on the local
//! stack prepared by `mailroom local prepare-events`. Each answer is compared with the event's
//! `.expected.json` (the format and matching rule are in events/README.md).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use mailroom_runtime::samples::{compare, sample_events};

use crate::harness::*;

/// The functions that exist, by their folder under `events/` (also their binary's name).
const FUNCTIONS: &[&str] = &["scheduler", "poller", "ingest", "dispatch", "api"];

/// Longest wait for one answer: a poll logs in to Dovecot, everything else is moto.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sample_event_answers_as_its_expected_file_says() {
    let s = stack();
    // A prefix of its own: the events are fixed, the state of the stack is not.
    let prefix = unique("events").to_lowercase();
    let first = prepare_events(&prefix).await;
    let names: Vec<&str> = first["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["support", "sales"], "{first:#}");
    assert!(first["accounts"][0]["messages"].as_u64().unwrap() > 0);
    assert_eq!(first["objects"][0]["bucket"], format!("{prefix}-mail"));
    // Idempotent: a second run creates and delivers nothing.
    let again = prepare_events(&prefix).await;
    for a in again["accounts"].as_array().unwrap() {
        assert_eq!((&a["created"], &a["delivered"]), (&false.into(), &0.into()));
    }

    let bins = tokio::task::spawn_blocking(function_binaries)
        .await
        .unwrap();
    let ctx = mailroom::context::connect(&prefix).await.unwrap();
    let r = &ctx.config().resources;
    let env: Vec<(&str, String)> = vec![
        ("AWS_ENDPOINT_URL", s.aws_endpoint.clone()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ("MAILROOM_TABLE", r.table.clone()),
        ("MAILROOM_BUCKET", r.bucket.clone()),
        ("MAILROOM_POLL_QUEUE_URL", r.poll_queue_url.clone()),
        ("MAILROOM_INGEST_QUEUE_URL", r.ingest_queue_url.clone()),
        ("MAILROOM_DISPATCH_QUEUE_URL", r.dispatch_queue_url.clone()),
        ("MAILROOM_KMS_KEY_ID", r.kms_key_id.clone()),
        ("MAILROOM_ALLOW_PRIVATE_HOSTS", "true".into()),
        ("MAILROOM_IMAP_CA_FILE", s.ca_file.clone()),
        // The api samples carry a token of the samples' issuer (events/README.md).
        ("MAILROOM_JWT_ISSUER", "mailroom-samples".into()),
        ("MAILROOM_JWT_AUDIENCE", "mailroom".into()),
        (
            "MAILROOM_JWKS_FILE",
            mailroom::local::repo_root()
                .join("events/api/samples.jwks")
                .display()
                .to_string(),
        ),
    ];

    let events = sample_events(&mailroom::local::repo_root().join("events"));
    // Pipeline order (the scheduler queues, the poller fetches, ingest stores), then the rest.
    let mut order: Vec<&String> = FUNCTIONS
        .iter()
        .filter_map(|f| events.keys().find(|k| k == f))
        .collect();
    order.extend(events.keys().filter(|k| !FUNCTIONS.contains(&k.as_str())));
    let mut failures = Vec::new();
    let (mut ran, mut skipped) = (0, 0);
    for folder in order {
        let files = &events[folder];
        if !FUNCTIONS.contains(&folder.as_str()) {
            for sample in files {
                let why = sample.expected["no_function"].as_str().unwrap_or_else(|| {
                    panic!(
                        "{}: events/{folder} has no function, so its expected file must say \
                         \"no_function\"",
                        sample.name
                    )
                });
                eprintln!("skipped {}: no function yet ({why})", sample.name);
                skipped += 1;
            }
            continue;
        }
        let mut function = Function::start(&bins[folder.as_str()], folder, &env).await;
        for sample in files {
            let expected = &sample.expected;
            assert!(
                expected.get("no_function").is_none(),
                "{}: events/{folder} has a function",
                sample.name
            );
            let answer = function.invoke(&std::fs::read(&sample.path).unwrap()).await;
            let mut problems = Vec::new();
            match (&answer, expected.get("response"), expected.get("error")) {
                (Ok(Answer::Response(got)), Some(want), None) => {
                    compare(want, got, "response", &mut problems)
                }
                (Ok(Answer::Error(got)), None, Some(want)) => {
                    compare(want, got, "error", &mut problems)
                }
                (_, None, None) | (_, Some(_), Some(_)) => problems
                    .push("the expected file needs exactly one of response, error".to_string()),
                (Ok(other), ..) => problems.push(format!("answered {other}")),
                (Err(e), ..) => problems.push(e.clone()),
            }
            let shown = match &answer {
                Ok(a) => a.to_string(),
                Err(e) => e.clone(),
            };
            let verdict = if problems.is_empty() { "ok" } else { "FAILED" };
            eprintln!("{verdict} {}: {shown}", sample.name);
            if !problems.is_empty() {
                failures.push(format!(
                    "{}:\n  {}\n  log of {folder}:\n{}",
                    sample.name,
                    problems.join("\n  "),
                    function.log()
                ));
            }
            ran += 1;
        }
        function.stop().await;
    }
    for f in FUNCTIONS {
        assert!(
            events.get(*f).is_some_and(|e| !e.is_empty()),
            "no sample events for {f}"
        );
    }
    eprintln!("{ran} sample events ran, {skipped} skipped (no function yet)");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// A missing or unusable variable stops the function at init with the variable named (the
/// message, not a struct dump or a quoted string).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_refused_at_init_names_the_variable() {
    let bins = tokio::task::spawn_blocking(function_binaries)
        .await
        .unwrap();
    let env = [
        ("MAILROOM_BUCKET", "b".to_string()),
        ("MAILROOM_POLL_QUEUE_URL", "p".into()),
        ("MAILROOM_INGEST_QUEUE_URL", "i".into()),
        ("MAILROOM_DISPATCH_QUEUE_URL", "d".into()),
        ("MAILROOM_KMS_KEY_ID", "alias/k".into()),
    ];
    for name in FUNCTIONS {
        let mut function = Function::start(&bins[*name], name, &env).await;
        let (status, log) = function.exit().await;
        assert!(!status.success(), "{name}: {log}");
        assert!(
            log.contains("invalid configuration: MAILROOM_TABLE: is required"),
            "{name}: {log}"
        );
        assert!(!log.contains("ConfigError"), "{name}: {log}");
    }

    // A variable read after the configuration (the poller's CA file) is named the same way.
    let mut env = env.to_vec();
    env.extend([
        ("MAILROOM_TABLE", "t".to_string()),
        ("MAILROOM_IMAP_CA_FILE", "/nonexistent/ca.pem".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
    ]);
    let mut function = Function::start(&bins["poller"], "poller", &env).await;
    let (status, log) = function.exit().await;
    assert!(!status.success(), "{log}");
    assert!(
        log.contains("Error: MAILROOM_IMAP_CA_FILE: cannot read /nonexistent/ca.pem"),
        "{log}"
    );
}

/// Runs `mailroom --prefix <p> local prepare-events --json`, the command the README gives.
async fn prepare_events(prefix: &str) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_mailroom"))
        .args(["--prefix", prefix, "local", "prepare-events", "--json"])
        // The local stack, not a deployed one.
        .env_remove("MAILROOM_TABLE")
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "prepare-events failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON document on stdout")
}

/// Builds the function binaries, as `cargo lambda watch` does, once per test process. They are
/// not targets of this package, so `cargo test` does not build them; this is the same workspace
/// and target dir, so it reuses what the test build compiled.
fn function_binaries() -> HashMap<String, PathBuf> {
    static BINS: OnceLock<HashMap<String, PathBuf>> = OnceLock::new();
    BINS.get_or_init(|| {
        let mut cmd = std::process::Command::new(env!("CARGO"));
        cmd.current_dir(mailroom::local::repo_root()).args([
            "build",
            "--bins",
            "--message-format=json-render-diagnostics",
        ]);
        for f in FUNCTIONS {
            cmd.args(["-p", f]);
        }
        if !cfg!(debug_assertions) {
            cmd.arg("--release");
        }
        let out = cmd.stdin(Stdio::null()).output().expect("cargo runs");
        assert!(
            out.status.success(),
            "building the functions failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Cargo names each built executable; that holds for any target dir or profile.
        let bins: HashMap<String, PathBuf> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|m| m["reason"] == "compiler-artifact")
            .filter_map(|m| {
                let name = m["target"]["name"].as_str()?.to_string();
                Some((name, PathBuf::from(m["executable"].as_str()?)))
            })
            .collect();
        for f in FUNCTIONS {
            assert!(bins.contains_key(*f), "cargo built no {f} binary: {bins:?}");
        }
        bins
    })
    .clone()
}

/// What the function posted for one invocation.
#[derive(Debug)]
enum Answer {
    Response(Value),
    Error(Value),
    InitError(Value),
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Answer::Response(v) => write!(f, "{v}"),
            Answer::Error(v) => write!(f, "error {v}"),
            Answer::InitError(v) => write!(f, "init error {v}"),
        }
    }
}

/// A function binary running against a Runtime API of its own, one invocation at a time.
struct Function {
    child: Child,
    next: mpsc::UnboundedSender<(String, Vec<u8>)>,
    answers: mpsc::UnboundedReceiver<(String, Answer)>,
    log: Arc<Mutex<String>>,
    /// Copy stdout and stderr into `log` until the process closes them.
    readers: Vec<tokio::task::JoinHandle<()>>,
    name: String,
    count: usize,
}

impl Function {
    async fn start(bin: &Path, name: &str, env: &[(&str, String)]) -> Function {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (next, invocations) = mpsc::unbounded_channel();
        let (answered, answers) = mpsc::unbounded_channel();
        let arn = format!("arn:aws:lambda:us-east-1:123456789012:function:{name}");
        tokio::spawn(serve(listener, invocations, answered, arn));

        let mut cmd = Command::new(bin);
        // Only what a Lambda would be given: nothing of the caller's MAILROOM_* or AWS_*.
        for (k, _) in std::env::vars() {
            if k.starts_with("MAILROOM_") || k.starts_with("AWS_") {
                cmd.env_remove(k);
            }
        }
        cmd.envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "local")
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let readers = vec![
            tokio::spawn(collect(child.stdout.take().unwrap(), log.clone())),
            tokio::spawn(collect(child.stderr.take().unwrap(), log.clone())),
        ];
        Function {
            child,
            next,
            answers,
            log,
            readers,
            name: name.to_string(),
            count: 0,
        }
    }

    async fn invoke(&mut self, event: &[u8]) -> Result<Answer, String> {
        self.count += 1;
        let id = format!("{}-{:04}", self.name, self.count);
        self.next.send((id.clone(), event.to_vec())).unwrap();
        tokio::select! {
            answer = self.answers.recv() => {
                let (got, answer) = answer.ok_or("the runtime API stopped")?;
                match answer {
                    Answer::InitError(e) => Err(format!("init failed: {e}")),
                    answer if got == id => Ok(answer),
                    answer => Err(format!("answer for {got}, not {id}: {answer}")),
                }
            }
            status = self.child.wait() => Err(format!("the function exited: {status:?}")),
            _ = tokio::time::sleep(ANSWER_TIMEOUT) => Err(format!("no answer in {ANSWER_TIMEOUT:?}")),
        }
    }

    /// Waits for the process to stop by itself (an init failure) and returns its whole log.
    async fn exit(&mut self) -> (std::process::ExitStatus, String) {
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("the function stops at init")
            .unwrap();
        for reader in self.readers.drain(..) {
            let _ = reader.await;
        }
        (status, self.log())
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

async fn collect(from: impl AsyncRead + Unpin, into: Arc<Mutex<String>>) {
    let mut lines = BufReader::new(from).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let mut log = into.lock().unwrap();
        log.push_str("    ");
        log.push_str(&line);
        log.push('\n');
    }
}

/// Events waiting for `/next`: (request id, event).
type Invocations = mpsc::UnboundedReceiver<(String, Vec<u8>)>;

/// The Runtime API's four routes, HTTP/1.1 with keep-alive, as the runtime client uses it.
/// `/next` waits for the test's next event.
async fn serve(
    listener: TcpListener,
    invocations: Invocations,
    answers: mpsc::UnboundedSender<(String, Answer)>,
    arn: String,
) {
    let invocations = Arc::new(tokio::sync::Mutex::new(invocations));
    while let Ok((stream, _)) = listener.accept().await {
        let (invocations, answers, arn) = (invocations.clone(), answers.clone(), arn.clone());
        tokio::spawn(async move {
            let _ = connection(stream, invocations, answers, arn).await;
        });
    }
}

async fn connection(
    stream: TcpStream,
    invocations: Arc<tokio::sync::Mutex<Invocations>>,
    answers: mpsc::UnboundedSender<(String, Answer)>,
    arn: String,
) -> std::io::Result<()> {
    let mut stream = BufReader::new(stream);
    while let Some((method, path, body)) = read_request(&mut stream).await? {
        let route = path.trim_start_matches("/2018-06-01/runtime/");
        let parsed = || serde_json::from_slice(&body).unwrap_or(Value::Null);
        let reply = match (method.as_str(), route) {
            ("GET", "invocation/next") => {
                let Some((id, event)) = invocations.lock().await.recv().await else {
                    return Ok(());
                };
                let deadline = chrono::Utc::now().timestamp_millis() + 300_000;
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                     Lambda-Runtime-Aws-Request-Id: {id}\r\n\
                     Lambda-Runtime-Deadline-Ms: {deadline}\r\n\
                     Lambda-Runtime-Invoked-Function-Arn: {arn}\r\n\
                     Lambda-Runtime-Trace-Id: Root=1-00000000-000000000000000000000000;Sampled=0\r\n\
                     Content-Length: {}\r\n\r\n",
                    event.len()
                );
                stream.get_mut().write_all(head.as_bytes()).await?;
                stream.get_mut().write_all(&event).await?;
                continue;
            }
            ("POST", "init/error") => Some((String::new(), Answer::InitError(parsed()))),
            ("POST", r) => match r
                .strip_prefix("invocation/")
                .and_then(|r| r.rsplit_once('/'))
            {
                Some((id, "response")) => Some((id.to_string(), Answer::Response(parsed()))),
                Some((id, "error")) => Some((id.to_string(), Answer::Error(parsed()))),
                _ => None,
            },
            _ => None,
        };
        let status = match reply {
            Some(answer) => {
                let _ = answers.send(answer);
                "202 Accepted"
            }
            None => "404 Not Found",
        };
        let body = r#"{"status":"OK"}"#;
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        stream.get_mut().write_all(head.as_bytes()).await?;
        stream.get_mut().write_all(body.as_bytes()).await?;
    }
    Ok(())
}

/// One request: method, path and body (Content-Length or chunked). None at end of stream.
async fn read_request(
    stream: &mut BufReader<TcpStream>,
) -> std::io::Result<Option<(String, String, Vec<u8>)>> {
    let mut line = String::new();
    if stream.read_line(&mut line).await? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let (mut length, mut chunked) = (0usize, false);
    loop {
        let mut header = String::new();
        if stream.read_line(&mut header).await? == 0 {
            return Ok(None);
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            let value = value.trim();
            match name.to_ascii_lowercase().as_str() {
                "content-length" => length = value.parse().unwrap_or(0),
                "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
                _ => {}
            }
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            stream.read_line(&mut size).await?;
            let size = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16)
                .unwrap_or(0);
            let mut chunk = vec![0; size + 2]; // the data and its CRLF
            stream.read_exact(&mut chunk).await?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else {
        body.resize(length, 0);
        stream.read_exact(&mut body).await?;
    }
    Ok(Some((method, path, body)))
}
