//! `mailroom notifications`: a user's in-app notifications (R-N).

use anyhow::Result;
use clap::Subcommand;
use mailroom::context::Context;
use mailroom::views;
use mailroom_core::ports::DispatchStore;

use super::common::require_user;

#[derive(Subcommand)]
pub enum NotificationsCommand {
    /// Newest first.
    List {
        #[arg(long)]
        user: String,
        #[arg(long)]
        json: bool,
    },
    /// Mark one read (by its key, as listed).
    Read {
        #[arg(long)]
        user: String,
        key: String,
    },
}

pub async fn run(ctx: &Context, command: NotificationsCommand) -> Result<()> {
    let store = &ctx.adapters().store;
    match command {
        NotificationsCommand::List { user, json } => {
            require_user(ctx, &user).await?;
            views::print_notifications(&store.notifications(&user).await?, json);
            Ok(())
        }
        NotificationsCommand::Read { user, key } => {
            require_user(ctx, &user).await?;
            if !store.mark_read(&user, &key).await? {
                anyhow::bail!("user {user:?} has no notification {key:?}");
            }
            views::note(format!("notification {key} read"));
            Ok(())
        }
    }
}
