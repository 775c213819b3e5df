//! The local stack: Dovecot and moto started by the project's own script, never by hand; and
//! the helpers the CLI and the bench share to reach it (IMAP connector, delivery, the fixture
//! corpus).

use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{anyhow, bail, Context as _, Result};
use mailroom_core::model::{ImapSettings, Secret, Security};
use mailroom_imap::{ImapConnector, ImapOptions};
use serde::{Deserialize, Serialize};

/// Where the stack keeps its state (must match `stack.sh`).
pub fn local_dir() -> PathBuf {
    std::env::var_os("MAILROOM_LOCAL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/mailroom-local"))
}

/// The checkout this binary was built from (`MAILROOM_REPO` overrides).
pub fn repo_root() -> PathBuf {
    std::env::var_os("MAILROOM_REPO")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."))
}

fn script() -> PathBuf {
    repo_root().join("infra/local/stack.sh")
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StackInfo {
    pub aws_endpoint: String,
    pub imap_host: String,
    pub imap_port: u16,
    pub imaps_port: u16,
    pub lmtp_port: u16,
    pub ca_file: String,
    pub dovecot_config: String,
    pub local_dir: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LocalMailbox {
    pub user: String,
    pub password: String,
}

/// Runs the script; its progress goes to our stderr, its stdout is returned.
fn run(args: &[&str]) -> Result<String> {
    let out = Command::new("bash")
        .arg(script())
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", script().display()))?;
    if !out.status.success() {
        bail!(
            "`stack.sh {}` failed ({}); see the messages above",
            args.join(" "),
            out.status
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Installs what is missing and starts Dovecot and moto (idempotent).
pub fn up() -> Result<StackInfo> {
    let out = run(&["up"])?;
    serde_json::from_str(out.trim()).context("reading the stack description from stack.sh up")
}

pub fn down() -> Result<()> {
    run(&["down"]).map(|_| ())
}

/// The running stack's description, if `up` has run.
pub fn read_stack() -> Result<Option<StackInfo>> {
    let path = local_dir().join("stack.json");
    match std::fs::read_to_string(&path) {
        Ok(s) => Ok(Some(
            serde_json::from_str(&s).with_context(|| format!("reading {}", path.display()))?,
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

pub fn mailbox_add(user: &str, password: &str) -> Result<()> {
    run(&["mailbox-add", user, password]).map(|_| ())
}

pub fn mailboxes() -> Result<Vec<LocalMailbox>> {
    let out = run(&["mailboxes"])?;
    serde_json::from_str(out.trim()).context("reading the mailbox list")
}

/// `doveadm` with the stack's configuration (tests use it to change UIDVALIDITY).
pub fn doveadm(args: &[&str]) -> Result<String> {
    let mut all = vec!["doveadm"];
    all.extend_from_slice(args);
    run(&all)
}

/// Whether the emulator answers on its port (the stack may have been stopped since `up`).
pub fn aws_reachable(info: &StackInfo) -> bool {
    let hostport = info
        .aws_endpoint
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .to_string();
    use std::net::ToSocketAddrs;
    hostport
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .map(|addr| {
            std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(2)).is_ok()
        })
        .unwrap_or(false)
}

/// An IMAP connector for the local Dovecot: loopback allowed, the stack's certificate trusted.
pub fn connector(info: &StackInfo) -> Result<ImapConnector> {
    ImapConnector::new(ImapOptions {
        allow_private_hosts: true,
        extra_ca_file: Some(info.ca_file.clone()),
        ..Default::default()
    })
    .map_err(|e| anyhow!(e))
}

/// A local mailbox user's IMAP settings (implicit TLS on the stack's IMAPS port).
pub fn imap_settings(info: &StackInfo, user: &str) -> ImapSettings {
    ImapSettings {
        host: info.imap_host.clone(),
        port: info.imaps_port,
        user: user.to_string(),
        security: Security::ImplicitTls,
    }
}

/// Delivers raw messages into a local mailbox's folder (IMAP APPEND); returns how many.
pub async fn deliver(
    info: &StackInfo,
    user: &str,
    password: &str,
    folder: &str,
    messages: &[Vec<u8>],
) -> Result<usize> {
    mailroom_imap::tools::append(
        &connector(info)?,
        &imap_settings(info, user),
        &Secret::new(password),
        folder,
        messages,
    )
    .await
    .map_err(|e| anyhow!("delivering to {user}: {e}"))
}

/// The `.eml` files of the named groups of the fixture corpus (`tests/fixtures/eml/<group>`),
/// sorted: the sample mail of `demo` and the bench.
pub fn fixture_files(groups: &[&str]) -> Result<Vec<PathBuf>> {
    let root = repo_root().join("tests/fixtures/eml");
    let mut files = Vec::new();
    for group in groups {
        let dir = root.join(group);
        for f in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let f = f?.path();
            if f.extension().is_some_and(|e| e == "eml") {
                files.push(f);
            }
        }
    }
    files.sort();
    Ok(files)
}
