//! Inputs an operator gives (accounts, record adds and JSON-lines imports): pure types with
//! their validation, so the adapter stores them and the CLI (later the API) builds them
//! without either owning the other's concern.

use chrono::{DateTime, NaiveDate, Utc};

use crate::error::{Invalid, StoreError};
use crate::filters::{Filter, Pattern, Scope, MAX_FILTERS_PER_USER};
use crate::model::{
    validate_account_name, Account, AccountKind, ImapSettings, SealedSecret, Secret, Security,
};
use crate::ports::{AccountStore, HostPolicy, Mailer, SecretBox};
use crate::records::{
    normalize_address, Contact, CrmAccount, Lead, Opportunity, RecordKind, RecordRef,
    TeamMembership, User,
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

/// A name people type (records, users, teams, memberships): 1 to 200 printable characters.
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

/// Why an account was not added. Nothing was stored in any case.
#[derive(Debug)]
pub enum AddAccountError {
    /// A value was refused; the field is the CLI flag (`--imap-host`), which the API maps to
    /// its own field name.
    Invalid(Invalid),
    /// The mail service refused the group address as a sending identity.
    IdentityRefused {
        address: String,
        error: StoreError,
    },
    /// An account of this name exists.
    Exists(String),
    Store(StoreError),
}

impl From<StoreError> for AddAccountError {
    fn from(e: StoreError) -> Self {
        AddAccountError::Store(e)
    }
}

impl From<Invalid> for AddAccountError {
    fn from(e: Invalid) -> Self {
        AddAccountError::Invalid(e)
    }
}

/// What adding an account works through: where it is stored, how its password is sealed,
/// which IMAP servers the deployment reaches, and the mail service that verifies a group
/// address.
pub struct AccountPorts<'a, S, B, H, M> {
    pub store: &'a S,
    pub secrets: &'a B,
    pub hosts: &'a H,
    pub mailer: &'a M,
    /// Verify a group account's address with the mail service before storing it (R-S1);
    /// off only for accounts added as if their identity had gone (tests of that case).
    pub verify_identity: bool,
}

/// Adds a watched mailbox (the CLI's `account add-*` and the API's `POST /v1/accounts/*`):
/// every field checked, plaintext refused unless the deployment allows it (R-F8), the host
/// resolved and refused when private (R-F8b), a group address verified with the mail service
/// (R-S1) — all before anything is stored — then the password sealed (R-F8) and the account
/// stored. Errors never hold the password.
pub async fn add_account<S, B, H, M>(
    ports: AccountPorts<'_, S, B, H, M>,
    new: NewAccount,
    password: Secret,
    now: DateTime<Utc>,
) -> Result<Account, AddAccountError>
where
    S: AccountStore,
    B: SecretBox,
    H: HostPolicy,
    M: Mailer,
{
    let group_address = match new.kind {
        AccountKind::Group if ports.verify_identity => Some(
            EmailAddress::parse(new.address.as_deref().unwrap_or_default())
                .map_err(|e| Invalid::new("--address", e.message))?,
        ),
        _ => None,
    };
    new.validate(&password)?;
    ports
        .hosts
        .permits(new.security)
        .map_err(|e| Invalid::new("--security", e.message))?;
    ports
        .hosts
        .check_host(&new.imap_host, new.imap_port)
        .await
        .map_err(|e| Invalid::new("--imap-host", e.message))?;
    // The emulator verifies at once, AWS mails the address a link: an address the service
    // refuses is an error here, never a silent drop of every auto-reply later.
    let identity =
        match &group_address {
            Some(address) => Some(ports.mailer.verify_identity(address).await.map_err(
                |error| AddAccountError::IdentityRefused {
                    address: address.to_string(),
                    error,
                },
            )?),
            None => None,
        };
    let secret = ports.secrets.seal(&new.name, &password).await?;
    let mut account = new.into_account(secret, now);
    account.identity = identity;
    match ports.store.create_account(&account).await {
        Ok(()) => Ok(account),
        Err(StoreError::AlreadyExists(_)) => Err(AddAccountError::Exists(account.name)),
        Err(e) => Err(e.into()),
    }
}

/// A personal account may be added for `owner` while they have fewer than `limit` (R-P2).
pub fn check_personal_limit(
    accounts: &[Account],
    owner: &str,
    limit: usize,
) -> Result<(), Invalid> {
    let have = accounts
        .iter()
        .filter(|a| a.kind == AccountKind::Personal && a.owner.as_deref() == Some(owner))
        .count();
    if have >= limit {
        return Err(Invalid::new(
            "owner",
            format!("{owner} already has {have} personal accounts (at most {limit})"),
        ));
    }
    Ok(())
}

/// `team` or `team:position`.
pub fn parse_membership(s: &str) -> Result<TeamMembership, Invalid> {
    let (team, position) = match s.split_once(':') {
        Some((t, p)) => (
            t.trim(),
            Some(p.trim().to_string()).filter(|p| !p.is_empty()),
        ),
        None => (s.trim(), None),
    };
    name_ok("--team", team)?;
    if position
        .as_deref()
        .is_some_and(|p| p.chars().any(|c| c.is_control()))
    {
        return Err(Invalid::new(
            "--team",
            "a position must hold no control characters",
        ));
    }
    Ok(TeamMembership {
        team: team.to_string(),
        position,
    })
}

/// A user as an operator (`users add`) or an admin through the API adds one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub name: String,
    pub emails: Vec<String>,
    /// `team` or `team:position`.
    pub teams: Vec<String>,
    pub active: bool,
    pub admin: bool,
    pub role: Option<String>,
}

impl NewUser {
    /// What needs no store: the name and the addresses.
    pub fn validate(&self) -> Result<(), Invalid> {
        name_ok("user", &self.name)?;
        if self.name.contains(':') {
            return Err(Invalid::new("user", "a user name may not contain ':'"));
        }
        for e in &self.emails {
            if !EmailAddress::is_plain(e) {
                return Err(Invalid::new(
                    "--email",
                    format!("{e:?} is not an email address"),
                ));
            }
        }
        Ok(())
    }

    /// The user to store, given the teams that exist and whether the role does.
    pub fn into_user(
        self,
        known_teams: &[String],
        role_exists: bool,
        now: DateTime<Utc>,
    ) -> Result<User, Invalid> {
        self.validate()?;
        let mut memberships = Vec::new();
        for t in &self.teams {
            let m = parse_membership(t)?;
            if !known_teams.contains(&m.team) {
                return Err(Invalid::new(
                    "--team",
                    format!(
                        "unknown team {:?} (add it with `mailroom teams add`)",
                        m.team
                    ),
                ));
            }
            memberships.push(m);
        }
        if let Some(r) = &self.role {
            if !role_exists {
                return Err(Invalid::new(
                    "--role",
                    format!("unknown role {r:?} (add it with `mailroom roles add`)"),
                ));
            }
        }
        Ok(User {
            v: crate::SCHEMA_VERSION,
            emails: self.emails.iter().map(|e| normalize_address(e)).collect(),
            // `--team t --team t:L1` is one membership (t, L1): a set, as the store keeps it.
            teams: TeamMembership::set(memberships),
            name: self.name,
            active: self.active,
            created_at: now,
            admin: self.admin,
            notify_email: false,
            role: self.role,
        })
    }
}

/// Team names: non-empty, no ':' (it separates a team from a position), nothing unprintable.
pub fn validate_team_name(team: &str) -> Result<(), Invalid> {
    if team.trim().is_empty() || team.contains(':') {
        return Err(Invalid::new(
            "team",
            "a team name must be non-empty and hold no ':'",
        ));
    }
    if team.len() > 200 || team.chars().any(|c| c.is_control()) {
        return Err(Invalid::new(
            "team",
            "a team name must be at most 200 bytes and hold no control characters",
        ));
    }
    Ok(())
}

/// Role names: non-empty, at most 64 bytes, no ':', nothing unprintable.
pub fn validate_role_name(role: &str) -> Result<(), Invalid> {
    if role.trim().is_empty() || role.contains(':') || role.len() > 64 {
        return Err(Invalid::new(
            "role",
            "a role name must be non-empty, at most 64 bytes and hold no ':'",
        ));
    }
    if role.chars().any(|c| c.is_control()) {
        return Err(Invalid::new(
            "role",
            "a role name must hold no control characters",
        ));
    }
    Ok(())
}

/// A filter as `filters add` or the API gives it, its scope already parsed (and found).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFilter {
    pub scope: Scope,
    pub name: String,
    pub from: Option<String>,
    pub to: Option<String>,
    pub subject: Option<String>,
    pub body_any: Vec<String>,
    pub body_all: Vec<String>,
    /// skip, move-to-folder, mark-read, skip-notification.
    pub action: String,
    pub folder: Option<String>,
}

/// A filter scope as typed: `global`, `account:<name>` or `user:<name>`.
pub fn parse_scope(s: &str) -> Result<Scope, Invalid> {
    s.parse::<Scope>()
        .map_err(|e| Invalid::new("--scope", e.message))
}

impl NewFilter {
    /// The filter to store, every criterion checked (R-X1, R-X2), the flag at fault named.
    pub fn build(self) -> Result<Filter, Invalid> {
        let pattern = |flag: &str, p: Option<String>| -> Result<Option<Pattern>, Invalid> {
            p.map(|p| {
                Pattern::new(&p).map_err(|e| Invalid::new(format!("--{flag}"), e.to_string()))
            })
            .transpose()
        };
        if self.name.chars().any(|c| c.is_control()) {
            return Err(Invalid::new("--name", "must hold no control characters"));
        }
        let filter = Filter {
            v: crate::SCHEMA_VERSION,
            name: self.name.trim().to_string(),
            scope: self.scope,
            from: pattern("from", self.from)?,
            to: pattern("to", self.to)?,
            subject: pattern("subject", self.subject)?,
            body_any: self.body_any,
            body_all: self.body_all,
            action: self
                .action
                .parse()
                .map_err(|e: Invalid| Invalid::new("--action", e.message))?,
            folder: self.folder,
        };
        filter.validate()?;
        Ok(filter)
    }
}

/// The user a filter counts against for R-X2's per-user limit: a user scope's user, or the
/// owner of the personal account an account scope names. Global and group-account filters
/// are the admins' and count against nobody.
pub fn filter_owner<'a>(scope: &'a Scope, accounts: &'a [Account]) -> Option<&'a str> {
    match scope {
        Scope::Global => None,
        Scope::User(u) => Some(u),
        Scope::Account(name) => accounts
            .iter()
            .find(|a| &a.name == name && a.kind == AccountKind::Personal)
            .and_then(|a| a.owner.as_deref()),
    }
}

/// R-X2: a user's filters (their inbox's and their personal accounts') number at most
/// [`MAX_FILTERS_PER_USER`].
pub fn check_filter_allowance(
    existing: &[Filter],
    accounts: &[Account],
    new: &Filter,
) -> Result<(), Invalid> {
    let Some(owner) = filter_owner(&new.scope, accounts) else {
        return Ok(());
    };
    let have = existing
        .iter()
        .filter(|f| filter_owner(&f.scope, accounts) == Some(owner))
        .count();
    if have >= MAX_FILTERS_PER_USER {
        return Err(Invalid::new(
            "scope",
            format!("user {owner} already has {have} filters (at most {MAX_FILTERS_PER_USER})"),
        ));
    }
    Ok(())
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

    /// Refuses `bad.test` as a private host and plaintext, as a locked-down deployment does.
    struct Hosts;
    impl HostPolicy for Hosts {
        fn permits(&self, security: Security) -> crate::ports::MailboxResult<()> {
            match security {
                Security::Plain => Err(crate::ports::MailboxError::new(
                    crate::model::ErrorKind::Tls,
                    "plaintext refused",
                )),
                _ => Ok(()),
            }
        }
        async fn check_host(&self, host: &str, _port: u16) -> crate::ports::MailboxResult<()> {
            match host {
                "bad.test" => Err(crate::ports::MailboxError::new(
                    crate::model::ErrorKind::Connect,
                    "bad.test resolves to the private address 10.0.0.1; refused",
                )),
                _ => Ok(()),
            }
        }
    }

    fn personal(name: &str) -> NewAccount {
        NewAccount {
            name: name.into(),
            kind: AccountKind::Personal,
            address: Some("ann@example.test".into()),
            owner: Some("ann".into()),
            imap_host: "imap.example.test".into(),
            imap_port: 993,
            imap_user: "ann".into(),
            security: Security::ImplicitTls,
            folders: vec![],
            fetch_since: None,
            teams: vec![],
        }
    }

    #[tokio::test]
    async fn adding_an_account_checks_everything_before_it_stores_the_sealed_password() {
        use crate::memory::{FakeMailer, FakeSecretBox, MemoryStore};
        let (store, mailer) = (MemoryStore::default(), FakeMailer::default());
        let ports = || AccountPorts {
            store: &store,
            secrets: &FakeSecretBox,
            hosts: &Hosts,
            mailer: &mailer,
            verify_identity: true,
        };
        let pw = || Secret::new("hunter2-secret");
        let field = |r: Result<Account, AddAccountError>| match r {
            Err(AddAccountError::Invalid(i)) => {
                assert!(!i.message.contains("hunter2"), "{i}");
                i.field
            }
            other => panic!("{other:?}"),
        };
        let mut bad_host = personal("p1");
        bad_host.imap_host = "bad.test".into();
        assert_eq!(
            field(add_account(ports(), bad_host, pw(), Utc::now()).await),
            "--imap-host"
        );
        let mut plain = personal("p1");
        plain.security = Security::Plain;
        assert_eq!(
            field(add_account(ports(), plain, pw(), Utc::now()).await),
            "--security"
        );
        let mut group = personal("g1");
        group.kind = AccountKind::Group;
        group.address = Some("not an address".into());
        assert_eq!(
            field(add_account(ports(), group, pw(), Utc::now()).await),
            "--address"
        );
        assert!(store.list_accounts().await.unwrap().is_empty());
        assert!(mailer.verified.lock().unwrap().is_empty());

        let a = add_account(ports(), personal("p1"), pw(), Utc::now())
            .await
            .unwrap();
        assert_ne!(a.secret.ciphertext, "hunter2-secret");
        assert_eq!(a.identity, None);
        let stored = store.get_account("p1").await.unwrap().unwrap();
        assert_eq!(stored.secret, a.secret);
        assert!(matches!(
            add_account(ports(), personal("p1"), pw(), Utc::now()).await,
            Err(AddAccountError::Exists(n)) if n == "p1"
        ));

        let mut group = personal("g1");
        group.kind = AccountKind::Group;
        group.owner = None;
        group.address = Some("support@example.test".into());
        let g = add_account(ports(), group, pw(), Utc::now()).await.unwrap();
        assert_eq!(g.identity, Some(crate::ports::IdentityStatus::Verified));
        assert_eq!(mailer.verified.lock().unwrap().len(), 1);
    }

    #[test]
    fn the_personal_account_limit_counts_the_owners_accounts_only() {
        let sealed = SealedSecret {
            key_id: "k".into(),
            nonce: "n".into(),
            ciphertext: "c".into(),
        };
        let mut accounts: Vec<Account> = (0..2)
            .map(|i| personal(&format!("p{i}")).into_account(sealed.clone(), Utc::now()))
            .collect();
        let mut bobs = personal("b").into_account(sealed, Utc::now());
        bobs.owner = Some("bob".into());
        accounts.push(bobs);
        assert_eq!(check_personal_limit(&accounts, "ann", 3), Ok(()));
        assert_eq!(
            check_personal_limit(&accounts, "ann", 2).unwrap_err().field,
            "owner"
        );
        assert_eq!(check_personal_limit(&accounts, "bob", 2), Ok(()));
    }

    #[test]
    fn a_new_user_is_refused_with_its_flag_or_becomes_a_user() {
        let new = NewUser {
            name: "ann".into(),
            emails: vec!["Ann@Example.test".into()],
            teams: vec!["l1:lead".into(), "l1".into()],
            active: true,
            admin: false,
            role: Some("agent".into()),
        };
        let teams = vec!["l1".to_string()];
        let u = new.clone().into_user(&teams, true, Utc::now()).unwrap();
        assert_eq!(u.emails, ["ann@example.test"]);
        assert_eq!(u.teams.len(), 1);
        assert_eq!(u.teams[0].position.as_deref(), Some("lead"));
        let field = |f: fn(&mut NewUser), role_exists: bool| {
            let mut n = new.clone();
            f(&mut n);
            n.into_user(&teams, role_exists, Utc::now())
                .unwrap_err()
                .field
        };
        assert_eq!(field(|n| n.name = "a\r\nb".into(), true), "user");
        assert_eq!(field(|n| n.name = "a:b".into(), true), "user");
        assert_eq!(
            field(|n| n.emails = vec!["x\r\nBcc: y@z.test".into()], true),
            "--email"
        );
        assert_eq!(field(|n| n.teams = vec!["nope".into()], true), "--team");
        assert_eq!(field(|n| n.teams = vec!["l1:a\nb".into()], true), "--team");
        assert_eq!(field(|_| {}, false), "--role");
        assert_eq!(validate_team_name("a\r\nb").unwrap_err().field, "team");
        assert_eq!(validate_team_name("a:b").unwrap_err().field, "team");
        assert_eq!(validate_team_name("l2"), Ok(()));
        assert_eq!(
            validate_role_name(&"r".repeat(65)).unwrap_err().field,
            "role"
        );
        assert_eq!(validate_role_name("agent"), Ok(()));
    }

    fn new_filter(scope: Scope) -> NewFilter {
        NewFilter {
            scope,
            name: "f".into(),
            from: Some("*@spam.test".into()),
            to: None,
            subject: None,
            body_any: vec![],
            body_all: vec![],
            action: "skip".into(),
            folder: None,
        }
    }

    #[test]
    fn filters_are_built_with_the_flag_at_fault_and_counted_per_owner() {
        assert_eq!(parse_scope("nope").unwrap_err().field, "--scope");
        assert_eq!(parse_scope("user:ann"), Ok(Scope::User("ann".into())));
        let mut bad = new_filter(Scope::Global);
        bad.action = "explode".into();
        assert_eq!(bad.build().unwrap_err().field, "--action");
        let mut bad = new_filter(Scope::Global);
        bad.from = Some(" ".into());
        assert_eq!(bad.build().unwrap_err().field, "--from");
        let mut bad = new_filter(Scope::Global);
        bad.name = "a\r\nb".into();
        assert_eq!(bad.build().unwrap_err().field, "--name");

        let sealed = SealedSecret {
            key_id: "k".into(),
            nonce: "n".into(),
            ciphertext: "c".into(),
        };
        let accounts = vec![personal("annmail").into_account(sealed, Utc::now())];
        let mut existing: Vec<Filter> = (0..MAX_FILTERS_PER_USER - 1)
            .map(|i| {
                let mut f = new_filter(Scope::User("ann".into()));
                f.name = format!("f{i}");
                f.build().unwrap()
            })
            .collect();
        let on_mail = new_filter(Scope::Account("annmail".into()))
            .build()
            .unwrap();
        assert_eq!(filter_owner(&on_mail.scope, &accounts), Some("ann"));
        assert_eq!(
            check_filter_allowance(&existing, &accounts, &on_mail),
            Ok(())
        );
        existing.push(on_mail.clone());
        // The personal account's filter counted: ann is full, bob and global filters are not.
        let err = check_filter_allowance(&existing, &accounts, &on_mail).unwrap_err();
        assert_eq!(err.field, "scope");
        let bobs = new_filter(Scope::User("bob".into())).build().unwrap();
        assert_eq!(check_filter_allowance(&existing, &accounts, &bobs), Ok(()));
        let global = new_filter(Scope::Global).build().unwrap();
        assert_eq!(
            check_filter_allowance(&existing, &accounts, &global),
            Ok(())
        );
    }
}
