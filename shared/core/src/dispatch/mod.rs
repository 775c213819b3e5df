//! Dispatch (SPEC sections 7 and 8): auto-replies without loops, bounces, notifications, all
//! driven by the events ingest puts on the dispatch queue.

pub mod audience;
pub mod feedback;
pub mod loops;
pub mod records;
pub mod settings;
pub mod template;
