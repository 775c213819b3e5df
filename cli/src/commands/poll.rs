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
}

pub async fn run(ctx: &Context, args: PollArgs) -> Result<()> {
    let selection = if args.accounts.is_empty() {
        Selection::AllActive
    } else {
        accounts::require(ctx, &args.accounts).await?;
        Selection::Named(args.accounts)
    };
    let totals = cycle::run(ctx, selection).await?;
    views::print_poll(&totals, args.json)
}
