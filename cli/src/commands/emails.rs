//! `mailroom emails`: stored emails.

use std::collections::HashMap;

use anyhow::Result;
use clap::Subcommand;
use mailroom::context::Context;
use mailroom::views;
use mailroom_core::ports::EmailStore;
use mailroom_core::records::RecordKind;

#[derive(Subcommand)]
pub enum EmailsCommand {
    List {
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(ctx: &Context, command: EmailsCommand) -> Result<()> {
    let EmailsCommand::List { json } = command;
    let store = &ctx.adapters().store;
    let emails = store.list_emails().await?;
    // Contacts and leads are keyed by address; the parent also shows their name.
    let mut names = HashMap::new();
    if json {
        for kind in [RecordKind::Contact, RecordKind::Lead] {
            for r in store.list_records(kind).await? {
                if let (Some(e), Some(n)) = (r["email"].as_str(), r["name"].as_str()) {
                    names.insert(e.to_string(), n.to_string());
                }
            }
        }
    }
    views::print_emails(&emails, &names, json);
    Ok(())
}
