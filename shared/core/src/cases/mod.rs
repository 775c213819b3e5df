//! Linking (R-L1..R-L3) and email-to-case (R-C1..R-C7).
//!
//! Every incoming email gets one parent record by the first rule that matches: a stored email
//! it replies to, a `[#N]` tag from a participant of case N, then its sender's records. A group
//! account with case creation on turns the first email of a thread into a case; later emails
//! of the thread join it. The case is claimed with one conditional transaction on the thread's
//! key that also stores the assignment and advances the round-robin counter, so concurrent
//! workers and redeliveries create one case and advance the counter once (R-C4).
//!
//! - [`link`]: pure rules: case tags, thread keys, sender candidates, participants.
//! - [`assign`]: pure assignment: eligibility, direct, round-robin, least-busy.
//! - [`service`]: [`LinkService`], which reads through the [`crate::ports::Crm`] port, applies
//!   the rules and claims cases.

pub mod assign;
pub mod link;
pub mod service;

pub use assign::choose;
pub use link::{case_tag, sender_candidates, thread_key};
pub use service::{LinkCache, LinkOutcome, LinkService};
