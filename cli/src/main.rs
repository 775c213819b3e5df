//! `mailroom`: the operator CLI. With `--json`, stdout holds exactly one JSON document and
//! everything else goes to stderr.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context as _, Result};
use chrono::{NaiveDate, Utc};
use clap::{Args, Parser, Subcommand};
use mailroom::accounts::{self, NewAccount};
use mailroom::context::{connect, Context};
use mailroom::{cycle, local, views};
use mailroom_core::cases::{CaseSettings, Distribution};
use mailroom_core::model::{AccountKind, ImapSettings, Secret, Security};
use mailroom_core::ports::{AccountStore, EmailStore, Outgoing, Queue, StoreError};
use mailroom_core::records::{CaseStatus, RecordKind, RecordRef};
use mailroom_core::schedule::Selection;
use mailroom_core::SCHEMA_VERSION;
use serde_json::{json, Value};

mod samples;

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
        command: LocalCommand,
    },
    /// Watched mailboxes.
    Account {
        #[command(subcommand)]
        command: AccountCommand,
    },
    /// Run one polling cycle to completion (all active accounts, or those named).
    Poll {
        #[arg(long = "account")]
        accounts: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// Stored emails.
    Emails {
        #[command(subcommand)]
        command: EmailsCommand,
    },
    /// Per-account health: last success, last error and its kind, failures, back-off.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Messages that could not be imported, kept with their reason.
    Quarantine {
        #[command(subcommand)]
        command: QuarantineCommand,
    },
    /// The end-to-end demo: local stack, a demo mailbox with sample mail, one cycle, results.
    Demo,
    /// Teams cases are distributed in.
    Teams {
        #[command(subcommand)]
        command: TeamsCommand,
    },
    /// Users (assignees, followers).
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// CRM records email is linked to.
    Records {
        #[command(subcommand)]
        command: RecordsCommand,
    },
    /// Make a user follow a record (account:<name>, contact:<email>, lead:<email>,
    /// opportunity:<name>, case:<number>).
    Follow { user: String, record: String },
    /// Cases created from email.
    Cases {
        #[command(subcommand)]
        command: CasesCommand,
    },
    /// Email filters (R-X).
    Filters {
        #[command(subcommand)]
        command: FiltersCommand,
    },
    /// Dead-letter queues (messages that failed five times; kept 14 days).
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
    },
    /// Messages filters kept out (never silently lost).
    Skipped {
        #[command(subcommand)]
        command: SkippedCommand,
    },
    /// A user's copies of emails, as their filters left them.
    Inbox {
        user: String,
        #[arg(long)]
        json: bool,
    },
    /// The timeline of a record.
    Stream {
        record: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum FiltersCommand {
    Add {
        /// global, account:<account name> or user:<user name>.
        #[arg(long)]
        scope: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
        #[arg(long)]
        subject: Option<String>,
        #[arg(long = "body-any")]
        body_any: Vec<String>,
        #[arg(long = "body-all")]
        body_all: Vec<String>,
        /// skip, move-to-folder, mark-read, skip-notification.
        #[arg(long)]
        action: String,
        #[arg(long)]
        folder: Option<String>,
    },
    List {
        #[arg(long)]
        json: bool,
    },
    Remove {
        name: String,
    },
    /// Which filters match a message, and why (`all` for every filter).
    Test {
        filter: String,
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum SkippedCommand {
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum TeamsCommand {
    Add {
        team: String,
    },
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum UsersCommand {
    Add {
        user: String,
        #[arg(long = "email")]
        emails: Vec<String>,
        /// `team` or `team:position` (repeat).
        #[arg(long = "team")]
        teams: Vec<String>,
        #[arg(long)]
        inactive: bool,
    },
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum RecordsCommand {
    Add {
        #[command(subcommand)]
        record: AddRecord,
    },
    /// Import JSON lines, one record a line: {"type":"contact","name":..,"email":..,"account":..}.
    Import { file: PathBuf },
    List {
        /// account, contact, lead, opportunity or case (default: all).
        kind: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum AddRecord {
    Account {
        #[arg(long)]
        name: String,
        #[arg(long = "email")]
        emails: Vec<String>,
    },
    Contact {
        #[arg(long)]
        name: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        account: Option<String>,
    },
    Lead {
        #[arg(long)]
        name: String,
        #[arg(long)]
        email: String,
        /// The contact (email) this lead was converted to.
        #[arg(long)]
        converted_contact: Option<String>,
        #[arg(long)]
        converted_account: Option<String>,
    },
    Opportunity {
        #[arg(long)]
        name: String,
        #[arg(long)]
        account: Option<String>,
    },
}

#[derive(Subcommand)]
enum CasesCommand {
    List {
        #[arg(long)]
        json: bool,
    },
    /// New, Assigned, Pending, Closed, Rejected, Duplicate.
    SetStatus { number: u64, status: String },
}

#[derive(Subcommand)]
enum LocalCommand {
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
    /// Stop the local stack.
    Down,
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
enum MailboxCommand {
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

#[derive(Args)]
struct Connection {
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
enum AccountCommand {
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
    /// Forget the fetch position and import again from a day (R-F9).
    Reset {
        name: String,
        #[arg(long)]
        fetch_since: NaiveDate,
    },
}

#[derive(Subcommand)]
enum EmailsCommand {
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum DlqCommand {
    /// Move every message of a dead-letter queue back to its queue, once its cause is fixed
    /// (R-F9), and run it: `ingest` (pointers) or `poll` (poll jobs).
    Redrive {
        queue: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum QuarantineCommand {
    List {
        #[arg(long)]
        json: bool,
    },
    /// Import a quarantined message again (after its cause is fixed).
    Replay {
        id: String,
        #[arg(long)]
        json: bool,
    },
}

fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).expect("serialises"));
}

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

fn opt(v: &Option<impl std::fmt::Display>) -> String {
    v.as_ref()
        .map(|x| x.to_string())
        .unwrap_or_else(|| "-".into())
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
    match cli.command {
        Command::Local { command } => local_cmd(&cli.prefix, command).await,
        Command::Account { command } => {
            let ctx = connect(&cli.prefix).await?;
            account_cmd(&ctx, command).await
        }
        Command::Poll { accounts, json } => {
            let ctx = connect(&cli.prefix).await?;
            let selection = if accounts.is_empty() {
                Selection::AllActive
            } else {
                accounts::require(&ctx, &accounts).await?;
                Selection::Named(accounts)
            };
            let totals = cycle::run(&ctx, selection).await?;
            if json {
                print_json(&serde_json::to_value(&totals)?);
            } else {
                print_cycle(&totals);
            }
            Ok(())
        }
        Command::Emails {
            command: EmailsCommand::List { json },
        } => {
            let ctx = connect(&cli.prefix).await?;
            let store = &ctx.adapters().store;
            let emails = store.list_emails().await?;
            if json {
                // Contacts and leads are keyed by address; the parent also shows their name.
                let mut names = std::collections::HashMap::new();
                for kind in [RecordKind::Contact, RecordKind::Lead] {
                    for r in store.list_records(kind).await? {
                        if let (Some(e), Some(n)) = (r["email"].as_str(), r["name"].as_str()) {
                            names.insert(e.to_string(), n.to_string());
                        }
                    }
                }
                print_json(&Value::Array(
                    emails.iter().map(|e| views::email(e, &names)).collect(),
                ));
            } else {
                for e in &emails {
                    println!(
                        "{}  {:<40}  {:<30}  [{}]",
                        e.date
                            .map(|d| d.format("%Y-%m-%d %H:%M").to_string())
                            .unwrap_or_else(|| "-".repeat(16)),
                        e.subject
                            .as_deref()
                            .unwrap_or("(no subject)")
                            .chars()
                            .take(40)
                            .collect::<String>(),
                        e.from.as_ref().map(|f| f.address.as_str()).unwrap_or("-"),
                        e.accounts.join(", ")
                    );
                }
                eprintln!("{} email(s)", emails.len());
            }
            Ok(())
        }
        Command::Status { json } => {
            let ctx = connect(&cli.prefix).await?;
            let accounts = ctx.adapters().store.list_accounts().await?;
            if json {
                print_json(&Value::Array(accounts.iter().map(views::status).collect()));
            } else {
                for a in &accounts {
                    let s = &a.status;
                    println!(
                        "{:<24} last success {}  failures {}  last error {} {}",
                        a.name,
                        opt(&s.last_success.map(|t| t.format("%Y-%m-%d %H:%M:%S"))),
                        s.consecutive_failures,
                        opt(&s.last_error_kind),
                        s.last_error.as_deref().unwrap_or("")
                    );
                }
            }
            Ok(())
        }
        Command::Quarantine { command } => {
            let ctx = connect(&cli.prefix).await?;
            quarantine_cmd(&ctx, command).await
        }
        Command::Demo => demo().await,
        Command::Teams { command } => {
            let ctx = connect(&cli.prefix).await?;
            match command {
                TeamsCommand::Add { team } => {
                    if team.trim().is_empty() || team.contains(':') {
                        bail!("team: a team name must be non-empty and hold no ':'");
                    }
                    ctx.adapters()
                        .store
                        .add_team(&team)
                        .await
                        .map_err(|e| match e {
                            StoreError::AlreadyExists(_) => anyhow!("team {team:?} already exists"),
                            other => other.into(),
                        })?;
                    eprintln!("team {team} added");
                }
                TeamsCommand::List { json } => {
                    let teams = ctx.adapters().store.list_teams().await?;
                    if json {
                        print_json(&json!(teams
                            .iter()
                            .map(|t| json!({"name": t}))
                            .collect::<Vec<_>>()));
                    } else {
                        teams.iter().for_each(|t| println!("{t}"));
                    }
                }
            }
            Ok(())
        }
        Command::Users { command } => {
            let ctx = connect(&cli.prefix).await?;
            match command {
                UsersCommand::Add {
                    user,
                    emails,
                    teams,
                    inactive,
                } => {
                    mailroom::records::add_user(&ctx, &user, &emails, &teams, !inactive).await?;
                    eprintln!("user {user} added");
                }
                UsersCommand::List { json } => {
                    let users = ctx.adapters().store.list_users().await?;
                    if json {
                        print_json(&serde_json::to_value(&users)?);
                    } else {
                        for u in users {
                            println!(
                                "{:<20} {:<30} {}{}",
                                u.name,
                                u.emails.join(","),
                                u.teams
                                    .iter()
                                    .map(|t| match &t.position {
                                        Some(p) => format!("{}:{p}", t.team),
                                        None => t.team.clone(),
                                    })
                                    .collect::<Vec<_>>()
                                    .join(","),
                                if u.active { "" } else { " (inactive)" }
                            );
                        }
                    }
                }
            }
            Ok(())
        }
        Command::Records { command } => {
            let ctx = connect(&cli.prefix).await?;
            records_cmd(&ctx, command).await
        }
        Command::Follow { user, record } => {
            let ctx = connect(&cli.prefix).await?;
            let r: RecordRef = record.parse().map_err(|e: String| anyhow!("record: {e}"))?;
            let store = &ctx.adapters().store;
            if store.get_user(&user).await?.is_none() {
                bail!("user: unknown user {user:?}");
            }
            if !store.record_exists(&r).await? {
                bail!("record: no such record {r}");
            }
            store.follow(&user, &r).await?;
            eprintln!("{user} follows {r}");
            Ok(())
        }
        Command::Cases { command } => {
            let ctx = connect(&cli.prefix).await?;
            cases_cmd(&ctx, command).await
        }
        Command::Dlq {
            command: DlqCommand::Redrive { queue, json },
        } => {
            let ctx = connect(&cli.prefix).await?;
            let moved = redrive(&ctx, &queue).await?;
            let totals = cycle::run(&ctx, Selection::Named(vec![])).await?;
            if json {
                print_json(&json!({"queue": queue, "moved": moved, "accounts": totals}));
            } else {
                eprintln!("moved {moved} message(s) from the {queue} dead-letter queue");
                print_cycle(&totals);
            }
            Ok(())
        }
        Command::Filters { command } => {
            let ctx = connect(&cli.prefix).await?;
            filters_cmd(&ctx, command).await
        }
        Command::Skipped {
            command: SkippedCommand::List { json },
        } => {
            let ctx = connect(&cli.prefix).await?;
            let list = ctx.adapters().store.list_skipped().await?;
            if json {
                print_json(&Value::Array(list.iter().map(views::skipped).collect()));
            } else {
                for r in &list {
                    println!(
                        "{:<20} {:<36} {:<40} {}",
                        r.account,
                        r.message_id.as_deref().unwrap_or("-"),
                        r.subject
                            .as_deref()
                            .unwrap_or("")
                            .chars()
                            .take(40)
                            .collect::<String>(),
                        r.filter
                    );
                }
                eprintln!("{} skipped message(s)", list.len());
            }
            Ok(())
        }
        Command::Inbox { user, json } => {
            let ctx = connect(&cli.prefix).await?;
            if ctx.adapters().store.get_user(&user).await?.is_none() {
                bail!("user: unknown user {user:?}");
            }
            let list = ctx.adapters().store.inbox(&user).await?;
            if json {
                print_json(&serde_json::to_value(&list)?);
            } else {
                for c in &list {
                    println!(
                        "{:<12} {} {:<40} {}",
                        c.folder,
                        if c.read { "read  " } else { "unread" },
                        c.subject
                            .as_deref()
                            .unwrap_or("")
                            .chars()
                            .take(40)
                            .collect::<String>(),
                        c.message_id
                    );
                }
            }
            Ok(())
        }
        Command::Stream { record, json } => {
            let ctx = connect(&cli.prefix).await?;
            let r: RecordRef = record.parse().map_err(|e: String| anyhow!("record: {e}"))?;
            let store = &ctx.adapters().store;
            if !store.record_exists(&r).await? {
                bail!("record: no such record {r}");
            }
            let entries = store.stream(&r).await?;
            if json {
                print_json(&serde_json::to_value(&entries)?);
            } else {
                for e in entries {
                    println!(
                        "{}  {:<15} {}  {}",
                        e.at.format("%Y-%m-%d %H:%M"),
                        e.kind,
                        e.message_id.as_deref().unwrap_or("-"),
                        e.subject.as_deref().unwrap_or("")
                    );
                }
            }
            Ok(())
        }
    }
}

async fn local_cmd(prefix: &str, command: LocalCommand) -> Result<()> {
    match command {
        LocalCommand::Up { json } => {
            let info = local::up()?;
            let ctx = connect(prefix).await?;
            let mailboxes = local::mailboxes()?;
            let r = &ctx.config().resources;
            let out = json!({
                "aws_endpoint": info.aws_endpoint,
                "imap_host": info.imap_host,
                "imap_port": info.imap_port,
                "imaps_port": info.imaps_port,
                "lmtp_port": info.lmtp_port,
                "ca_file": info.ca_file,
                "local_dir": info.local_dir,
                "prefix": ctx.prefix,
                "mailboxes": mailboxes,
                "resources": {
                    "table": r.table,
                    "bucket": r.bucket,
                    "poll_queue_url": r.poll_queue_url,
                    "ingest_queue_url": r.ingest_queue_url,
                    "dispatch_queue_url": r.dispatch_queue_url,
                    "kms_key_id": r.kms_key_id,
                },
            });
            if json {
                print_json(&out);
            } else {
                println!(
                    "local stack up: AWS at {}, IMAP at {}:{} (TLS {}), prefix {}",
                    info.aws_endpoint, info.imap_host, info.imap_port, info.imaps_port, ctx.prefix
                );
                for m in &mailboxes {
                    println!("  mailbox {} (password {})", m.user, m.password);
                }
            }
            Ok(())
        }
        LocalCommand::Down => local::down(),
        LocalCommand::PrepareEvents { json } => samples::run(prefix, json).await,
        LocalCommand::Mailbox { command } => match command {
            MailboxCommand::Add { user, password } => {
                let password = password.unwrap_or_else(|| format!("{user}-pass"));
                local::mailbox_add(&user, &password)?;
                eprintln!("mailbox {user} ready");
                Ok(())
            }
            MailboxCommand::List { json } => {
                let list = local::mailboxes()?;
                if json {
                    print_json(&serde_json::to_value(&list)?);
                } else {
                    for m in list {
                        println!("{}", m.user);
                    }
                }
                Ok(())
            }
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
            let n = deliver(&info, &to, &password, &folder, &messages).await?;
            eprintln!("delivered {n} message(s) to {to}/{folder}");
            Ok(())
        }
    }
}

async fn deliver(
    info: &local::StackInfo,
    user: &str,
    password: &str,
    folder: &str,
    messages: &[Vec<u8>],
) -> Result<usize> {
    let connector = mailroom_imap::ImapConnector::new(mailroom_imap::ImapOptions {
        allow_private_hosts: true,
        extra_ca_file: Some(info.ca_file.clone()),
        ..Default::default()
    })
    .map_err(|e| anyhow!(e))?;
    let settings = ImapSettings {
        host: info.imap_host.clone(),
        port: info.imaps_port,
        user: user.to_string(),
        security: Security::ImplicitTls,
    };
    mailroom_imap::tools::append(
        &connector,
        &settings,
        &Secret::new(password),
        folder,
        messages,
    )
    .await
    .map_err(|e| anyhow!("delivering to {user}: {e}"))
}

async fn account_cmd(ctx: &Context, command: AccountCommand) -> Result<()> {
    match command {
        AccountCommand::AddGroup {
            name,
            address,
            connection: c,
        } => {
            let password = read_password_stdin()?;
            let new = c.into_account(name, AccountKind::Group, Some(address), None);
            let a = accounts::add(ctx, new, password).await?;
            eprintln!("group account {} added", a.name);
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
            eprintln!("personal account {} added", a.name);
            Ok(())
        }
        AccountCommand::List { json } => {
            let list = ctx.adapters().store.list_accounts().await?;
            if json {
                print_json(&Value::Array(list.iter().map(views::account).collect()));
            } else {
                for a in &list {
                    println!(
                        "{:<24} {:<8} {}@{}:{} {:?}",
                        a.name,
                        format!("{:?}", a.kind).to_lowercase(),
                        a.imap.user,
                        a.imap.host,
                        a.imap.port,
                        a.folders
                    );
                }
            }
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
            let store = &ctx.adapters().store;
            let a = store.get_account(&account).await?.ok_or_else(|| {
                anyhow!("unknown account {account:?} (see `mailroom account list`)")
            })?;
            if a.kind != AccountKind::Group {
                bail!(
                    "account {account:?} is a personal account: only group accounts create cases"
                );
            }
            if let Some(t) = &target_team {
                if !store.list_teams().await?.contains(t) {
                    bail!("--target-team: unknown team {t:?}");
                }
            } else if create_case && distribution != Distribution::Direct {
                bail!("--target-team: required for {distribution:?} distribution");
            }
            if distribution == Distribution::Direct {
                let u = assign_to
                    .as_ref()
                    .ok_or_else(|| anyhow!("--assign-to: required for direct distribution"))?;
                if store.get_user(u).await?.is_none() {
                    bail!("--assign-to: unknown user {u:?}");
                }
            }
            let settings = CaseSettings {
                create_case,
                distribution,
                assign_to,
                target_team,
                position,
                reopen_on_reply,
            };
            store.set_case_settings(&account, &settings).await?;
            eprintln!(
                "account {account}: email-to-case {}",
                if create_case { "on" } else { "off" }
            );
            Ok(())
        }
        AccountCommand::Reset { name, fetch_since } => {
            accounts::require(ctx, std::slice::from_ref(&name)).await?;
            ctx.adapters()
                .store
                .reset_account(&name, fetch_since)
                .await?;
            eprintln!("account {name} will import again from {fetch_since}");
            Ok(())
        }
    }
}

async fn quarantine_cmd(ctx: &Context, command: QuarantineCommand) -> Result<()> {
    let adapters = ctx.adapters();
    match command {
        QuarantineCommand::List { json } => {
            let list = adapters.store.list_quarantine().await?;
            if json {
                print_json(&Value::Array(list.iter().map(views::quarantine).collect()));
            } else {
                for q in &list {
                    println!(
                        "{}  {:<20}  {:<30}  {}",
                        q.id,
                        q.account,
                        q.message_id.as_deref().unwrap_or("-"),
                        q.reason
                    );
                }
                eprintln!("{} quarantined message(s)", list.len());
            }
            Ok(())
        }
        QuarantineCommand::Replay { id, json } => {
            let q = adapters.store.get_quarantine(&id).await?.ok_or_else(|| {
                anyhow!("no quarantined message {id:?} (see `mailroom quarantine list`)")
            })?;
            adapters
                .ingest_queue
                .send(&[Outgoing::plain(q.replay_pointer())])
                .await?;
            let totals = cycle::run(ctx, Selection::Named(vec![])).await?;
            let t = totals
                .iter()
                .find(|t| t.account == q.account)
                .cloned()
                .unwrap_or_default();
            let still = adapters.store.get_quarantine(&id).await?.is_some();
            let out = json!({
                "id": id,
                "account": q.account,
                "imported": t.imported,
                "duplicates": t.duplicates,
                "quarantined": still,
                "reason": if still { adapters.store.get_quarantine(&id).await?.map(|q| q.reason) } else { None },
            });
            if json {
                print_json(&out);
            } else if still {
                println!(
                    "{id} is still quarantined: {}",
                    out["reason"].as_str().unwrap_or("")
                );
            } else {
                println!("{id} imported");
            }
            Ok(())
        }
    }
}

async fn records_cmd(ctx: &Context, command: RecordsCommand) -> Result<()> {
    let store = &ctx.adapters().store;
    match command {
        RecordsCommand::Add { record } => {
            let v = match record {
                AddRecord::Account { name, emails } => {
                    json!({"type": "account", "name": name, "emails": emails})
                }
                AddRecord::Contact {
                    name,
                    email,
                    account,
                } => json!({"type": "contact", "name": name, "email": email, "account": account}),
                AddRecord::Lead {
                    name,
                    email,
                    converted_contact,
                    converted_account,
                } => {
                    json!({"type": "lead", "name": name, "email": email, "converted_contact": converted_contact, "converted_account": converted_account})
                }
                AddRecord::Opportunity { name, account } => {
                    json!({"type": "opportunity", "name": name, "account": account})
                }
            };
            let r = mailroom::records::record_from_json(&v).map_err(|e| {
                anyhow!(
                    "{}",
                    e.to_string().replace("field \"", "--").replace('"', "")
                )
            })?;
            mailroom::records::add_record(ctx, &r).await?;
            eprintln!("{} added", r.reference());
            Ok(())
        }
        RecordsCommand::Import { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let n = mailroom::records::import(ctx, &text).await?;
            eprintln!("imported {n} record(s)");
            Ok(())
        }
        RecordsCommand::List { kind, json } => {
            let kinds: Vec<RecordKind> = match kind {
                Some(k) => vec![k.parse().map_err(|e: String| anyhow!("type: {e}"))?],
                None => vec![
                    RecordKind::Account,
                    RecordKind::Contact,
                    RecordKind::Lead,
                    RecordKind::Opportunity,
                    RecordKind::Case,
                ],
            };
            let mut all = Vec::new();
            for k in kinds {
                for mut r in store.list_records(k).await? {
                    r["type"] = json!(k.as_str());
                    all.push(r);
                }
            }
            if json {
                print_json(&Value::Array(all));
            } else {
                for r in all {
                    println!(
                        "{:<12} {:<30} {}",
                        r["type"].as_str().unwrap_or(""),
                        r["name"]
                            .as_str()
                            .map(str::to_string)
                            .or_else(|| r["number"].as_u64().map(|n| n.to_string()))
                            .unwrap_or_default(),
                        r["email"].as_str().unwrap_or("")
                    );
                }
            }
            Ok(())
        }
    }
}

/// Moves a dead-letter queue's messages back to their queue. Bodies are decoded first, so a
/// message that is not a valid job stays in the DLQ (and is reported) rather than looping.
async fn redrive(ctx: &Context, queue: &str) -> Result<usize> {
    use mailroom_core::messages::{decode, PollJob};
    let a = ctx.adapters();
    let target = match queue {
        "ingest" => &a.ingest_queue,
        "poll" => &a.poll_queue,
        other => bail!("queue: {other:?} is not ingest or poll"),
    };
    let dlq = target.dead_letter();
    let mut moved = 0;
    loop {
        let batch = dlq.receive(10, 0).await?;
        if batch.is_empty() {
            return Ok(moved);
        }
        let mut done = Vec::new();
        for m in &batch {
            let sent = match queue {
                "ingest" => match decode::<mailroom_core::messages::IngestPointer>(&m.body) {
                    Ok(p) => a
                        .ingest_queue
                        .send(&[Outgoing::plain(p)])
                        .await
                        .map(|_| true),
                    Err(e) => {
                        eprintln!("left in the DLQ: {} ({e})", m.message_id);
                        Ok(false)
                    }
                },
                _ => match decode::<PollJob>(&m.body) {
                    Ok(j) => {
                        let job = PollJob::new(&j.account, format!("redrive-{}", m.message_id));
                        let out = Outgoing {
                            group: Some(j.account.clone()),
                            dedupe: Some(format!("{}:{}", j.account, job.cycle)),
                            message: job,
                        };
                        a.poll_queue.send(&[out]).await.map(|_| true)
                    }
                    Err(e) => {
                        eprintln!("left in the DLQ: {} ({e})", m.message_id);
                        Ok(false)
                    }
                },
            };
            if sent? {
                done.push(m.receipt_handle.clone());
            }
        }
        // Undecodable messages stay, invisible for the visibility timeout: the loop ends.
        moved += done.len();
        dlq.delete(&done).await?;
    }
}

async fn filters_cmd(ctx: &Context, command: FiltersCommand) -> Result<()> {
    use mailroom_core::filters::{evaluate, Filter, FilterInput, Pattern, Scope, Verdict};
    use mailroom_core::ports::FilterStore;
    let store = &ctx.adapters().store;
    match command {
        FiltersCommand::Add {
            scope,
            name,
            from,
            to,
            subject,
            body_any,
            body_all,
            action,
            folder,
        } => {
            let scope: Scope = scope.parse().map_err(|e: String| anyhow!("--scope: {e}"))?;
            match &scope {
                Scope::Account(a) if store.get_account(a).await?.is_none() => {
                    bail!("--scope: unknown account {a:?}")
                }
                Scope::User(u) if store.get_user(u).await?.is_none() => {
                    bail!("--scope: unknown user {u:?}")
                }
                _ => {}
            }
            let pattern = |flag: &str, p: Option<String>| -> Result<Option<Pattern>> {
                p.map(|p| Pattern::new(&p).map_err(|e| anyhow!("--{flag}: {e}")))
                    .transpose()
            };
            let filter = Filter {
                v: SCHEMA_VERSION,
                name: name.trim().to_string(),
                scope,
                from: pattern("from", from)?,
                to: pattern("to", to)?,
                subject: pattern("subject", subject)?,
                body_any,
                body_all,
                action: action
                    .parse()
                    .map_err(|e: String| anyhow!("--action: {e}"))?,
                folder,
            };
            filter.validate().map_err(|e| anyhow!(e))?;
            store.add_filter(&filter).await.map_err(|e| match e {
                StoreError::AlreadyExists(_) => {
                    anyhow!("--name: a filter {:?} already exists", filter.name)
                }
                other => anyhow::Error::from(other).context("--scope"),
            })?;
            eprintln!(
                "filter {} added ({} {:?})",
                filter.name, filter.scope, filter.action
            );
            Ok(())
        }
        FiltersCommand::List { json } => {
            let mut list = store.filters().await?;
            list.sort_by(|a, b| (&a.scope, &a.name).cmp(&(&b.scope, &b.name)));
            if json {
                print_json(&Value::Array(list.iter().map(views::filter).collect()));
            } else {
                for f in &list {
                    println!("{:<24} {:<22} {:?}", f.name, f.scope.to_string(), f.action);
                }
            }
            Ok(())
        }
        FiltersCommand::Remove { name } => {
            store.remove_filter(&name).await.map_err(|e| match e {
                StoreError::NotFound(_) => {
                    anyhow!("no filter {name:?} (see `mailroom filters list`)")
                }
                other => other.into(),
            })?;
            eprintln!("filter {name} removed");
            Ok(())
        }
        FiltersCommand::Test { filter, file, json } => {
            let raw =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let parsed = mailroom_core::parse::parse(&raw).map_err(|e| {
                anyhow!(
                    "{}: not a message that would be imported: {e}",
                    file.display()
                )
            })?;
            let input = FilterInput::from_parsed(&parsed);
            let all = store.filters().await?;
            let chosen: Vec<&Filter> = if filter == "all" {
                all.iter().collect()
            } else {
                let f = all
                    .iter()
                    .find(|f| f.name == filter)
                    .ok_or_else(|| anyhow!("no filter {filter:?} (see `mailroom filters list`)"))?;
                vec![f]
            };
            let mut out = Vec::new();
            for f in chosen {
                let (matched, reasons) = match evaluate(f, &input) {
                    Verdict::Match(m) => (true, m.reasons),
                    Verdict::NoMatch(r) => (false, vec![r]),
                    Verdict::NeedsBody => (false, vec!["body unknown".into()]),
                };
                out.push(
                    json!({"filter": f.name, "scope": f.scope.to_string(), "action": f.action,
                    "folder": f.folder, "matches": matched, "reasons": reasons}),
                );
            }
            if json {
                print_json(&Value::Array(out));
            } else {
                for o in &out {
                    println!(
                        "{:<24} {:<9} {}",
                        o["filter"].as_str().unwrap_or(""),
                        if o["matches"] == true {
                            "MATCH"
                        } else {
                            "no match"
                        },
                        o["reasons"]
                            .as_array()
                            .map(|r| r
                                .iter()
                                .filter_map(|x| x.as_str())
                                .collect::<Vec<_>>()
                                .join("; "))
                            .unwrap_or_default()
                    );
                }
            }
            Ok(())
        }
    }
}

async fn cases_cmd(ctx: &Context, command: CasesCommand) -> Result<()> {
    let store = &ctx.adapters().store;
    match command {
        CasesCommand::List { json } => {
            let cases = store.list_cases().await?;
            let contacts = store.list_records(RecordKind::Contact).await?;
            let contact_name = |email: &str| {
                contacts
                    .iter()
                    .find(|c| c["email"] == email)
                    .and_then(|c| c["name"].as_str().map(str::to_string))
            };
            let mut out = Vec::new();
            for c in &cases {
                let emails: Vec<String> = store
                    .stream(&RecordRef::case(c.number))
                    .await?
                    .into_iter()
                    .filter(|e| e.kind == "email_received")
                    .filter_map(|e| e.message_id)
                    .collect();
                out.push(json!({
                    "number": c.number,
                    "name": c.name,
                    "status": format!("{:?}", c.status),
                    "assigned_user": c.assigned_user,
                    "account": c.account,
                    "contact": c.contact.as_deref().map(|e| contact_name(e).unwrap_or_else(|| e.to_string())),
                    "contact_email": c.contact,
                    "lead": c.lead,
                    "teams": c.teams,
                    "mail_account": c.mail_account,
                    "emails": emails,
                    "created_at": c.created_at,
                }));
            }
            if json {
                print_json(&Value::Array(out));
            } else {
                for c in out {
                    println!(
                        "#{:<5} {:<9} {:<12} {:<40} {} email(s)",
                        c["number"],
                        c["status"].as_str().unwrap_or(""),
                        c["assigned_user"].as_str().unwrap_or("-"),
                        c["name"].as_str().unwrap_or(""),
                        c["emails"].as_array().map(|a| a.len()).unwrap_or(0)
                    );
                }
            }
            Ok(())
        }
        CasesCommand::SetStatus { number, status } => {
            let status: CaseStatus = status.parse().map_err(|e: String| anyhow!("status: {e}"))?;
            let case = store
                .set_case_status(number, status)
                .await
                .map_err(|e| match e {
                    StoreError::NotFound(_) => anyhow!("no case {number}"),
                    other => other.into(),
                })?;
            eprintln!("case {} is {:?}", case.number, case.status);
            Ok(())
        }
    }
}

fn print_cycle(totals: &[cycle::AccountCycle]) {
    println!(
        "{:<28} {:>7} {:>8} {:>10} {:>11} {:>7} {:>5} {:>6}",
        "account", "fetched", "imported", "duplicates", "quarantined", "skipped", "cases", "errors"
    );
    for t in totals {
        println!(
            "{:<28} {:>7} {:>8} {:>10} {:>11} {:>7} {:>5} {:>6}{}",
            t.account,
            t.fetched,
            t.imported,
            t.duplicates,
            t.quarantined,
            t.skipped,
            t.cases_created,
            t.errors,
            t.error
                .as_ref()
                .map(|e| format!("  ({}: {e})", opt(&t.error_kind)))
                .unwrap_or_default()
        );
    }
}

/// The README's first command: everything a newcomer needs to see the pipeline work.
async fn demo() -> Result<()> {
    let info = local::up()?;
    let stamp = Utc::now().format("%Y%m%d%H%M%S").to_string();
    // Resources of its own each run: the same sample mail imported again elsewhere would
    // (rightly) be duplicates, which is not what a first look should show.
    let prefix = format!("demo-{stamp}");
    let ctx = connect(&prefix).await?;
    eprintln!("demo resources: prefix {prefix}");
    let user = format!("demo-{stamp}@example.test");
    let password = format!("demo-{:08x}", rand::random::<u32>());
    local::mailbox_add(&user, &password)?;

    let fixtures = local::repo_root().join("tests/fixtures/eml");
    let mut files = Vec::new();
    for group in ["rfc", "legacy", "thirdparty"] {
        for f in std::fs::read_dir(fixtures.join(group))
            .with_context(|| format!("reading {}", fixtures.join(group).display()))?
        {
            let f = f?.path();
            if f.extension().is_some_and(|e| e == "eml") {
                files.push(f);
            }
        }
    }
    files.push(fixtures.join("malformed/no-headers.eml"));
    files.sort();
    let messages: Vec<Vec<u8>> = files.iter().map(std::fs::read).collect::<Result<_, _>>()?;
    let n = deliver(&info, &user, &password, "INBOX", &messages).await?;
    eprintln!("delivered {n} sample messages to {user}");

    let name = format!("demo-{stamp}");
    accounts::add(
        &ctx,
        NewAccount {
            name: name.clone(),
            kind: AccountKind::Group,
            address: Some(user.clone()),
            owner: None,
            imap_host: info.imap_host.clone(),
            imap_port: info.imaps_port,
            imap_user: user.clone(),
            security: Security::ImplicitTls,
            folders: vec![],
            fetch_since: None,
            teams: vec!["support".into()],
        },
        Secret::new(password),
    )
    .await?;
    eprintln!("group account {name} added (IMAP over TLS, password sealed with KMS)");

    // Email-to-case: a support team of three, round-robin, and one known customer.
    let store = &ctx.adapters().store;
    match store.add_team("support").await {
        Ok(()) | Err(StoreError::AlreadyExists(_)) => {}
        Err(e) => return Err(e.into()),
    }
    for user in ["ann", "ben", "cat"] {
        if store.get_user(user).await?.is_none() {
            mailroom::records::add_user(
                &ctx,
                user,
                &[format!("{user}@corp.example")],
                &["support:L1".into()],
                true,
            )
            .await?;
        }
    }
    let customer = mailroom_aws::crm::NewRecord::Contact(mailroom_core::records::Contact {
        v: SCHEMA_VERSION,
        name: "Petra Schmidt".into(),
        email: "petra.schmidt@example.com".into(),
        account: None,
    });
    if !store.record_exists(&customer.reference()).await? {
        store.add_record(&customer).await?;
    }
    store
        .set_case_settings(
            &name,
            &CaseSettings {
                create_case: true,
                distribution: Distribution::RoundRobin,
                assign_to: None,
                target_team: Some("support".into()),
                position: None,
                reopen_on_reply: true,
            },
        )
        .await?;
    eprintln!("email-to-case on: round-robin over team support (ann, ben, cat)");

    let totals = cycle::run(&ctx, Selection::Named(vec![name.clone()])).await?;
    println!("\n== poll cycle ==");
    print_cycle(&totals);
    let again = cycle::run(&ctx, Selection::Named(vec![name.clone()])).await?;
    println!("\n== second cycle (nothing new, nothing duplicated) ==");
    print_cycle(&again);

    println!("\n== emails of {name} ==");
    let emails = ctx.adapters().store.list_emails().await?;
    for e in emails.iter().filter(|e| e.accounts.contains(&name)) {
        println!(
            "  {:<45} from {:<32} {} attachment(s)",
            e.subject
                .as_deref()
                .unwrap_or("(no subject)")
                .chars()
                .take(45)
                .collect::<String>(),
            e.from.as_ref().map(|f| f.address.as_str()).unwrap_or("-"),
            e.attachments.len()
        );
    }
    println!("\n== cases created from {name} (auto-replies and bounces create none) ==");
    let mut cases: Vec<_> = store
        .list_cases()
        .await?
        .into_iter()
        .filter(|c| c.mail_account == name)
        .collect();
    cases.sort_by_key(|c| c.number);
    for c in &cases {
        let emails = store
            .stream(&RecordRef::case(c.number))
            .await?
            .iter()
            .filter(|e| e.kind == "email_received")
            .count();
        println!(
            "  #{:<5} {:<9} {:<5} {:<45} {} email(s)",
            c.number,
            format!("{:?}", c.status),
            c.assigned_user.as_deref().unwrap_or("-"),
            c.name.chars().take(45).collect::<String>(),
            emails
        );
    }
    println!("\n== quarantine of {name} ==");
    for q in ctx
        .adapters()
        .store
        .list_quarantine()
        .await?
        .iter()
        .filter(|q| q.account == name)
    {
        println!("  {}  {}", q.id, q.reason);
    }
    println!(
        "\nExplore (this demo's data lives under its own prefix):\n  cargo run --release --bin mailroom -- --prefix {prefix} emails list\n  cargo run --release --bin mailroom -- --prefix {prefix} cases list\n  cargo run --release --bin mailroom -- --prefix {prefix} status"
    );
    Ok(())
}
