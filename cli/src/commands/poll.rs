//! `mailroom poll`: one polling cycle run to completion.

use anyhow::Result;
use clap::Args;
use mailroom::context::Context;
use mailroom::{accounts, cycle, views};
use mailroom_core::schedule::Selection;

#[derive(Args)]
pub struct PollArgs {
    #[arg(long = "account")]
    accounts: Vec<String>,
    #[arg(long)]
    json: bool,
    /// Stop after ingest: leave the dispatch queue's events (auto-replies, notifications)
    /// for the dispatch function.
    #[arg(long)]
    no_dispatch: bool,
}

pub async fn run(ctx: &Context, args: PollArgs) -> Result<()> {
    let selection = if args.accounts.is_empty() {
        Selection::AllActive
    } else {
        accounts::require(ctx, &args.accounts).await?;
        Selection::Named(args.accounts)
    };
    let totals = match args.no_dispatch {
        true => cycle::run_without_dispatch(ctx, selection).await?,
        false => cycle::run(ctx, selection).await?,
    };
    views::print_poll(&totals, args.json)
}
