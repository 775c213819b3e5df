//! `mailroom users`: users (assignees, followers).

use anyhow::Result;
use clap::Subcommand;
use mailroom::context::Context;
use mailroom::views;

#[derive(Subcommand)]
pub enum UsersCommand {
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

pub async fn run(ctx: &Context, command: UsersCommand) -> Result<()> {
    match command {
        UsersCommand::Add {
            user,
            emails,
            teams,
            inactive,
        } => {
            mailroom::records::add_user(ctx, &user, &emails, &teams, !inactive).await?;
            views::note(format!("user {user} added"));
            Ok(())
        }
        UsersCommand::List { json } => {
            views::print_users(&ctx.adapters().store.list_users().await?, json)
        }
    }
}
