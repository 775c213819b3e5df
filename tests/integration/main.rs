//! Integration tests against the real local stack: Dovecot for IMAP, moto for DynamoDB, S3,
//! SQS, KMS and SES. The stack is started by the project's own script (installing it if missing);
//! every test uses its own resource prefix and its own mailbox users, so tests run in
//! parallel against one stack without resetting it.

mod adapters;
mod api_admin;
mod api_auth;
mod api_fuzz;
mod api_local;
mod api_read;
mod api_send;
mod api_support;
mod assignment;
mod cases;
mod cli;
mod concurrency;
mod dispatch;
mod dispatch_store;
mod events;
mod filters;
mod harness;
mod hostile;
mod iam;
mod imap_faults;
mod kills;
mod pipeline;
mod reliability;
mod schedule;
mod security;
mod ses;
