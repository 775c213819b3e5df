//! `mailroom roles`: what users may do with group accounts (R-S2).

use anyhow::{anyhow, Result};
use clap::Subcommand;
use mailroom::context::Context;
use mailroom::views;
use mailroom_core::access::{GroupAccountPermission, Role};
use mailroom_core::ports::StoreError;

#[derive(Subcommand)]
pub enum RolesCommand {
    Add {
        role: String,
        /// Who may send from group accounts: no one, the account's teams, or everyone.
        #[arg(long, value_parser = permission)]
        group_account_permission: GroupAccountPermission,
    },
    List {
        #[arg(long)]
        json: bool,
    },
}

fn permission(s: &str) -> Result<GroupAccountPermission, String> {
    s.parse()
        .map_err(|e: mailroom_core::error::Invalid| e.to_string())
}

pub async fn run(ctx: &Context, command: RolesCommand) -> Result<()> {
    let store = &ctx.adapters().store;
    match command {
        RolesCommand::Add {
            role,
            group_account_permission,
        } => {
            mailroom_core::admin::validate_role_name(&role)?;
            let r = Role {
                v: mailroom_core::SCHEMA_VERSION,
                name: role.clone(),
                group_account_permission,
            };
            store.add_role(&r).await.map_err(|e| match e {
                StoreError::AlreadyExists(_) => anyhow!("role {role:?} already exists"),
                other => other.into(),
            })?;
            views::note(format!(
                "role {role} added (group accounts: {})",
                group_account_permission.as_str()
            ));
        }
        RolesCommand::List { json } => views::print_roles(&store.list_roles().await?, json)?,
    }
    Ok(())
}
