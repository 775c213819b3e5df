//! DynamoDB adapter: one table, keys `pk`/`sk`, one [`DynamoStore`] whose impl blocks live by
//! entity. The key formats are functions of `mailroom_core::keys`; attributes are the serde
//! fields of the core type named (plus `pk`, `sk`), unless listed.
//!
//! | item | pk | sk | attributes | written by |
//! |---|---|---|---|---|
//! | account (config, watermarks, status) | `ACCOUNTS` | account name | `Account`; `folder_state` map, `case` settings, `case_error`, `case_error_at`; the schedule index's `sched_pk`, `sched_sk`, `sched_since` ([`schedule`]) | CLI (create, reset, case settings); poller (watermarks, status and its index attributes); ingest (case error) |
//! | email | `EMAIL#<email id>` | `EMAIL` | `EmailRecord`; `accounts` string set; `parent`, `case`, `teams` set (linking) | ingest |
//! | quarantined message | `QUARANTINE` | quarantine id | `QuarantineRecord` | ingest (removed when a replay ingests it) |
//! | wrapped data key (R-F8) | `CONFIG` | `DATAKEY` | `key_id`, `wrapped` (base64), `v` | provisioning, or the first sealed secret; never the poller |
//! | own-address index marker | `CONFIG` | `ADDRESSINDEX` | `v` | CLI (`ensure_address_index`, once per table) |
//! | filter (R-X) | `FILTERS` | filter name | `Filter` | CLI |
//! | skipped message | `SKIPPED` | `<account>#<folder>#<uidvalidity>#<uid>` | `SkippedRecord` | ingest |
//! | a user's copy of an email | `INBOX#<user>` | email id | `InboxCopy` | ingest |
//! | record (account, contact, lead, opportunity) | `REC#<type>` | name, or address for contacts and leads | `CrmAccount`, `Contact`, `Lead`, `Opportunity` | CLI |
//! | case | `REC#case` | number, 12 digits zero-padded | `Case`; `participants` string set | ingest (claim, join, reopen); CLI (status) |
//! | address index (R-L2) | `ADDR#<address>` | `<type>#<id>`, `user#<name>` | `v`; `account` (a contact's) | CLI, with the record or user |
//! | an account's own address (mail from it is ours, R-L3) | `ADDR#<address>` | `MAILBOX` | `accounts` string set, `address`, `v` | CLI, with the account |
//! | user | `USERS` | user name | `User` | CLI |
//! | a team's member (round-robin order) | `MEMBERS#<team>` | `<joined, fixed width>#<user>` | `User` (a copy: users never change once added) | CLI, with the user |
//! | team-member index marker | `CONFIG` | `MEMBERINDEX` | `v` | CLI (`ensure_member_index`, once per table) |
//! | schedule index marker | `CONFIG` | `SCHEDULEINDEX` | `v` | CLI (`ensure_schedule_index`, once per table) |
//! | team | `TEAMS` | team name | `name`, `v` | CLI |
//! | follower | `FOLLOW#<type>#<id>` (id bounded by `key_part`) | user | `user`, `v` | CLI (`mailroom follow`); dispatch (a new case's assignee) |
//! | stream entry | `STREAM#<type>#<id>` | `email#<email id>`, `case_created` | `StreamEntry` | ingest |
//! | message index (R-L1) | `MSGID#<message id>` | `MSGID` | `MessageEntry` | ingest |
//! | thread claim (R-C4) | `THREAD#<thread key>` | `CLAIM` | `case` (number), `email_id`, `v` | ingest |
//! | counter | `COUNTER` | `case`; `rr#<account>` (round robin, R-C5); `loads#<team>` (a team's load version: bumped with every member's open count, R-C3) | `value` (number) | ingest; CLI (status, `loads#`) |
//! | open cases per user (R-C3) | `LOAD` | user | `open` (number) | ingest (claim); CLI (status) |
//! | sent email, the send's idempotency record (R-I3) | `SENT` | its id (`key_part`) | `SentRecord` | dispatch |
//! | suppressed auto-reply or notification email (R-A2, R-A3) | `SUPPRESSED` | its id (`key_part`) | `SuppressedRecord` | dispatch |
//! | auto-reply allowance, one sender's window (R-A3) | `RATE#<bucket>` (`key_part`) | `RATE` | `ids` string set (emails counted), `bucket`, `expires_at` (TTL), `v` | dispatch (one conditional `ADD`) |
//! | notification (R-N) | `NOTIF#<user>` | its key (`key_part`; no time, so one request marks it read) | `Notification` | dispatch (created if absent); CLI (read) |
//! | failing address (R-A4) | `FAILING` | normalised address (`key_part`) | `FailingAddress`; `expires_at` (TTL, at `until`) | dispatch |
//!
//! Secondary indexes: `sched` (keys `sched_pk`/`sched_sk`, on account items only; projection
//! `active`, `owner`, `sched_since`) lists the due accounts ([`schedule`]). No item writes the
//! `gsi1` index's keys (`gsi1pk`, `gsi1sk`) yet: it is provisioned, empty.
//! Accounts, filters, users and teams each share one partition, so one paginated Query lists
//! them all (ingest lists neither accounts nor users: it reads its batch's accounts by key,
//! looks its emails' addresses up in the `MAILBOX` entries, and queries its teams' members); a new email is one conditional Put, and everything linking writes for one email
//! is one transaction.
//!
//! # Layout
//! - [`store`]: the [`DynamoStore`] and the request helpers every entity uses (get, query,
//!   put-if-absent, update-if-present, transactions, batch reads).
//! - [`item`]: serde values to attribute values and back, keys.
//! - [`accounts`], [`emails`], [`filters`]: the [`AccountStore`](mailroom_core::ports::AccountStore),
//!   [`EmailStore`](mailroom_core::ports::EmailStore) and
//!   [`FilterStore`](mailroom_core::ports::FilterStore) ports.
//! - [`schedule`]: the schedule index ([`ScheduleIndex`](mailroom_core::ports::ScheduleIndex)):
//!   its attributes, the scheduler's Query, the backfill of tables from before it.
//! - [`records`], [`cases`]: record reads, and the `Crm` port (linking, claims, counters, loads).
//! - [`dispatch`]: the [`DispatchStore`](mailroom_core::ports::DispatchStore) and
//!   [`Followers`](mailroom_core::ports::Followers) ports (sends, suppressions, allowances,
//!   notifications, failing addresses, follows).
//! - [`admin`]: what only the CLI asks (teams, users, record adds, settings, lists).

pub mod accounts;
pub mod admin;
pub mod cases;
pub mod dispatch;
pub mod emails;
pub mod filters;
pub mod item;
pub mod records;
pub mod schedule;
pub mod store;

pub use store::DynamoStore;
