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
        mailroom::accounts::add_group(
            &self.ctx,
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
            },
            Secret::new(password),
        )
        .await
        .expect("account added");
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
