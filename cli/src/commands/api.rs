//! `mailroom api serve`: the `api` function's handler on loopback, as `mailroom local up`
//! starts it for a prefix. Deployed settings (`MAILROOM_TABLE`, `MAILROOM_JWT_*`) are used
//! when set; otherwise the local stack and its signing key.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{anyhow, Context as _, Result};
use clap::Subcommand;
use mailroom::context::connect;
use mailroom::local_api::{self, ApiState, BinaryId};
use mailroom_api::auth::Verifier;
use mailroom_api::{Api, ApiSettings};
use mailroom_aws::Adapters;

#[derive(Subcommand)]
pub enum ApiCommand {
    /// Serve the API on 127.0.0.1 until stopped (`local up` runs this in the background).
    Serve {
        /// 0: the prefix's preferred port, else any free one.
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Where to write the pid, port and binary identity once listening.
        #[arg(long)]
        state_file: Option<PathBuf>,
    },
}

pub async fn run(prefix: &str, command: ApiCommand) -> Result<()> {
    let ApiCommand::Serve { port, state_file } = command;
    let ctx = connect(prefix).await?;
    let local = local_api::verifier_env();
    let lookup = |k: &str| {
        std::env::var(k).ok().or_else(|| {
            if ctx.local.is_some() {
                local.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
            } else {
                None
            }
        })
    };
    let verifier =
        Verifier::from_lookup(lookup).map_err(|e| anyhow!("invalid configuration: {e}"))?;
    let settings =
        ApiSettings::from_lookup(lookup).map_err(|e| anyhow!("invalid configuration: {e}"))?;
    let adapters = Adapters::new(&ctx.clients, ctx.config().clone());
    let api = Arc::new(Api::new(adapters, verifier, settings));
    let wanted = if port == 0 {
        local_api::preferred_port(prefix)
    } else {
        port
    };
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", wanted)).await {
        Ok(l) => l,
        Err(_) if port == 0 => tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?,
        Err(e) => return Err(e).with_context(|| format!("--port: binding 127.0.0.1:{port}")),
    };
    let bound = listener.local_addr()?.port();
    if let Some(path) = state_file {
        let state = ApiState {
            pid: std::process::id(),
            port: bound,
            binary: BinaryId::current()?,
        };
        // Written whole, then renamed: `local up` never reads half a file.
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec(&state)?)?;
        std::fs::rename(&tmp, &path)?;
    }
    eprintln!("mailroom api: serving prefix {prefix} on http://127.0.0.1:{bound}");
    mailroom_api::serve::serve(api, listener)
        .await
        .context("serving the API")
}
