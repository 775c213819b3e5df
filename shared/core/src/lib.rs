//! Mailroom's pure core: no AWS, no Lambda, no sockets.
//!
//! # Layout
//! - [`model`]: accounts (with their email-to-case settings), folder watermarks, account
//!   status, email records, quarantine records.
//! - [`records`]: CRM records, users, teams, cases, streams, the message index.
//! - [`types`]: newtypes that only hold valid values: email address, Message-ID, case number.
//! - [`error`]: store errors classified transient or permanent; refused input values.
//! - [`keys`]: every S3 key and DynamoDB key format (a leaf: it imports nothing of the crate).
//! - [`messages`]: the versioned contracts that travel on queues (poll jobs, ingest pointers,
//!   dispatch events).
//! - [`ports`]: every trait adapters implement (stores, blobs, queues, secrets, mailbox, CRM).
//! - [`bounds`]: bounds on every content-derived value, applied before the first write.
//! - [`parse`]: raw RFC 5322 bytes to a [`parse::ParsedEmail`], or a quarantine reason.
//! - [`signals`]: the headers loop safety reads (Auto-Submitted, Precedence, Return-Path,
//!   spam verdicts, `X-Mailroom-Id`), kept on the email at parse time.
//! - [`bounce`]: what a bounce (DSN or mailer-daemon mail) says about the mail it returns.
//! - [`ids`]: Message-ID handling, the email identity used for dedupe, synthetic ids.
//! - [`limits`]: tunables with their validation.
//! - [`schedule`]: which accounts a scheduler tick polls (adaptive interval, back-off), read
//!   through the schedule index (sharded, projected; no listing).
//! - [`poll`]: one account's poll: watermarks, batch planning, store-then-enqueue-then-advance.
//! - [`ingest`]: one pointer's ingest: parse, dedupe, quarantine.
//! - [`filters`]: email filters (R-X): matching, scopes, the order actions apply in.
//! - [`cases`]: linking (R-L) and email-to-case with assignment (R-C).
//! - [`dispatch`]: what ingest's events lead to: auto-replies with loop safety (R-A),
//!   bounces, notifications.
//! - [`intake`]: what one ingest pointer leads to: ingest, linking, inbox copies.
//! - [`access`]: who may read what (R-P4), who may send from, see and manage which account,
//!   filter, directory entry and operation.
//! - [`outbox`]: a user's mail through the API (R-S): validation, reply recipients, case
//!   threading, the send and its record.
//! - [`admin`]: inputs the operator CLI and the API give (accounts, users, teams, roles,
//!   filters, record adds and imports), with their checks.
//! - [`views`]: the JSON forms of accounts, status, quarantine and filters (CLI and API).
//! - [`memory`]: in-memory fakes of the ports, with their own tests.
//!
//! Every service takes what it needs through a port, so the same code runs in a Lambda, in
//! the operator CLI, and in tests with the fakes.

pub mod access;
pub mod admin;
pub mod bounce;
pub mod bounds;
pub mod cases;
pub mod dispatch;
pub mod error;
pub mod filters;
pub mod ids;
pub mod ingest;
pub mod intake;
pub mod keys;
pub mod limits;
pub mod memory;
pub mod messages;
pub mod model;
pub mod outbox;
pub mod parse;
pub mod poll;
pub mod ports;
pub mod records;
pub mod schedule;
pub mod signals;
pub mod types;
pub mod views;

/// Version stamped on every stored item and queue message this release writes.
pub const SCHEMA_VERSION: u32 = 1;

pub(crate) fn default_version() -> u32 {
    SCHEMA_VERSION
}
