//! `mailroom sent`: what Mailroom sent (auto-replies, notification emails, replies), and
//! what it deliberately did not send, with why.

use anyhow::Result;
use clap::Subcommand;
use mailroom::context::Context;
use mailroom::views;
use mailroom_core::ports::DispatchStore;

#[derive(Subcommand)]
pub enum SentCommand {
    List {
        #[arg(long)]
        json: bool,
        /// Auto-replies and notification emails suppressed (loop rules, the per-sender
        /// limit, failing addresses), each with its reason.
        #[arg(long)]
        suppressed: bool,
    },
}

pub async fn run(ctx: &Context, command: SentCommand) -> Result<()> {
    match command {
        SentCommand::List { json, suppressed } => {
            let store = &ctx.adapters().store;
            if suppressed {
                views::print_suppressed(&store.list_suppressed().await?, json);
            } else {
                views::print_sent(&store.list_sent().await?, json);
            }
            Ok(())
        }
    }
}
