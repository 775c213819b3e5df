//! Sending through the API (R-S1..R-S5): a user composes, replies or replies to all, from a
//! group account they may send from or their own personal account, with an optional parent.
//!
//! - [`request`]: what a caller asks ([`request::SendRequest`], [`request::ReplyRequest`]) and
//!   its validation (R-S5): every refusal names the JSON field at fault (`to[1]`, `subject`,
//!   `attachments[0].content_base64`), and the size limits are constants there.
//! - [`recipients`]: who a reply or reply-all goes to, never Mailroom's own addresses or the
//!   user's.
//! - [`service`]: [`Outbox`] over the ports: access first (nothing is read for, sent or stored
//!   on a deny), then the parent, then the message (with `[#N]` and the thread headers for a
//!   case), sent through the mailer, stored, indexed and shown in the parent's stream.

pub mod recipients;
pub mod request;
pub mod service;

pub use service::{Outbox, ReplyPlan, SendError};
