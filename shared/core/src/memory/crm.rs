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
    AddressRecord, AssignmentGuard, Claim, Crm, Directory, EmailLink, StoreError, StoreResult,
    MAX_TRANSACTION_ITEMS,
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
}

impl Directory for MemoryCrm {
    async fn list_users(&self) -> StoreResult<Vec<User>> {
        Ok(self.users())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{from_value, json};

    const AT: &str = "2026-03-03T10:00:00Z";

    fn cn(n: u64) -> CaseNumber {
        CaseNumber::new(n).unwrap()
    }

    fn case(number: u64, thread: &str, user: Option<&str>) -> Case {
        let status = if user.is_some() { "Assigned" } else { "New" };
        from_value(
            json!({"number": number, "name": "printer", "status": status,
            "assigned_user": user, "teams": ["support"], "mail_account": "support",
            "thread_key": thread, "participants": ["c@x.example", "a@x.example"],
            "created_at": AT}),
        )
        .unwrap()
    }

    fn link(email: &str, thread: &str, parent: Option<RecordRef>) -> EmailLink {
        EmailLink {
            email_id: email.into(),
            message_id: format!("{email}@x.example"),
            parent,
            thread_key: thread.into(),
            subject: Some("hello".into()),
            at: AT.parse().unwrap(),
            participants: vec!["b@x.example".into()],
            teams: vec!["support".into()],
        }
    }

    async fn claim(crm: &MemoryCrm, c: &Case, g: Option<AssignmentGuard>, l: &EmailLink) -> Claim {
        crm.claim_case(c, g.as_ref(), l).await.unwrap()
    }

    /// A round-robin guard; with `least_busy`, the support team's version and the chosen
    /// member's count as read.
    fn guard(expected: u64, least_busy: Option<(u64, u64)>) -> AssignmentGuard {
        AssignmentGuard {
            counter: Some(crate::ports::CounterStep {
                key: "rr#support".into(),
                expected,
                new: expected + 1,
            }),
            least_busy: least_busy.map(|(version, load)| crate::ports::LeastBusyRead {
                team: "support".into(),
                version,
                load,
            }),
            assignee_teams: vec!["support".into(), "sales".into()],
        }
    }

    #[tokio::test]
    async fn a_claim_creates_everything_once_then_the_thread_is_taken() {
        let crm = MemoryCrm::default();
        crm.add_email("e1");
        crm.add_email("e2");
        let l1 = link("e1", "root", Some(RecordRef::case(1)));
        let g = guard(0, Some((0, 0)));
        let c1 = case(1, "root", Some("ann"));
        assert_eq!(claim(&crm, &c1, Some(g), &l1).await, Claim::Created);
        let st = crm.state();
        assert_eq!(
            st.cases[&cn(1)].participants,
            ["a@x.example", "c@x.example"]
        );
        assert_eq!(st.threads["root"].email_id, "e1");
        assert_eq!((st.counters["rr#support"], st.loads["ann"]), (1, 1));
        // The assignee's count moved: so did the load version of each of her teams.
        assert_eq!(
            (st.counters["loads#support"], st.counters["loads#sales"]),
            (1, 1)
        );
        assert_eq!(
            (st.emails["e1"].case, &st.emails["e1"].teams[..]),
            (Some(cn(1)), &["support".to_string()][..])
        );
        assert_eq!(st.messages["e1@x.example"].thread_key, "root");
        let stream = crm.stream(&RecordRef::case(1));
        let kinds: Vec<&str> = stream.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds, ["case_created", "email_received"]);

        // Another email of the thread, with a fresh number and a guard that holds: taken.
        let l2 = link("e2", "root", Some(RecordRef::case(2)));
        let before = crm.state();
        let taken = claim(
            &crm,
            &case(2, "root", Some("bob")),
            Some(guard(1, None)),
            &l2,
        )
        .await;
        let holder = ThreadClaim {
            case: cn(1),
            email_id: "e1".into(),
        };
        assert_eq!(taken, Claim::ThreadTaken(holder));
        assert_eq!(crm.state(), before, "a refused claim writes nothing");
    }

    #[tokio::test]
    async fn a_moved_counter_or_load_is_moved_and_writes_nothing() {
        let crm = MemoryCrm::default();
        crm.add_email("e1");
        crm.set_counter("rr#support", 3);
        let c = case(1, "root", Some("ann"));
        let l = link("e1", "root", Some(RecordRef::case(1)));
        let before = crm.state();
        assert_eq!(
            claim(&crm, &c, Some(guard(2, None)), &l).await,
            Claim::Moved
        );
        assert_eq!(crm.state(), before);

        // Least-busy read the team's version at 0; another member's count moved since.
        crm.set_counter("loads#support", 1);
        let before = crm.state();
        let g = guard(3, Some((0, 0)));
        assert_eq!(claim(&crm, &c, Some(g), &l).await, Claim::Moved);
        assert_eq!(crm.state(), before);
        // The version holds but the chosen member's own count moved (a second guard).
        crm.set_load("ann", 2);
        let g = guard(3, Some((1, 0)));
        assert_eq!(claim(&crm, &c, Some(g), &l).await, Claim::Moved);
        crm.set_load("ann", 0);
        let before = crm.state();

        // An email ingest never stored cancels the claim too; then the claim holds.
        let g = guard(3, Some((1, 0)));
        let orphan = link("e9", "other", Some(RecordRef::case(1)));
        assert_eq!(
            claim(&crm, &c, Some(g.clone()), &orphan).await,
            Claim::Moved
        );
        assert_eq!(crm.state(), before);
        assert_eq!(claim(&crm, &c, Some(g), &l).await, Claim::Created);
        // A case number already used, on another thread: refused, never overwritten.
        assert_eq!(
            claim(&crm, &case(1, "root2", None), None, &l).await,
            Claim::Moved
        );
        assert_eq!(crm.state().counters["rr#support"], 4);
    }

    #[tokio::test]
    async fn status_changes_move_the_versions_and_an_oversized_claim_is_refused() {
        let crm = MemoryCrm::default();
        let ann = json!({"name": "ann", "teams": [{"team": "support"}, {"team": "sales"},
            {"team": "support", "position": "L1"}], "active": true, "created_at": AT});
        crm.add_user(from_value(ann).unwrap()).unwrap();
        assert_eq!(crm.state().users["ann"].teams.len(), 2, "stored as a set");
        crm.add_case(case(5, "root", Some("ann")), "e0").unwrap();
        let v = |st: &CrmState, t: &str| st.counters[&format!("loads#{t}")];
        let st = crm.state();
        assert_eq!((v(&st, "support"), v(&st, "sales")), (1, 1));
        crm.set_case_status(cn(5), CaseStatus::Pending).unwrap();
        assert_eq!(v(&crm.state(), "support"), 1, "still open: no count moved");
        crm.set_case_status(cn(5), CaseStatus::Closed).unwrap();
        let st = crm.state();
        assert_eq!(
            (v(&st, "support"), v(&st, "sales"), st.loads["ann"]),
            (2, 2, 0)
        );

        // An assignee in 100 teams would need more than DynamoDB's 100 items: refused whole.
        crm.add_email("e1");
        let mut g = guard(0, None);
        g.assignee_teams = (0..100).map(|i| format!("t{i}")).collect();
        let before = crm.state();
        let l = link("e1", "other", Some(RecordRef::case(6)));
        let c6 = case(6, "other", Some("ann"));
        let refused = crm.claim_case(&c6, Some(&g), &l).await;
        let e = refused.expect_err("over the limit");
        assert_eq!(e.class(), crate::error::ErrorClass::Permanent);
        let why = std::error::Error::source(&e).map(|s| s.to_string());
        assert!(
            why.is_some_and(|w| w.contains("DynamoDB allows 100")),
            "{e:?}"
        );
        assert_eq!(crm.state(), before);
    }

    #[tokio::test]
    async fn case_numbers_are_atomic_and_never_reused() {
        let crm = MemoryCrm::default();
        let all = futures::future::join_all((0..50).map(|_| crm.next_case_number())).await;
        let mut numbers: Vec<u64> = all.into_iter().map(|n| n.unwrap().get()).collect();
        numbers.sort();
        assert_eq!(numbers, (1..=50).collect::<Vec<_>>());
        assert_eq!(crm.counter("case").await.unwrap(), 50);
        crm.add_case(case(70, "seeded", None), "s").unwrap();
        assert_eq!(crm.next_case_number().await.unwrap(), 71);
    }

    #[tokio::test]
    async fn join_adds_participants_and_stream_and_reopens_when_asked() {
        let crm = MemoryCrm::default();
        crm.add_case(case(5, "root", Some("ann")), "e0").unwrap();
        crm.add_email("e1");
        let l = link("e1", "root", Some(RecordRef::case(5)));
        crm.join_case(cn(5), &l, false).await.unwrap();
        crm.join_case(cn(5), &l, false).await.unwrap(); // a redelivery: no second effect
        let st = crm.state();
        let p = ["a@x.example", "b@x.example", "c@x.example"];
        assert_eq!(st.cases[&cn(5)].participants, p);
        assert_eq!(crm.stream(&RecordRef::case(5)).len(), 1);
        assert_eq!(st.emails["e1"].parent, Some(RecordRef::case(5)));

        crm.set_case_status(cn(5), CaseStatus::Closed).unwrap();
        assert_eq!(crm.state().loads["ann"], 0);
        crm.join_case(cn(5), &l, false).await.unwrap();
        assert_eq!(crm.state().cases[&cn(5)].status, CaseStatus::Closed);
        crm.join_case(cn(5), &l, true).await.unwrap();
        assert_eq!(crm.state().cases[&cn(5)].status, CaseStatus::Assigned);
        assert_eq!(crm.state().loads["ann"], 1);

        // A case that does not exist refuses the participants, and the link with them.
        crm.add_email("e2");
        let before = crm.state();
        let l2 = link("e2", "root", Some(RecordRef::case(9)));
        assert!(crm.join_case(cn(9), &l2, false).await.is_err());
        assert_eq!(crm.state(), before);
    }

    #[tokio::test]
    async fn link_writes_need_the_stored_email_unless_there_is_nothing_to_set() {
        let crm = MemoryCrm::default();
        let mut l = link(
            "e1",
            "root",
            Some(RecordRef::new(RecordKind::Account, "Acme")),
        );
        assert!(matches!(
            crm.link_email(&l).await,
            Err(StoreError::AlreadyExists(_))
        ));
        assert_eq!(crm.state(), CrmState::default());
        (l.parent, l.teams) = (None, vec![]);
        crm.link_email(&l).await.unwrap();
        assert_eq!(
            crm.messages(&["e1@x.example".into()]).await.unwrap().len(),
            1
        );
        crm.add_email("e1");
        l.parent = Some(RecordRef::new(RecordKind::Account, "Acme"));
        crm.link_email(&l).await.unwrap();
        assert_eq!(crm.state().emails["e1"].case, None);
        assert_eq!(crm.stream(&l.parent.clone().unwrap())[0].case, None);
    }

    #[tokio::test]
    async fn lookups_by_address_lead_and_team() {
        let crm = MemoryCrm::default();
        let ann = json!({"name": "Ann", "email": "Ann@Acme.example", "account": "Acme"});
        crm.add_contact(from_value(ann).unwrap()).unwrap();
        let acme: CrmAccount =
            from_value(json!({"name": "Acme", "emails": ["ann@acme.example"]})).unwrap();
        crm.add_account(acme.clone()).unwrap();
        assert!(crm.add_account(acme).is_err());
        for (name, at) in [
            ("bob", "2026-01-02T00:00:00Z"),
            ("ann", "2026-01-03T00:00:00Z"),
        ] {
            let u = json!({"name": name, "emails": [format!("{name}@corp.example")],
                "teams": [{"team": "support"}], "active": true, "created_at": at});
            crm.add_user(from_value(u).unwrap()).unwrap();
        }
        let lee = json!({"name": "Lee", "email": "lee@x.example",
            "converted_contact": "ann@acme.example", "converted_account": "Acme"});
        crm.add_lead(from_value(lee).unwrap()).unwrap();

        let found = crm.records_by_address("ANN@acme.example").await.unwrap();
        let kinds: Vec<_> = found.iter().map(|r| r.record.kind).collect();
        assert_eq!(kinds, [RecordKind::Account, RecordKind::Contact]);
        assert_eq!(found[1].account.as_deref(), Some("Acme"));
        assert!(crm
            .records_by_address("bob@corp.example")
            .await
            .unwrap()
            .is_empty());
        let acct = crm.contact_account("ann@acme.example").await.unwrap();
        assert_eq!(acct.as_deref(), Some("Acme"));
        assert_eq!(
            crm.lead_target("lee@x.example").await.unwrap(),
            Some(RecordRef::new(RecordKind::Contact, "ann@acme.example"))
        );
        let names: Vec<String> = crm
            .team_members("support")
            .await
            .unwrap()
            .into_iter()
            .map(|u| u.name)
            .collect();
        assert_eq!(names, ["bob", "ann"]);
        crm.set_load("ann", -1);
        let loads = crm.open_loads(&["ann".into(), "bob".into()]).await.unwrap();
        assert_eq!(loads, [("ann".to_string(), 0)].into());
    }
}
