//! One file per command noun: each owns its clap arguments and an async `run`. Checks they
//! share live in `common`; everything they print goes through `mailroom::views`.

pub mod account;
pub mod api;
pub mod cases;
pub mod common;
pub mod demo;
pub mod dlq;
pub mod emails;
pub mod filters;
pub mod follow;
pub mod inbox;
pub mod local;
pub mod notifications;
pub mod poll;
pub mod quarantine;
pub mod records;
pub mod roles;
pub mod sent;
pub mod skipped;
pub mod status;
pub mod stream;
pub mod teams;
pub mod users;
