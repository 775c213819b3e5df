//! `mailroom dlq`: dead-letter queues (messages that failed five times; kept 14 days).

use anyhow::{bail, Result};
use clap::Subcommand;
use mailroom::context::Context;
use mailroom::{cycle, views};
use mailroom_core::schedule::Selection;

#[derive(Subcommand)]
pub enum DlqCommand {
    /// Move every message of a dead-letter queue back to its queue, once its cause is fixed
    /// (R-F9), and run it: `ingest` (pointers) or `poll` (poll jobs).
    Redrive {
        queue: String,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(ctx: &Context, command: DlqCommand) -> Result<()> {
    let DlqCommand::Redrive { queue, json } = command;
    let moved = redrive(ctx, &queue).await?;
    let totals = cycle::run(ctx, Selection::Named(vec![])).await?;
    views::print_redrive(&queue, moved, &totals, json);
    Ok(())
}

/// Moves a dead-letter queue's messages back to their queue (`Adapters::redrive`); the ones
/// that are not valid jobs stay and are named.
async fn redrive(ctx: &Context, queue: &str) -> Result<usize> {
    let Some(done) = ctx.adapters().redrive(queue).await? else {
        bail!("queue: {queue:?} is not ingest or poll");
    };
    for (id, why) in &done.left {
        views::note(format!("left in the DLQ: {id} ({why})"));
    }
    Ok(done.moved)
}
