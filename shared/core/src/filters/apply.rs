//! Filters applied to one message: evaluation, the skip decision, and one user's copy.

use serde::{Deserialize, Serialize};

use super::pattern::Pattern;
use super::rules::{Action, Filter, Scope};
use crate::records::normalize_address;

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
