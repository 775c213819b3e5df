//! `mailroom filters`: email filters (R-X): add, list, remove, and test one on a message.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Context as _, Result};
use clap::Subcommand;
use mailroom::context::Context;
use mailroom::views;
use mailroom_core::admin::NewFilter;
use mailroom_core::filters::{evaluate, Filter, FilterInput, Scope, Verdict};
use mailroom_core::ports::{AccountStore, FilterStore, StoreError};

#[derive(Subcommand)]
pub enum FiltersCommand {
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

pub async fn run(ctx: &Context, command: FiltersCommand) -> Result<()> {
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
            let scope = mailroom_core::admin::parse_scope(&scope)?;
            match &scope {
                Scope::Account(a) if store.get_account(a).await?.is_none() => {
                    bail!("--scope: unknown account {a:?}")
                }
                Scope::User(u) if store.get_user(u).await?.is_none() => {
                    bail!("--scope: unknown user {u:?}")
                }
                _ => {}
            }
            let filter = NewFilter {
                scope,
                name,
                from,
                to,
                subject,
                body_any,
                body_all,
                action,
                folder,
            }
            .build()?;
            store.add_filter(&filter).await.map_err(|e| match e {
                StoreError::AlreadyExists(_) => {
                    anyhow!("--name: a filter {:?} already exists", filter.name)
                }
                other => anyhow::Error::from(other).context("--scope"),
            })?;
            views::note(format!(
                "filter {} added ({} {:?})",
                filter.name, filter.scope, filter.action
            ));
            Ok(())
        }
        FiltersCommand::List { json } => {
            let mut list = store.filters().await?;
            list.sort_by(|a, b| (&a.scope, &a.name).cmp(&(&b.scope, &b.name)));
            views::print_filters(&list, json);
            Ok(())
        }
        FiltersCommand::Remove { name } => {
            store.remove_filter(&name).await.map_err(|e| match e {
                StoreError::NotFound(_) => {
                    anyhow!("no filter {name:?} (see `mailroom filters list`)")
                }
                other => other.into(),
            })?;
            views::note(format!("filter {name} removed"));
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
                out.push(views::filter_test(f, matched, &reasons));
            }
            views::print_filter_test(out, json);
            Ok(())
        }
    }
}
