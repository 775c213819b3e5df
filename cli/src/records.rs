//! Records, users and teams from the command line and from JSON-lines imports.

use anyhow::{anyhow, bail, Result};
use chrono::Utc;
use mailroom_core::admin::{NewRecord, NewUser};
use mailroom_core::records::{
    normalize_address, Contact, CrmAccount, Lead, Opportunity, RecordKind, RecordRef,
    TeamMembership, User,
};
use mailroom_core::SCHEMA_VERSION;
use serde_json::Value;

use crate::context::Context;

pub fn valid_address(a: &str) -> bool {
    mailroom_core::types::EmailAddress::is_plain(a)
}

fn name_ok(field: &str, n: &str) -> Result<()> {
    if n.trim().is_empty() || n.len() > 200 || n.chars().any(|c| c.is_control()) {
        bail!("{field}: must be 1 to 200 printable characters");
    }
    Ok(())
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

/// Builds a record from its JSON form, naming the field at fault.
pub fn record_from_json(v: &Value) -> Result<NewRecord> {
    let obj = v
        .as_object()
        .ok_or_else(|| anyhow!("a record must be a JSON object"))?;
    let text = |f: &str| -> Option<String> {
        obj.get(f)
            .and_then(|x| x.as_str())
            .map(|s| s.trim().to_string())
    };
    let need = |f: &str| -> Result<String> {
        text(f)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| anyhow!("field {f:?} is required"))
    };
    let email = |f: &str| -> Result<String> {
        let e = need(f)?;
        if !valid_address(&e) {
            bail!("field {f:?}: {e:?} is not an email address");
        }
        Ok(normalize_address(&e))
    };
    let kind: RecordKind = need("type")?
        .parse()
        .map_err(|e: mailroom_core::error::Invalid| anyhow!("field \"type\": {e}"))?;
    let name = need("name")?;
    name_ok("field \"name\"", &name)?;
    Ok(match kind {
        RecordKind::Account => {
            let mut emails = Vec::new();
            match obj.get("emails").or_else(|| obj.get("email")) {
                None | Some(Value::Null) => {}
                Some(Value::String(e)) => emails.push(e.clone()),
                Some(Value::Array(a)) => {
                    for e in a {
                        emails.push(
                            e.as_str()
                                .ok_or_else(|| anyhow!("field \"emails\": must hold strings"))?
                                .to_string(),
                        );
                    }
                }
                Some(_) => bail!("field \"emails\": must be a string or a list of strings"),
            }
            for e in &emails {
                if !valid_address(e) {
                    bail!("field \"emails\": {e:?} is not an email address");
                }
            }
            NewRecord::Account(CrmAccount {
                v: SCHEMA_VERSION,
                name,
                emails: emails.iter().map(|e| normalize_address(e)).collect(),
            })
        }
        RecordKind::Contact => NewRecord::Contact(Contact {
            v: SCHEMA_VERSION,
            name,
            email: email("email")?,
            account: text("account").filter(|a| !a.is_empty()),
        }),
        RecordKind::Lead => NewRecord::Lead(Lead {
            v: SCHEMA_VERSION,
            name,
            email: email("email")?,
            converted_contact: text("converted_contact")
                .filter(|a| !a.is_empty())
                .map(|c| normalize_address(&c)),
            converted_account: text("converted_account").filter(|a| !a.is_empty()),
        }),
        RecordKind::Opportunity => NewRecord::Opportunity(Opportunity {
            v: SCHEMA_VERSION,
            name,
            account: text("account").filter(|a| !a.is_empty()),
        }),
        RecordKind::Case => bail!("field \"type\": cases come from email or the API, not imports"),
    })
}

/// References a record makes to others, which must exist: (field, record).
fn references(r: &NewRecord) -> Vec<(&'static str, RecordRef)> {
    let account = |a: &Option<String>| {
        a.iter()
            .map(|a| ("account", RecordRef::new(RecordKind::Account, a)))
            .collect()
    };
    match r {
        NewRecord::Contact(c) => account(&c.account),
        NewRecord::Opportunity(o) => account(&o.account),
        NewRecord::Lead(l) => l
            .converted_contact
            .iter()
            .map(|c| ("converted_contact", RecordRef::new(RecordKind::Contact, c)))
            .chain(
                l.converted_account
                    .iter()
                    .map(|a| ("converted_account", RecordRef::new(RecordKind::Account, a))),
            )
            .collect(),
        NewRecord::Account(_) => vec![],
    }
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
