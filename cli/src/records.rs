//! Records, users and teams from the command line and from JSON-lines imports.

use anyhow::{anyhow, bail, Result};
use chrono::Utc;
use mailroom_core::admin::{NewRecord, NewUser};
use mailroom_core::records::{RecordRef, TeamMembership, User};
use serde_json::Value;

use crate::context::Context;

pub fn valid_address(a: &str) -> bool {
    mailroom_core::types::EmailAddress::is_plain(a)
}

/// `team` or `team:position`.
pub fn parse_membership(s: &str) -> Result<TeamMembership> {
    Ok(mailroom_core::admin::parse_membership(s)?)
}

pub async fn add_user(
    ctx: &Context,
    name: &str,
    emails: &[String],
    teams: &[String],
    active: bool,
) -> Result<User> {
    add_user_as(ctx, name, emails, teams, active, false, None).await
}

/// [`add_user`] with the user's permissions: admin, and a role that must exist. The checks
/// are `mailroom_core::admin::NewUser`'s, which the API uses too.
pub async fn add_user_as(
    ctx: &Context,
    name: &str,
    emails: &[String],
    teams: &[String],
    active: bool,
    admin: bool,
    role: Option<&str>,
) -> Result<User> {
    let new = NewUser {
        name: name.to_string(),
        emails: emails.to_vec(),
        teams: teams.to_vec(),
        active,
        admin,
        role: role.map(str::to_string),
    };
    new.validate()?;
    let store = &ctx.adapters().store;
    let known = store.list_teams().await?;
    let role_exists = match role {
        Some(r) => store.get_role(r).await?.is_some(),
        None => false,
    };
    let user = new.into_user(&known, role_exists, Utc::now())?;
    store.add_user(&user).await.map_err(|e| match e {
        mailroom_core::ports::StoreError::AlreadyExists(_) => {
            anyhow!("user {name:?} already exists")
        }
        other => other.into(),
    })?;
    Ok(user)
}

/// Builds a record from its JSON form, naming the field at fault (`field "email": ...`, which
/// `records add` turns into the flag).
pub fn record_from_json(v: &Value) -> Result<NewRecord> {
    NewRecord::from_json(v).map_err(|e| match (e.field.as_str(), e.message.as_str()) {
        ("", m) => anyhow!("{m}"),
        (f, mailroom_core::admin::REQUIRED) => anyhow!("field {f:?} is required"),
        (f, m) => anyhow!("field {f:?}: {m}"),
    })
}

fn references(r: &NewRecord) -> Vec<(&'static str, RecordRef)> {
    r.references()
}

pub async fn add_record(ctx: &Context, record: &NewRecord) -> Result<()> {
    let store = &ctx.adapters().store;
    for (field, r) in references(record) {
        if !store.record_exists(&r).await? {
            bail!("--{}: no such record {r}", field.replace('_', "-"));
        }
    }
    store.add_record(record).await.map_err(|e| match e {
        mailroom_core::ports::StoreError::AlreadyExists(_) => {
            anyhow!("{} already exists", record.reference())
        }
        other => other.into(),
    })
}

/// Imports JSON lines: every line is checked first (by line and field), references and
/// duplicates included, so a bad file imports nothing.
pub async fn import(ctx: &Context, text: &str) -> Result<usize> {
    let store = &ctx.adapters().store;
    let mut records = Vec::new();
    let mut errors = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let parsed: Result<NewRecord> = serde_json::from_str::<Value>(line)
            .map_err(|e| anyhow!("not JSON: {e}"))
            .and_then(|v| record_from_json(&v));
        match parsed {
            Ok(r) => {
                if !seen.insert(r.reference()) {
                    errors.push(format!("line {line_no}: {} appears twice", r.reference()));
                } else if store.record_exists(&r.reference()).await? {
                    errors.push(format!("line {line_no}: {} already exists", r.reference()));
                }
                records.push((line_no, r));
            }
            Err(e) => errors.push(format!("line {line_no}: {e}")),
        }
    }
    for (line_no, r) in &records {
        for (field, target) in references(r) {
            if !seen.contains(&target) && !store.record_exists(&target).await? {
                errors.push(format!(
                    "line {line_no}: field {field:?}: no such record {target}"
                ));
            }
        }
    }
    if !errors.is_empty() {
        bail!("nothing imported:\n  {}", errors.join("\n  "));
    }
    // Accounts first, so references resolve in any line order.
    records.sort_by_key(|(_, r)| match r {
        NewRecord::Account(_) => 0,
        NewRecord::Contact(_) => 1,
        NewRecord::Opportunity(_) => 2,
        NewRecord::Lead(_) => 3,
    });
    for (_, r) in &records {
        store.add_record(r).await?;
    }
    Ok(records.len())
}
