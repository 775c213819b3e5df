//! `mailroom follow`: make a user follow a record.

use anyhow::Result;
use clap::Args;
use mailroom::context::Context;
use mailroom::views;
use mailroom_core::ports::Followers;

use super::common::{parse_record, require_record, require_user};

#[derive(Args)]
pub struct FollowArgs {
    user: String,
    record: String,
}

pub async fn run(ctx: &Context, args: FollowArgs) -> Result<()> {
    let FollowArgs { user, record } = args;
    let r = parse_record(&record)?;
    require_user(ctx, &user).await?;
    require_record(ctx, &r).await?;
    ctx.adapters().store.follow(&user, &r).await?;
    views::note(format!("{user} follows {r}"));
    Ok(())
}
