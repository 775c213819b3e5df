//! `mailroom records`: CRM records email is linked to (added one by one, or imported).

use std::path::PathBuf;

use anyhow::{anyhow, Context as _, Result};
use clap::Subcommand;
use mailroom::context::Context;
use mailroom::views;
use mailroom_core::records::RecordKind;
use serde_json::json;

#[derive(Subcommand)]
pub enum RecordsCommand {
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
pub enum AddRecord {
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

pub async fn run(ctx: &Context, command: RecordsCommand) -> Result<()> {
    match command {
        RecordsCommand::Add { record } => {
            // The flags take the import's JSON form, so both paths validate alike.
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
            views::note(format!("{} added", r.reference()));
            Ok(())
        }
        RecordsCommand::Import { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let n = mailroom::records::import(ctx, &text).await?;
            views::note(format!("imported {n} record(s)"));
            Ok(())
        }
        RecordsCommand::List { kind, json } => {
            let kinds: Vec<RecordKind> = match kind {
                Some(k) => vec![k
                    .parse()
                    .map_err(|e: mailroom_core::error::Invalid| anyhow!("type: {e}"))?],
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
                for r in ctx.adapters().store.list_records(k).await? {
                    all.push(views::record(k, r));
                }
            }
            views::print_records(all, json);
            Ok(())
        }
    }
}
