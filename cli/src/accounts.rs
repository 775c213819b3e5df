//! Adding accounts: every field validated before anything is stored, the password sealed.

use anyhow::{anyhow, bail, Result};
use chrono::{NaiveDate, Utc};
use mailroom_core::model::{
    validate_account_name, Account, AccountKind, AccountStatus, ImapSettings, Secret, Security,
};
use mailroom_core::ports::{AccountStore, SecretBox, StoreError};
use mailroom_core::SCHEMA_VERSION;

use crate::context::Context;

#[derive(Debug, Clone)]
pub struct NewAccount {
    pub name: String,
    pub kind: AccountKind,
    pub address: Option<String>,
    pub owner: Option<String>,
    pub imap_host: String,
    pub imap_port: u16,
    pub imap_user: String,
    pub security: Security,
    pub folders: Vec<String>,
    pub fetch_since: Option<NaiveDate>,
    pub teams: Vec<String>,
}

pub async fn add(ctx: &Context, new: NewAccount, password: Secret) -> Result<Account> {
    validate_account_name(&new.name).map_err(|e| anyhow!("--name: {e}"))?;
    if let Some(a) = &new.address {
        if !crate::records::valid_address(a) {
            bail!("--address: {a:?} is not an email address");
        }
    }
    if new.imap_port == 0 {
        bail!("--imap-port: must be between 1 and 65535");
    }
    if new.imap_user.trim().is_empty() {
        bail!("--imap-user: must not be empty");
    }
    if password.expose().is_empty() {
        bail!("--password-stdin: no password was given on standard input");
    }
    if new
        .folders
        .iter()
        .any(|f| f.trim().is_empty() || f.contains(['\r', '\n', '"']))
    {
        bail!("--folder: folder names must be non-empty and hold no quotes or line breaks");
    }
    if new.teams.iter().any(|t| t.trim().is_empty()) {
        bail!("--team: team names must not be empty");
    }
    // R-F8b: resolve now so a bad or private host is refused before it is stored.
    ctx.poller
        .imap
        .resolve(&new.imap_host, new.imap_port)
        .await
        .map_err(|e| anyhow!("--imap-host: {}", e.message))?;
    let adapters = ctx.adapters();
    let secret = adapters.secrets.seal(&new.name, &password).await?;
    let folders = if new.folders.is_empty() {
        vec!["INBOX".to_string()]
    } else {
        new.folders
    };
    let account = Account {
        v: SCHEMA_VERSION,
        name: new.name,
        kind: new.kind,
        address: new.address,
        owner: new.owner,
        imap: ImapSettings {
            host: new.imap_host,
            port: new.imap_port,
            user: new.imap_user,
            security: new.security,
        },
        secret,
        folders,
        fetch_since: new.fetch_since,
        teams: new.teams,
        active: true,
        created_at: Utc::now(),
        folder_state: Default::default(),
        status: AccountStatus::default(),
        case: None,
        person_centric: false,
        case_error: None,
        case_error_at: None,
    };
    match adapters.store.create_account(&account).await {
        Ok(()) => Ok(account),
        Err(StoreError::AlreadyExists(_)) => bail!("account {:?} already exists", account.name),
        Err(e) => Err(e.into()),
    }
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
