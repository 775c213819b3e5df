//! `mailroom`: the operator CLI. With `--json`, stdout holds exactly one JSON document and
//! everything else goes to stderr. This file parses and dispatches; each command lives in
//! `commands/<noun>.rs`, and all output goes through `mailroom::views`.

mod commands;

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};
use commands::{
    account, api, cases, demo, dlq, emails, filters, follow, inbox, local, notifications, poll,
    quarantine, records, roles, sent, skipped, status, stream, teams, users,
};
use mailroom::context::connect;

#[derive(Parser)]
#[command(
    name = "mailroom",
    version,
    about = "Mailroom: IMAP intake into a CRM, serverless"
)]
struct Cli {
    /// Resource name prefix of the local stack (tables, queues, bucket, key).
    #[arg(
        long,
        global = true,
        env = "MAILROOM_PREFIX",
        default_value = "mailroom"
    )]
    prefix: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The local stack: Dovecot and the AWS emulator on loopback.
    Local {
        #[command(subcommand)]
        command: local::LocalCommand,
    },
    /// Watched mailboxes.
    Account {
        #[command(subcommand)]
        command: account::AccountCommand,
    },
    /// Run one polling cycle to completion (all active accounts, or those named).
    Poll(poll::PollArgs),
    /// Stored emails.
    Emails {
        #[command(subcommand)]
        command: emails::EmailsCommand,
    },
    /// Per-account health: last success, last error and its kind, failures, back-off.
    Status(status::StatusArgs),
    /// Messages that could not be imported, kept with their reason.
    Quarantine {
        #[command(subcommand)]
        command: quarantine::QuarantineCommand,
    },
    /// The end-to-end demo: local stack, a demo mailbox with sample mail, one cycle, results.
    Demo,
    /// Teams cases are distributed in.
    Teams {
        #[command(subcommand)]
        command: teams::TeamsCommand,
    },
    /// The HTTP API on loopback (`local up` starts it for the prefix).
    #[command(hide = true)]
    Api {
        #[command(subcommand)]
        command: api::ApiCommand,
    },
    /// Roles: what their users may do with group accounts.
    Roles {
        #[command(subcommand)]
        command: roles::RolesCommand,
    },
    /// Users (assignees, followers).
    Users {
        #[command(subcommand)]
        command: users::UsersCommand,
    },
    /// CRM records email is linked to.
    Records {
        #[command(subcommand)]
        command: records::RecordsCommand,
    },
    /// Make a user follow a record (account:<name>, contact:<email>, lead:<email>,
    /// opportunity:<name>, case:<number>).
    Follow(follow::FollowArgs),
    /// Cases created from email.
    Cases {
        #[command(subcommand)]
        command: cases::CasesCommand,
    },
    /// Email filters (R-X).
    Filters {
        #[command(subcommand)]
        command: filters::FiltersCommand,
    },
    /// Dead-letter queues (messages that failed five times; kept 14 days).
    Dlq {
        #[command(subcommand)]
        command: dlq::DlqCommand,
    },
    /// Messages filters kept out (never silently lost).
    Skipped {
        #[command(subcommand)]
        command: skipped::SkippedCommand,
    },
    /// A user's copies of emails, as their filters left them.
    Inbox(inbox::InboxArgs),
    /// The timeline of a record.
    Stream(stream::StreamArgs),
    /// What Mailroom sent (auto-replies, notification emails, replies), and what it did not.
    Sent {
        #[command(subcommand)]
        command: sent::SentCommand,
    },
    /// A user's in-app notifications.
    Notifications {
        #[command(subcommand)]
        command: notifications::NotificationsCommand,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    mailroom_runtime::init_tracing_with_default("warn");
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    let prefix = &cli.prefix;
    // `local` and `demo` find or start the stack themselves; the rest need it connected.
    match cli.command {
        Command::Local { command } => local::run(prefix, command).await,
        Command::Demo => demo::run().await,
        Command::Account { command } => account::run(&connect(prefix).await?, command).await,
        Command::Poll(args) => poll::run(&connect(prefix).await?, args).await,
        Command::Emails { command } => emails::run(&connect(prefix).await?, command).await,
        Command::Status(args) => status::run(&connect(prefix).await?, args).await,
        Command::Quarantine { command } => quarantine::run(&connect(prefix).await?, command).await,
        Command::Teams { command } => teams::run(&connect(prefix).await?, command).await,
        Command::Api { command } => api::run(prefix, command).await,
        Command::Roles { command } => roles::run(&connect(prefix).await?, command).await,
        Command::Users { command } => users::run(&connect(prefix).await?, command).await,
        Command::Records { command } => records::run(&connect(prefix).await?, command).await,
        Command::Follow(args) => follow::run(&connect(prefix).await?, args).await,
        Command::Cases { command } => cases::run(&connect(prefix).await?, command).await,
        Command::Filters { command } => filters::run(&connect(prefix).await?, command).await,
        Command::Dlq { command } => dlq::run(&connect(prefix).await?, command).await,
        Command::Skipped { command } => skipped::run(&connect(prefix).await?, command).await,
        Command::Inbox(args) => inbox::run(&connect(prefix).await?, args).await,
        Command::Stream(args) => stream::run(&connect(prefix).await?, args).await,
        Command::Sent { command } => sent::run(&connect(prefix).await?, command).await,
        Command::Notifications { command } => {
            notifications::run(&connect(prefix).await?, command).await
        }
    }
}
