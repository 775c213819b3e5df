//! Email filters (R-X1..R-X4): criteria, actions, scopes, and the order they apply in.
//!
//! Matching is linear in the value and pattern lengths: a pattern is split at `*` into
//! literal pieces; the first must be a prefix, the last a suffix, and the middle ones are
//! found left to right with a linear substring search. No regex, no backtracking.
//!
//! # Order and precedence
//! 1. **Skip is decided first.** Global filters, then the receiving account's filters, in name
//!    order; the first matching `skip` filter wins: the message is not imported for anyone,
//!    and it is recorded as skipped (with the filter's name). Header-only skip filters run in
//!    the poller before the body is fetched; the others run in ingest after parsing.
//! 2. **Per recipient user**, on that user's copy only: global, then account, then that
//!    user's own filters. A user `skip` hides the email from that user's inbox (others keep
//!    it). `mark-read` and `skip-notification` add up. `move-to-folder`: the most specific
//!    scope wins (user over account over global); within a scope the first by name.
//!
//! - [`pattern`]: the wildcard matcher.
//! - [`rules`]: filters, scopes, actions and their validation.
//! - [`apply`]: evaluation, the skip decision, one user's copy.
//! - [`outcome`]: skipped records and inbox copies.

pub mod apply;
pub mod outcome;
pub mod pattern;
pub mod rules;

pub use apply::{
    evaluate, skip_decision, user_copy, CopyState, FilterInput, Match, SkipDecision, Verdict,
};
pub use outcome::{InboxCopy, SkipStage, SkippedRecord};
pub use pattern::Pattern;
pub use rules::{Action, Filter, Scope, MAX_FILTERS_PER_USER};
