//! Inputs an operator gives (accounts, record adds and JSON-lines imports): pure types with
//! their validation, so the adapter stores them and the CLI (later the API) builds them
//! without either owning the other's concern.

use chrono::{DateTime, NaiveDate, Utc};

use crate::error::Invalid;
use crate::model::{
    validate_account_name, Account, AccountKind, ImapSettings, SealedSecret, Secret, Security,
};
use crate::records::{
    normalize_address, Contact, CrmAccount, Lead, Opportunity, RecordKind, RecordRef,
};
use crate::types::EmailAddress;

/// A record as the CLI adds or imports it (cases come from email, never from here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewRecord {
    Account(CrmAccount),
    Contact(Contact),
    Lead(Lead),
    Opportunity(Opportunity),
}

impl NewRecord {
    /// The record this becomes: contacts and leads are named by address, the rest by name.
    pub fn reference(&self) -> RecordRef {
        match self {
            NewRecord::Account(a) => RecordRef::new(RecordKind::Account, &a.name),
            NewRecord::Contact(c) => RecordRef::new(RecordKind::Contact, &c.email),
            NewRecord::Lead(l) => RecordRef::new(RecordKind::Lead, &l.email),
            NewRecord::Opportunity(o) => RecordRef::new(RecordKind::Opportunity, &o.name),
        }
    }

    /// The addresses linking finds this record by (R-L2), normalised.
    pub fn addresses(&self) -> Vec<String> {
        match self {
            NewRecord::Account(a) => a.emails.iter().map(|e| normalize_address(e)).collect(),
            NewRecord::Contact(c) => vec![normalize_address(&c.email)],
            NewRecord::Lead(l) => vec![normalize_address(&l.email)],
            NewRecord::Opportunity(_) => vec![],
        }
    }

    /// The account a contact's address-index entries carry, so linking resolves it without
    /// another read.
    pub fn indexed_account(&self) -> Option<&str> {
        match self {
            NewRecord::Contact(c) => c.account.as_deref(),
            _ => None,
        }
    }
}

/// A record name: printable, 1 to 200 characters.
fn name_ok(field: &str, n: &str) -> Result<(), Invalid> {
    if n.trim().is_empty() || n.len() > 200 || n.chars().any(|c| c.is_control()) {
        return Err(Invalid::new(field, "must be 1 to 200 printable characters"));
    }
    Ok(())
}

/// What [`NewRecord::from_json`] says of a required field it did not find.
pub const REQUIRED: &str = "is required";

impl NewRecord {
    /// A record from its JSON form (the CLI's flags and import lines, the API's body), the
    /// field at fault named (`field` empty: the value is not an object; message [`REQUIRED`]:
    /// a required field is missing or empty).
    pub fn from_json(v: &serde_json::Value) -> Result<NewRecord, Invalid> {
        use serde_json::Value;
        let obj = v
            .as_object()
            .ok_or_else(|| Invalid::value("a record must be a JSON object"))?;
        let text = |f: &str| -> Option<String> {
            obj.get(f)
                .and_then(|x| x.as_str())
                .map(|s| s.trim().to_string())
        };
        let need = |f: &str| -> Result<String, Invalid> {
            text(f)
                .filter(|s| !s.is_empty())
                .ok_or_else(|| Invalid::new(f, REQUIRED))
        };
        let email = |f: &str| -> Result<String, Invalid> {
            let e = need(f)?;
            if !EmailAddress::is_plain(&e) {
                return Err(Invalid::new(f, format!("{e:?} is not an email address")));
            }
            Ok(normalize_address(&e))
        };
        let kind: RecordKind = need("type")?
            .parse()
            .map_err(|e: Invalid| Invalid::new("type", e.message))?;
        let name = need("name")?;
        name_ok("name", &name)?;
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
                                    .ok_or_else(|| Invalid::new("emails", "must hold strings"))?
                                    .to_string(),
                            );
                        }
                    }
                    Some(_) => {
                        return Err(Invalid::new(
                            "emails",
                            "must be a string or a list of strings",
                        ))
                    }
                }
                for e in &emails {
                    if !EmailAddress::is_plain(e) {
                        return Err(Invalid::new(
                            "emails",
                            format!("{e:?} is not an email address"),
                        ));
                    }
                }
                NewRecord::Account(CrmAccount {
                    v: crate::SCHEMA_VERSION,
                    name,
                    emails: emails.iter().map(|e| normalize_address(e)).collect(),
                })
            }
            RecordKind::Contact => NewRecord::Contact(Contact {
                v: crate::SCHEMA_VERSION,
                name,
                email: email("email")?,
                account: text("account").filter(|a| !a.is_empty()),
            }),
            RecordKind::Lead => NewRecord::Lead(Lead {
                v: crate::SCHEMA_VERSION,
                name,
                email: email("email")?,
                converted_contact: text("converted_contact")
                    .filter(|a| !a.is_empty())
                    .map(|c| normalize_address(&c)),
                converted_account: text("converted_account").filter(|a| !a.is_empty()),
            }),
            RecordKind::Opportunity => NewRecord::Opportunity(Opportunity {
                v: crate::SCHEMA_VERSION,
                name,
                account: text("account").filter(|a| !a.is_empty()),
            }),
            RecordKind::Case => {
                return Err(Invalid::new(
                    "type",
                    "cases come from email or the API, not imports",
                ))
            }
        })
    }

    /// References this record makes to others, which must exist: (field, record).
    pub fn references(&self) -> Vec<(&'static str, RecordRef)> {
        let account = |a: &Option<String>| {
            a.iter()
                .map(|a| ("account", RecordRef::new(RecordKind::Account, a)))
                .collect()
        };
        match self {
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
}

/// A watched mailbox as an operator (or, later, the API) asks for it, before its password is
/// sealed.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub name: String,
    pub kind: AccountKind,
    pub address: Option<String>,
    pub owner: Option<String>,
    pub imap_host: String,
    pub imap_port: u16,
    pub imap_user: String,
    pub security: Security,
    pub folders: Vec<String>,
    pub fetch_since: Option<NaiveDate>,
    pub teams: Vec<String>,
}

impl NewAccount {
    /// Refuses what cannot be stored, naming the flag at fault. (Whether the host resolves to
    /// an allowed address is the IMAP adapter's check, R-F8b.)
    pub fn validate(&self, password: &Secret) -> Result<(), Invalid> {
        validate_account_name(&self.name).map_err(|e| Invalid::new("--name", e.message))?;
        if let Some(a) = &self.address {
            if !EmailAddress::is_plain(a) {
                return Err(Invalid::new(
                    "--address",
                    format!("{a:?} is not an email address"),
                ));
            }
        }
        if self.imap_port == 0 {
            return Err(Invalid::new("--imap-port", "must be between 1 and 65535"));
        }
        if self.imap_user.trim().is_empty() {
            return Err(Invalid::new("--imap-user", "must not be empty"));
        }
        if password.expose().is_empty() {
            return Err(Invalid::new(
                "--password-stdin",
                "no password was given on standard input",
            ));
        }
        if self
            .folders
            .iter()
            .any(|f| f.trim().is_empty() || f.contains(['\r', '\n', '"']))
        {
            return Err(Invalid::new(
                "--folder",
                "folder names must be non-empty and hold no quotes or line breaks",
            ));
        }
        if self.teams.iter().any(|t| t.trim().is_empty()) {
            return Err(Invalid::new("--team", "team names must not be empty"));
        }
        Ok(())
    }

    /// The account to store, its password already sealed; INBOX when no folder was named.
    pub fn into_account(self, secret: SealedSecret, now: DateTime<Utc>) -> Account {
        let imap = ImapSettings {
            host: self.imap_host,
            port: self.imap_port,
            user: self.imap_user,
            security: self.security,
        };
        let mut account = Account::new(self.name, self.kind, imap, secret, now);
        account.address = self.address;
        account.owner = self.owner;
        if !self.folders.is_empty() {
            account.folders = self.folders;
        }
        account.fetch_since = self.fetch_since;
        account.teams = self.teams;
        account
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SCHEMA_VERSION;

    #[test]
    fn a_record_is_named_and_found_by_its_normalised_address() {
        let c = NewRecord::Contact(Contact {
            v: SCHEMA_VERSION,
            name: "Ann".into(),
            email: " Ann@Example.COM ".into(),
            account: Some("Acme".into()),
        });
        assert_eq!(c.reference().to_string(), "contact:ann@example.com");
        assert_eq!(c.addresses(), ["ann@example.com"]);
        assert_eq!(c.indexed_account(), Some("Acme"));
        let o = NewRecord::Opportunity(Opportunity {
            v: SCHEMA_VERSION,
            name: "Deal".into(),
            account: Some("Acme".into()),
        });
        assert!(o.addresses().is_empty());
        assert_eq!(o.indexed_account(), None);
    }

    #[test]
    fn a_record_from_json_names_the_field_at_fault() {
        let field = |v: serde_json::Value| NewRecord::from_json(&v).unwrap_err();
        let e = field(serde_json::json!({"type": "contact", "name": "Ann"}));
        assert_eq!((e.field.as_str(), e.message.as_str()), ("email", REQUIRED));
        let e = field(serde_json::json!({"type": "contact", "name": "Ann", "email": "x\r\ny"}));
        assert_eq!(e.field, "email");
        assert_eq!(
            field(serde_json::json!({"type": "thing", "name": "x"})).field,
            "type"
        );
        assert_eq!(
            field(serde_json::json!({"type": "case", "name": "x"})).field,
            "type"
        );
        assert_eq!(
            field(serde_json::json!({"type": "account", "name": " "})).field,
            "name"
        );
        let e = field(serde_json::json!({"type": "account", "name": "A", "emails": [1]}));
        assert_eq!(e.field, "emails");
        assert_eq!(field(serde_json::json!([])).field, "");
        let lead = NewRecord::from_json(&serde_json::json!({
            "type": "lead", "name": "L", "email": "L@X.example",
            "converted_contact": "C@X.example", "converted_account": "Acme"}))
        .unwrap();
        assert_eq!(lead.reference().to_string(), "lead:l@x.example");
        let refs: Vec<String> = lead
            .references()
            .iter()
            .map(|(f, r)| format!("{f}={r}"))
            .collect();
        assert_eq!(
            refs,
            [
                "converted_contact=contact:c@x.example",
                "converted_account=account:Acme"
            ]
        );
    }

    #[test]
    fn a_new_account_is_refused_with_its_flag_or_becomes_an_account() {
        let new = NewAccount {
            name: "support".into(),
            kind: AccountKind::Group,
            address: Some("support@example.test".into()),
            owner: None,
            imap_host: "imap.example.test".into(),
            imap_port: 993,
            imap_user: "support".into(),
            security: Security::ImplicitTls,
            folders: vec![],
            fetch_since: None,
            teams: vec!["l1".into()],
        };
        let pw = Secret::new("pw");
        assert_eq!(new.validate(&pw), Ok(()));
        let field = |n: NewAccount, pw: &Secret| n.validate(pw).unwrap_err().field;
        let bad = |f: fn(&mut NewAccount)| {
            let mut n = new.clone();
            f(&mut n);
            n
        };
        assert_eq!(field(bad(|n| n.name = "a b".into()), &pw), "--name");
        assert_eq!(
            field(bad(|n| n.address = Some("x\r\nBcc: y@z.test".into())), &pw),
            "--address"
        );
        assert_eq!(field(bad(|n| n.imap_port = 0), &pw), "--imap-port");
        assert_eq!(
            field(bad(|n| n.folders = vec!["a\"b".into()]), &pw),
            "--folder"
        );
        assert_eq!(field(new.clone(), &Secret::new("")), "--password-stdin");
        let sealed = SealedSecret {
            key_id: "k".into(),
            nonce: "n".into(),
            ciphertext: "c".into(),
        };
        let a = new.into_account(sealed, Utc::now());
        assert_eq!(a.folders, ["INBOX"]);
        assert_eq!(a.teams, ["l1"]);
        assert!(a.active && a.folder_state.is_empty());
    }
}
