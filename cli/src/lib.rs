//! The `mailroom` operator CLI as a library, so integration tests drive the same code.
//!
//! # Layout
//! - [`local`]: the local stack (Dovecot + moto) through `infra/local/stack.sh`.
//! - [`context`]: finds the stack (local or deployed) and builds the adapters once.
//! - [`cycle`]: one polling cycle in-process: scheduler, poller and ingest handlers (the same
//!   code the Lambdas run), draining each queue, with per-account totals.
//! - [`accounts`]: adding accounts (validation, sealing the password).
//! - [`views`]: the JSON shapes printed by `--json` (a contract other checks use).

pub mod accounts;
pub mod context;
pub mod cycle;
pub mod local;
pub mod records;
pub mod views;
