//! `mailroom local prepare-events`: readies the local stack for the sample events in `events/`,
//! so that each one answers what its `.expected.json` says (events/README.md).
//!
//! The events are fixed files (handler tests and `cargo lambda invoke --data-file` read them), so
//! the stack is shaped to them: the accounts their poll jobs name, on Dovecot mailboxes holding a
//! little sample mail, and the raw objects their ingest pointers name, written to exactly those
//! S3 keys. (Real keys carry Dovecot's UIDVALIDITY, a timestamp; the pointers say 1.) Running it
//! again changes nothing. `events/poller/unknown-account.json` names an account that is never
//! created, on purpose.

use anyhow::{anyhow, Context as _, Result};
use mailroom_core::model::{AccountKind, Secret, Security};

use crate::accounts::{self, NewAccount};
use crate::context::Context;
use crate::local::{self, StackInfo};
use mailroom_core::ports::{AccountStore, BlobStore};
use serde::Serialize;

/// The admin the api sample events act as: their token, signed by a key whose private half was
/// thrown away, names this user and the issuer `mailroom-samples`, whose public key is
/// `events/api/samples.jwks`. Only a deployment configured with that key set accepts it.
pub const SAMPLE_API_USER: &str = "sample-admin";

/// An account a sample poll job names, and the mail its mailbox starts with.
struct SampleAccount {
    name: &'static str,
    mailbox: &'static str,
    /// Under tests/fixtures/eml.
    fixtures: &'static [&'static str],
}

const ACCOUNTS: &[SampleAccount] = &[
    SampleAccount {
        name: "support",
        mailbox: "support@example.test",
        fixtures: &[
            "rfc/plain-text.eml",
            "rfc/multipart-alternative.eml",
            "thirdparty/message-id-numeric.eml",
        ],
    },
    SampleAccount {
        name: "sales",
        mailbox: "sales@example.test",
        fixtures: &["thirdparty/gmail-reply.eml"],
    },
];

/// The raw message behind each pointer of events/ingest/*.json: (S3 key, fixture).
const RAW_OBJECTS: &[(&str, &str)] = &[
    ("raw/support/INBOX/1/1.eml", "rfc/plain-text.eml"),
    ("raw/support/INBOX/1/2.eml", "rfc/multipart-alternative.eml"),
];

#[derive(Debug, Serialize)]
pub struct Prepared {
    pub prefix: String,
    pub accounts: Vec<PreparedAccount>,
    pub objects: Vec<PreparedObject>,
}

#[derive(Debug, Serialize)]
pub struct PreparedAccount {
    pub name: String,
    pub mailbox: String,
    /// False when the account was already there (kept as it is).
    pub created: bool,
    /// Messages in the mailbox's INBOX now.
    pub messages: usize,
    /// Of those, delivered by this run (only into an empty INBOX, so a rerun adds none).
    pub delivered: usize,
}

#[derive(Debug, Serialize)]
pub struct PreparedObject {
    pub bucket: String,
    pub key: String,
    pub fixture: String,
}

pub async fn prepare(ctx: &Context, info: &StackInfo) -> Result<Prepared> {
    let fixtures = local::repo_root().join("tests/fixtures/eml");
    let read = |f: &str| {
        let path = fixtures.join(f);
        std::fs::read(&path).with_context(|| format!("reading {}", path.display()))
    };
    let existing = local::mailboxes()?;
    let mut accounts_out = Vec::new();
    for sample in ACCOUNTS {
        // An existing Dovecot user keeps its password: accounts of other prefixes hold it sealed.
        let password = match existing.iter().find(|m| m.user == sample.mailbox) {
            Some(m) => m.password.clone(),
            None => {
                let password = format!("{}-pass", sample.name);
                local::mailbox_add(sample.mailbox, &password)?;
                password
            }
        };
        let mut messages = inbox_messages(sample.mailbox)?;
        let mut delivered = 0;
        if messages == 0 {
            let mail = sample
                .fixtures
                .iter()
                .map(|f| read(f))
                .collect::<Result<Vec<_>>>()?;
            delivered = local::deliver(info, sample.mailbox, &password, "INBOX", &mail)
                .await
                .with_context(|| format!("delivering to {}", sample.mailbox))?;
            messages = inbox_messages(sample.mailbox)?;
        }
        let created = match ctx.adapters().store.get_account(sample.name).await? {
            Some(_) => false,
            None => {
                accounts::add(
                    ctx,
                    NewAccount {
                        name: sample.name.into(),
                        kind: AccountKind::Group,
                        address: Some(sample.mailbox.into()),
                        owner: None,
                        imap_host: info.imap_host.clone(),
                        imap_port: info.imaps_port,
                        imap_user: sample.mailbox.into(),
                        security: Security::ImplicitTls,
                        folders: vec![],
                        fetch_since: None,
                        teams: vec![],
                    },
                    Secret::new(password),
                )
                .await?;
                true
            }
        };
        accounts_out.push(PreparedAccount {
            name: sample.name.into(),
            mailbox: sample.mailbox.into(),
            created,
            messages,
            delivered,
        });
    }
    // The user the api samples' token names (events/api/samples.jwks holds its public key).
    if ctx
        .adapters()
        .store
        .get_user(SAMPLE_API_USER)
        .await?
        .is_none()
    {
        crate::records::add_user_as(ctx, SAMPLE_API_USER, &[], &[], true, true, None).await?;
    }
    let bucket = &ctx.config().resources.bucket;
    let mut objects = Vec::new();
    for (key, fixture) in RAW_OBJECTS {
        // Same key, same bytes: a rerun rewrites the object unchanged.
        ctx.adapters()
            .blobs
            .put(key, read(fixture)?, "message/rfc822")
            .await?;
        objects.push(PreparedObject {
            bucket: bucket.clone(),
            key: key.to_string(),
            fixture: format!("tests/fixtures/eml/{fixture}"),
        });
    }
    Ok(Prepared {
        prefix: ctx.prefix.clone(),
        accounts: accounts_out,
        objects,
    })
}

/// Messages in the user's INBOX, from Dovecot itself.
fn inbox_messages(user: &str) -> Result<usize> {
    let out = local::doveadm(&["mailbox", "status", "-u", user, "messages", "INBOX"])?;
    out.split_whitespace()
        .find_map(|w| w.strip_prefix("messages="))
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| anyhow!("unexpected `doveadm mailbox status` output: {out:?}"))
}
