//! Checks several commands share: a record or user named on the command line must exist.

use anyhow::{anyhow, bail, Result};
use mailroom::context::Context;
use mailroom_core::records::RecordRef;

/// `account:<name>`, `contact:<email>`, ..., `case:<number>`, as the `record` argument.
pub fn parse_record(record: &str) -> Result<RecordRef> {
    record
        .parse()
        .map_err(|e: mailroom_core::error::Invalid| anyhow!("record: {e}"))
}

pub async fn require_record(ctx: &Context, r: &RecordRef) -> Result<()> {
    if !ctx.adapters().store.record_exists(r).await? {
        bail!("record: no such record {r}");
    }
    Ok(())
}

pub async fn require_user(ctx: &Context, user: &str) -> Result<()> {
    if ctx.adapters().store.get_user(user).await?.is_none() {
        bail!("user: unknown user {user:?}");
    }
    Ok(())
}
