//! Dispatch (SPEC sections 7 and 8): auto-replies without loops, bounces, notifications, all
//! driven by the events ingest puts on the dispatch queue, and the messages it writes.

pub mod audience;
pub mod feedback;
pub mod loops;
pub mod mime;
pub mod records;
pub mod service;
pub mod settings;
pub mod template;

pub use service::{Dispatch, DispatchSettings, Dispatched};
