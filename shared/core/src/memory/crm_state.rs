//! The state behind [`super::MemoryCrm`]: one map per item family of the DynamoDB adapter's
//! key table, and the writes a link makes on it.

use std::collections::{BTreeMap, BTreeSet};

use crate::keys::team_loads_sk;
use crate::ports::EmailLink;
use crate::records::{
    normalize_address, Case, Contact, CrmAccount, Lead, MessageEntry, RecordRef, StreamEntry,
    StreamKind, ThreadClaim, User,
};
use crate::types::CaseNumber;
use crate::SCHEMA_VERSION;

/// What linking wrote onto a stored email (the adapter's `EMAIL#<id>` update).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkedEmail {
    pub parent: Option<RecordRef>,
    pub case: Option<CaseNumber>,
    /// A set, as in DynamoDB: sorted, no duplicates.
    pub teams: Vec<String>,
}

/// Everything the fake holds, one map per item family of the adapter's key table. Public and
/// comparable, so a test can snapshot it and assert that a refused write changed nothing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CrmState {
    pub accounts: BTreeMap<String, CrmAccount>,
    /// By normalised address, as `REC#contact` is keyed.
    pub contacts: BTreeMap<String, Contact>,
    pub leads: BTreeMap<String, Lead>,
    pub users: BTreeMap<String, User>,
    pub teams: BTreeSet<String>,
    /// `ADDR#<address>`: sort key `<type>#<id>` (users too) to a contact's account.
    pub addresses: BTreeMap<String, BTreeMap<String, Option<String>>>,
    pub cases: BTreeMap<CaseNumber, Case>,
    /// `THREAD#<key>`: who holds the thread (R-C4).
    pub threads: BTreeMap<String, ThreadClaim>,
    /// `MSGID#<message id>` (R-L1).
    pub messages: BTreeMap<String, MessageEntry>,
    /// `COUNTER`: `case`, `rr#<account>` and `loads#<team>`.
    pub counters: BTreeMap<String, u64>,
    /// `LOAD`: open cases per user. Signed, as DynamoDB's `ADD` is.
    pub loads: BTreeMap<String, i64>,
    /// `STREAM#<type>#<id>` (here `<type>:<id>`): sort key to entry.
    pub streams: BTreeMap<String, BTreeMap<String, StreamEntry>>,
    /// Emails ingest stored; only these take link writes.
    pub emails: BTreeMap<String, LinkedEmail>,
    /// Last email-to-case problem per mail account.
    pub case_errors: BTreeMap<String, String>,
    /// `FOLLOW#<type>#<id>` (here `<type>:<id>`): the followers, in user order (R-N1).
    pub follows: BTreeMap<String, BTreeSet<String>>,
}

impl CrmState {
    /// The adapter's `link_items`: the message index entry, the email's parent, case and
    /// teams (conditional on the email existing, and only when there is something to set),
    /// and the parent's stream entry.
    pub(super) fn link(
        &mut self,
        link: &EmailLink,
        case: Option<CaseNumber>,
    ) -> Result<(), String> {
        self.messages.insert(
            link.message_id.clone(),
            MessageEntry {
                message_id: link.message_id.clone(),
                email_id: link.email_id.clone(),
                parent: link.parent.clone(),
                thread_key: link.thread_key.clone(),
                ours: link.ours,
            },
        );
        if link.parent.is_some() || case.is_some() || !link.teams.is_empty() {
            let email = self
                .emails
                .get_mut(&link.email_id)
                .ok_or_else(|| format!("email {} is not stored", link.email_id))?;
            if let Some(p) = &link.parent {
                email.parent = Some(p.clone());
            }
            if let Some(c) = case {
                email.case = Some(c);
            }
            email.teams = union(&email.teams, &link.teams);
        }
        if let Some(parent) = &link.parent {
            let e = entry(StreamKind::EmailReceived, link, link.subject.clone(), case);
            self.streams
                .entry(parent.to_string())
                .or_default()
                .insert(format!("email#{}", link.email_id), e);
        }
        Ok(())
    }

    /// The adapter's `index_sent`: both Message-IDs, marked ours, and the stream entry.
    pub(super) fn index_sent(
        &mut self,
        sent: &crate::dispatch::records::SentRecord,
        thread_key: &str,
    ) {
        for id in [&sent.message_id, &sent.ses_message_id] {
            self.messages.insert(
                id.clone(),
                MessageEntry {
                    message_id: id.clone(),
                    email_id: sent.id.clone(),
                    parent: sent.parent.clone(),
                    thread_key: thread_key.to_string(),
                    ours: true,
                },
            );
        }
        if let Some(parent) = &sent.parent {
            let e = StreamEntry {
                v: SCHEMA_VERSION,
                at: sent.sent_at,
                kind: StreamKind::EmailSent,
                email_id: Some(sent.id.clone()),
                message_id: Some(sent.ses_message_id.clone()),
                subject: Some(sent.subject.clone()),
                case: sent.case,
            };
            self.streams
                .entry(parent.to_string())
                .or_default()
                .insert(crate::keys::stream_sent_sk(&sent.id), e);
        }
    }

    /// A user's open count moved: so does the load version of each of these teams (R-C3).
    pub(super) fn bump_team_loads<'t>(&mut self, teams: impl IntoIterator<Item = &'t String>) {
        for team in teams {
            *self.counters.entry(team_loads_sk(team)).or_default() += 1;
        }
    }

    /// `attribute_not_exists(#o) OR #o = :e` for 0, else `#o = :e`.
    pub(super) fn load_is(&self, user: &str, expected: u64) -> bool {
        match self.loads.get(user) {
            None => expected == 0,
            Some(v) => *v == expected as i64,
        }
    }

    pub(super) fn index(&mut self, address: &str, sk: String, account: Option<String>) {
        self.addresses
            .entry(normalize_address(address))
            .or_default()
            .insert(sk, account);
    }
}

pub(super) fn entry(
    kind: StreamKind,
    link: &EmailLink,
    subject: Option<String>,
    case: Option<CaseNumber>,
) -> StreamEntry {
    StreamEntry {
        v: SCHEMA_VERSION,
        at: link.at,
        kind,
        email_id: Some(link.email_id.clone()),
        message_id: Some(link.message_id.clone()),
        subject,
        case,
    }
}

pub(super) fn union(a: &[String], b: &[String]) -> Vec<String> {
    let set: BTreeSet<&String> = a.iter().chain(b).collect();
    set.into_iter().cloned().collect()
}
