//! One account's poll (R-F2..R-F7): read the watermark, find new UIDs, fetch them in batches
//! sized by RFC822.SIZE, store each raw message in S3, enqueue pointers, and only then advance
//! the watermark. A crash anywhere loses nothing: the next run starts from the last advanced
//! watermark, overwrites the same S3 keys, and ingest ignores the repeated pointers (R-I2).

//!
//! - [`service`]: [`PollService`], one account's poll through the ports.
//! - [`plan`]: batch planning by size and count.
//! - `session`: the poll's IMAP session: reopened after BYE, refused FETCHes split.
//! - [`status`]: the status a poll leaves, back-off.

pub mod plan;
pub mod service;
mod session;
pub mod status;

pub use plan::{plan_batches, Batch};
pub use service::{PollFailure, PollReport, PollService, Refetch};
pub use status::{backoff, failure_notice_due, next_status, FAILURE_NOTICE_AFTER, STATUS_REFRESH};
