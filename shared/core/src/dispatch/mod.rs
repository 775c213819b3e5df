//! Dispatch (R-A, R-N): what the events ingest emits lead to.

pub mod loops;
