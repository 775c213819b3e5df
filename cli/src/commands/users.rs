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
        /// Manages everything; told when a group account fails (R-F7).
        #[arg(long)]
        admin: bool,
        /// The role whose permissions apply (`mailroom roles add`).
        #[arg(long)]
        role: Option<String>,
    },
    /// Gives a user a role, or none (`--none`).
    SetRole {
        user: String,
        #[arg(long, required_unless_present = "none")]
        role: Option<String>,
        #[arg(long, conflicts_with = "role")]
        none: bool,
    },
    /// Whether the user's notifications also go out as email (R-N3).
    SetNotify {
        user: String,
        #[arg(long, value_parser = on_off)]
        email: bool,
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
            admin,
            role,
        } => {
            mailroom::records::add_user_as(
                ctx,
                &user,
                &emails,
                &teams,
                !inactive,
                admin,
                role.as_deref(),
            )
            .await?;
            views::note(format!(
                "user {user} added{}{}",
                if admin { " (admin)" } else { "" },
                role.map(|r| format!(" with role {r}")).unwrap_or_default()
            ));
            Ok(())
        }
        UsersCommand::SetRole {
            user,
            role,
            none: _,
        } => {
            super::common::require_user(ctx, &user).await?;
            let store = &ctx.adapters().store;
            if let Some(r) = &role {
                if store.get_role(r).await?.is_none() {
                    anyhow::bail!("--role: unknown role {r:?} (add it with `mailroom roles add`)");
                }
            }
            store.set_role(&user, role.as_deref()).await?;
            views::note(format!(
                "user {user}: role {}",
                role.as_deref().unwrap_or("none")
            ));
            Ok(())
        }
        UsersCommand::SetNotify { user, email } => {
            super::common::require_user(ctx, &user).await?;
            ctx.adapters().store.set_notify_email(&user, email).await?;
            views::note(format!(
                "user {user}: notification emails {}",
                if email { "on" } else { "off" }
            ));
            Ok(())
        }
        UsersCommand::List { json } => {
            views::print_users(&ctx.adapters().store.list_users().await?, json)
        }
    }
}

fn on_off(s: &str) -> Result<bool, String> {
    match s {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(format!("{s:?}: on or off")),
    }
}
