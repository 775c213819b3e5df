//! Adding accounts: every field validated before anything is stored, the password sealed
//! (`mailroom_core::admin::add_account`, which the API uses too).

use anyhow::{anyhow, bail, Result};
use chrono::Utc;
pub use mailroom_core::admin::NewAccount;
use mailroom_core::admin::{add_account, AccountPorts, AddAccountError};
use mailroom_core::model::{Account, Secret};
use mailroom_core::ports::AccountStore;

use crate::context::Context;

/// Adds an account as it is: a group account's address is not verified with SES (see
/// [`add_group`]).
pub async fn add(ctx: &Context, new: NewAccount, password: Secret) -> Result<Account> {
    add_as(ctx, new, password, false).await
}

/// A group account: its address is verified with SES first (R-S1; the emulator verifies at
/// once, AWS mails the address a link), so an address SES refuses is an error here, before
/// anything is stored, and never a silent drop of every auto-reply later.
pub async fn add_group(ctx: &Context, new: NewAccount, password: Secret) -> Result<Account> {
    add_as(ctx, new, password, true).await
}

async fn add_as(
    ctx: &Context,
    new: NewAccount,
    password: Secret,
    verify_identity: bool,
) -> Result<Account> {
    let adapters = ctx.adapters();
    let ports = AccountPorts {
        store: &adapters.store,
        secrets: &adapters.secrets,
        hosts: &ctx.poller.imap,
        mailer: &adapters.mailer,
        verify_identity,
    };
    add_account(ports, new, password, Utc::now())
        .await
        .map_err(|e| match e {
            AddAccountError::Invalid(i) => anyhow!("{i}"),
            AddAccountError::IdentityRefused { address, error } => {
                anyhow!("--address: SES refused {address} as a sending identity: {error:#}")
            }
            AddAccountError::Exists(name) => anyhow!("account {name:?} already exists"),
            AddAccountError::Store(e) => e.into(),
        })
}

/// The named accounts must exist: a typo is an error, not an empty cycle.
pub async fn require(ctx: &Context, names: &[String]) -> Result<()> {
    let all = ctx.adapters().store.list_accounts().await?;
    for n in names {
        if !all.iter().any(|a| &a.name == n) {
            bail!("unknown account {n:?} (see `mailroom account list`)");
        }
    }
    Ok(())
}
