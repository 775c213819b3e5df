//! Intake: everything one ingest pointer leads to, in order. Ingest (parse, dedupe,
//! quarantine, R-I1/R-I2), linking and email-to-case (R-L, R-C), then the copies in the inbox
//! of each user who receives the email (R-I4), with that user's filters applied (R-X2).
//!
//! - [`service`]: [`Intake`] and [`IntakeBatch::take`], which the ingest handler calls per record.
//! - [`order`]: the order linking follows within one batch (a thread's first email first).
//! - [`cache`]: what an instance read about the deployment, kept for a short time.

pub mod cache;
pub mod order;
pub mod service;

pub use cache::IntakeCache;
pub use service::{recipients, BatchContext, Ingested, Intake, IntakeBatch};
