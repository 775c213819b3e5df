//! `mailroom account`: watched mailboxes (group and personal), their email-to-case settings.

use std::io::Read;

use anyhow::{anyhow, bail, Context as _, Result};
use chrono::NaiveDate;
use clap::{Args, Subcommand};
use mailroom::accounts::{self, NewAccount};
use mailroom::context::Context;
use mailroom::views;
use mailroom_core::dispatch::settings::{self as auto_reply, AutoReply};
use mailroom_core::model::{AccountKind, Secret, Security};
use mailroom_core::model::{CaseSettings, Distribution};
use mailroom_core::ports::{AccountStore, IdentityStatus};
use mailroom_core::types::EmailAddress;

#[derive(Args)]
pub struct Connection {
    #[arg(long)]
    imap_host: String,
    #[arg(long)]
    imap_port: u16,
    #[arg(long)]
    imap_user: String,
    /// Read the IMAP password from standard input (never from the command line).
    #[arg(long, required = true)]
    password_stdin: bool,
    #[arg(long, default_value = "implicit-tls")]
    security: Security,
    /// Folders to watch (repeat; default INBOX).
    #[arg(long = "folder")]
    folders: Vec<String>,
    /// First run: import mail that arrived on or after this day (YYYY-MM-DD).
    #[arg(long)]
    fetch_since: Option<NaiveDate>,
    #[arg(long = "team")]
    teams: Vec<String>,
}

impl Connection {
    fn into_account(
        self,
        name: String,
        kind: AccountKind,
        address: Option<String>,
        owner: Option<String>,
    ) -> NewAccount {
        NewAccount {
            name,
            kind,
            address,
            owner,
            imap_host: self.imap_host,
            imap_port: self.imap_port,
            imap_user: self.imap_user,
            security: self.security,
            folders: self.folders,
            fetch_since: self.fetch_since,
            teams: self.teams,
        }
    }
}

#[derive(Subcommand)]
pub enum AccountCommand {
    /// Add a shared group mailbox (admins).
    AddGroup {
        #[arg(long)]
        name: String,
        #[arg(long)]
        address: String,
        #[command(flatten)]
        connection: Connection,
    },
    /// Add a user's personal mailbox.
    AddPersonal {
        #[arg(long)]
        owner: String,
        /// Account name (default: the IMAP user).
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        address: Option<String>,
        #[command(flatten)]
        connection: Connection,
    },
    List {
        #[arg(long)]
        json: bool,
    },
    /// Email-to-case settings of a group account (R-C).
    SetCase {
        account: String,
        #[arg(long)]
        create_case: bool,
        #[arg(long, default_value = "round-robin")]
        distribution: Distribution,
        #[arg(long)]
        assign_to: Option<String>,
        #[arg(long)]
        target_team: Option<String>,
        #[arg(long)]
        position: Option<String>,
        #[arg(long)]
        reopen_on_reply: bool,
    },
    /// Auto-reply of a group account (R-A1, R-A3). Placeholders: {{subject}},
    /// {{case_number}}, {{case_name}}, {{contact_name}}, {{account_name}}.
    SetAutoReply {
        account: String,
        #[arg(long, required_unless_present = "off")]
        subject: Option<String>,
        #[arg(long, required_unless_present = "off")]
        body: Option<String>,
        #[arg(long)]
        html: Option<String>,
        /// Display name of the From (the address is the group address).
        #[arg(long)]
        from_name: Option<String>,
        #[arg(long)]
        reply_to: Option<String>,
        /// At most this many auto-replies to one sender per window (default 5).
        #[arg(long)]
        limit: Option<u32>,
        /// The window in minutes (default 120).
        #[arg(long)]
        window: Option<u32>,
        /// Turn auto-reply off (the templates are kept).
        #[arg(long)]
        off: bool,
    },
    /// How users' mail through the API names a group account (R-S3): `from` (the group
    /// address is the From, the default) or `reply_to` (From the user's own verified
    /// address, the group address as Reply-To).
    SetSendAs {
        account: String,
        #[arg(value_parser = send_as)]
        send_as: mailroom_core::model::SendAs,
    },
    /// Forget the fetch position and import again from a day (R-F9).
    Reset {
        name: String,
        #[arg(long)]
        fetch_since: NaiveDate,
    },
}

pub async fn run(ctx: &Context, command: AccountCommand) -> Result<()> {
    match command {
        AccountCommand::AddGroup {
            name,
            address,
            connection: c,
        } => {
            let password = read_password_stdin()?;
            let new = c.into_account(name, AccountKind::Group, Some(address), None);
            let a = accounts::add_group(ctx, new, password).await?;
            views::note(format!(
                "group account {} added (sending identity {})",
                a.name,
                match a.identity {
                    Some(IdentityStatus::Verified) => "verified",
                    _ => "pending: SES mailed the address a verification link",
                }
            ));
            Ok(())
        }
        AccountCommand::AddPersonal {
            owner,
            name,
            address,
            connection: c,
        } => {
            if owner.trim().is_empty() {
                bail!("--owner: must not be empty");
            }
            let password = read_password_stdin()?;
            let name = name.unwrap_or_else(|| c.imap_user.clone());
            let address = address.or_else(|| Some(c.imap_user.clone()).filter(|u| u.contains('@')));
            let new = c.into_account(name, AccountKind::Personal, address, Some(owner));
            let a = accounts::add(ctx, new, password).await?;
            views::note(format!("personal account {} added", a.name));
            Ok(())
        }
        AccountCommand::List { json } => {
            let list = ctx.adapters().store.list_accounts().await?;
            views::print_accounts(&list, json);
            Ok(())
        }
        AccountCommand::SetCase {
            account,
            create_case,
            distribution,
            assign_to,
            target_team,
            position,
            reopen_on_reply,
        } => {
            let settings = CaseSettings {
                create_case,
                distribution,
                assign_to,
                target_team,
                position,
                reopen_on_reply,
            };
            validate_case_settings(ctx, &account, &settings).await?;
            ctx.adapters()
                .store
                .set_case_settings(&account, &settings)
                .await?;
            views::note(format!(
                "account {account}: email-to-case {}",
                if create_case { "on" } else { "off" }
            ));
            Ok(())
        }
        AccountCommand::SetSendAs { account, send_as } => {
            super::common::require_group(ctx, &account, "it always sends as its owner").await?;
            ctx.adapters().store.set_send_as(&account, send_as).await?;
            let how = match send_as {
                mailroom_core::model::SendAs::From => "From the group address",
                mailroom_core::model::SendAs::ReplyTo => {
                    "From the user's own address, Reply-To the group address"
                }
            };
            views::note(format!("account {account}: users' mail goes {how}"));
            Ok(())
        }
        AccountCommand::SetAutoReply {
            account,
            subject,
            body,
            html,
            from_name,
            reply_to,
            limit,
            window,
            off,
        } => {
            let a = super::common::require_group(ctx, &account, "only group accounts auto-reply")
                .await?;
            let settings = match (off, subject, body, a.auto_reply) {
                (true, None, None, Some(mut kept)) => {
                    kept.enabled = false;
                    Some(kept)
                }
                (true, None, None, None) => None,
                (_, Some(subject), Some(body), _) => Some(AutoReply {
                    enabled: !off,
                    subject,
                    body,
                    html,
                    from_name,
                    reply_to: reply_to
                        .map(|r| EmailAddress::parse(&r))
                        .transpose()
                        .map_err(|e| anyhow!("--reply-to: {}", e.message))?,
                    limit: limit.unwrap_or(auto_reply::DEFAULT_LIMIT),
                    window_minutes: window.unwrap_or(auto_reply::DEFAULT_WINDOW_MINUTES),
                }),
                _ => bail!("--subject and --body go together"),
            };
            if let Some(s) = &settings {
                s.check().map_err(|e| anyhow!("{e}"))?;
            }
            ctx.adapters()
                .store
                .set_auto_reply(&account, settings.as_ref())
                .await?;
            let on = settings.as_ref().is_some_and(|s| s.enabled);
            views::note(format!(
                "account {account}: auto-reply {}",
                if on { "on" } else { "off" }
            ));
            Ok(())
        }
        AccountCommand::Reset { name, fetch_since } => {
            accounts::require(ctx, std::slice::from_ref(&name)).await?;
            ctx.adapters()
                .store
                .reset_account(&name, fetch_since)
                .await?;
            views::note(format!(
                "account {name} will import again from {fetch_since}"
            ));
            Ok(())
        }
    }
}

/// Email-to-case settings may be stored on `account` (R-C): a group account, a known target
/// team unless the distribution is direct, and a known assignee when it is. Errors name the flag.
///
/// It reads the store, and belongs in the core beside `CaseSettings`; it waits here until the
/// core has a place for checks that need the store.
pub async fn validate_case_settings(
    ctx: &Context,
    account: &str,
    settings: &CaseSettings,
) -> Result<()> {
    let store = &ctx.adapters().store;
    let a = super::common::require_account(ctx, account).await?;
    let teams = store.list_teams().await?;
    let assignee_known = match &settings.assign_to {
        Some(u) => store.get_user(u).await?.is_some(),
        None => false,
    };
    settings.check(&a, &teams, assignee_known)?;
    Ok(())
}

/// The password of `--password-stdin`, without its final line break.
fn read_password_stdin() -> Result<Secret> {
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .context("--password-stdin: reading standard input")?;
    let s = s.strip_suffix('\n').unwrap_or(&s);
    let s = s.strip_suffix('\r').unwrap_or(s);
    if s.is_empty() {
        bail!("--password-stdin: standard input was empty");
    }
    Ok(Secret::new(s))
}

fn send_as(s: &str) -> Result<mailroom_core::model::SendAs, String> {
    s.parse()
        .map_err(|e: mailroom_core::error::Invalid| e.to_string())
}
