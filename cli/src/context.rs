//! Finds the stack to talk to and builds every adapter once.
//!
//! Deployed: `MAILROOM_TABLE` and friends are set (as in a Lambda): the standard SDK
//! configuration applies. Local: the stack described by `stack.json` (written by
//! `mailroom local up`), resources named by the prefix and created if missing.

use anyhow::{anyhow, bail, Context as _, Result};
use mailroom_aws::provision::{provision, validate_prefix};
use mailroom_aws::{Adapters, Clients, Config};
use poller::Poller;

use crate::local::{self, StackInfo};

pub struct Context {
    pub clients: Clients,
    pub poller: Poller,
    pub local: Option<StackInfo>,
    pub prefix: String,
}

impl Context {
    pub fn adapters(&self) -> &Adapters {
        &self.poller.adapters
    }
    pub fn config(&self) -> &Config {
        &self.poller.adapters.config
    }
}

pub async fn connect(prefix: &str) -> Result<Context> {
    validate_prefix(prefix).map_err(|e| anyhow!("--prefix: {e}"))?;
    if std::env::var_os("MAILROOM_TABLE").is_some() {
        let config = Config::from_env()?;
        return finish(prefix, Clients::from_env().await, config, None).await;
    }
    let info = local::read_stack()?.ok_or_else(|| {
        anyhow!("the local stack is not running: start it with `mailroom local up`")
    })?;
    connect_local(prefix, info).await
}

/// Connects to a local stack as `info` describes it; a scale run or a test that needs an
/// emulator of its own passes the running stack's description with its own `aws_endpoint`.
pub async fn connect_local(prefix: &str, info: StackInfo) -> Result<Context> {
    validate_prefix(prefix).map_err(|e| anyhow!("--prefix: {e}"))?;
    let (clients, config, info) = local_stack(prefix, info).await?;
    finish(prefix, clients, config, Some(info)).await
}

async fn finish(
    prefix: &str,
    clients: Clients,
    config: Config,
    local: Option<StackInfo>,
) -> Result<Context> {
    let poller = Poller::new(Adapters::new(&clients, config)).map_err(|e| anyhow!(e))?;
    // A table from before the own-address and team-member entries gets them here, once (one
    // GetItem each after that): ingest reads those instead of listing accounts and users.
    let store = &poller.adapters.store;
    store
        .ensure_address_index()
        .await
        .context("indexing the accounts' own addresses")?;
    store
        .ensure_member_index()
        .await
        .context("indexing the teams' members")?;
    // The same for the schedule index: the scheduler sees no account without its attributes.
    store
        .ensure_schedule_index()
        .await
        .context("indexing the accounts' schedules")?;
    Ok(Context {
        clients,
        poller,
        local,
        prefix: prefix.to_string(),
    })
}

/// The running local stack's clients and a configuration naming the prefix's resources
/// (provisioned if missing).
async fn local_stack(prefix: &str, info: StackInfo) -> Result<(Clients, Config, StackInfo)> {
    if !local::aws_reachable(&info) {
        bail!(
            "the local stack is down (nothing answers at {}): start it with `mailroom local up`",
            info.aws_endpoint
        );
    }
    let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into());
    let clients = Clients::for_endpoint(&info.aws_endpoint, &region).await;
    let resources = provision(&clients, prefix)
        .await
        .context("provisioning local resources")?;
    let defaults = [
        ("MAILROOM_TABLE", resources.table.clone()),
        ("MAILROOM_BUCKET", resources.bucket.clone()),
        ("MAILROOM_POLL_QUEUE_URL", resources.poll_queue_url.clone()),
        (
            "MAILROOM_INGEST_QUEUE_URL",
            resources.ingest_queue_url.clone(),
        ),
        (
            "MAILROOM_DISPATCH_QUEUE_URL",
            resources.dispatch_queue_url.clone(),
        ),
        ("MAILROOM_KMS_KEY_ID", resources.kms_key_id.clone()),
        // The local IMAP server lives on loopback, with the stack's own certificate.
        ("MAILROOM_ALLOW_PRIVATE_HOSTS", "true".to_string()),
        // Dovecot's plaintext port serves the tests of `security: plain`.
        ("MAILROOM_ALLOW_PLAINTEXT", "true".to_string()),
        ("MAILROOM_IMAP_CA_FILE", info.ca_file.clone()),
        // The local cycle reads accounts, filters and users afresh on every batch, so a change
        // made a moment ago (tests make many) is seen by the next poll. A Lambda keeps them
        // for a minute.
        ("MAILROOM_INGEST_CACHE_SECONDS", "0".to_string()),
    ];
    let default = |k: &str| {
        defaults
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.clone())
    };
    let config = Config::from_lookup(|k| {
        // Resource names always come from the prefix; tunables may be overridden.
        if k.ends_with("_URL") || matches!(k, "MAILROOM_BUCKET" | "MAILROOM_KMS_KEY_ID") {
            return default(k);
        }
        std::env::var(k).ok().or_else(|| default(k))
    })?;
    Ok((clients, config, info))
}
