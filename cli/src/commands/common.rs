//! Checks several commands share: a record, user or account named on the command line must
//! exist.

use anyhow::{anyhow, bail, Result};
use mailroom::context::Context;
use mailroom_core::model::{Account, AccountKind};
use mailroom_core::ports::AccountStore as _;
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

pub async fn require_account(ctx: &Context, account: &str) -> Result<Account> {
    ctx.adapters()
        .store
        .get_account(account)
        .await?
        .ok_or_else(|| anyhow!("unknown account {account:?} (see `mailroom account list`)"))
}

/// A group account, refusing a personal one with `why` (what only group accounts do).
pub async fn require_group(ctx: &Context, account: &str, why: &str) -> Result<Account> {
    let a = require_account(ctx, account).await?;
    if a.kind != AccountKind::Group {
        bail!("account {account:?} is a personal account: {why}");
    }
    Ok(a)
}
