//! `mailroom cases`: cases created from email.

use anyhow::{anyhow, Result};
use clap::Subcommand;
use mailroom::context::Context;
use mailroom::views;
use mailroom_core::ports::StoreError;
use mailroom_core::records::{CaseStatus, RecordKind, RecordRef};

#[derive(Subcommand)]
pub enum CasesCommand {
    List {
        #[arg(long)]
        json: bool,
    },
    /// New, Assigned, Pending, Closed, Rejected, Duplicate.
    SetStatus { number: u64, status: String },
}

pub async fn run(ctx: &Context, command: CasesCommand) -> Result<()> {
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
                    .stream(&RecordRef::case(c.number.get()))
                    .await?
                    .into_iter()
                    .filter(|e| e.kind == "email_received")
                    .filter_map(|e| e.message_id)
                    .collect();
                let contact = c
                    .contact
                    .as_deref()
                    .map(|e| contact_name(e).unwrap_or_else(|| e.to_string()));
                out.push(views::case(c, contact, &emails));
            }
            views::print_cases(out, json);
            Ok(())
        }
        CasesCommand::SetStatus { number, status } => {
            let status: CaseStatus = status
                .parse()
                .map_err(|e: mailroom_core::error::Invalid| anyhow!("status: {e}"))?;
            let number = mailroom_core::types::CaseNumber::new(number)
                .map_err(|e| anyhow!("number: {e}"))?;
            let case = store
                .set_case_status(number, status)
                .await
                .map_err(|e| match e {
                    StoreError::NotFound(_) => anyhow!("no case {number}"),
                    other => other.into(),
                })?;
            views::note(format!("case {} is {:?}", case.number, case.status));
            Ok(())
        }
    }
}
