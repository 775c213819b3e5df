//! The `mailroom` operator CLI as a library, so integration tests drive the same code.
//!
//! # Layout
//! - [`local`]: the local stack (Dovecot + moto) through `infra/local/stack.sh`, and the
//!   IMAP connector, delivery and fixture listing the CLI and the bench share.
//! - [`local_api`]: the local API server (`local up` starts it, `local token` signs for it).
//! - [`context`]: finds the stack (local or deployed) and builds the adapters once.
//! - [`cycle`]: one polling cycle in-process: scheduler, poller and ingest handlers (the same
//!   code the Lambdas run), draining each queue, with per-account totals.
//! - [`accounts`]: adding accounts (validation, sealing the password).
//! - [`records`]: CRM records, users and teams from flags and JSON-lines imports.
//! - [`samples`]: readies the local stack for the sample events in `events/`.
//! - [`views`]: everything the CLI prints, text and JSON (the `--json` shapes are a contract).
//!
//! The commands themselves belong to the binary: `main.rs` parses and dispatches to
//! `commands/<noun>.rs`, one file per command noun, each with its arguments and `run`.

pub mod accounts;
pub mod context;
pub mod cycle;
pub mod local;
pub mod local_api;
pub mod records;
pub mod samples;
pub mod views;
