//! `mailroom skipped`: messages filters kept out (never silently lost).

use anyhow::Result;
use clap::Subcommand;
use mailroom::context::Context;
use mailroom::views;

#[derive(Subcommand)]
pub enum SkippedCommand {
    List {
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(ctx: &Context, command: SkippedCommand) -> Result<()> {
    let SkippedCommand::List { json } = command;
    let list = ctx.adapters().store.list_skipped().await?;
    views::print_skipped(&list, json);
    Ok(())
}
