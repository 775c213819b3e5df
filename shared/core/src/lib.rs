//! Mailroom's pure core: no AWS, no Lambda, no sockets.
//!
//! # Layout
//! - [`model`]: accounts, folder watermarks, account status, email records, quarantine records.
//! - [`messages`]: the versioned contracts that travel on queues (poll jobs, ingest pointers).
//! - [`parse`]: raw RFC 5322 bytes to a [`parse::ParsedEmail`], or a quarantine reason.
//! - [`ids`]: Message-ID handling, the email identity used for dedupe, synthetic ids.
//! - [`ports`]: the small traits adapters implement (stores, blobs, queues, secrets, mailbox).
//! - [`schedule`]: which accounts a scheduler tick polls (adaptive interval, back-off).
//! - [`poll`]: one account's poll: watermarks, batch planning, store-then-enqueue-then-advance.
//! - [`ingest`]: one pointer's ingest: parse, dedupe, quarantine.
//! - [`limits`]: tunables with their validation.
//! - [`records`]: CRM records, users, teams, cases, streams.
//! - [`cases`]: linking (R-L) and email-to-case with assignment (R-C).
//! - [`filters`]: email filters (R-X): matching, scopes, the order actions apply in.
//! - [`admin`]: inputs only the operator CLI gives (record adds and imports).
//!
//! Every function takes what it needs through a port, so the same code runs in a Lambda, in the
//! operator CLI, and in tests with in-memory fakes ([`memory`]).

pub mod admin;
pub mod cases;
pub mod error;
pub mod filters;
pub mod ids;
pub mod ingest;
pub mod keys;
pub mod limits;
pub mod memory;
pub mod messages;
pub mod model;
pub mod parse;
pub mod poll;
pub mod ports;
pub mod records;
pub mod schedule;

/// Version stamped on every stored item and queue message this release writes.
pub const SCHEMA_VERSION: u32 = 1;

pub(crate) fn default_version() -> u32 {
    SCHEMA_VERSION
}
