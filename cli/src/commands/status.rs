//! `mailroom status`: per-account health.

use anyhow::Result;
use clap::Args;
use mailroom::context::Context;
use mailroom::views;
use mailroom_core::ports::AccountStore;

#[derive(Args)]
pub struct StatusArgs {
    #[arg(long)]
    json: bool,
}

pub async fn run(ctx: &Context, args: StatusArgs) -> Result<()> {
    let accounts = ctx.adapters().store.list_accounts().await?;
    views::print_status(&accounts, args.json);
    Ok(())
}
