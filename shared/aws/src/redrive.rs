//! Dead-letter queues (R-F9): how many messages each holds, and moving them back to their
//! queue once their cause is fixed. The CLI's `dlq redrive` and the API's replay share this.

use mailroom_core::error::StoreResult;
use mailroom_core::messages::{decode, IngestPointer, PollJob};
use mailroom_core::ports::{Outgoing, Queue};

use crate::{Adapters, SqsQueue};

/// The queues whose dead letters can be replayed: ingest pointers and poll jobs. (Dispatch
/// events are not: a replayed auto-reply or notification may already have gone out.)
pub const REPLAYABLE: [&str; 2] = ["ingest", "poll"];

/// What a redrive did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Redriven {
    pub moved: usize,
    /// Messages left in the dead-letter queue because they are not valid jobs: (SQS message
    /// id, why).
    pub left: Vec<(String, String)>,
}

impl Adapters {
    /// The queue a replayable name names (`ingest`, `poll`), or `None`.
    pub fn replayable_queue(&self, queue: &str) -> Option<&SqsQueue> {
        match queue {
            "ingest" => Some(&self.ingest_queue),
            "poll" => Some(&self.poll_queue),
            _ => None,
        }
    }

    /// Moves a dead-letter queue's messages back to their queue. Bodies are decoded first,
    /// so a message that is not a valid job stays in the DLQ (and is reported) rather than
    /// looping. `None` when `queue` is not one of [`REPLAYABLE`].
    pub async fn redrive(&self, queue: &str) -> StoreResult<Option<Redriven>> {
        let Some(target) = self.replayable_queue(queue) else {
            return Ok(None);
        };
        let dlq = target.dead_letter();
        let mut out = Redriven::default();
        loop {
            let batch = dlq.receive(10, 0).await?;
            if batch.is_empty() {
                return Ok(Some(out));
            }
            let mut done = Vec::new();
            for m in &batch {
                let sent = if queue == "ingest" {
                    match decode::<IngestPointer>(&m.body) {
                        Ok(p) => self
                            .ingest_queue
                            .send(&[Outgoing::plain(p)])
                            .await
                            .map(|_| true),
                        Err(e) => {
                            out.left.push((m.message_id.clone(), e.to_string()));
                            Ok(false)
                        }
                    }
                } else {
                    match decode::<PollJob>(&m.body) {
                        Ok(j) => {
                            let job = PollJob::new(&j.account, format!("redrive-{}", m.message_id));
                            let o = Outgoing {
                                group: Some(j.account.clone()),
                                dedupe: Some(format!("{}:{}", j.account, job.cycle)),
                                message: job,
                            };
                            self.poll_queue.send(&[o]).await.map(|_| true)
                        }
                        Err(e) => {
                            out.left.push((m.message_id.clone(), e.to_string()));
                            Ok(false)
                        }
                    }
                };
                if sent? {
                    done.push(m.receipt_handle.clone());
                }
            }
            // Undecodable messages stay, invisible for the visibility timeout: the loop ends.
            out.moved += done.len();
            dlq.delete(&done).await?;
        }
    }
}
