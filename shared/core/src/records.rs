//! CRM records Mailroom links email to (R-L), the users and teams cases go to (R-C), and the
//! record stream. Stored by the DynamoDB adapter; names here are the ids the CLI uses.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::types::CaseNumber;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    Account,
    Contact,
    Lead,
    Opportunity,
    Case,
}

impl RecordKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Account => "account",
            RecordKind::Contact => "contact",
            RecordKind::Lead => "lead",
            RecordKind::Opportunity => "opportunity",
            RecordKind::Case => "case",
        }
    }
}

impl std::str::FromStr for RecordKind {
    type Err = crate::error::Invalid;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "account" => RecordKind::Account,
            "contact" => RecordKind::Contact,
            "lead" => RecordKind::Lead,
            "opportunity" => RecordKind::Opportunity,
            "case" => RecordKind::Case,
            other => {
                return Err(crate::error::Invalid::value(format!(
                    "unknown record type {other:?} (account, contact, lead, opportunity, case)"
                )))
            }
        })
    }
}

/// A record reference as written on the command line: `contact:ann@example.com`,
/// `account:Acme`, `case:42`. Contacts and leads are named by address, the rest by name/number.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordRef {
    pub kind: RecordKind,
    pub id: String,
}

impl RecordRef {
    pub fn new(kind: RecordKind, id: impl Into<String>) -> Self {
        let id = id.into();
        let id = match kind {
            RecordKind::Contact | RecordKind::Lead => normalize_address(&id),
            _ => id,
        };
        RecordRef { kind, id }
    }
    pub fn case(number: u64) -> Self {
        RecordRef::new(RecordKind::Case, number.to_string())
    }

    /// The case it names, when it names one.
    pub fn case_number(&self) -> Option<CaseNumber> {
        match self.kind {
            RecordKind::Case => self.id.parse().ok(),
            _ => None,
        }
    }
}

impl std::fmt::Display for RecordRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.kind.as_str(), self.id)
    }
}

impl std::str::FromStr for RecordRef {
    type Err = crate::error::Invalid;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (kind, id) = s.split_once(':').ok_or_else(|| {
            crate::error::Invalid::value(format!(
                "record {s:?} must be written type:id, e.g. contact:ann@example.com"
            ))
        })?;
        let kind: RecordKind = kind.parse()?;
        if id.trim().is_empty() {
            return Err(crate::error::Invalid::value(format!(
                "record {s:?} has no id"
            )));
        }
        if kind == RecordKind::Case && id.parse::<u64>().is_err() {
            return Err(crate::error::Invalid::value(format!(
                "case {id:?} is not a case number"
            )));
        }
        Ok(RecordRef::new(kind, id.trim()))
    }
}

/// Addresses compare case-insensitively (the local part too: nobody relies on case there).
pub fn normalize_address(a: &str) -> String {
    a.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_lowercase()
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CrmAccount {
    #[serde(default = "crate::default_version")]
    pub v: u32,
    pub name: String,
    #[serde(default)]
    pub emails: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Contact {
    #[serde(default = "crate::default_version")]
    pub v: u32,
    pub name: String,
    /// Primary address; the contact's id.
    pub email: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Lead {
    #[serde(default = "crate::default_version")]
    pub v: u32,
    pub name: String,
    pub email: String,
    /// Set when converted: linking then resolves to what the lead became (R-L1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub converted_contact: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub converted_account: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Opportunity {
    #[serde(default = "crate::default_version")]
    pub v: u32,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum CaseStatus {
    New,
    Assigned,
    Pending,
    Closed,
    Rejected,
    Duplicate,
}

impl CaseStatus {
    /// Open cases count towards least-busy (R-C3).
    pub fn is_open(self) -> bool {
        !matches!(
            self,
            CaseStatus::Closed | CaseStatus::Rejected | CaseStatus::Duplicate
        )
    }
}

impl std::str::FromStr for CaseStatus {
    type Err = crate::error::Invalid;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "new" => CaseStatus::New,
            "assigned" => CaseStatus::Assigned,
            "pending" => CaseStatus::Pending,
            "closed" => CaseStatus::Closed,
            "rejected" => CaseStatus::Rejected,
            "duplicate" => CaseStatus::Duplicate,
            _ => {
                return Err(crate::error::Invalid::value(format!(
                    "unknown status {s:?} (New, Assigned, Pending, Closed, Rejected, Duplicate)"
                )))
            }
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Case {
    #[serde(default = "crate::default_version")]
    pub v: u32,
    pub number: CaseNumber,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub status: CaseStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lead: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assigned_user: Option<String>,
    #[serde(default)]
    pub teams: Vec<String>,
    /// The group account whose mail created it.
    pub mail_account: String,
    pub thread_key: String,
    /// Addresses already on the thread: who may use `[#N]` (R-L2).
    #[serde(default)]
    pub participants: Vec<String>,
    pub created_at: DateTime<Utc>,
}

impl Case {
    /// The case after a change of status and/or assignee (`Some(None)` unassigns). Without a
    /// status named, an assignment moves a New case to Assigned and unassigning moves an
    /// Assigned one back to New (R-C2); a status named wins.
    pub fn changed(&self, status: Option<CaseStatus>, assignee: Option<Option<String>>) -> Case {
        let mut c = self.clone();
        if let Some(a) = assignee {
            c.assigned_user = a;
        }
        c.status = match status {
            Some(s) => s,
            None => match (self.status, &self.assigned_user, &c.assigned_user) {
                (CaseStatus::New, None, Some(_)) => CaseStatus::Assigned,
                (CaseStatus::Assigned, Some(_), None) => CaseStatus::New,
                (s, _, _) => s,
            },
        };
        c
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TeamMembership {
    pub team: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct User {
    #[serde(default = "crate::default_version")]
    pub v: u32,
    pub name: String,
    #[serde(default)]
    pub emails: Vec<String>,
    #[serde(default)]
    pub teams: Vec<TeamMembership>,
    pub active: bool,
    /// Members of a team are ordered by when they were added: the round-robin order.
    pub created_at: DateTime<Utc>,
    /// Admins manage everything and are told when a group account fails (R-F7, R-P1).
    #[serde(default)]
    pub admin: bool,
    /// Whether notifications also go out as email (R-N3).
    #[serde(default)]
    pub notify_email: bool,
    /// The role whose permissions apply (R-S2); none grants no group-account sending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

impl TeamMembership {
    /// Memberships as a set: one per team, in the order teams were first listed; a later
    /// explicit position wins over an earlier one or none (`--team t --team t:L1` is `t:L1`).
    /// A user listed twice would otherwise be counted twice by round-robin.
    pub fn set(list: impl IntoIterator<Item = TeamMembership>) -> Vec<TeamMembership> {
        let mut out: Vec<TeamMembership> = Vec::new();
        for m in list {
            match out.iter_mut().find(|o| o.team == m.team) {
                Some(o) => {
                    if m.position.is_some() {
                        o.position = m.position;
                    }
                }
                None => out.push(m),
            }
        }
        out
    }
}

impl User {
    /// `None`: not a member; `Some(position)` otherwise, merged as [`TeamMembership::set`]
    /// does, since stored users may predate it and list a team twice.
    pub fn position_in(&self, team: &str) -> Option<Option<&str>> {
        let mut found = None;
        for m in self.teams.iter().filter(|m| m.team == team) {
            found = match (found, m.position.as_deref()) {
                (Some(Some(p)), None) => Some(Some(p)),
                (_, p) => Some(p),
            };
        }
        found
    }

    /// The distinct teams the user is in.
    pub fn team_names(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for m in &self.teams {
            if !out.contains(&m.team) {
                out.push(m.team.clone());
            }
        }
        out
    }
}

/// What a stream entry records; serialised as `case_created`, `email_received`, `email_sent`.
/// Declared in that (alphabetical) order, so entries at one instant sort as their names do.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "snake_case")]
pub enum StreamKind {
    CaseCreated,
    EmailReceived,
    EmailSent,
}

impl StreamKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StreamKind::CaseCreated => "case_created",
            StreamKind::EmailReceived => "email_received",
            StreamKind::EmailSent => "email_sent",
        }
    }
}

impl std::fmt::Display for StreamKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // pad, not write_str: tables align these with width specifiers.
        f.pad(self.as_str())
    }
}

impl PartialEq<&str> for StreamKind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// One line of a record's timeline.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StreamEntry {
    #[serde(default = "crate::default_version")]
    pub v: u32,
    pub at: DateTime<Utc>,
    pub kind: StreamKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case: Option<CaseNumber>,
}

/// What the message index knows of a stored email (R-L1 looks replies up here).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MessageEntry {
    pub message_id: String,
    pub email_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<RecordRef>,
    pub thread_key: String,
    /// Mail Mailroom sent (R-I3): a copy arriving through IMAP threads but never opens a
    /// case and is never answered.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ours: bool,
}

/// Who holds a thread: its case, and the email that created it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadClaim {
    pub case: CaseNumber,
    pub email_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_refs_parse_and_normalise() {
        let r: RecordRef = "contact:Ann@Example.COM".parse().unwrap();
        assert_eq!(r.to_string(), "contact:ann@example.com");
        assert_eq!("case:42".parse::<RecordRef>().unwrap(), RecordRef::case(42));
        assert!("case:abc".parse::<RecordRef>().is_err());
        assert!("thing:x".parse::<RecordRef>().is_err());
        assert!("account".parse::<RecordRef>().is_err());
    }

    #[test]
    fn a_team_listed_twice_is_one_membership_with_the_later_explicit_position() {
        let m = |team: &str, p: Option<&str>| TeamMembership {
            team: team.into(),
            position: p.map(str::to_string),
        };
        let listed = vec![
            m("t", None),
            m("u", Some("L2")),
            m("t", Some("L1")),
            m("u", None),
            m("t", None),
        ];
        let set = TeamMembership::set(listed.clone());
        assert_eq!(set, [m("t", Some("L1")), m("u", Some("L2"))]);
        assert_eq!(
            TeamMembership::set([m("t", Some("L1")), m("t", Some("L3"))]),
            [m("t", Some("L3"))]
        );
        // A stored user that predates the set reads the same way.
        let user = User {
            v: 1,
            name: "x".into(),
            emails: vec![],
            teams: listed,
            active: true,
            created_at: Utc::now(),
            admin: false,
            notify_email: false,
            role: None,
        };
        assert_eq!(user.position_in("t"), Some(Some("L1")));
        assert_eq!(user.position_in("u"), Some(Some("L2")));
        assert_eq!(user.position_in("v"), None);
        assert_eq!(user.team_names(), ["t", "u"]);
    }

    #[test]
    fn assigning_a_new_case_makes_it_assigned_unless_a_status_is_named() {
        let case: Case = serde_json::from_value(serde_json::json!({
            "number": 7, "name": "printer", "status": "New", "mail_account": "support",
            "thread_key": "root", "created_at": "2026-03-03T10:00:00Z"}))
        .unwrap();
        let ann = Some(Some("ann".to_string()));
        let assigned = case.changed(None, ann.clone());
        assert_eq!(assigned.status, CaseStatus::Assigned);
        assert_eq!(assigned.assigned_user.as_deref(), Some("ann"));
        assert_eq!(assigned.changed(None, Some(None)).status, CaseStatus::New);
        assert_eq!(
            case.changed(Some(CaseStatus::Pending), ann).status,
            CaseStatus::Pending
        );
        let closed = assigned.changed(Some(CaseStatus::Closed), None);
        assert_eq!(closed.assigned_user.as_deref(), Some("ann"));
        // A closed case handed on stays closed.
        assert_eq!(
            closed.changed(None, Some(Some("bob".into()))).status,
            CaseStatus::Closed
        );
    }

    #[test]
    fn open_statuses() {
        assert!(CaseStatus::New.is_open() && CaseStatus::Assigned.is_open());
        assert!(!CaseStatus::Closed.is_open() && !CaseStatus::Duplicate.is_open());
        assert_eq!("closed".parse::<CaseStatus>().unwrap(), CaseStatus::Closed);
    }
}
