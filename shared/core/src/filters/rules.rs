//! What a filter is: its scope, criteria and action, and what makes one valid (R-X1..R-X3).

use serde::{Deserialize, Serialize};

use super::pattern::Pattern;
use crate::error::Invalid;

/// Default cap on filters in one user's scope (R-X2).
pub const MAX_FILTERS_PER_USER: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum Scope {
    Global,
    Account(String),
    User(String),
}

impl std::str::FromStr for Scope {
    type Err = crate::error::Invalid;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once(':') {
            None if s == "global" => Ok(Scope::Global),
            Some(("account", n)) if !n.trim().is_empty() => Ok(Scope::Account(n.trim().into())),
            Some(("user", n)) if !n.trim().is_empty() => Ok(Scope::User(n.trim().into())),
            _ => Err(crate::error::Invalid::value(format!(
                "scope {s:?} must be global, account:<account name> or user:<user name>"
            ))),
        }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scope::Global => f.write_str("global"),
            Scope::Account(a) => write!(f, "account:{a}"),
            Scope::User(u) => write!(f, "user:{u}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Skip,
    MoveToFolder,
    MarkRead,
    SkipNotification,
}

impl std::str::FromStr for Action {
    type Err = crate::error::Invalid;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "skip" => Ok(Action::Skip),
            "move-to-folder" => Ok(Action::MoveToFolder),
            "mark-read" => Ok(Action::MarkRead),
            "skip-notification" => Ok(Action::SkipNotification),
            other => Err(crate::error::Invalid::value(format!(
                "unknown action {other:?} (skip, move-to-folder, mark-read, skip-notification)"
            ))),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filter {
    #[serde(default = "crate::default_version")]
    pub v: u32,
    pub name: String,
    pub scope: Scope,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Pattern>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Pattern>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Pattern>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub body_any: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub body_all: Vec<String>,
    pub action: Action,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folder: Option<String>,
}

impl Filter {
    /// Refuses what cannot be right, naming the flag: no criterion, a folder without
    /// move-to-folder (or the reverse), empty phrases.
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.name.trim().is_empty() || self.name.len() > 100 {
            return Err(Invalid::new("--name", "must be 1 to 100 characters"));
        }
        if self.from.is_none()
            && self.to.is_none()
            && self.subject.is_none()
            && self.body_any.is_empty()
            && self.body_all.is_empty()
        {
            return Err(Invalid::value(
                "an empty filter would match nothing: give at least one of --from, --to, --subject, --body-any, --body-all",
            ));
        }
        if self
            .body_any
            .iter()
            .chain(&self.body_all)
            .any(|p| p.trim().is_empty())
        {
            return Err(Invalid::new(
                "--body-any/--body-all",
                "phrases must not be empty",
            ));
        }
        match (self.action, &self.folder) {
            (Action::MoveToFolder, None) => {
                Err(Invalid::new("--folder", "required with move-to-folder"))
            }
            (Action::MoveToFolder, Some(f)) if f.trim().is_empty() => {
                Err(Invalid::new("--folder", "must not be empty"))
            }
            (Action::MoveToFolder, Some(_)) => Ok(()),
            (_, Some(_)) => Err(Invalid::new(
                "--folder",
                "only with --action move-to-folder",
            )),
            (_, None) => Ok(()),
        }
    }

    /// Whether deciding it needs the message body.
    pub fn needs_body(&self) -> bool {
        !self.body_any.is_empty() || !self.body_all.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_filters_and_bad_folders_are_refused() {
        let mut f = Filter {
            v: 1,
            name: "f".into(),
            scope: Scope::Global,
            from: None,
            to: None,
            subject: None,
            body_any: vec![],
            body_all: vec![],
            action: Action::Skip,
            folder: None,
        };
        assert!(f
            .validate()
            .unwrap_err()
            .to_string()
            .contains("empty filter"));
        f.subject = Some(Pattern::new("x").unwrap());
        assert_eq!(f.validate(), Ok(()));
        f.action = Action::MoveToFolder;
        assert!(f.validate().unwrap_err().to_string().contains("--folder"));
        f.folder = Some("Receipts".into());
        assert_eq!(f.validate(), Ok(()));
        f.action = Action::MarkRead;
        assert!(f.validate().unwrap_err().to_string().contains("only with"));
    }

    #[test]
    fn scopes_parse() {
        assert_eq!("global".parse::<Scope>().unwrap(), Scope::Global);
        assert_eq!(
            "account:support".parse::<Scope>().unwrap(),
            Scope::Account("support".into())
        );
        assert_eq!(
            "user:ann".parse::<Scope>().unwrap(),
            Scope::User("ann".into())
        );
        assert!("team:x".parse::<Scope>().is_err());
        assert!("user:".parse::<Scope>().is_err());
    }
}
