//! Linking (R-L1..R-L3) and email-to-case (R-C1..R-C7).
//!
//! Every incoming email gets one parent record by the first rule that matches: a stored email
//! it replies to, a `[#N]` tag from a participant of case N, then its sender's records. A group
//! account with case creation on turns the first email of a thread into a case; later emails
//! of the thread join it. The case is claimed with one conditional transaction on the thread's
//! key that also stores the assignment and advances the round-robin counter, so concurrent
//! workers and redeliveries create one case and advance the counter once (R-C4).

use std::collections::HashMap;
use std::future::Future;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{Account, AccountKind, EmailRecord};
use crate::ports::{Outgoing, Queue, StoreResult};
use crate::records::{normalize_address, Case, CaseStatus, RecordKind, RecordRef, User};
use crate::SCHEMA_VERSION;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Distribution {
    Direct,
    RoundRobin,
    LeastBusy,
}

impl std::str::FromStr for Distribution {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "direct" => Ok(Distribution::Direct),
            "round-robin" => Ok(Distribution::RoundRobin),
            "least-busy" => Ok(Distribution::LeastBusy),
            other => Err(format!(
                "unknown distribution {other:?} (direct, round-robin, least-busy)"
            )),
        }
    }
}

/// Email-to-case settings of a group account.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CaseSettings {
    pub create_case: bool,
    pub distribution: Distribution,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assign_to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_team: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<String>,
    #[serde(default)]
    pub reopen_on_reply: bool,
}

/// What the message index knows of a stored email (R-L1 looks replies up here).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MessageEntry {
    pub message_id: String,
    pub email_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<RecordRef>,
    pub thread_key: String,
}

/// The writes that attach one email to its parent (idempotent: keyed by the email id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailLink {
    pub email_id: String,
    pub message_id: String,
    pub parent: Option<RecordRef>,
    pub thread_key: String,
    pub subject: Option<String>,
    pub at: DateTime<Utc>,
    /// Addresses on this email, added to the case's participants.
    pub participants: Vec<String>,
    /// Teams the email gets (R-I4): the group account's, and its case's when on a case.
    pub teams: Vec<String>,
}

/// Expected state under which an assignment was chosen; the claim fails if it moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignmentGuard {
    pub counter_key: String,
    pub counter_expected: u64,
    pub counter_new: u64,
    /// For least-busy: the loads the choice was based on.
    pub loads_expected: Vec<(String, u64)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    Created,
    /// Another email of the thread claimed it first: join that case.
    ThreadTaken(ThreadClaim),
    /// The round-robin counter or a load moved under us: choose again.
    Moved,
}

/// Who holds a thread: its case, and the email that created it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadClaim {
    pub case: u64,
    pub email_id: String,
}

/// Event for dispatch (auto-replies, notifications). `id` is deterministic, so a redelivered
/// email re-emits the same id and the consumer drops it: exactly once in effect.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DispatchEvent {
    pub v: u32,
    pub id: String,
    pub kind: String,
    pub email_id: String,
    pub message_id: String,
    pub account: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<RecordRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assigned_user: Option<String>,
}

/// A record found by address; a contact's account comes along so linking needs no second read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressRecord {
    pub record: RecordRef,
    pub account: Option<String>,
}

/// Per-invocation state of a [`LinkService`]: team members read once per batch, and claims of
/// one process taken one at a time, so workers in one batch do not race each other on the
/// round-robin counter (other processes still race, and the conditional claim settles it).
#[derive(Default)]
pub struct LinkCache {
    members: futures::lock::Mutex<HashMap<String, Vec<User>>>,
    claim: futures::lock::Mutex<()>,
}

impl LinkCache {
    /// Seeds team membership from users the caller already read (in round-robin order), so
    /// assignment does not read them again.
    pub fn with_users(users: &[User]) -> Self {
        let mut members: HashMap<String, Vec<User>> = HashMap::new();
        for u in users {
            for m in &u.teams {
                members.entry(m.team.clone()).or_default().push(u.clone());
            }
        }
        LinkCache {
            members: futures::lock::Mutex::new(members),
            claim: futures::lock::Mutex::new(()),
        }
    }
}

/// Records and cases, as linking needs them.
pub trait Crm: Send + Sync {
    fn messages(
        &self,
        ids: &[String],
    ) -> impl Future<Output = StoreResult<Vec<MessageEntry>>> + Send;
    /// Records holding this address: contacts (with their account), accounts, leads.
    fn records_by_address(
        &self,
        address: &str,
    ) -> impl Future<Output = StoreResult<Vec<AddressRecord>>> + Send;
    fn contact_account(
        &self,
        email: &str,
    ) -> impl Future<Output = StoreResult<Option<String>>> + Send;
    /// A lead's conversion target, if converted.
    fn lead_target(
        &self,
        email: &str,
    ) -> impl Future<Output = StoreResult<Option<RecordRef>>> + Send;
    fn get_case(&self, number: u64) -> impl Future<Output = StoreResult<Option<Case>>> + Send;
    fn thread_case(
        &self,
        thread_key: &str,
    ) -> impl Future<Output = StoreResult<Option<ThreadClaim>>> + Send;
    /// Users of a team in round-robin order (join order).
    fn team_members(&self, team: &str) -> impl Future<Output = StoreResult<Vec<User>>> + Send;
    fn counter(&self, key: &str) -> impl Future<Output = StoreResult<u64>> + Send;
    fn open_loads(
        &self,
        users: &[String],
    ) -> impl Future<Output = StoreResult<HashMap<String, u64>>> + Send;
    /// Atomic, never reused; a crash may leave a gap (R-C7).
    fn next_case_number(&self) -> impl Future<Output = StoreResult<u64>> + Send;
    fn claim_case(
        &self,
        case: &Case,
        guard: Option<&AssignmentGuard>,
        link: &EmailLink,
    ) -> impl Future<Output = StoreResult<Claim>> + Send;
    /// Attaches the email to a case it belongs to; reopens a closed case when asked.
    fn join_case(
        &self,
        number: u64,
        link: &EmailLink,
        reopen: bool,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Records the email's parent (or none) and its thread in the message index.
    fn link_email(&self, link: &EmailLink) -> impl Future<Output = StoreResult<()>> + Send;
    fn record_case_error(
        &self,
        account: &str,
        error: &str,
    ) -> impl Future<Output = StoreResult<()>> + Send;
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LinkOutcome {
    pub parent: Option<RecordRef>,
    pub rule: Option<&'static str>,
    pub case: Option<u64>,
    pub case_created: bool,
    pub assigned_user: Option<String>,
    pub case_error: Option<String>,
}

/// `[#N]` in a subject.
pub fn case_tag(subject: &str) -> Option<u64> {
    let mut rest = subject;
    while let Some(i) = rest.find("[#") {
        let after = &rest[i + 2..];
        if let Some(end) = after.find(']') {
            if let Ok(n) = after[..end].trim().parse::<u64>() {
                return Some(n);
            }
        }
        rest = after;
    }
    None
}

/// The thread an email belongs to: the root of its References, else what it replies to,
/// else itself. Every email of a thread computes the same key in any arrival order.
pub fn thread_key(email: &EmailRecord) -> String {
    email
        .references
        .first()
        .or(email.in_reply_to.first())
        .cloned()
        .unwrap_or_else(|| email.message_id.clone())
}

fn is_noreply(address: &str) -> bool {
    let local = address.split('@').next().unwrap_or("").to_ascii_lowercase();
    matches!(
        local.replace(['-', '_', '.'], "").as_str(),
        "noreply" | "donotreply" | "mailerdaemon" | "postmaster"
    )
}

/// Who sent it, for linking: From, then Reply-To (a no-reply From with a Reply-To counts as
/// sent by the Reply-To, R-C5); for mail we sent ourselves, its recipients (R-L3).
pub fn sender_candidates(email: &EmailRecord, our_addresses: &[String]) -> Vec<String> {
    let from = email.from.as_ref().map(|f| normalize_address(&f.address));
    let reply_to: Vec<String> = email
        .reply_to
        .iter()
        .map(|a| normalize_address(&a.address))
        .collect();
    let mut out = Vec::new();
    match &from {
        Some(f) if is_noreply(f) && !reply_to.is_empty() => out.extend(reply_to.iter().cloned()),
        Some(f) => {
            out.push(f.clone());
            out.extend(reply_to.iter().cloned());
        }
        None => out.extend(reply_to.iter().cloned()),
    }
    if from.as_ref().is_some_and(|f| our_addresses.contains(f)) {
        out.extend(
            email
                .to
                .iter()
                .chain(&email.cc)
                .map(|a| normalize_address(&a.address)),
        );
    }
    out.retain(|a| !our_addresses.contains(a));
    out.dedup();
    out
}

/// Picks the assignee among eligible members (already in round-robin order). Returns the
/// member and the new counter value, or `None` when nobody is eligible.
pub fn choose(
    distribution: Distribution,
    eligible: &[String],
    counter: u64,
    loads: &HashMap<String, u64>,
) -> Option<(String, u64)> {
    if eligible.is_empty() {
        return None;
    }
    let n = eligible.len() as u64;
    match distribution {
        Distribution::Direct => None,
        Distribution::RoundRobin => Some((eligible[(counter % n) as usize].clone(), counter + 1)),
        Distribution::LeastBusy => {
            // Fewest open cases; ties go to the first in round-robin order from the counter.
            let start = counter % n;
            let best = (0..n)
                .map(|i| ((start + i) % n) as usize)
                .min_by_key(|&i| {
                    (
                        loads.get(&eligible[i]).copied().unwrap_or(0),
                        (i as u64 + n - start) % n,
                    )
                })?;
            Some((eligible[best].clone(), best as u64 + 1))
        }
    }
}

pub struct LinkService<'a, C, Q> {
    pub crm: &'a C,
    pub events: &'a Q,
    /// Addresses of Mailroom's own accounts (mail from them is "ours").
    pub our_addresses: &'a [String],
    pub cache: LinkCache,
}

impl<C: Crm, Q: Queue<DispatchEvent>> LinkService<'_, C, Q> {
    /// Links one stored email that arrived through `account`. Idempotent: a redelivery finds
    /// the same parent and the same case, and re-emits events with the same ids. `fresh` says
    /// this is the email's first import: only then may a reply reopen a closed case.
    pub async fn link(
        &self,
        email: &EmailRecord,
        account: &Account,
        now: DateTime<Utc>,
        fresh: bool,
    ) -> StoreResult<LinkOutcome> {
        let mut outcome = LinkOutcome {
            parent: None,
            rule: None,
            case: None,
            case_created: false,
            assigned_user: None,
            case_error: None,
        };
        let mut key = None;
        // R-L1: any id it replies to or references, nearest first.
        let mut ids: Vec<String> = email.in_reply_to.clone();
        ids.extend(email.references.iter().rev().cloned());
        ids.retain(|id| id != &email.message_id);
        ids.dedup();
        if !ids.is_empty() {
            let found = self.crm.messages(&ids).await?;
            for id in &ids {
                if let Some(entry) = found.iter().find(|e| &e.message_id == id) {
                    key.get_or_insert_with(|| entry.thread_key.clone());
                    if let Some(parent) = &entry.parent {
                        outcome.parent = Some(self.resolve(parent.clone()).await?);
                        outcome.rule = Some("R-L1");
                        key = Some(entry.thread_key.clone());
                        break;
                    }
                }
            }
        }
        let senders = sender_candidates(email, self.our_addresses);
        // R-L2: a case tag, only from a participant, only when DMARC did not fail.
        if outcome.parent.is_none() && !email.dmarc_fail {
            if let Some(n) = email.subject.as_deref().and_then(case_tag) {
                if let Some(case) = self.crm.get_case(n).await? {
                    if self.is_participant(&case, &senders).await? {
                        outcome.parent = Some(RecordRef::case(n));
                        outcome.rule = Some("R-L2");
                        key = Some(case.thread_key.clone());
                    }
                }
            }
        }
        let settings = account
            .case
            .as_ref()
            .filter(|s| s.create_case && account.kind == AccountKind::Group);
        let joins_case = matches!(&outcome.parent, Some(p) if p.kind == RecordKind::Case);
        let may_create =
            settings.is_some() && !joins_case && !(email.auto_submitted || email.bounce);
        // R-L3: the sender's records (also the new case's account and contact). A reply that
        // already found its case needs neither.
        let sender_records = if outcome.parent.is_none() || may_create {
            self.sender_records(&senders, account).await?
        } else {
            SenderRecords::default()
        };
        if outcome.parent.is_none() {
            if let Some(p) = sender_records.parent.clone() {
                outcome.parent = Some(p);
                outcome.rule = Some("R-L3");
            }
        }
        let thread = key.unwrap_or_else(|| thread_key(email));
        let mut link = EmailLink {
            email_id: email.email_id.clone(),
            message_id: email.message_id.clone(),
            parent: outcome.parent.clone(),
            thread_key: thread.clone(),
            subject: email.subject.clone(),
            at: email.date.unwrap_or(email.received_at),
            participants: participants(email),
            teams: if account.kind == AccountKind::Group {
                account.teams.clone()
            } else {
                Vec::new()
            },
        };

        let case_number = match &outcome.parent {
            Some(RecordRef {
                kind: RecordKind::Case,
                id,
            }) => id.parse::<u64>().ok(),
            _ => None,
        };
        // On a case of this account, the email also gets the case's team (its target team).
        if case_number.is_some() || may_create {
            if let Some(t) = settings.and_then(|s| s.target_team.as_ref()) {
                if !link.teams.contains(t) {
                    link.teams.push(t.clone());
                }
            }
        }
        // R-C6: only a customer's new reply reopens: not a redelivery or re-read, not an
        // auto-reply or bounce, not our own outgoing mail.
        let from_us = email
            .from
            .as_ref()
            .is_some_and(|f| self.our_addresses.contains(&normalize_address(&f.address)));
        let reopen = settings.is_some_and(|s| s.reopen_on_reply)
            && fresh
            && !email.auto_submitted
            && !email.bounce
            && !from_us;
        if let Some(n) = case_number {
            self.crm.join_case(n, &link, reopen).await?;
            outcome.case = Some(n);
        } else if let (Some(settings), false) = (settings, email.auto_submitted || email.bounce) {
            // R-C1: the first eligible email of a thread creates the case; the claim decides.
            // create_case checks the thread's claim first (under the claim lock) and joins an
            // existing case instead.
            let (n, created, user, err) = self
                .create_case(
                    email,
                    account,
                    settings,
                    &sender_records,
                    &mut link,
                    now,
                    reopen,
                )
                .await?;
            outcome.case_created = created;
            outcome.assigned_user = user;
            outcome.case_error = err;
            outcome.case = Some(n);
            outcome.parent = Some(RecordRef::case(n));
        } else {
            self.crm.link_email(&link).await?;
        }
        self.emit(email, account, &outcome).await?;
        Ok(outcome)
    }

    async fn emit(
        &self,
        email: &EmailRecord,
        account: &Account,
        outcome: &LinkOutcome,
    ) -> StoreResult<()> {
        let mut events = Vec::new();
        if outcome.case_created {
            let n = outcome.case.expect("created cases have numbers");
            events.push(DispatchEvent {
                v: SCHEMA_VERSION,
                id: format!("case.created:{n}"),
                kind: "case.created".into(),
                email_id: email.email_id.clone(),
                message_id: email.message_id.clone(),
                account: account.name.clone(),
                parent: outcome.parent.clone(),
                case: Some(n),
                assigned_user: outcome.assigned_user.clone(),
            });
        }
        events.push(DispatchEvent {
            v: SCHEMA_VERSION,
            id: format!("email.linked:{}:{}", email.email_id, account.name),
            kind: "email.linked".into(),
            email_id: email.email_id.clone(),
            message_id: email.message_id.clone(),
            account: account.name.clone(),
            parent: outcome.parent.clone(),
            case: outcome.case,
            assigned_user: None,
        });
        let out: Vec<_> = events.into_iter().map(Outgoing::plain).collect();
        self.events.send(&out).await
    }

    #[allow(clippy::too_many_arguments)]
    async fn create_case(
        &self,
        email: &EmailRecord,
        account: &Account,
        settings: &CaseSettings,
        sender: &SenderRecords,
        link: &mut EmailLink,
        now: DateTime<Utc>,
        reopen: bool,
    ) -> StoreResult<(u64, bool, Option<String>, Option<String>)> {
        let _one_claim_at_a_time = self.cache.claim.lock().await;
        // Another worker of this batch may have claimed the thread while we waited.
        if let Some(claim) = self.crm.thread_case(&link.thread_key).await? {
            return self.existing_claim(claim, link, reopen).await;
        }
        let number = self.crm.next_case_number().await?;
        link.parent = Some(RecordRef::case(number));
        for _attempt in 0..20 {
            let (assignee, guard, error) = self.assign(account, settings).await?;
            let case = Case {
                v: SCHEMA_VERSION,
                number,
                name: email
                    .subject
                    .clone()
                    .filter(|s| !s.trim().is_empty())
                    .unwrap_or_else(|| "(no subject)".into()),
                description: match &email.text {
                    Some(crate::model::Body::Inline(t)) => t.chars().take(30_000).collect(),
                    _ => String::new(),
                },
                status: if assignee.is_some() {
                    CaseStatus::Assigned
                } else {
                    CaseStatus::New
                },
                account: sender.account.clone(),
                contact: sender.contact.clone(),
                lead: sender.lead.clone(),
                assigned_user: assignee.clone(),
                teams: settings.target_team.iter().cloned().collect(),
                mail_account: account.name.clone(),
                thread_key: link.thread_key.clone(),
                participants: link.participants.clone(),
                created_at: now,
            };
            match self.crm.claim_case(&case, guard.as_ref(), link).await? {
                Claim::Created => {
                    if let Some(e) = &error {
                        self.crm.record_case_error(&account.name, e).await?;
                    }
                    return Ok((number, true, assignee, error));
                }
                // Lost the race (or retried after our own claim committed): this number stays
                // unused, a gap, never a reuse (R-C7).
                Claim::ThreadTaken(claim) => return self.existing_claim(claim, link, reopen).await,
                Claim::Moved => continue,
            }
        }
        Err(crate::ports::StoreError::backend(
            "claim case",
            "assignment state kept moving; will retry",
        ))
    }

    /// The thread is claimed. By this very email (a retry after the claim committed but
    /// before its events went out): report it as created, so `case.created` is emitted again
    /// with its same id. By another email: join that case.
    async fn existing_claim(
        &self,
        claim: ThreadClaim,
        link: &mut EmailLink,
        reopen: bool,
    ) -> StoreResult<(u64, bool, Option<String>, Option<String>)> {
        let n = claim.case;
        link.parent = Some(RecordRef::case(n));
        if claim.email_id == link.email_id {
            self.crm.join_case(n, link, false).await?;
            let assignee = self.crm.get_case(n).await?.and_then(|c| c.assigned_user);
            return Ok((n, true, assignee, None));
        }
        self.crm.join_case(n, link, reopen).await?;
        Ok((n, false, None, None))
    }

    /// The assignee, the guard its choice depends on, and an error when nobody is eligible.
    async fn assign(
        &self,
        account: &Account,
        s: &CaseSettings,
    ) -> StoreResult<(Option<String>, Option<AssignmentGuard>, Option<String>)> {
        let Some(team) = &s.target_team else {
            return Ok((None, None, Some("no target team configured".into())));
        };
        let members = {
            let mut cache = self.cache.members.lock().await;
            match cache.get(team) {
                Some(m) => m.clone(),
                None => {
                    let m = self.crm.team_members(team).await?;
                    cache.insert(team.clone(), m.clone());
                    m
                }
            }
        };
        let eligible: Vec<String> = members
            .iter()
            .filter(|u| u.active)
            .filter(|u| match (&s.position, u.position_in(team)) {
                (None, Some(_)) => true,
                (Some(p), Some(Some(mine))) => mine.eq_ignore_ascii_case(p),
                _ => false,
            })
            .map(|u| u.name.clone())
            .collect();
        if s.distribution == Distribution::Direct {
            let who = s.assign_to.clone();
            return Ok(match who {
                Some(u) if members.iter().any(|m| m.name == u && m.active) => (Some(u), None, None),
                Some(u) => (
                    None,
                    None,
                    Some(format!(
                        "direct assignee {u:?} is not an active member of team {team:?}"
                    )),
                ),
                None => (
                    None,
                    None,
                    Some("direct distribution without --assign-to".into()),
                ),
            });
        }
        if eligible.is_empty() {
            return Ok((
                None,
                None,
                Some(format!(
                    "team {team:?} has no active member{} to assign to",
                    s.position
                        .as_ref()
                        .map(|p| format!(" with position {p:?}"))
                        .unwrap_or_default()
                )),
            ));
        }
        let counter_key = format!("rr#{}", account.name);
        let counter = self.crm.counter(&counter_key).await?;
        let loads = if s.distribution == Distribution::LeastBusy {
            self.crm.open_loads(&eligible).await?
        } else {
            HashMap::new()
        };
        let Some((user, next)) = choose(s.distribution, &eligible, counter, &loads) else {
            return Ok((None, None, Some("no eligible member".into())));
        };
        let loads_expected = if s.distribution == Distribution::LeastBusy {
            eligible
                .iter()
                .map(|u| (u.clone(), loads.get(u).copied().unwrap_or(0)))
                .collect()
        } else {
            Vec::new()
        };
        Ok((
            Some(user),
            Some(AssignmentGuard {
                counter_key,
                counter_expected: counter,
                counter_new: next.max(counter + 1),
                loads_expected,
            }),
            None,
        ))
    }

    async fn is_participant(&self, case: &Case, senders: &[String]) -> StoreResult<bool> {
        for s in senders {
            if case.participants.iter().any(|p| p == s) || case.contact.as_deref() == Some(s) {
                return Ok(true);
            }
            if let Some(account) = &case.account {
                for r in self.crm.records_by_address(s).await? {
                    if r.record.kind == RecordKind::Contact && r.account.as_ref() == Some(account) {
                        return Ok(true);
                    }
                }
            }
        }
        Ok(false)
    }

    async fn resolve(&self, parent: RecordRef) -> StoreResult<RecordRef> {
        if parent.kind == RecordKind::Lead {
            if let Some(target) = self.crm.lead_target(&parent.id).await? {
                return Ok(target);
            }
        }
        Ok(parent)
    }

    async fn sender_records(
        &self,
        senders: &[String],
        account: &Account,
    ) -> StoreResult<SenderRecords> {
        let mut out = SenderRecords::default();
        for s in senders {
            let records = self.crm.records_by_address(s).await?;
            let find = |k: RecordKind| records.iter().find(|r| r.record.kind == k).cloned();
            if let Some(found) = find(RecordKind::Contact) {
                let (c, acct) = (found.record, found.account);
                out.contact = Some(c.id.clone());
                out.account = acct.clone();
                out.parent = Some(match (acct, account.person_centric) {
                    (Some(a), false) => RecordRef::new(RecordKind::Account, a),
                    _ => c,
                });
                return Ok(out);
            }
            if let Some(a) = find(RecordKind::Account).map(|f| f.record) {
                out.account = Some(a.id.clone());
                out.parent = Some(a);
                return Ok(out);
            }
            if let Some(l) = find(RecordKind::Lead).map(|f| f.record) {
                let resolved = self.resolve(l.clone()).await?;
                match resolved.kind {
                    RecordKind::Contact => {
                        out.contact = Some(resolved.id.clone());
                        out.account = self.crm.contact_account(&resolved.id).await?;
                    }
                    RecordKind::Account => out.account = Some(resolved.id.clone()),
                    _ => out.lead = Some(l.id.clone()),
                }
                out.parent = Some(resolved);
                return Ok(out);
            }
        }
        Ok(out)
    }
}

#[derive(Debug, Default, Clone)]
struct SenderRecords {
    parent: Option<RecordRef>,
    account: Option<String>,
    contact: Option<String>,
    lead: Option<String>,
}

fn participants(email: &EmailRecord) -> Vec<String> {
    let mut out: Vec<String> = email
        .from
        .iter()
        .chain(&email.reply_to)
        .chain(&email.to)
        .chain(&email.cc)
        .map(|a| normalize_address(&a.address))
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_tags() {
        assert_eq!(case_tag("Re: [#42] printer"), Some(42));
        assert_eq!(case_tag("[#x] [#7]"), Some(7));
        assert_eq!(case_tag("no tag #42"), None);
    }

    #[test]
    fn round_robin_cycles_in_member_order() {
        let m: Vec<String> = ["ann", "bob", "cid"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let picks: Vec<String> = (0..6)
            .map(|c| {
                choose(Distribution::RoundRobin, &m, c, &HashMap::new())
                    .unwrap()
                    .0
            })
            .collect();
        assert_eq!(picks, ["ann", "bob", "cid", "ann", "bob", "cid"]);
        assert_eq!(
            choose(Distribution::RoundRobin, &[], 0, &HashMap::new()),
            None
        );
    }

    #[test]
    fn least_busy_takes_the_fewest_open_cases_ties_in_turn() {
        let m: Vec<String> = ["ann", "bob", "cid"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let loads: HashMap<String, u64> =
            [("ann".into(), 3), ("bob".into(), 1), ("cid".into(), 1)].into();
        assert_eq!(
            choose(Distribution::LeastBusy, &m, 0, &loads).unwrap().0,
            "bob"
        );
        assert_eq!(
            choose(Distribution::LeastBusy, &m, 2, &loads).unwrap().0,
            "cid"
        );
        let even = HashMap::new();
        assert_eq!(
            choose(Distribution::LeastBusy, &m, 1, &even).unwrap().0,
            "bob"
        );
    }

    #[test]
    fn noreply_senders_count_as_their_reply_to() {
        use crate::model::MailAddr;
        let mut e: EmailRecord = serde_json::from_value(serde_json::json!({
            "email_id": "e", "message_id": "m", "synthetic_id": false,
            "auto_submitted": false, "list": false, "bounce": false, "size": 1,
            "attachments_skipped": false, "raw_key": "k", "received_at": "2026-01-01T00:00:00Z"
        }))
        .unwrap();
        e.from = Some(MailAddr {
            name: None,
            address: "No-Reply@shop.example".into(),
        });
        e.reply_to = vec![MailAddr {
            name: None,
            address: "Help@Shop.example".into(),
        }];
        assert_eq!(sender_candidates(&e, &[]), vec!["help@shop.example"]);
        e.from = Some(MailAddr {
            name: None,
            address: "ann@example.com".into(),
        });
        assert_eq!(
            sender_candidates(&e, &[]),
            vec!["ann@example.com", "help@shop.example"]
        );
    }
}
