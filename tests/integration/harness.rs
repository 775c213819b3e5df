//! Shared setup: the stack (once per process), a fresh prefix and mailbox per test.

use std::sync::OnceLock;

use mailroom::context::{connect, Context};
use mailroom::local::{self, StackInfo};
use mailroom_core::model::{AccountKind, Secret, Security};

static STACK: OnceLock<StackInfo> = OnceLock::new();

/// Starts (or finds) the local stack. `stack.sh up` is idempotent and locked, so parallel
/// test binaries and a developer's running stack are all fine.
pub fn stack() -> &'static StackInfo {
    STACK.get_or_init(|| local::up().expect("the local stack starts (infra/local/stack.sh up)"))
}

pub fn unique(tag: &str) -> String {
    format!(
        "t{}{:06x}-{tag}",
        chrono::Utc::now().format("%H%M%S"),
        rand::random::<u32>() & 0xff_ffff
    )
}

pub struct TestEnv {
    pub ctx: Context,
}

pub async fn env(tag: &str) -> TestEnv {
    stack();
    let prefix = unique(tag).to_lowercase();
    let ctx = connect(&prefix).await.expect("connects and provisions");
    TestEnv { ctx }
}

pub struct TestMailbox {
    pub user: String,
    pub password: String,
}

pub fn mailbox(tag: &str) -> TestMailbox {
    let user = format!("{}@example.test", unique(tag));
    let password = format!("pw-{:08x}", rand::random::<u32>());
    local::mailbox_add(&user, &password).expect("mailbox created");
    TestMailbox { user, password }
}

impl TestEnv {
    /// A group account on `mb`, over implicit TLS verified against the stack's certificate.
    pub async fn add_account(&self, name: &str, mb: &TestMailbox) {
        self.add_account_with(
            name,
            mb,
            &mb.password,
            stack().imaps_port,
            Security::ImplicitTls,
        )
        .await
    }

    pub async fn add_account_with(
        &self,
        name: &str,
        mb: &TestMailbox,
        password: &str,
        port: u16,
        security: Security,
    ) {
        // Group accounts verify their address with SES, as `account add-group` does.
        let new = self.new_account(name, mb, port, security);
        mailroom::accounts::add_group(&self.ctx, new, Secret::new(password))
            .await
            .expect("account added");
    }

    /// A group account on `mb` (no teams, INBOX), as the CLI's flags would give it.
    pub fn new_account(
        &self,
        name: &str,
        mb: &TestMailbox,
        port: u16,
        security: Security,
    ) -> mailroom::accounts::NewAccount {
        mailroom::accounts::NewAccount {
            name: name.into(),
            kind: AccountKind::Group,
            address: Some(mb.user.clone()),
            owner: None,
            imap_host: "127.0.0.1".into(),
            imap_port: port,
            imap_user: mb.user.clone(),
            security,
            folders: vec![],
            fetch_since: None,
            teams: vec![],
        }
    }
}

/// APPENDs raw messages to the mailbox's INBOX over TLS.
pub async fn deliver(mb: &TestMailbox, messages: &[Vec<u8>]) {
    local::deliver(stack(), &mb.user, &mb.password, "INBOX", messages)
        .await
        .expect("messages appended");
}

/// A small message; `id` None leaves out the Message-ID header.
pub fn message(id: Option<&str>, subject: &str) -> Vec<u8> {
    let mut m = String::new();
    m.push_str("From: Customer <customer@example.com>\r\nTo: support@example.test\r\n");
    m.push_str(&format!("Subject: {subject}\r\n"));
    m.push_str("Date: Tue, 3 Mar 2026 10:00:00 +0000\r\n");
    if let Some(id) = id {
        m.push_str(&format!("Message-ID: <{id}>\r\n"));
    }
    m.push_str("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n");
    m.push_str(&format!("Hello, this is {subject}.\r\n"));
    m.into_bytes()
}

pub fn totals_for<'a>(
    totals: &'a [mailroom::cycle::AccountCycle],
    account: &str,
) -> &'a mailroom::cycle::AccountCycle {
    totals
        .iter()
        .find(|t| t.account == account)
        .unwrap_or_else(|| panic!("no totals for {account}: {totals:?}"))
}

/// An AWS emulator of the test's own: moto on a free loopback port, killed when dropped. For
/// tests that read back what SES "sent": `/moto-api/data.json` serialises all of an emulator's
/// state under its lock, which on the shared one (every other test's objects) takes seconds
/// and stalls everyone else.
pub struct OwnMoto {
    child: std::process::Child,
    pub endpoint: String,
}

impl OwnMoto {
    pub fn start() -> OwnMoto {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let bin = std::path::Path::new(&stack().local_dir).join("venv/bin/moto_server");
        let child = std::process::Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{} starts: {e}", bin.display()));
        let moto = OwnMoto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "moto did not start on {port}"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        moto
    }

    /// A fresh prefix on this emulator (and the shared Dovecot).
    pub async fn env(&self, tag: &str) -> TestEnv {
        let mut info = stack().clone();
        info.aws_endpoint = self.endpoint.clone();
        let prefix = unique(tag).to_lowercase();
        let ctx = mailroom::context::connect_local(&prefix, info)
            .await
            .expect("connects and provisions");
        TestEnv { ctx }
    }

    /// Every raw message this emulator's SES recorded (`ses.RawMessage[]`), oldest first.
    pub async fn sent_raw(&self) -> Vec<String> {
        crate::ses::sent_raw_messages(&self.endpoint)
            .await
            .into_iter()
            .map(|m| m.raw_data)
            .collect()
    }
}

impl Drop for OwnMoto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
