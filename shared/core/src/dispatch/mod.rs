//! Dispatch: what Mailroom sends (auto-replies, notifications) and how it is written.

pub mod mime;
pub mod template;
