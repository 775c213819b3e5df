//! Email filters (R-X1..R-X4): criteria, actions, scopes, and the order they apply in.
//!
//! Matching is linear in the value and pattern lengths: a pattern is split at `*` into
//! literal pieces; the first must be a prefix, the last a suffix, and the middle ones are
//! found left to right with a linear substring search. No regex, no backtracking.
//!
//! # Order and precedence
//! 1. **Skip is decided first.** Global filters, then the receiving account's filters, in name
//!    order; the first matching `skip` filter wins: the message is not imported for anyone,
//!    and it is recorded as skipped (with the filter's name). Header-only skip filters run in
//!    the poller before the body is fetched; the others run in ingest after parsing.
//! 2. **Per recipient user**, on that user's copy only: global, then account, then that
//!    user's own filters. A user `skip` hides the email from that user's inbox (others keep
//!    it). `mark-read` and `skip-notification` add up. `move-to-folder`: the most specific
//!    scope wins (user over account over global); within a scope the first by name.

use serde::{Deserialize, Serialize};

use crate::error::Invalid;
use crate::records::normalize_address;

/// Default cap on filters in one user's scope (R-X2).
pub const MAX_FILTERS_PER_USER: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    raw: String,
    /// Lower-cased literal pieces between `*`s.
    pieces: Vec<String>,
    leading_star: bool,
    trailing_star: bool,
}

impl Pattern {
    pub fn new(raw: &str) -> Result<Self, Invalid> {
        if raw.trim().is_empty() {
            return Err(Invalid::value("a pattern must not be empty"));
        }
        if raw.chars().count() > 500 {
            return Err(Invalid::value("a pattern may be at most 500 characters"));
        }
        let folded = raw.trim().to_lowercase();
        Ok(Pattern {
            raw: raw.trim().to_string(),
            leading_star: folded.starts_with('*'),
            trailing_star: folded.ends_with('*'),
            pieces: folded
                .split('*')
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Whole-value, case-insensitive (Unicode lower case), `*` matches any run.
    pub fn matches(&self, value: &str) -> bool {
        self.matches_folded(&value.trim().to_lowercase())
    }

    /// As [`Self::matches`] for a value already trimmed and lower-cased (fold once per email,
    /// not once per filter).
    pub fn matches_folded(&self, value: &str) -> bool {
        let mut rest = value;
        let n = self.pieces.len();
        if n == 0 {
            return self.leading_star || value.is_empty(); // "*" matches anything
        }
        for (i, piece) in self.pieces.iter().enumerate() {
            let first = i == 0;
            let last = i == n - 1;
            if first && !self.leading_star {
                if !rest.starts_with(piece.as_str()) {
                    return false;
                }
                rest = &rest[piece.len()..];
                if last && !self.trailing_star {
                    return rest.is_empty();
                }
                continue;
            }
            if last && !self.trailing_star {
                return rest.len() >= piece.len() && rest.ends_with(piece.as_str());
            }
            match rest.find(piece.as_str()) {
                Some(at) => rest = &rest[at + piece.len()..],
                None => return false,
            }
        }
        true
    }
}

impl Serialize for Pattern {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.raw)
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Pattern::new(&s).map_err(serde::de::Error::custom)
    }
}

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

/// What filters look at. Headers come from the header block alone (before the body is
/// fetched); `body` is the text body, present only after parsing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilterInput {
    pub from: Vec<(Option<String>, String)>,
    /// To and CC.
    pub to: Vec<(Option<String>, String)>,
    pub subject: Option<String>,
    pub body: Option<String>,
}

impl FilterInput {
    /// Reads the fields filters use from a raw header block (or a whole message).
    pub fn from_headers(raw: &[u8]) -> FilterInput {
        let Some(m) = mail_parser::MessageParser::default().parse_headers(raw) else {
            return FilterInput::default();
        };
        let addrs = |a: Option<&mail_parser::Address<'_>>| -> Vec<(Option<String>, String)> {
            a.map(|a| {
                a.iter()
                    .filter_map(|x| {
                        Some((
                            x.name().map(str::to_string),
                            normalize_address(x.address()?),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default()
        };
        let mut to = addrs(m.to());
        to.extend(addrs(m.cc()));
        FilterInput {
            from: addrs(m.from()),
            to,
            subject: m.subject().map(str::to_string),
            body: None,
        }
    }
}

impl FilterInput {
    fn addr_list(list: &[crate::model::MailAddr]) -> Vec<(Option<String>, String)> {
        list.iter()
            .map(|a| (a.name.clone(), normalize_address(&a.address)))
            .collect()
    }

    pub fn from_parsed(p: &crate::parse::ParsedEmail) -> FilterInput {
        let mut to = Self::addr_list(&p.to);
        to.extend(Self::addr_list(&p.cc));
        FilterInput {
            from: Self::addr_list(p.from.as_slice()),
            to,
            subject: p.subject.clone(),
            body: Some(p.text.clone()),
        }
    }

    pub fn from_email(e: &crate::model::EmailRecord) -> FilterInput {
        let mut to = Self::addr_list(&e.to);
        to.extend(Self::addr_list(&e.cc));
        FilterInput {
            from: Self::addr_list(e.from.as_slice()),
            to,
            subject: e.subject.clone(),
            body: Some(match &e.text {
                Some(crate::model::Body::Inline(t)) => t.clone(),
                _ => String::new(),
            }),
        }
    }
}

/// Why a filter matched, criterion by criterion (for `filters test` and skipped records).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Match {
    pub filter: String,
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Match(Match),
    NoMatch(String),
    /// Header criteria hold but the body is not known yet.
    NeedsBody,
}

fn address_matches(p: &Pattern, list: &[(Option<String>, String)]) -> Option<String> {
    list.iter().find_map(|(name, addr)| {
        if p.matches_folded(addr) {
            Some(addr.clone())
        } else {
            name.as_ref().filter(|n| p.matches_folded(n)).cloned()
        }
    })
}

/// An input with every field trimmed and lower-cased once.
struct Folded(FilterInput);

impl Folded {
    fn new(input: &FilterInput) -> Folded {
        let fold = |v: &str| v.trim().to_lowercase();
        let list = |l: &[(Option<String>, String)]| {
            l.iter()
                .map(|(n, a)| (n.as_deref().map(fold), fold(a)))
                .collect()
        };
        Folded(FilterInput {
            from: list(&input.from),
            to: list(&input.to),
            subject: input.subject.as_deref().map(fold),
            body: input.body.as_deref().map(str::to_lowercase),
        })
    }
}

/// Evaluates one filter; every given criterion must hold (R-X1).
pub fn evaluate(f: &Filter, input: &FilterInput) -> Verdict {
    evaluate_folded(f, &Folded::new(input))
}

fn evaluate_folded(f: &Filter, folded: &Folded) -> Verdict {
    let input = &folded.0;
    let mut reasons = Vec::new();
    if let Some(p) = &f.from {
        match address_matches(p, &input.from) {
            Some(v) => reasons.push(format!("from {v:?} matches {:?}", p.as_str())),
            None => return Verdict::NoMatch(format!("from does not match {:?}", p.as_str())),
        }
    }
    if let Some(p) = &f.to {
        match address_matches(p, &input.to) {
            Some(v) => reasons.push(format!("to/cc {v:?} matches {:?}", p.as_str())),
            None => return Verdict::NoMatch(format!("no to/cc matches {:?}", p.as_str())),
        }
    }
    if let Some(p) = &f.subject {
        match input.subject.as_deref().filter(|s| p.matches_folded(s)) {
            Some(s) => reasons.push(format!("subject {s:?} matches {:?}", p.as_str())),
            None => return Verdict::NoMatch(format!("subject does not match {:?}", p.as_str())),
        }
    }
    if f.needs_body() {
        let Some(body) = &input.body else {
            return Verdict::NeedsBody;
        };
        if !f.body_any.is_empty() {
            match f
                .body_any
                .iter()
                .find(|ph| body.contains(&ph.to_lowercase()))
            {
                Some(ph) => reasons.push(format!("body contains {ph:?}")),
                None => return Verdict::NoMatch("body contains none of the phrases".into()),
            }
        }
        for ph in &f.body_all {
            if !body.contains(&ph.to_lowercase()) {
                return Verdict::NoMatch(format!("body lacks {ph:?}"));
            }
        }
        if !f.body_all.is_empty() {
            reasons.push("body contains all phrases".into());
        }
    }
    Verdict::Match(Match {
        filter: f.name.clone(),
        reasons,
    })
}

/// The import decision for one message arriving through `account`: the first matching skip
/// filter (global, then account, by name), `None` to import. `NeedsBody` when a skip filter
/// could still match once the body is known.
pub fn skip_decision(filters: &[Filter], account: &str, input: &FilterInput) -> SkipDecision {
    let input = &Folded::new(input);
    let mut needs_body = false;
    for scope in [Scope::Global, Scope::Account(account.to_string())] {
        let mut candidates: Vec<&Filter> = filters
            .iter()
            .filter(|f| f.scope == scope && f.action == Action::Skip)
            .collect();
        candidates.sort_by(|a, b| a.name.cmp(&b.name));
        for f in candidates {
            match evaluate_folded(f, input) {
                Verdict::Match(m) => {
                    if needs_body {
                        // An earlier filter might still match on the body and win.
                        return SkipDecision::NeedsBody;
                    }
                    return SkipDecision::Skip(m);
                }
                Verdict::NeedsBody => needs_body = true,
                Verdict::NoMatch(_) => {}
            }
        }
    }
    if needs_body {
        SkipDecision::NeedsBody
    } else {
        SkipDecision::Import
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipDecision {
    Import,
    Skip(Match),
    NeedsBody,
}

/// One user's copy of an email (R-X2 actions change only this).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyState {
    pub folder: String,
    pub read: bool,
    pub notify: bool,
    /// Hidden by the user's own skip filter.
    pub hidden: bool,
    pub filters: Vec<String>,
}

/// Applies non-skip actions (and user skips) to one user's copy, in the documented order.
pub fn user_copy(filters: &[Filter], account: &str, user: &str, input: &FilterInput) -> CopyState {
    let input = &Folded::new(input);
    let mut state = CopyState {
        folder: "Inbox".into(),
        read: false,
        notify: true,
        hidden: false,
        filters: vec![],
    };
    for scope in [
        Scope::Global,
        Scope::Account(account.to_string()),
        Scope::User(user.to_string()),
    ] {
        let mut in_scope: Vec<&Filter> = filters.iter().filter(|f| f.scope == scope).collect();
        in_scope.sort_by(|a, b| a.name.cmp(&b.name));
        let mut moved_here = false;
        for f in in_scope {
            if !matches!(evaluate_folded(f, input), Verdict::Match(_)) {
                continue;
            }
            match f.action {
                // Global/account skips stopped the import before; a user's hides the copy.
                Action::Skip => {
                    if matches!(scope, Scope::User(_)) {
                        state.hidden = true;
                    } else {
                        continue;
                    }
                }
                Action::MarkRead => state.read = true,
                Action::SkipNotification => state.notify = false,
                Action::MoveToFolder => {
                    if moved_here {
                        continue; // first by name within a scope
                    }
                    moved_here = true;
                    state.folder = f.folder.clone().unwrap_or_else(|| "Inbox".into());
                }
            }
            state.filters.push(f.name.clone());
        }
    }
    state
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_are_whole_value_case_insensitive_and_unicode_aware() {
        let p = |s| Pattern::new(s).unwrap();
        assert!(p("*@example.com").matches("Ann@Example.COM"));
        assert!(!p("*@example.com").matches("ann@example.com.evil"));
        assert!(p("invoice*").matches("Invoice 42"));
        assert!(!p("invoice").matches("Invoice 42"), "whole value");
        assert!(p("*rechnung*").matches("Ihre RECHNUNG für März"));
        assert!(p("ÄRGER*").matches("ärger über alles"));
        assert!(p("a*b*c").matches("aXbYc"));
        assert!(!p("a*b*c").matches("aXcYb"));
        assert!(p("*").matches("anything"));
        assert!(p("ab*ab").matches("abab"));
        assert!(!p("ab*ab").matches("aba"));
        assert!(Pattern::new("  ").is_err());
    }

    #[test]
    fn matching_is_linear_on_adversarial_input() {
        // A backtracking matcher takes exponential time here; ours stays instant.
        let value = "a".repeat(20_000);
        let pattern = Pattern::new(&format!("{}b", "*a".repeat(200))).unwrap();
        let start = std::time::Instant::now();
        assert!(!pattern.matches(&value));
        assert!(start.elapsed() < std::time::Duration::from_secs(1));
    }

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

/// A message a filter kept out, so no mail disappears without trace (R-X4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedRecord {
    #[serde(default = "crate::default_version")]
    pub v: u32,
    pub account: String,
    pub folder: String,
    pub uidvalidity: u32,
    pub uid: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    pub filter: String,
    pub reasons: Vec<String>,
    /// `headers` (the body was never fetched) or `body` (decided after parsing).
    pub stage: String,
    pub at: chrono::DateTime<chrono::Utc>,
}

impl SkippedRecord {
    pub fn key(&self) -> String {
        crate::keys::skipped_key(&self.account, &self.folder, self.uidvalidity, self.uid)
    }
}

/// One user's copy of an email: where it sits for them and how it was filtered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxCopy {
    #[serde(default = "crate::default_version")]
    pub v: u32,
    pub user: String,
    pub email_id: String,
    pub message_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    pub account: String,
    pub folder: String,
    pub read: bool,
    pub notify: bool,
    #[serde(default)]
    pub filters: Vec<String>,
    pub at: chrono::DateTime<chrono::Utc>,
}
