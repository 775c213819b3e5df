//! `mailroom dlq`: dead-letter queues (messages that failed five times; kept 14 days).

use anyhow::{bail, Result};
use clap::Subcommand;
use mailroom::context::Context;
use mailroom::{cycle, views};
use mailroom_core::messages::{decode, IngestPointer, PollJob};
use mailroom_core::ports::{Outgoing, Queue};
use mailroom_core::schedule::Selection;

#[derive(Subcommand)]
pub enum DlqCommand {
    /// Move every message of a dead-letter queue back to its queue, once its cause is fixed
    /// (R-F9), and run it: `ingest` (pointers) or `poll` (poll jobs).
    Redrive {
        queue: String,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(ctx: &Context, command: DlqCommand) -> Result<()> {
    let DlqCommand::Redrive { queue, json } = command;
    let moved = redrive(ctx, &queue).await?;
    let totals = cycle::run(ctx, Selection::Named(vec![])).await?;
    views::print_redrive(&queue, moved, &totals, json);
    Ok(())
}

/// Moves a dead-letter queue's messages back to their queue. Bodies are decoded first, so a
/// message that is not a valid job stays in the DLQ (and is reported) rather than looping.
async fn redrive(ctx: &Context, queue: &str) -> Result<usize> {
    let a = ctx.adapters();
    let target = match queue {
        "ingest" => &a.ingest_queue,
        "poll" => &a.poll_queue,
        other => bail!("queue: {other:?} is not ingest or poll"),
    };
    let dlq = target.dead_letter();
    let mut moved = 0;
    loop {
        let batch = dlq.receive(10, 0).await?;
        if batch.is_empty() {
            return Ok(moved);
        }
        let mut done = Vec::new();
        for m in &batch {
            let sent = match queue {
                "ingest" => match decode::<IngestPointer>(&m.body) {
                    Ok(p) => a
                        .ingest_queue
                        .send(&[Outgoing::plain(p)])
                        .await
                        .map(|_| true),
                    Err(e) => {
                        views::note(format!("left in the DLQ: {} ({e})", m.message_id));
                        Ok(false)
                    }
                },
                _ => match decode::<PollJob>(&m.body) {
                    Ok(j) => {
                        let job = PollJob::new(&j.account, format!("redrive-{}", m.message_id));
                        let out = Outgoing {
                            group: Some(j.account.clone()),
                            dedupe: Some(format!("{}:{}", j.account, job.cycle)),
                            message: job,
                        };
                        a.poll_queue.send(&[out]).await.map(|_| true)
                    }
                    Err(e) => {
                        views::note(format!("left in the DLQ: {} ({e})", m.message_id));
                        Ok(false)
                    }
                },
            };
            if sent? {
                done.push(m.receipt_handle.clone());
            }
        }
        // Undecodable messages stay, invisible for the visibility timeout: the loop ends.
        moved += done.len();
        dlq.delete(&done).await?;
    }
}
