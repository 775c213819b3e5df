//! `mailroom stream`: the timeline of a record.

use anyhow::Result;
use clap::Args;
use mailroom::context::Context;
use mailroom::views;

use super::common::{parse_record, require_record};

#[derive(Args)]
pub struct StreamArgs {
    record: String,
    #[arg(long)]
    json: bool,
}

pub async fn run(ctx: &Context, args: StreamArgs) -> Result<()> {
    let r = parse_record(&args.record)?;
    require_record(ctx, &r).await?;
    let entries = ctx.adapters().store.stream(&r).await?;
    views::print_stream(&entries, args.json)
}
