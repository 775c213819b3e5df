//! `mailroom quarantine`: messages that could not be imported, and importing them again.

use anyhow::{anyhow, Result};
use clap::Subcommand;
use mailroom::context::Context;
use mailroom::{cycle, views};
use mailroom_core::ports::{EmailStore, Outgoing, Queue};
use mailroom_core::schedule::Selection;

#[derive(Subcommand)]
pub enum QuarantineCommand {
    List {
        #[arg(long)]
        json: bool,
    },
    /// Import a quarantined message again (after its cause is fixed).
    Replay {
        id: String,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(ctx: &Context, command: QuarantineCommand) -> Result<()> {
    let adapters = ctx.adapters();
    match command {
        QuarantineCommand::List { json } => {
            let list = adapters.store.list_quarantine().await?;
            views::print_quarantine(&list, json);
            Ok(())
        }
        QuarantineCommand::Replay { id, json } => {
            let q = adapters.store.get_quarantine(&id).await?.ok_or_else(|| {
                anyhow!("no quarantined message {id:?} (see `mailroom quarantine list`)")
            })?;
            let pointer = ctx.poller.service().replay_pointer(&q).await?;
            adapters
                .ingest_queue
                .send(&[Outgoing::plain(pointer)])
                .await?;
            let totals = cycle::run(ctx, Selection::Named(vec![])).await?;
            let t = totals
                .iter()
                .find(|t| t.account == q.account)
                .cloned()
                .unwrap_or_default();
            let still = adapters.store.get_quarantine(&id).await?.is_some();
            let reason = if still {
                adapters.store.get_quarantine(&id).await?.map(|q| q.reason)
            } else {
                None
            };
            views::print_replay(&id, &t, &q.account, reason, still, json);
            Ok(())
        }
    }
}
