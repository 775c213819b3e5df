//! Adding accounts: every field validated before anything is stored, the password sealed.

use anyhow::{anyhow, bail, Result};
use chrono::Utc;
pub use mailroom_core::admin::NewAccount;
use mailroom_core::model::{Account, Secret};
use mailroom_core::ports::{AccountStore, Mailer, SecretBox, StoreError};
use mailroom_core::types::EmailAddress;

use crate::context::Context;

pub async fn add(ctx: &Context, new: NewAccount, password: Secret) -> Result<Account> {
    new.validate(&password)?;
    // A deployment that refuses plaintext IMAP refuses to store such an account at all.
    ctx.poller
        .imap
        .permits(new.security)
        .map_err(|e| anyhow!("--security: {}", e.message))?;
    // R-F8b: resolve now so a bad or private host is refused before it is stored.
    ctx.poller
        .imap
        .resolve(&new.imap_host, new.imap_port)
        .await
        .map_err(|e| anyhow!("--imap-host: {}", e.message))?;
    let adapters = ctx.adapters();
    let secret = adapters.secrets.seal(&new.name, &password).await?;
    let account = new.into_account(secret, Utc::now());
    match adapters.store.create_account(&account).await {
        Ok(()) => Ok(account),
        Err(StoreError::AlreadyExists(_)) => bail!("account {:?} already exists", account.name),
        Err(e) => Err(e.into()),
    }
}

/// A group account: its address is verified with SES first (R-S1; the emulator verifies at
/// once, AWS mails the address a link), so an address SES refuses is an error here, before
/// anything is stored, and never a silent drop of every auto-reply later.
pub async fn add_group(ctx: &Context, new: NewAccount, password: Secret) -> Result<Account> {
    let address = new.address.clone().unwrap_or_default();
    let address = EmailAddress::parse(&address).map_err(|e| anyhow!("--address: {}", e.message))?;
    let status = ctx
        .adapters()
        .mailer
        .verify_identity(&address)
        .await
        .map_err(|e| anyhow!("--address: SES refused {address} as a sending identity: {e:#}"))?;
    let mut account = add(ctx, new, password).await?;
    ctx.adapters()
        .store
        .set_identity(&account.name, status)
        .await?;
    account.identity = Some(status);
    Ok(account)
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
