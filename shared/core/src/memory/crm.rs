//! In-memory fake of [`Crm`], for the link and case rule specs and unit tests of the core.
//!
//! It keeps the DynamoDB adapter's semantics (`mailroom_aws::crm`), not a simpler idea of
//! them: a claim is one all-or-nothing transaction that creates `THREAD#<key>` only if absent
//! (else `ThreadTaken` with the holder), refuses an existing case number, and checks that the
//! round-robin counter, and for least-busy the team's load version and the chosen member's
//! count, did not move (else `Moved`). Every change of a user's open count bumps the load
//! version of each of the user's teams, and a claim over DynamoDB's 100 items is refused.
//! Link writes need the email item to exist, as the adapter's conditional update does, and a
//! cancelled `join_case` or `link_email` reports `AlreadyExists`, as the adapter's does.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};

use super::crm_state::{entry, union, CrmState};
use crate::keys::team_loads_sk;
use crate::ports::{
    AddressRecord, AssignmentGuard, Claim, Crm, Directory, EmailLink, Followers, StoreError,
    StoreResult, MAX_TRANSACTION_ITEMS,
};
use crate::records::{
    normalize_address, Case, CaseStatus, Contact, CrmAccount, Lead, MessageEntry, RecordKind,
    RecordRef, StreamEntry, StreamKind, ThreadClaim, User,
};
use crate::types::CaseNumber;

/// Why a claim's transaction was cancelled, told apart as the adapter does: by whether the
/// thread claim (its first item) failed.
enum Refused {
    ThreadTaken(ThreadClaim),
    Moved,
}

#[derive(Default)]
pub struct MemoryCrm {
    state: Mutex<CrmState>,
}

impl MemoryCrm {
    /// A copy of everything held, for assertions.
    pub fn state(&self) -> CrmState {
        self.st().clone()
    }

    /// Runs `f` on a copy and keeps it only if `f` succeeds: DynamoDB's all-or-nothing.
    fn transact<T, E>(&self, f: impl FnOnce(&mut CrmState) -> Result<T, E>) -> Result<T, E> {
        let mut guard = self.st();
        let mut next = guard.clone();
        let out = f(&mut next)?;
        *guard = next;
        Ok(out)
    }

    fn st(&self) -> MutexGuard<'_, CrmState> {
        self.state.lock().unwrap()
    }

    /// Adds a seeded item unless `taken`, with `<type>#<id>` address index entries, refusing a
    /// duplicate as the adapter's `add_record` and `add_user` do.
    fn seed(
        &self,
        what: String,
        taken: impl FnOnce(&CrmState) -> bool,
        (addresses, account): (&[String], Option<String>),
        insert: impl FnOnce(&mut CrmState),
    ) -> StoreResult<()> {
        let mut st = self.st();
        if taken(&st) {
            return Err(StoreError::AlreadyExists(what));
        }
        for a in addresses {
            st.index(a, what.replacen(':', "#", 1), account.clone());
        }
        insert(&mut st);
        Ok(())
    }

    pub fn add_account(&self, a: CrmAccount) -> StoreResult<()> {
        let (id, emails) = (a.name.clone(), a.emails.clone());
        let taken = |st: &CrmState| st.accounts.contains_key(&id);
        self.seed(format!("account:{id}"), taken, (&emails, None), |st| {
            st.accounts.insert(a.name.clone(), a);
        })
    }

    /// The contact's account rides along in its address index entry, as in the adapter.
    pub fn add_contact(&self, c: Contact) -> StoreResult<()> {
        let id = normalize_address(&c.email);
        let index = (std::slice::from_ref(&id), c.account.clone());
        let taken = |st: &CrmState| st.contacts.contains_key(&id);
        self.seed(format!("contact:{id}"), taken, index, |st| {
            st.contacts.insert(id.clone(), c);
        })
    }

    /// A lead, converted or not.
    pub fn add_lead(&self, l: Lead) -> StoreResult<()> {
        let id = normalize_address(&l.email);
        let taken = |st: &CrmState| st.leads.contains_key(&id);
        let index = (std::slice::from_ref(&id), None);
        self.seed(format!("lead:{id}"), taken, index, |st| {
            st.leads.insert(id.clone(), l);
        })
    }

    /// A user's addresses get `user#<name>` index entries, which linking skips. Memberships
    /// are stored as a set, as the adapter's `add_user` stores them.
    pub fn add_user(&self, u: User) -> StoreResult<()> {
        let u = User {
            teams: crate::records::TeamMembership::set(u.teams),
            ..u
        };
        let (id, emails) = (u.name.clone(), u.emails.clone());
        let taken = |st: &CrmState| st.users.contains_key(&id);
        self.seed(format!("user:{id}"), taken, (&emails, None), |st| {
            st.users.insert(u.name.clone(), u);
        })
    }

    pub fn add_team(&self, name: &str) -> StoreResult<()> {
        let taken = |st: &CrmState| st.teams.contains(name);
        self.seed(format!("team {name}"), taken, (&[], None), |st| {
            st.teams.insert(name.to_string());
        })
    }

    /// Users in round-robin order (`list_users`: by creation time, then name).
    pub fn users(&self) -> Vec<User> {
        let mut users: Vec<User> = self.st().users.values().cloned().collect();
        users.sort_by(|a, b| (a.created_at, &a.name).cmp(&(b.created_at, &b.name)));
        users
    }

    /// Seeds a case as a claim would have left it: the thread held by `email_id`, the
    /// assignee's load counted while the case is open, the case counter at least its number.
    pub fn add_case(&self, case: Case, email_id: &str) -> StoreResult<()> {
        self.transact(|st| {
            if st.cases.contains_key(&case.number) || st.threads.contains_key(&case.thread_key) {
                return Err(format!("case:{} or its thread", case.number));
            }
            st.threads.insert(
                case.thread_key.clone(),
                ThreadClaim {
                    case: case.number,
                    email_id: email_id.to_string(),
                },
            );
            if let (Some(u), true) = (&case.assigned_user, case.status.is_open()) {
                *st.loads.entry(u.clone()).or_default() += 1;
                let teams = user_teams(st, u, &case.teams);
                st.bump_team_loads(&teams);
            }
            let c = st.counters.entry("case".into()).or_default();
            *c = (*c).max(case.number.get());
            let mut case = case;
            case.participants = union(&case.participants, &[]);
            st.cases.insert(case.number, case);
            Ok(())
        })
        .map_err(StoreError::AlreadyExists)
    }

    /// Seeds a message index entry: a stored email later mail may reply to (R-L1).
    pub fn add_message(&self, entry: MessageEntry) {
        self.st().messages.insert(entry.message_id.clone(), entry);
    }

    /// Records that ingest stored this email, so link writes onto it succeed.
    pub fn add_email(&self, email_id: &str) {
        self.st().emails.entry(email_id.to_string()).or_default();
    }

    pub fn set_counter(&self, key: &str, value: u64) {
        self.st().counters.insert(key.to_string(), value);
    }

    pub fn set_load(&self, user: &str, open: i64) {
        self.st().loads.insert(user.to_string(), open);
    }

    /// A record's stream in timeline order, as the adapter's `stream` lists it.
    pub fn stream(&self, record: &RecordRef) -> Vec<StreamEntry> {
        let st = self.st();
        let mut entries: Vec<StreamEntry> = st
            .streams
            .get(&record.to_string())
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        entries.sort_by(|a, b| (a.at, &a.kind).cmp(&(b.at, &b.kind)));
        entries
    }

    /// The adapter's `set_case_status`: the status and the assignee's open count change
    /// together, the count only when the case moves between open and not open (R-C3), and
    /// with it the load version of the assignee's teams and the case's.
    pub fn set_case_status(&self, number: CaseNumber, status: CaseStatus) -> StoreResult<Case> {
        let mut st = self.st();
        let case = st
            .cases
            .get_mut(&number)
            .ok_or_else(|| StoreError::NotFound(format!("case {number}")))?;
        if case.status == status {
            return Ok(case.clone());
        }
        let was_open = case.status.is_open();
        case.status = status;
        let case = case.clone();
        if let (Some(u), true) = (&case.assigned_user, was_open != status.is_open()) {
            *st.loads.entry(u.clone()).or_default() += if status.is_open() { 1 } else { -1 };
            let teams = user_teams(&st, u, &case.teams);
            st.bump_team_loads(&teams);
        }
        Ok(case)
    }
}

/// The teams whose load version a change of `user`'s count moves: the user's, and `also`
/// (a case's teams, in case the user left one or is gone), as the adapter's `set_case_status`.
fn user_teams(st: &CrmState, user: &str, also: &[String]) -> Vec<String> {
    let mine = st.users.get(user).map(User::team_names).unwrap_or_default();
    union(&mine, also)
}

/// The items the adapter's claim transaction holds: thread claim, case, counter, assignee
/// count, one load version per team, the case's first stream entry, and the email's link
/// (message index, email update, stream entry).
fn claim_items(case: &Case, guard: Option<&AssignmentGuard>, link: &EmailLink) -> usize {
    let counter = guard.is_some_and(|g| g.counter.is_some()) as usize;
    let assignee = match (&case.assigned_user, guard) {
        (Some(_), Some(g)) => 1 + version_teams(g).len(),
        (Some(_), None) => 1,
        (None, _) => 0,
    };
    let stream = link.parent.is_some() as usize;
    2 + counter + assignee + 1 + 2 + stream
}

/// The assignee's teams and the least-busy team, once each: one item per team version.
fn version_teams(g: &AssignmentGuard) -> Vec<String> {
    let lb: Vec<String> = g.least_busy.iter().map(|l| l.team.clone()).collect();
    union(&g.assignee_teams, &lb)
}

impl Crm for MemoryCrm {
    async fn messages(&self, ids: &[String]) -> StoreResult<Vec<MessageEntry>> {
        let st = self.st();
        let unique: BTreeSet<&String> = ids.iter().collect();
        Ok(unique
            .into_iter()
            .filter_map(|id| st.messages.get(id).cloned())
            .collect())
    }

    async fn records_by_address(&self, address: &str) -> StoreResult<Vec<AddressRecord>> {
        let st = self.st();
        let Some(entries) = st.addresses.get(&normalize_address(address)) else {
            return Ok(Vec::new());
        };
        Ok(entries
            .iter()
            .filter_map(|(sk, account)| {
                let (kind, id) = sk.split_once('#')?;
                let kind: RecordKind = kind.parse().ok()?;
                Some(AddressRecord {
                    record: RecordRef::new(kind, id),
                    account: account.clone(),
                })
            })
            .collect())
    }

    async fn contact_account(&self, email: &str) -> StoreResult<Option<String>> {
        let st = self.st();
        Ok(st
            .contacts
            .get(&normalize_address(email))
            .and_then(|c| c.account.clone()))
    }

    async fn lead_target(&self, email: &str) -> StoreResult<Option<RecordRef>> {
        let st = self.st();
        Ok(st.leads.get(&normalize_address(email)).and_then(|l| {
            match (&l.converted_contact, &l.converted_account) {
                (Some(c), _) => Some(RecordRef::new(RecordKind::Contact, c)),
                (None, Some(a)) => Some(RecordRef::new(RecordKind::Account, a)),
                _ => None,
            }
        }))
    }

    async fn get_case(&self, number: CaseNumber) -> StoreResult<Option<Case>> {
        Ok(self.st().cases.get(&number).cloned())
    }

    async fn thread_case(&self, thread_key: &str) -> StoreResult<Option<ThreadClaim>> {
        Ok(self.st().threads.get(thread_key).cloned())
    }

    async fn team_members(&self, team: &str) -> StoreResult<Vec<User>> {
        Ok(self
            .users()
            .into_iter()
            .filter(|u| u.teams.iter().any(|m| m.team == team))
            .collect())
    }

    async fn counter(&self, key: &str) -> StoreResult<u64> {
        Ok(self.st().counters.get(key).copied().unwrap_or(0))
    }

    /// Only users with a load item appear, clamped at zero, as the adapter's batch read.
    async fn open_loads(&self, users: &[String]) -> StoreResult<HashMap<String, u64>> {
        let st = self.st();
        Ok(users
            .iter()
            .filter_map(|u| st.loads.get(u).map(|l| (u.clone(), (*l).max(0) as u64)))
            .collect())
    }

    async fn next_case_number(&self) -> StoreResult<CaseNumber> {
        let mut st = self.st();
        let c = st.counters.entry("case".into()).or_default();
        *c += 1;
        CaseNumber::new(*c).map_err(|e| StoreError::permanent("next case number", e))
    }

    async fn claim_case(
        &self,
        case: &Case,
        guard: Option<&AssignmentGuard>,
        link: &EmailLink,
    ) -> StoreResult<Claim> {
        let items = claim_items(case, guard, link);
        if items > MAX_TRANSACTION_ITEMS {
            return Err(StoreError::permanent(
                "claim case",
                format!(
                    "{items} items in one transaction (DynamoDB allows {MAX_TRANSACTION_ITEMS})"
                ),
            ));
        }
        let outcome = self.transact(|st| {
            // The claim is the transaction's first item: its failure wins over any other.
            if let Some(holder) = st.threads.get(&case.thread_key) {
                return Err(Refused::ThreadTaken(holder.clone()));
            }
            if st.cases.contains_key(&case.number) {
                return Err(Refused::Moved);
            }
            let counter = |st: &CrmState, k: &str| st.counters.get(k).copied().unwrap_or(0);
            if let Some(c) = guard.and_then(|g| g.counter.as_ref()) {
                if counter(st, &c.key) != c.expected {
                    return Err(Refused::Moved);
                }
                st.counters.insert(c.key.clone(), c.new);
            }
            if let Some(lb) = guard.and_then(|g| g.least_busy.as_ref()) {
                if counter(st, &team_loads_sk(&lb.team)) != lb.version {
                    return Err(Refused::Moved);
                }
            }
            if let Some(user) = &case.assigned_user {
                if let Some(lb) = guard.and_then(|g| g.least_busy.as_ref()) {
                    if !st.load_is(user, lb.load) {
                        return Err(Refused::Moved);
                    }
                }
                *st.loads.entry(user.clone()).or_default() += 1;
                st.bump_team_loads(&guard.map(version_teams).unwrap_or_default());
            }
            st.threads.insert(
                case.thread_key.clone(),
                ThreadClaim {
                    case: case.number,
                    email_id: link.email_id.clone(),
                },
            );
            let mut stored = case.clone();
            stored.participants = union(&case.participants, &[]);
            st.cases.insert(case.number, stored);
            let created = StreamEntry {
                at: case.created_at,
                ..entry(
                    StreamKind::CaseCreated,
                    link,
                    Some(case.name.clone()),
                    Some(case.number),
                )
            };
            st.streams
                .entry(RecordRef::case(case.number.get()).to_string())
                .or_default()
                .insert("case_created".into(), created);
            // A failed link write (the email not stored) is not the claim's item: Moved.
            st.link(link, Some(case.number)).map_err(|_| Refused::Moved)
        });
        Ok(match outcome {
            Ok(()) => Claim::Created,
            Err(Refused::ThreadTaken(holder)) => Claim::ThreadTaken(holder),
            Err(Refused::Moved) => Claim::Moved,
        })
    }

    async fn join_case(
        &self,
        number: CaseNumber,
        link: &EmailLink,
        reopen: bool,
    ) -> StoreResult<()> {
        self.transact(|st| -> Result<(), String> {
            st.link(link, Some(number))?;
            if !link.participants.is_empty() {
                let case = st
                    .cases
                    .get_mut(&number)
                    .ok_or_else(|| format!("case {number} does not exist"))?;
                case.participants = union(&case.participants, &link.participants);
            }
            Ok(())
        })
        .map_err(|e| StoreError::AlreadyExists(format!("join case {number}: {e}")))?;
        if reopen {
            let case = self.get_case(number).await?;
            if let Some(case) = case.filter(|c| c.status == CaseStatus::Closed) {
                let to = match case.assigned_user {
                    Some(_) => CaseStatus::Assigned,
                    None => CaseStatus::New,
                };
                self.set_case_status(number, to)?;
            }
        }
        Ok(())
    }

    async fn link_email(&self, link: &EmailLink) -> StoreResult<()> {
        self.transact(|st| st.link(link, None))
            .map_err(|e| StoreError::AlreadyExists(format!("link email: {e}")))
    }

    async fn record_case_error(&self, account: &str, error: &str) -> StoreResult<()> {
        let mut st = self.st();
        st.case_errors
            .insert(account.to_string(), error.to_string());
        Ok(())
    }

    async fn record_name(&self, record: &RecordRef) -> StoreResult<Option<String>> {
        let st = self.st();
        let id = &record.id;
        Ok(match record.kind {
            RecordKind::Account => st.accounts.get(id).map(|a| a.name.clone()),
            RecordKind::Contact => st
                .contacts
                .get(&normalize_address(id))
                .map(|c| c.name.clone()),
            RecordKind::Lead => st.leads.get(&normalize_address(id)).map(|l| l.name.clone()),
            RecordKind::Case => record
                .case_number()
                .and_then(|n| st.cases.get(&n))
                .map(|c| c.name.clone()),
            RecordKind::Opportunity => None,
        })
    }

    async fn index_sent(
        &self,
        sent: &crate::dispatch::records::SentRecord,
        thread_key: &str,
    ) -> StoreResult<()> {
        let mut st = self.st();
        st.index_sent(sent, thread_key);
        Ok(())
    }
}

impl crate::ports::Streams for MemoryCrm {
    async fn stream(&self, record: &RecordRef) -> StoreResult<Vec<StreamEntry>> {
        Ok(MemoryCrm::stream(self, record))
    }
}

impl Directory for MemoryCrm {
    async fn list_users(&self) -> StoreResult<Vec<User>> {
        Ok(self.users())
    }
    async fn get_users(&self, names: &[String]) -> StoreResult<Vec<User>> {
        let st = self.st();
        Ok(names
            .iter()
            .filter_map(|n| st.users.get(n).cloned())
            .collect())
    }
}

/// The adapter keeps followers beside the records (`FOLLOW#<type>#<id>`), so the fake does too:
/// listed in user order, as a Query by sort key lists them.
impl Followers for MemoryCrm {
    async fn followers(&self, record: &RecordRef) -> StoreResult<Vec<String>> {
        let st = self.st();
        Ok(st
            .follows
            .get(&record.to_string())
            .map(|users| users.iter().cloned().collect())
            .unwrap_or_default())
    }

    async fn follow(&self, user: &str, record: &RecordRef) -> StoreResult<()> {
        let mut st = self.st();
        st.follows
            .entry(record.to_string())
            .or_default()
            .insert(user.to_string());
        Ok(())
    }

    async fn unfollow(&self, user: &str, record: &RecordRef) -> StoreResult<()> {
        if let Some(users) = self.st().follows.get_mut(&record.to_string()) {
            users.remove(user);
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "crm_tests.rs"]
mod tests;
