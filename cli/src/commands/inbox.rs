//! `mailroom inbox`: a user's copies of emails, as their filters left them.

use anyhow::Result;
use clap::Args;
use mailroom::context::Context;
use mailroom::views;

use super::common::require_user;

#[derive(Args)]
pub struct InboxArgs {
    user: String,
    #[arg(long)]
    json: bool,
}

pub async fn run(ctx: &Context, args: InboxArgs) -> Result<()> {
    require_user(ctx, &args.user).await?;
    let list = ctx.adapters().store.inbox(&args.user).await?;
    views::print_inbox(&list, args.json)
}
