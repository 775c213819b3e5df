//! [`Intake`]: one ingest pointer all the way, through the ports. The ingest function's
//! handler only decodes queue records and calls [`IntakeBatch::take`]; the CLI and tests drive
//! the same code.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::cache::IntakeCache;
use super::order::BatchOrder;
use crate::cases::link::participants;
use crate::cases::{LinkCache, LinkOutcome, LinkService};
use crate::filters::{user_copy, Filter, FilterInput, InboxCopy};
use crate::ingest::{IngestOutcome, IngestService};
use crate::limits::Limits;
use crate::messages::{DispatchEvent, EventKind, IngestPointer};
use crate::model::{Account, AccountKind, Body, EmailRecord};
use crate::ports::{
    AccountStore, BlobStore, Crm, Directory, EmailStore, FilterStore, Outgoing, Queue, StoreResult,
};
use crate::records::{normalize_address, User};
use crate::SCHEMA_VERSION;

/// The ports intake writes through. In a Lambda `store` and `crm` are the same DynamoDB table.
pub struct Intake<'a, S, C, B, Q> {
    pub store: &'a S,
    pub crm: &'a C,
    pub blobs: &'a B,
    pub events: &'a Q,
    pub limits: &'a Limits,
    /// What the instance read recently (accounts, own addresses, filters, teams); lives as
    /// long as the instance, across batches.
    pub cache: &'a IntakeCache,
}

/// What one pointer led to.
#[derive(Debug, Clone)]
pub struct Ingested {
    pub pointer: IngestPointer,
    pub outcome: IngestOutcome,
    pub link: Option<LinkOutcome>,
}

/// What a batch of pointers shares, read once (or taken from the instance's cache): the
/// batch's own accounts (email-to-case settings), filters, and users (who receives a group
/// account's mail). Whether an address on an email is our own is looked up per email.
pub struct BatchContext {
    pub accounts: Vec<Account>,
    pub filters: Arc<Vec<Filter>>,
    /// The members of the batch's group accounts' teams and case target teams, by team.
    pub members: HashMap<String, Arc<Vec<User>>>,
    /// Those members once each: who may receive the batch's group mail.
    pub users: Vec<User>,
    /// The batch's accounts' own addresses (known without a look-up).
    pub our_addresses: Vec<String>,
}

/// Intake over one batch: the context plus the per-invocation linking state.
pub struct IntakeBatch<'a, S, C, B, Q> {
    intake: &'a Intake<'a, S, C, B, Q>,
    context: &'a BatchContext,
    linker: LinkService<'a, C, Q>,
    order: BatchOrder,
    /// KiB of raw message that may be parsed at once ([`Limits::ingest_bytes_in_flight`]).
    in_flight: tokio::sync::Semaphore,
}

impl<'a, S, C, B, Q> Intake<'a, S, C, B, Q>
where
    S: AccountStore + EmailStore + FilterStore,
    C: Crm + Directory,
    B: BlobStore,
    Q: Queue<DispatchEvent>,
{
    /// Reads what every pointer of a batch needs, once: `accounts` are the names its
    /// pointers carry. Nothing here grows with the number of accounts in the deployment.
    pub async fn context(
        &self,
        accounts: &[String],
        now: DateTime<Utc>,
    ) -> StoreResult<BatchContext> {
        let accounts = self.cache.accounts(self.store, accounts, now).await?;
        let our_addresses = accounts
            .iter()
            .filter_map(|a| a.address.as_deref().map(normalize_address))
            .collect();
        // Whose inbox a group account's mail reaches, and whom its cases go to.
        let mut teams: Vec<&String> = accounts
            .iter()
            .filter(|a| a.kind == AccountKind::Group)
            .flat_map(|a| {
                let target = a.case.as_ref().and_then(|c| c.target_team.as_ref());
                a.teams.iter().chain(target)
            })
            .collect();
        teams.sort();
        teams.dedup();
        let (mut members, mut users, mut seen) = (HashMap::new(), Vec::new(), HashSet::new());
        for team in teams {
            let m = self.cache.team_members(self.crm, team, now).await?;
            users.extend(m.iter().filter(|u| seen.insert(u.name.clone())).cloned());
            members.insert(team.clone(), m);
        }
        Ok(BatchContext {
            filters: self.cache.filters(self.store, now).await?,
            members,
            users,
            accounts,
            our_addresses,
        })
    }

    /// Intake of a batch of `records` pointers; each is taken once with [`IntakeBatch::take`].
    pub fn batch(
        &'a self,
        context: &'a BatchContext,
        records: usize,
    ) -> IntakeBatch<'a, S, C, B, Q> {
        IntakeBatch {
            intake: self,
            context,
            order: BatchOrder::new(records),
            in_flight: tokio::sync::Semaphore::new(budget_kib(self.limits) as usize),
            linker: LinkService {
                crm: self.crm,
                events: self.events,
                our_addresses: &context.our_addresses,
                // The batch's teams are read already (whole teams only: a member's other teams
                // are not).
                cache: LinkCache::with_members(&context.members),
            },
        }
    }
}

impl<S, C, B, Q> IntakeBatch<'_, S, C, B, Q>
where
    S: AccountStore + EmailStore + FilterStore,
    C: Crm + Directory,
    B: BlobStore,
    Q: Queue<DispatchEvent>,
{
    /// Takes one pointer all the way. Idempotent: a redelivery stores, links and copies
    /// nothing twice, and completes whatever a crash left undone.
    pub async fn take(&self, pointer: &IngestPointer, now: DateTime<Utc>) -> StoreResult<Ingested> {
        let ingest = IngestService {
            emails: self.intake.store,
            blobs: self.intake.blobs,
            limits: self.intake.limits,
            filters: self.context.filters.as_slice(),
            skips: self.intake.store,
        };
        let ingesting = self.order.ingesting();
        // Held while the raw message is read and parsed only: linking holds no raw bytes, and
        // a reply waiting for its thread's first email must not hold memory that one needs.
        let bytes = self
            .in_flight
            .acquire_many(kib(pointer.size).min(budget_kib(self.intake.limits)))
            .await
            .expect("the budget is never closed");
        let (outcome, email) = ingest.ingest_with_record(pointer, now).await?;
        drop(bytes);
        let account = self
            .context
            .accounts
            .iter()
            .find(|a| a.name == pointer.account);
        let (Some(email), Some(account)) = (email, account) else {
            return Ok(Ingested {
                pointer: pointer.clone(),
                outcome,
                link: None,
            });
        };
        // A thread's first email links before the replies of this batch (see `order.rs`).
        let _starter = if email.in_reply_to.is_empty() && email.references.is_empty() {
            Some(ingesting.starter())
        } else {
            ingesting.reply().await;
            None
        };
        // Linking runs on every delivery, duplicates too: it is idempotent, and a crash
        // between storing and linking must not leave an email without its case.
        let fresh = matches!(outcome, IngestOutcome::Imported { .. });
        let linked = async {
            let ours = self.our_addresses(&email, now).await?;
            let link = self
                .linker
                .link_with(&email, account, now, fresh, &ours)
                .await?;
            let told = self.deliver_copies(&email, account).await?;
            self.announce_delivery(&email, account, &link, told).await?;
            Ok::<_, crate::ports::StoreError>(link)
        };
        let link = match linked.await {
            Ok(link) => link,
            // Refused for its content: quarantined now (a replay completes it), not retried.
            Err(e) if e.is_refused() => {
                return Ok(Ingested {
                    pointer: pointer.clone(),
                    outcome: ingest.quarantine_refused(pointer, &e, now).await?,
                    link: None,
                })
            }
            Err(e) => return Err(e),
        };
        Ok(Ingested {
            pointer: pointer.clone(),
            outcome,
            link: Some(link),
        })
    }

    /// The addresses on the email that are our own accounts': the batch's accounts' are
    /// known, the others are looked up (through the instance's cache).
    async fn our_addresses(
        &self,
        email: &EmailRecord,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<String>> {
        let (mut ours, others): (Vec<String>, Vec<String>) = participants(email)
            .into_iter()
            .partition(|a| self.context.our_addresses.contains(a));
        if !others.is_empty() {
            let cache = self.intake.cache;
            ours.extend(cache.own_addresses(self.intake.store, &others, now).await?);
        }
        Ok(ours)
    }

    /// Tells dispatch who is to be notified of the email (R-N1, R-N2): after the copies, so
    /// a notification never points at an inbox copy that does not exist yet. Sent on every
    /// delivery with the same id; dispatch creates each notification once.
    async fn announce_delivery(
        &self,
        email: &EmailRecord,
        account: &Account,
        link: &LinkOutcome,
        told: Told,
    ) -> StoreResult<()> {
        let mut event = DispatchEvent::about(
            EventKind::EmailDelivered,
            &email.email_id,
            &email.message_id,
            &account.name,
        );
        event.parent = link.parent.clone();
        event.case = link.case;
        event.assigned_user = link.assigned_user.clone();
        event.inbox = told.notify;
        event.quiet = told.quiet;
        self.intake.events.send(&[Outgoing::plain(event)]).await
    }

    /// Puts the email in the inbox of each user who receives it, with that user's filters
    /// applied to that copy only (R-X2). A user's own skip filter hides it from that user.
    /// Returns who is to be told of it and who asked not to be.
    async fn deliver_copies(&self, email: &EmailRecord, account: &Account) -> StoreResult<Told> {
        let users = recipients(account, &self.context.users);
        let mut told = Told::default();
        if users.is_empty() {
            return Ok(told);
        }
        let filters = self.context.filters.as_slice();
        let mut input = FilterInput::from_email(email);
        // A text body too large for the item lives in S3: read it only if a filter needs it.
        if let Some(Body::Stored { key, .. }) = &email.text {
            if filters.iter().any(|f| f.needs_body()) {
                if let Some(bytes) = self.intake.blobs.get(key).await? {
                    input.body = Some(String::from_utf8_lossy(&bytes).into_owned());
                }
            }
        }
        let mut copies = Vec::new();
        for user in users {
            let state = user_copy(filters, &account.name, &user, &input);
            match (state.hidden, state.notify) {
                (false, true) => told.notify.push(user.clone()),
                _ => told.quiet.push(user.clone()),
            }
            if state.hidden {
                continue;
            }
            copies.push(InboxCopy {
                v: SCHEMA_VERSION,
                user,
                email_id: email.email_id.clone(),
                message_id: email.message_id.clone(),
                subject: email.subject.clone(),
                from: email.from.as_ref().map(|f| f.address.clone()),
                account: account.name.clone(),
                folder: state.folder,
                read: state.read,
                notify: state.notify,
                filters: state.filters,
                at: email.date.unwrap_or(email.received_at),
            });
        }
        if !copies.is_empty() {
            self.intake.store.put_copies(&copies).await?;
        }
        Ok(told)
    }
}

/// Inbox users split by whether their filters let them be notified.
#[derive(Debug, Default)]
struct Told {
    notify: Vec<String>,
    quiet: Vec<String>,
}

/// The in-flight budget in KiB (at least one message's worth of permits).
fn budget_kib(limits: &Limits) -> u32 {
    kib(limits.ingest_bytes_in_flight).max(1)
}

fn kib(bytes: u64) -> u32 {
    bytes.div_ceil(1024).clamp(1, u32::MAX as u64 / 2) as u32
}

/// Who receives an account's mail (R-I4): a personal account's owner; a group account's
/// active team members.
pub fn recipients(account: &Account, users: &[User]) -> Vec<String> {
    match account.kind {
        AccountKind::Personal => account.owner.iter().cloned().collect(),
        AccountKind::Group => users
            .iter()
            .filter(|u| u.active && u.teams.iter().any(|m| account.teams.contains(&m.team)))
            .map(|u| u.name.clone())
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::TeamMembership;

    fn user(name: &str, team: &str, active: bool) -> User {
        User {
            v: SCHEMA_VERSION,
            name: name.into(),
            emails: vec![],
            teams: vec![TeamMembership {
                team: team.into(),
                position: None,
            }],
            active,
            created_at: Utc::now(),
            admin: false,
            notify_email: false,
            role: None,
        }
    }

    #[test]
    fn group_mail_goes_to_active_team_members_personal_mail_to_its_owner() {
        let users = [
            user("ann", "l1", true),
            user("bob", "l2", true),
            user("cid", "l1", false),
        ];
        let mut group = crate::memory::test_account("support", Utc::now());
        group.teams = vec!["l1".into()];
        assert_eq!(recipients(&group, &users), ["ann"]);
        let mut personal = crate::memory::test_account("ann-mail", Utc::now());
        personal.kind = AccountKind::Personal;
        personal.owner = Some("bob".into());
        assert_eq!(recipients(&personal, &users), ["bob"]);
    }

    #[tokio::test]
    async fn a_batch_reads_only_its_accounts_and_looks_up_other_own_addresses() {
        use crate::memory::{test_account, MemoryCrm, MemoryQueue, MemoryStore};
        let store = MemoryStore::default();
        let t0 = Utc::now();
        for i in 0..1000 {
            let a = test_account(&format!("acct{i}"), t0);
            store.create_account(&a).await.unwrap();
        }
        let (crm, events, blobs) = (
            MemoryCrm::default(),
            MemoryQueue::<DispatchEvent>::default(),
            crate::memory::MemoryBlobs::default(),
        );
        let (limits, cache) = (Limits::default(), IntakeCache::default());
        let intake = Intake {
            store: &store,
            crm: &crm,
            blobs: &blobs,
            events: &events,
            limits: &limits,
            cache: &cache,
        };
        let context = intake.context(&["acct7".into()], t0).await.unwrap();
        assert_eq!(
            context.accounts.len(),
            1,
            "the batch's account, not all 1,000"
        );
        assert_eq!(context.our_addresses, ["acct7@example.test"]);
        // Mail from another of our accounts is ours; a customer's address is not.
        let email: EmailRecord = serde_json::from_value(serde_json::json!({
            "email_id": "e", "message_id": "m", "synthetic_id": false,
            "auto_submitted": false, "list": false, "bounce": false, "size": 1,
            "attachments_skipped": false, "raw_key": "k", "received_at": "2026-01-01T00:00:00Z",
            "from": {"address": "ACCT9@example.test"},
            "to": [{"address": "acct7@example.test"}, {"address": "ann@cust.example"}]
        }))
        .unwrap();
        let batch = intake.batch(&context, 1);
        let ours = batch.our_addresses(&email, t0).await.unwrap();
        assert_eq!(ours, ["acct7@example.test", "acct9@example.test"]);
        // A second batch within the period reads nothing again.
        let reads = *store.account_reads.lock().unwrap();
        let context = intake.context(&["acct7".into()], t0).await.unwrap();
        intake
            .batch(&context, 1)
            .our_addresses(&email, t0)
            .await
            .unwrap();
        assert_eq!(*store.account_reads.lock().unwrap(), reads);
    }

    /// A blob store that counts how many raw messages are being read at once.
    #[derive(Default)]
    struct CountingBlobs {
        inner: crate::memory::MemoryBlobs,
        now: std::sync::atomic::AtomicUsize,
        most: std::sync::atomic::AtomicUsize,
    }

    impl BlobStore for CountingBlobs {
        async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> StoreResult<()> {
            self.inner.put(key, bytes, content_type).await
        }
        async fn get(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
            use std::sync::atomic::Ordering::SeqCst;
            let n = self.now.fetch_add(1, SeqCst) + 1;
            self.most.fetch_max(n, SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            self.now.fetch_sub(1, SeqCst);
            self.inner.get(key).await
        }
    }

    #[tokio::test]
    async fn ingest_holds_a_byte_budget_not_a_record_count() {
        use crate::memory::{test_account, MemoryCrm, MemoryQueue, MemoryStore};
        let store = MemoryStore::default();
        store
            .create_account(&test_account("support", Utc::now()))
            .await
            .unwrap();
        let blobs = CountingBlobs::default();
        let mut pointers = Vec::new();
        for i in 0..6 {
            let key = format!("raw/support/INBOX/1/{i}.eml");
            let raw =
                format!("From: a@x.example\r\nSubject: {i}\r\nMessage-ID: <b{i}@x>\r\n\r\nhi\r\n");
            blobs
                .put(&key, raw.into_bytes(), "message/rfc822")
                .await
                .unwrap();
            pointers.push(IngestPointer {
                v: SCHEMA_VERSION,
                account: "support".into(),
                folder: "INBOX".into(),
                uidvalidity: 1,
                uid: i,
                key,
                // As the poller reports them: large messages.
                size: 40 * 1024 * 1024,
                arrived: None,
                truncated: false,
                quarantine_id: None,
                fetch_error: None,
            });
        }
        let (crm, events) = (
            MemoryCrm::default(),
            MemoryQueue::<DispatchEvent>::default(),
        );
        let limits = Limits {
            ingest_bytes_in_flight: 96 * 1024 * 1024,
            ..Limits::default()
        };
        let intake = Intake {
            store: &store,
            crm: &crm,
            blobs: &blobs,
            events: &events,
            limits: &limits,
            cache: &IntakeCache::default(),
        };
        let context = intake
            .context(&["support".to_string()], Utc::now())
            .await
            .unwrap();
        let batch = intake.batch(&context, pointers.len());
        let now = Utc::now();
        let all = futures::future::join_all(pointers.iter().map(|p| batch.take(p, now))).await;
        assert!(all.iter().all(|r| r.is_ok()));
        let most = blobs.most.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(
            most, 2,
            "two 40 MB messages fit a 96 MB budget, a third waits"
        );
    }
}
