//! [`IntakeCache`]: what ingest reads about the deployment, kept by one instance for a short
//! time (`MAILROOM_INGEST_CACHE_SECONDS`, 60 s by default), so a busy instance reads each
//! account, own-address answer, team and the filters at most once per period instead of on
//! every batch.
//!
//! What is read is only what a batch needs: its accounts by name (one `BatchGetItem`), whether
//! the addresses on its emails are our own (a look-up in the address index), and the members of
//! its accounts' teams (one Query a team): never a listing of the accounts or users. Filters
//! are still one list (at most 1,000 per user, read whole so scopes need no second key
//! layout), once per period.
//!
//! A change made through the CLI (a new account, filter or user, new case settings) reaches a
//! warm instance within the period; a period of 0 reads on every batch. Time is the caller's
//! `now`, so tests move it by hand.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};

use crate::filters::Filter;
use crate::model::Account;
use crate::ports::{AccountStore, Crm, FilterStore, StoreResult};
use crate::records::User;

/// Entries kept per map before stale ones are dropped: an instance that sees many accounts
/// over its life keeps only those read within the period.
const MAX_ENTRIES: usize = 10_000;

pub struct IntakeCache {
    ttl: Duration,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// By account name; `None`: the account did not exist when read.
    accounts: HashMap<String, Entry<Option<Account>>>,
    /// By normalised address: whether it is one of our accounts' addresses.
    addresses: HashMap<String, Entry<bool>>,
    filters: Option<Entry<Arc<Vec<Filter>>>>,
    /// By team: its members in round-robin order.
    members: HashMap<String, Entry<Arc<Vec<User>>>>,
}

struct Entry<T> {
    value: T,
    read_at: DateTime<Utc>,
}

impl<T: Clone> Entry<T> {
    fn fresh(&self, now: DateTime<Utc>, ttl: Duration) -> Option<T> {
        // A clock that went back counts as stale: read again rather than trust it.
        (self.read_at <= now && now - self.read_at < ttl).then(|| self.value.clone())
    }
}

impl Default for IntakeCache {
    fn default() -> Self {
        IntakeCache::new(std::time::Duration::from_secs(60))
    }
}

impl IntakeCache {
    /// A cache keeping what it reads for `ttl` (zero: nothing is kept).
    pub fn new(ttl: std::time::Duration) -> Self {
        IntakeCache {
            ttl: Duration::from_std(ttl).unwrap_or(Duration::days(36_500)),
            state: Mutex::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic elsewhere while holding it leaves plain data: still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The named accounts that exist; only those not read within the period are asked for,
    /// in one store request.
    pub async fn accounts<S: AccountStore>(
        &self,
        store: &S,
        names: &[String],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Account>> {
        let (mut known, missing) = lookup(&self.state().accounts, names, now, self.ttl);
        if !missing.is_empty() {
            let read = store.get_accounts(&missing).await?;
            let mut state = self.state();
            for name in missing {
                let account = read.iter().find(|a| a.name == name).cloned();
                known.insert(name.clone(), account.clone());
                insert(&mut state.accounts, name, account, now, self.ttl);
            }
        }
        Ok(names
            .iter()
            .filter_map(|n| known.get(n).cloned().flatten())
            .collect())
    }

    /// Which of `addresses` (normalised) are our own accounts' addresses.
    pub async fn own_addresses<S: AccountStore>(
        &self,
        store: &S,
        addresses: &[String],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<String>> {
        let (mut known, missing) = lookup(&self.state().addresses, addresses, now, self.ttl);
        if !missing.is_empty() {
            let ours = store.own_addresses(&missing).await?;
            let mut state = self.state();
            for a in missing {
                let is_ours = ours.contains(&a);
                known.insert(a.clone(), is_ours);
                insert(&mut state.addresses, a, is_ours, now, self.ttl);
            }
        }
        Ok(addresses
            .iter()
            .filter(|a| known.get(*a).copied().unwrap_or(false))
            .cloned()
            .collect())
    }

    /// Every filter (R-X), read at most once per period.
    pub async fn filters<S: FilterStore>(
        &self,
        store: &S,
        now: DateTime<Utc>,
    ) -> StoreResult<Arc<Vec<Filter>>> {
        let cached = self
            .state()
            .filters
            .as_ref()
            .and_then(|e| e.fresh(now, self.ttl));
        if let Some(f) = cached {
            return Ok(f);
        }
        let filters = Arc::new(store.filters().await?);
        if self.ttl > Duration::zero() {
            self.state().filters = Some(Entry {
                value: filters.clone(),
                read_at: now,
            });
        }
        Ok(filters)
    }

    /// A team's members in round-robin order, read at most once per period.
    pub async fn team_members<C: Crm>(
        &self,
        crm: &C,
        team: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Arc<Vec<User>>> {
        let cached = self
            .state()
            .members
            .get(team)
            .and_then(|e| e.fresh(now, self.ttl));
        if let Some(m) = cached {
            return Ok(m);
        }
        let members = Arc::new(crm.team_members(team).await?);
        insert(
            &mut self.state().members,
            team.to_string(),
            members.clone(),
            now,
            self.ttl,
        );
        Ok(members)
    }
}

/// The fresh answers for `keys`, and the keys to read (each once).
fn lookup<K, V>(
    map: &HashMap<K, Entry<V>>,
    keys: &[K],
    now: DateTime<Utc>,
    ttl: Duration,
) -> (HashMap<K, V>, Vec<K>)
where
    K: Eq + Hash + Clone,
    V: Clone,
{
    let mut known = HashMap::new();
    let mut missing = Vec::new();
    for k in keys {
        match map.get(k).and_then(|e| e.fresh(now, ttl)) {
            Some(v) => {
                known.insert(k.clone(), v);
            }
            None if !missing.contains(k) => missing.push(k.clone()),
            None => {}
        }
    }
    (known, missing)
}

fn insert<K: Eq + Hash, V>(
    map: &mut HashMap<K, Entry<V>>,
    key: K,
    value: V,
    now: DateTime<Utc>,
    ttl: Duration,
) {
    if ttl <= Duration::zero() {
        return;
    }
    if map.len() >= MAX_ENTRIES {
        map.retain(|_, e| e.read_at <= now && now - e.read_at < ttl);
    }
    map.insert(
        key,
        Entry {
            value,
            read_at: now,
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{test_account, MemoryCrm, MemoryStore};

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[tokio::test]
    async fn accounts_are_read_once_per_period_and_only_those_asked_for() {
        let store = MemoryStore::default();
        let t0 = Utc::now();
        for n in ["a", "b", "c"] {
            store.create_account(&test_account(n, t0)).await.unwrap();
        }
        let cache = IntakeCache::new(std::time::Duration::from_secs(60));
        let got = cache
            .accounts(&store, &names(&["a", "zz"]), t0)
            .await
            .unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(*store.account_reads.lock().unwrap(), 1);
        // Within the period: no read, not even for the account that did not exist.
        cache
            .accounts(&store, &names(&["zz", "a"]), t0 + Duration::seconds(59))
            .await
            .unwrap();
        assert_eq!(*store.account_reads.lock().unwrap(), 1);
        // A new name is read alone; a new account is seen once the period is over.
        store.create_account(&test_account("zz", t0)).await.unwrap();
        let got = cache
            .accounts(&store, &names(&["b", "zz"]), t0 + Duration::seconds(59))
            .await
            .unwrap();
        assert_eq!(
            got.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(),
            ["b"]
        );
        assert_eq!(*store.account_reads.lock().unwrap(), 2);
        let got = cache
            .accounts(&store, &names(&["zz"]), t0 + Duration::seconds(60))
            .await
            .unwrap();
        assert_eq!(got.len(), 1, "read again after the period");
        assert_eq!(*store.account_reads.lock().unwrap(), 3);
    }

    #[tokio::test]
    async fn own_addresses_are_looked_up_and_kept_both_ways() {
        let store = MemoryStore::default();
        let t0 = Utc::now();
        store
            .create_account(&test_account("support", t0))
            .await
            .unwrap();
        let cache = IntakeCache::default();
        let asked = names(&["support@example.test", "ann@cust.example"]);
        let ours = cache.own_addresses(&store, &asked, t0).await.unwrap();
        assert_eq!(ours, ["support@example.test"]);
        let again = cache.own_addresses(&store, &asked, t0).await.unwrap();
        assert_eq!(again, ours);
        assert_eq!(
            *store.account_reads.lock().unwrap(),
            1,
            "a negative answer is kept too"
        );
    }

    #[tokio::test]
    async fn a_zero_period_reads_every_time_and_a_clock_gone_back_reads_again() {
        let store = MemoryStore::default();
        let t0 = Utc::now();
        let off = IntakeCache::new(std::time::Duration::ZERO);
        for _ in 0..2 {
            off.filters(&store, t0).await.unwrap();
        }
        assert_eq!(*store.filter_reads.lock().unwrap(), 2);
        let on = IntakeCache::default();
        on.filters(&store, t0).await.unwrap();
        on.filters(&store, t0 + Duration::seconds(30))
            .await
            .unwrap();
        assert_eq!(*store.filter_reads.lock().unwrap(), 3);
        on.filters(&store, t0 - Duration::seconds(1)).await.unwrap();
        assert_eq!(*store.filter_reads.lock().unwrap(), 4);
    }

    #[tokio::test]
    async fn a_team_is_read_once_per_period_and_a_new_member_seen_after_it() {
        let crm = MemoryCrm::default();
        let t0 = Utc::now();
        crm.add_user(user("ann", "l1")).unwrap();
        let cache = IntakeCache::default();
        let names = |m: Arc<Vec<User>>| m.iter().map(|u| u.name.clone()).collect::<Vec<_>>();
        assert_eq!(
            names(cache.team_members(&crm, "l1", t0).await.unwrap()),
            ["ann"]
        );
        crm.add_user(user("bob", "l1")).unwrap();
        let soon = t0 + Duration::seconds(59);
        assert_eq!(
            names(cache.team_members(&crm, "l1", soon).await.unwrap()),
            ["ann"]
        );
        let later = t0 + Duration::seconds(61);
        assert_eq!(
            names(cache.team_members(&crm, "l1", later).await.unwrap()),
            ["ann", "bob"]
        );
    }

    fn user(name: &str, team: &str) -> User {
        User {
            v: crate::SCHEMA_VERSION,
            name: name.into(),
            emails: vec![],
            teams: vec![crate::records::TeamMembership {
                team: team.into(),
                position: None,
            }],
            active: true,
            created_at: Utc::now(),
            admin: false,
            notify_email: false,
            role: None,
        }
    }
}
