//! `mailroom teams`: teams cases are distributed in.

use anyhow::{anyhow, Result};
use clap::Subcommand;
use mailroom::context::Context;
use mailroom::views;
use mailroom_core::ports::StoreError;

#[derive(Subcommand)]
pub enum TeamsCommand {
    Add {
        team: String,
    },
    List {
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(ctx: &Context, command: TeamsCommand) -> Result<()> {
    let store = &ctx.adapters().store;
    match command {
        TeamsCommand::Add { team } => {
            mailroom_core::admin::validate_team_name(&team)?;
            store.add_team(&team).await.map_err(|e| match e {
                StoreError::AlreadyExists(_) => anyhow!("team {team:?} already exists"),
                other => other.into(),
            })?;
            views::note(format!("team {team} added"));
        }
        TeamsCommand::List { json } => views::print_teams(&store.list_teams().await?, json),
    }
    Ok(())
}
