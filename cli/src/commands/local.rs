//! `mailroom local`: the local stack (Dovecot and the AWS emulator on loopback).

use std::path::PathBuf;

use anyhow::{anyhow, Context as _, Result};
use clap::Subcommand;
use mailroom::context::connect;
use mailroom::{local, local_api, samples, views};

#[derive(Subcommand)]
pub enum LocalCommand {
    /// Install what is missing, start and provision the local stack (idempotent).
    Up {
        #[arg(long)]
        json: bool,
    },
    /// Prepare the stack for the sample events in events/ (accounts, mail, raw objects).
    PrepareEvents {
        #[arg(long)]
        json: bool,
    },
    /// Stop the local stack (and every prefix's local API).
    Down,
    /// Print a token the local API accepts for a user (valid 12 hours).
    Token { user: String },
    /// Mailboxes in the local Dovecot.
    Mailbox {
        #[command(subcommand)]
        command: MailboxCommand,
    },
    /// Deliver .eml files into a local mailbox (IMAP APPEND).
    Deliver {
        #[arg(long)]
        to: String,
        #[arg(long)]
        password: Option<String>,
        #[arg(long, default_value = "INBOX")]
        folder: String,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(Subcommand)]
pub enum MailboxCommand {
    /// Create (or reset the password of) a local Dovecot user.
    Add {
        user: String,
        #[arg(long)]
        password: Option<String>,
    },
    List {
        #[arg(long)]
        json: bool,
    },
}

/// Takes the prefix rather than a connected context: the stack may not be up yet.
pub async fn run(prefix: &str, command: LocalCommand) -> Result<()> {
    match command {
        LocalCommand::Up { json } => {
            let info = local::up()?;
            let ctx = connect(prefix).await?;
            let mailboxes = local::mailboxes()?;
            let resources = &ctx.config().resources;
            let api = local_api::ensure(&ctx.prefix)?;
            views::print_local_up(&info, &ctx.prefix, &mailboxes, resources, &api.url(), json);
            Ok(())
        }
        LocalCommand::PrepareEvents { json } => {
            let info = local::up()?;
            let ctx = connect(prefix).await?;
            let prepared = samples::prepare(&ctx, &info).await?;
            views::print_prepared_events(&prepared, json)
        }
        LocalCommand::Down => {
            local_api::stop_all();
            local::down()
        }
        LocalCommand::Token { user } => {
            if user.trim().is_empty() {
                anyhow::bail!("user: a user name is required");
            }
            println!("{}", local_api::token(&user)?);
            Ok(())
        }
        LocalCommand::Mailbox { command } => match command {
            MailboxCommand::Add { user, password } => {
                let password = password.unwrap_or_else(|| format!("{user}-pass"));
                local::mailbox_add(&user, &password)?;
                views::note(format!("mailbox {user} ready"));
                Ok(())
            }
            MailboxCommand::List { json } => views::print_mailboxes(&local::mailboxes()?, json),
        },
        LocalCommand::Deliver {
            to,
            password,
            folder,
            files,
        } => {
            let info = local::read_stack()?
                .ok_or_else(|| anyhow!("the local stack is not running: `mailroom local up`"))?;
            let password = match password {
                Some(p) => p,
                None => local::mailboxes()?
                    .into_iter()
                    .find(|m| m.user == to)
                    .map(|m| m.password)
                    .ok_or_else(|| anyhow!("--to: no local mailbox {to:?}"))?,
            };
            let mut messages = Vec::new();
            for f in &files {
                messages
                    .push(std::fs::read(f).with_context(|| format!("reading {}", f.display()))?);
            }
            let n = local::deliver(&info, &to, &password, &folder, &messages).await?;
            views::note(format!("delivered {n} message(s) to {to}/{folder}"));
            Ok(())
        }
    }
}
