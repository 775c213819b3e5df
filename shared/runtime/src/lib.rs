//! Lambda glue shared by the functions: logging setup, the SQS partial-batch helper, and the
//! sample events their tests run ([`samples`]).
//!
//! Each record is processed on its own, and a failure (an error or a panic) fails only that
//! record (`ReportBatchItemFailures`), so one poison message never blocks the others. On a
//! FIFO queue, records of one message group run in order, and after a failure the rest of that
//! group is reported failed too, as SQS FIFO requires to keep the order.

pub mod samples;

use std::future::Future;
use std::panic::AssertUnwindSafe;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures::{FutureExt, StreamExt};
use tracing::{Instrument, Subscriber};
use tracing_subscriber::fmt::MakeWriter;

/// JSON logs to stdout when running in Lambda (`AWS_LAMBDA_LOG_FORMAT=JSON`), human-readable
/// logs to stderr otherwise (the CLI, `cargo lambda watch`). `RUST_LOG` filters.
pub fn init_tracing() {
    init_tracing_with_default("info")
}

/// As [`init_tracing`], with another default level (the CLI keeps its terminal quiet).
pub fn init_tracing_with_default(default_level: &str) {
    let directives = std::env::var("RUST_LOG")
        .ok()
        .filter(|d| tracing_subscriber::EnvFilter::try_new(d).is_ok())
        .unwrap_or_else(|| default_level.to_string());
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT")
        .map(|f| f.eq_ignore_ascii_case("json"))
        .unwrap_or(false);
    bridge_log_records();
    let _ =
        tracing::subscriber::set_global_default(log_subscriber(&directives, json, std::io::stderr));
}

/// Crates whose events never reach the logs, at any level: async-imap traces every command
/// line it sends (LOGIN with the password in it), and imap-proto what it parses (mail).
pub const SECRET_TARGETS: &[&str] = &["async_imap", "imap_proto"];

fn secret_target(target: &str) -> bool {
    SECRET_TARGETS.iter().any(|t| {
        target
            .strip_prefix(t)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
    })
}

/// The subscriber the functions and the CLI log through: `directives` as in `RUST_LOG`,
/// JSON or human-readable, to `writer`; events of [`SECRET_TARGETS`] dropped whatever the
/// directives say (a per-layer filter, so `RUST_LOG=async_imap=trace` cannot undo it).
pub fn log_subscriber<W>(directives: &str, json: bool, writer: W) -> impl Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    use tracing_subscriber::filter::{filter_fn, EnvFilter, FilterExt};
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::Layer;
    let env = EnvFilter::try_new(directives).unwrap_or_else(|_| EnvFilter::new("info"));
    let filter = env.and(filter_fn(|meta| !secret_target(meta.target())));
    let fmt = tracing_subscriber::fmt::layer().with_writer(writer);
    let layer = if json {
        fmt.json()
            .with_current_span(false)
            .with_ansi(false)
            .without_time()
            .boxed()
    } else {
        fmt.boxed()
    };
    tracing_subscriber::registry().with(layer.with_filter(filter))
}

/// Forwards `log` records (rustls and other crates that use `log`) to tracing, except those
/// of [`SECRET_TARGETS`], which are dropped before they become events at all. Idempotent.
pub fn bridge_log_records() {
    let mut builder = tracing_log::LogTracer::builder();
    for t in SECRET_TARGETS {
        builder = builder.ignore_crate(*t);
    }
    let _ = builder.init();
}

/// The result of one record: its message id and what the processor returned.
pub struct RecordResult<T, E> {
    pub message_id: String,
    pub result: Result<T, RecordError<E>>,
}

#[derive(Debug)]
pub enum RecordError<E> {
    Failed(E),
    Panicked(String),
    /// Not run: an earlier record of the same FIFO group failed.
    Skipped,
}

impl<E: std::fmt::Display> std::fmt::Display for RecordError<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordError::Failed(e) => write!(f, "{e}"),
            RecordError::Panicked(m) => write!(f, "panicked: {m}"),
            RecordError::Skipped => f.write_str("skipped after an earlier failure in its group"),
        }
    }
}

/// Runs `process` over every record, at most `concurrency` at a time, and builds the batch
/// response listing the failed ones.
pub async fn process_batch<T, E, F, Fut>(
    event: SqsEvent,
    concurrency: usize,
    process: F,
) -> (SqsBatchResponse, Vec<RecordResult<T, E>>)
where
    F: Fn(SqsMessage) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    // Group by FIFO message group (standard queues: every record its own group), keeping order.
    let mut groups: Vec<(Option<String>, Vec<SqsMessage>)> = Vec::new();
    for record in event.records {
        let group = record.attributes.get("MessageGroupId").cloned();
        match groups
            .iter_mut()
            .find(|(g, _)| group.is_some() && g == &group)
        {
            Some((_, list)) => list.push(record),
            None => groups.push((group, vec![record])),
        }
    }
    let process = &process;
    let results: Vec<Vec<RecordResult<T, E>>> = futures::stream::iter(groups)
        .map(|(_, records)| async move {
            let mut out = Vec::with_capacity(records.len());
            let mut failed = false;
            for record in records {
                let message_id = record.message_id.clone().unwrap_or_default();
                let result = if failed {
                    Err(RecordError::Skipped)
                } else {
                    let span = tracing::info_span!("record", message_id = %message_id);
                    match AssertUnwindSafe(process(record).instrument(span))
                        .catch_unwind()
                        .await
                    {
                        Ok(Ok(v)) => Ok(v),
                        Ok(Err(e)) => Err(RecordError::Failed(e)),
                        Err(panic) => Err(RecordError::Panicked(panic_message(&panic))),
                    }
                };
                if let Err(e) = &result {
                    failed = true;
                    tracing::error!(message_id = %message_id, error = %e, "record failed");
                }
                out.push(RecordResult { message_id, result });
            }
            out
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let results: Vec<RecordResult<T, E>> = results.into_iter().flatten().collect();
    let mut response = SqsBatchResponse::default();
    for r in &results {
        if r.result.is_err() {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = r.message_id.clone();
            response.batch_item_failures.push(failure);
        }
    }
    (response, results)
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, body: &str, group: Option<&str>) -> SqsMessage {
        let mut m = SqsMessage::default();
        m.message_id = Some(id.into());
        m.body = Some(body.into());
        if let Some(g) = group {
            m.attributes.insert("MessageGroupId".into(), g.into());
        }
        m
    }

    #[tokio::test]
    async fn a_poison_record_fails_alone_even_when_it_panics() {
        let mut event = SqsEvent::default();
        event.records = vec![
            record("1", "ok", None),
            record("2", "panic", None),
            record("3", "err", None),
            record("4", "ok", None),
        ];
        let (resp, results) = process_batch(event, 4, |m| async move {
            match m.body.as_deref() {
                Some("panic") => panic!("poison"),
                Some("err") => Err("bad".to_string()),
                _ => Ok(()),
            }
        })
        .await;
        let mut failed: Vec<_> = resp
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone())
            .collect();
        failed.sort();
        assert_eq!(failed, vec!["2", "3"]);
        assert_eq!(results.len(), 4);
    }

    #[tokio::test]
    async fn fifo_group_stops_after_a_failure() {
        let mut event = SqsEvent::default();
        event.records = vec![
            record("a1", "err", Some("a")),
            record("b1", "ok", Some("b")),
            record("a2", "ok", Some("a")),
        ];
        let (resp, _) = process_batch(event, 4, |m| async move {
            if m.body.as_deref() == Some("err") {
                Err("bad".to_string())
            } else {
                Ok(())
            }
        })
        .await;
        let mut failed: Vec<_> = resp
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone())
            .collect();
        failed.sort();
        assert_eq!(failed, vec!["a1", "a2"]);
    }
}
