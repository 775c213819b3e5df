//! [`LinkService`]: links one stored email to its parent record and, for a group account with
//! email-to-case, to its case (claimed once per thread, assigned by [`super::assign`]).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::assign::{self, Decision};
use super::link::{case_tag, participants, sender_candidates, tag_sender, thread_key};
use crate::messages::{DispatchEvent, EventKind};
use crate::model::{Account, AccountKind, Body, CaseSettings, Distribution, EmailRecord};
use crate::ports::{
    AssignmentGuard, Claim, CounterStep, Crm, EmailLink, LeastBusyRead, Outgoing, Queue,
    StoreResult,
};
use crate::records::{
    normalize_address, Case, CaseStatus, RecordKind, RecordRef, ThreadClaim, User,
};
use crate::types::CaseNumber;
use crate::SCHEMA_VERSION;

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
    /// assignment does not read them again. A user is a team's member once, however often
    /// the stored user lists the team.
    pub fn with_users(users: &[User]) -> Self {
        let mut members: HashMap<String, Vec<User>> = HashMap::new();
        for u in users {
            for team in u.team_names() {
                members.entry(team).or_default().push(u.clone());
            }
        }
        LinkCache {
            members: futures::lock::Mutex::new(members),
            claim: futures::lock::Mutex::new(()),
        }
    }

    /// Seeds whole teams the caller already read (each in round-robin order); any other team
    /// is read when assignment needs it.
    pub fn with_members(teams: &HashMap<String, std::sync::Arc<Vec<User>>>) -> Self {
        let members = teams
            .iter()
            .map(|(team, users)| (team.clone(), users.as_ref().clone()))
            .collect();
        LinkCache {
            members: futures::lock::Mutex::new(members),
            claim: futures::lock::Mutex::new(()),
        }
    }
}

/// What linking decided for one email.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LinkOutcome {
    pub parent: Option<RecordRef>,
    pub rule: Option<&'static str>,
    pub case: Option<CaseNumber>,
    /// This email's thread claim made the case: now, or on an earlier delivery whose events
    /// may not have gone out (then `case.created` is emitted again, with its same id).
    pub case_created: bool,
    /// The claim was made by this delivery (not found from an earlier one): counts of cases
    /// created read this, so a redelivery is not counted twice.
    pub case_claimed_now: bool,
    pub assigned_user: Option<String>,
    pub case_error: Option<String>,
}

/// The case an email ended on.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CaseResult {
    number: CaseNumber,
    /// This email created it (also on a retry after its own claim committed).
    created: bool,
    /// The claim committed in this call.
    claimed_now: bool,
    assigned_user: Option<String>,
    error: Option<String>,
}

/// The parent found by R-L1 or R-L2, with the thread it puts the email on.
#[derive(Debug, Default)]
struct Found {
    parent: Option<RecordRef>,
    rule: Option<&'static str>,
    thread: Option<String>,
    /// The email is a copy of mail Mailroom sent (R-I3): it threads, never opens a case.
    ours: bool,
}

/// The sender's records (R-L3): the parent they give, and the new case's fields.
#[derive(Debug, Default, Clone)]
struct SenderRecords {
    parent: Option<RecordRef>,
    account: Option<String>,
    contact: Option<String>,
    lead: Option<String>,
}

/// What a new case is made from.
struct CaseInput<'e> {
    email: &'e EmailRecord,
    account: &'e Account,
    settings: &'e CaseSettings,
    sender: &'e SenderRecords,
    now: DateTime<Utc>,
    reopen: bool,
}

/// An assignment chosen, with the state the claim must find unchanged.
struct Assignment {
    user: Option<String>,
    guard: Option<AssignmentGuard>,
    error: Option<String>,
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
        self.link_with(email, account, now, fresh, self.our_addresses)
            .await
    }

    /// [`Self::link`] with the addresses on this email known to be our own (the caller looked
    /// them up), instead of the service's fixed list.
    pub async fn link_with(
        &self,
        email: &EmailRecord,
        account: &Account,
        now: DateTime<Utc>,
        fresh: bool,
        ours: &[String],
    ) -> StoreResult<LinkOutcome> {
        let senders = sender_candidates(email, ours);
        let mut found = self.find_thread_parent(email, ours).await?;
        let settings = account
            .case
            .as_ref()
            .filter(|s| s.create_case && account.kind == AccountKind::Group);
        let case_number = found.parent.as_ref().and_then(RecordRef::case_number);
        // R-C1, R-C5: auto-replies and bounces never open a case.
        let may_create = settings.is_some()
            && case_number.is_none()
            && !(email.auto_submitted || email.bounce || email.bounce_of.is_some());
        // R-L3: the sender's records (also the new case's account and contact). A reply that
        // already found its case needs neither.
        let sender = if found.parent.is_none() || may_create {
            self.sender_records(&senders, account).await?
        } else {
            SenderRecords::default()
        };
        if found.parent.is_none() && sender.parent.is_some() {
            found.parent = sender.parent.clone();
            found.rule = Some("R-L3");
        }
        let mut link = self.email_link(email, account, &found, settings, case_number, may_create);
        let reopen = self.may_reopen(email, settings, fresh, ours);
        let mut outcome = LinkOutcome {
            parent: found.parent,
            rule: found.rule,
            case: None,
            case_created: false,
            case_claimed_now: false,
            assigned_user: None,
            case_error: None,
        };
        match (case_number, settings) {
            (Some(n), _) => {
                self.crm.join_case(n, &link, reopen).await?;
                outcome.case = Some(n);
            }
            (None, Some(settings)) if may_create => {
                // R-C1: the first eligible email of a thread creates the case; the claim decides.
                let input = CaseInput {
                    email,
                    account,
                    settings,
                    sender: &sender,
                    now,
                    reopen,
                };
                let case = self.create_case(&input, &mut link).await?;
                outcome.case = Some(case.number);
                outcome.parent = Some(RecordRef::case(case.number.get()));
                outcome.case_created = case.created;
                outcome.case_claimed_now = case.claimed_now;
                outcome.assigned_user = case.assigned_user;
                outcome.case_error = case.error;
            }
            _ => self.crm.link_email(&link).await?,
        }
        self.emit(email, account, &outcome).await?;
        Ok(outcome)
    }

    /// R-L1, then R-L2: the parent an earlier email of the thread gives, or a case tag.
    async fn find_thread_parent(&self, email: &EmailRecord, ours: &[String]) -> StoreResult<Found> {
        let mut found = Found::default();
        // R-L1: any id it replies to or references, nearest first.
        let mut ids: Vec<String> = email.in_reply_to.clone();
        ids.extend(email.references.iter().rev().cloned());
        // R-A4: a bounce answers the email it returns, nearer than anything it references.
        let bounced = email
            .bounce_of
            .as_ref()
            .and_then(|b| b.original_message_id.clone())
            .filter(|id| !ids.contains(id));
        ids.splice(0..0, bounced.clone());
        ids.retain(|id| id != &email.message_id);
        ids.dedup();
        // R-I3: mail that may be our own (our X-Mailroom-Id, or from one of our addresses) is
        // looked up by its own Message-ID too: the index knows what we sent.
        let from_us = email
            .from
            .as_ref()
            .is_some_and(|f| ours.contains(&normalize_address(&f.address)));
        let maybe_ours = email.signals.mailroom_id.is_some() || from_us;
        let mut lookup = ids.clone();
        if maybe_ours {
            lookup.push(email.message_id.clone());
        }
        if !lookup.is_empty() {
            let entries = self.crm.messages(&lookup).await?;
            if let Some(own) = entries
                .iter()
                .find(|e| e.message_id == email.message_id && e.ours)
            {
                found.ours = true;
                found.thread = Some(own.thread_key.clone());
                if let Some(parent) = &own.parent {
                    found.parent = Some(self.resolve(parent.clone()).await?);
                    found.rule = Some("R-I3");
                }
            }
            for id in &ids {
                if let Some(entry) = entries.iter().find(|e| &e.message_id == id) {
                    found.thread.get_or_insert_with(|| entry.thread_key.clone());
                    if let Some(parent) = &entry.parent {
                        found.parent = Some(self.resolve(parent.clone()).await?);
                        // Found only through the bounce's original: say so.
                        found.rule = Some(match bounced.as_ref() == Some(id) {
                            true => "R-A4",
                            false => "R-L1",
                        });
                        found.thread = Some(entry.thread_key.clone());
                        return Ok(found);
                    }
                }
            }
        }
        // R-L2: a case tag, only when From is a participant and DMARC did not fail.
        if email.dmarc_fail {
            return Ok(found);
        }
        let Some(from) = tag_sender(email, ours) else {
            return Ok(found);
        };
        if let Some(n) = email.subject.as_deref().and_then(case_tag) {
            if let Some(case) = self.crm.get_case(n).await? {
                if self.is_participant(&case, &from).await? {
                    found.parent = Some(RecordRef::case(n.get()));
                    found.rule = Some("R-L2");
                    found.thread = Some(case.thread_key.clone());
                }
            }
        }
        Ok(found)
    }

    /// The writes that attach the email: its parent, thread, participants and teams (R-I4:
    /// the group account's, and on a case of this account also the case's target team).
    fn email_link(
        &self,
        email: &EmailRecord,
        account: &Account,
        found: &Found,
        settings: Option<&CaseSettings>,
        case_number: Option<CaseNumber>,
        may_create: bool,
    ) -> EmailLink {
        let mut teams = if account.kind == AccountKind::Group {
            account.teams.clone()
        } else {
            Vec::new()
        };
        if case_number.is_some() || may_create {
            if let Some(t) = settings.and_then(|s| s.target_team.as_ref()) {
                if !teams.contains(t) {
                    teams.push(t.clone());
                }
            }
        }
        EmailLink {
            email_id: email.email_id.clone(),
            message_id: email.message_id.clone(),
            parent: found.parent.clone(),
            thread_key: found.thread.clone().unwrap_or_else(|| thread_key(email)),
            subject: email.subject.clone(),
            at: email.date.unwrap_or(email.received_at),
            // A tag only proves that From takes part: nobody else on the email is added (a
            // participant's tagged mail cannot bring a stranger into the case).
            participants: match found.rule {
                Some("R-L2") => Vec::new(),
                _ => participants(email),
            },
            teams,
            ours: found.ours,
        }
    }

    /// R-C6: only a customer's new reply reopens: not a redelivery or re-read, not an
    /// auto-reply or bounce, not our own outgoing mail.
    fn may_reopen(
        &self,
        email: &EmailRecord,
        settings: Option<&CaseSettings>,
        fresh: bool,
        ours: &[String],
    ) -> bool {
        let from_us = email
            .from
            .as_ref()
            .is_some_and(|f| ours.contains(&normalize_address(&f.address)));
        settings.is_some_and(|s| s.reopen_on_reply)
            && fresh
            && !email.auto_submitted
            && !email.bounce
            && !from_us
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
                id: format!("{}:{n}", EventKind::CaseCreated),
                kind: EventKind::CaseCreated,
                email_id: email.email_id.clone(),
                message_id: email.message_id.clone(),
                account: account.name.clone(),
                parent: outcome.parent.clone(),
                case: Some(n),
                assigned_user: outcome.assigned_user.clone(),
                inbox: Vec::new(),
                quiet: Vec::new(),
            });
        }
        events.push(DispatchEvent {
            v: SCHEMA_VERSION,
            id: format!(
                "{}:{}:{}",
                EventKind::EmailLinked,
                email.email_id,
                account.name
            ),
            kind: EventKind::EmailLinked,
            email_id: email.email_id.clone(),
            message_id: email.message_id.clone(),
            account: account.name.clone(),
            parent: outcome.parent.clone(),
            case: outcome.case,
            assigned_user: None,
            inbox: Vec::new(),
            quiet: Vec::new(),
        });
        let out: Vec<_> = events.into_iter().map(Outgoing::plain).collect();
        self.events.send(&out).await
    }

    async fn create_case(
        &self,
        input: &CaseInput<'_>,
        link: &mut EmailLink,
    ) -> StoreResult<CaseResult> {
        let (account, reopen) = (input.account, input.reopen);
        let _one_claim_at_a_time = self.cache.claim.lock().await;
        // Another worker of this batch may have claimed the thread while we waited.
        if let Some(claim) = self.crm.thread_case(&link.thread_key).await? {
            return self.existing_claim(claim, link, reopen).await;
        }
        let number = self.crm.next_case_number().await?;
        link.parent = Some(RecordRef::case(number.get()));
        for _attempt in 0..20 {
            let chosen = self.assign(account, input.settings).await?;
            let case = new_case(number, input, link, &chosen);
            match self
                .crm
                .claim_case(&case, chosen.guard.as_ref(), link)
                .await?
            {
                Claim::Created => {
                    if let Some(e) = &chosen.error {
                        self.crm.record_case_error(&account.name, e).await?;
                    }
                    return Ok(CaseResult {
                        number,
                        created: true,
                        claimed_now: true,
                        assigned_user: chosen.user,
                        error: chosen.error,
                    });
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
    ) -> StoreResult<CaseResult> {
        let number = claim.case;
        link.parent = Some(RecordRef::case(number.get()));
        if claim.email_id == link.email_id {
            self.crm.join_case(number, link, false).await?;
            let assigned_user = self
                .crm
                .get_case(number)
                .await?
                .and_then(|c| c.assigned_user);
            return Ok(CaseResult {
                number,
                created: true,
                claimed_now: false,
                assigned_user,
                error: None,
            });
        }
        self.crm.join_case(number, link, reopen).await?;
        Ok(CaseResult {
            number,
            created: false,
            claimed_now: false,
            assigned_user: None,
            error: None,
        })
    }

    /// Reads what the choice depends on (members, counter; for least-busy the team's load
    /// version, then the loads) and lets the pure rules in [`assign`] choose. The claim then
    /// conditions on the counter, and for least-busy on the version and the chosen member's
    /// count only: a bounded transaction at any team size, and still exact (R-C3), since
    /// every change of a member's count also bumps the version read before the counts.
    async fn assign(&self, account: &Account, s: &CaseSettings) -> StoreResult<Assignment> {
        let members = match &s.target_team {
            Some(team) => self.members(team).await?,
            None => Vec::new(),
        };
        let teams_of = |user: &str| {
            members
                .iter()
                .find(|m| m.name == user)
                .map(User::team_names)
                .unwrap_or_default()
        };
        let eligible = match assign::plan(s, &members) {
            Decision::Assign { user, .. } => {
                return Ok(Assignment {
                    guard: Some(AssignmentGuard {
                        assignee_teams: teams_of(&user),
                        ..AssignmentGuard::default()
                    }),
                    user: Some(user),
                    error: None,
                })
            }
            Decision::Unassigned(error) => {
                return Ok(Assignment {
                    user: None,
                    guard: None,
                    error: Some(error),
                })
            }
            Decision::NeedsState { eligible } => eligible,
        };
        let counter_key = crate::keys::round_robin_sk(&account.name);
        let counter = self.crm.counter(&counter_key).await?;
        let least_busy = match (&s.target_team, s.distribution) {
            (Some(team), Distribution::LeastBusy) => {
                // The version first: a count that changes after this read moves it.
                let version = self.crm.counter(&crate::keys::team_loads_sk(team)).await?;
                Some((team.clone(), version, self.crm.open_loads(&eligible).await?))
            }
            _ => None,
        };
        let no_loads = HashMap::new();
        let loads = least_busy.as_ref().map(|(_, _, l)| l).unwrap_or(&no_loads);
        let Some((user, next)) = assign::choose(s.distribution, &eligible, counter, loads) else {
            return Ok(Assignment {
                user: None,
                guard: None,
                error: Some("no eligible member".into()),
            });
        };
        let least_busy = least_busy.map(|(team, version, loads)| LeastBusyRead {
            team,
            version,
            load: loads.get(&user).copied().unwrap_or(0),
        });
        Ok(Assignment {
            guard: Some(AssignmentGuard {
                counter: Some(CounterStep {
                    key: counter_key,
                    expected: counter,
                    new: next.max(counter + 1),
                }),
                least_busy,
                assignee_teams: teams_of(&user),
            }),
            user: Some(user),
            error: None,
        })
    }

    /// A team's members, read once per invocation.
    async fn members(&self, team: &str) -> StoreResult<Vec<User>> {
        let mut cache = self.cache.members.lock().await;
        if let Some(m) = cache.get(team) {
            return Ok(m.clone());
        }
        let m = self.crm.team_members(team).await?;
        cache.insert(team.to_string(), m.clone());
        Ok(m)
    }

    /// The case's contact, a contact of its account, or an address already on the thread.
    async fn is_participant(&self, case: &Case, address: &str) -> StoreResult<bool> {
        if case.participants.iter().any(|p| p == address)
            || case.contact.as_deref() == Some(address)
        {
            return Ok(true);
        }
        if let Some(account) = &case.account {
            for r in self.crm.records_by_address(address).await? {
                if r.record.kind == RecordKind::Contact && r.account.as_ref() == Some(account) {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// A converted lead stands for what it became.
    async fn resolve(&self, parent: RecordRef) -> StoreResult<RecordRef> {
        if parent.kind == RecordKind::Lead {
            if let Some(target) = self.crm.lead_target(&parent.id).await? {
                return Ok(target);
            }
        }
        Ok(parent)
    }

    /// R-L3: the first sender address with records: a Contact (its Account unless the mail
    /// account is person-centric), else an Account, else a Lead (resolved when converted).
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

/// R-C2: the case an email opens: name from the subject, description from the text body,
/// account/contact/lead from the sender, the target team, New or Assigned.
fn new_case(
    number: CaseNumber,
    input: &CaseInput<'_>,
    link: &EmailLink,
    chosen: &Assignment,
) -> Case {
    let (email, sender) = (input.email, input.sender);
    Case {
        v: SCHEMA_VERSION,
        number,
        name: email
            .subject
            .clone()
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| "(no subject)".into()),
        description: match &email.text {
            Some(Body::Inline(t)) => t.chars().take(30_000).collect(),
            _ => String::new(),
        },
        status: if chosen.user.is_some() {
            CaseStatus::Assigned
        } else {
            CaseStatus::New
        },
        account: sender.account.clone(),
        contact: sender.contact.clone(),
        lead: sender.lead.clone(),
        assigned_user: chosen.user.clone(),
        teams: input.settings.target_team.iter().cloned().collect(),
        mail_account: input.account.name.clone(),
        thread_key: link.thread_key.clone(),
        participants: link.participants.clone(),
        created_at: input.now,
    }
}

#[cfg(test)]
#[path = "service_tests.rs"]
mod tests;
