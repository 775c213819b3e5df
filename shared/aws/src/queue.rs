//! SQS adapter: sends in batches of ten; receives and deletes for the CLI's local drain.

use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageSystemAttributeName, SendMessageBatchRequestEntry,
};
use aws_sdk_sqs::Client;
use mailroom_core::error::{ErrorClass, StoreResult};
use mailroom_core::messages::encode;
use mailroom_core::ports::{Outgoing, Queue};
use serde::Serialize;

use crate::errors::{of_class, sdk_error};

#[derive(Clone, Debug)]
pub struct SqsQueue {
    client: Client,
    url: String,
}

/// A received message, as the Lambda event source would hand it over.
#[derive(Debug, Clone)]
pub struct Received {
    pub message_id: String,
    pub receipt_handle: String,
    pub body: String,
    pub attributes: std::collections::HashMap<String, String>,
}

impl SqsQueue {
    pub fn new(client: Client, url: &str) -> Self {
        SqsQueue {
            client,
            url: url.to_string(),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The dead-letter queue beside this one, by the naming `template.yaml` and the local
    /// stack share: `<name>-dlq`, or `<name>-dlq.fifo` for a FIFO queue.
    pub fn dead_letter(&self) -> SqsQueue {
        let url = match self.url.strip_suffix(".fifo") {
            Some(base) => format!("{base}-dlq.fifo"),
            None => format!("{}-dlq", self.url),
        };
        SqsQueue::new(self.client.clone(), &url)
    }

    /// Queue ARN-like name for synthesised events (the last path segment of the URL).
    pub fn name(&self) -> &str {
        self.url.rsplit('/').next().unwrap_or(&self.url)
    }

    pub async fn receive(&self, max: i32, wait_seconds: i32) -> StoreResult<Vec<Received>> {
        let resp = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max.clamp(1, 10))
            .wait_time_seconds(wait_seconds)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .map_err(|e| sdk_error(format!("receive from {}", self.name()), e))?;
        Ok(resp
            .messages
            .unwrap_or_default()
            .into_iter()
            .map(|m| Received {
                message_id: m.message_id.unwrap_or_default(),
                receipt_handle: m.receipt_handle.unwrap_or_default(),
                body: m.body.unwrap_or_default(),
                attributes: m
                    .attributes
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k.as_str().to_string(), v))
                    .collect(),
            })
            .collect())
    }

    pub async fn delete(&self, receipts: &[String]) -> StoreResult<()> {
        for chunk in receipts.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(r)
                        .build()
                        .expect("id and receipt are set")
                })
                .collect();
            self.client
                .delete_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| sdk_error(format!("delete from {}", self.name()), e))?;
        }
        Ok(())
    }

    /// Approximate visible + in-flight count (for the CLI's drain loop and tests).
    pub async fn depth(&self) -> StoreResult<(u64, u64)> {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        let resp = self
            .client
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(A::ApproximateNumberOfMessages)
            .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .map_err(|e| sdk_error(format!("attributes of {}", self.name()), e))?;
        let attrs = resp.attributes.unwrap_or_default();
        let get = |a: A| attrs.get(&a).and_then(|v| v.parse().ok()).unwrap_or(0);
        Ok((
            get(A::ApproximateNumberOfMessages),
            get(A::ApproximateNumberOfMessagesNotVisible),
        ))
    }

    /// The queue's visibility timeout in seconds: how long a message a consumer received (and
    /// died holding) stays hidden from the others.
    pub async fn visibility_timeout(&self) -> StoreResult<u64> {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        let resp = self
            .client
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(A::VisibilityTimeout)
            .send()
            .await
            .map_err(|e| sdk_error(format!("attributes of {}", self.name()), e))?;
        resp.attributes
            .unwrap_or_default()
            .get(&A::VisibilityTimeout)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| {
                mailroom_core::error::StoreError::backend(
                    format!("attributes of {}", self.name()),
                    "no VisibilityTimeout",
                )
            })
    }
}

impl<M: Serialize + Sync> Queue<M> for SqsQueue {
    /// Batches of 10, up to [`PARALLEL_SENDS`] in flight: a scheduler tick over 100,000
    /// accounts is 10,000 requests, which one after another would outlast its timeout. Order
    /// across batches is not kept; a FIFO group's messages within one call must not depend on
    /// it (each tick queues one job per account).
    async fn send(&self, messages: &[Outgoing<M>]) -> StoreResult<()> {
        for wave in messages.chunks(10 * PARALLEL_SENDS) {
            let sends: Vec<_> = wave.chunks(10).map(|c| self.send_batch(c)).collect();
            futures::future::try_join_all(sends).await?;
        }
        Ok(())
    }
}

/// SendMessageBatch requests one `send` keeps in flight.
pub const PARALLEL_SENDS: usize = 8;

impl SqsQueue {
    async fn send_batch<M: Serialize>(&self, chunk: &[Outgoing<M>]) -> StoreResult<()> {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, o)| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(encode(&o.message))
                    .set_message_group_id(o.group.clone())
                    .set_message_deduplication_id(o.dedupe.clone())
                    .build()
                    .expect("id and body are set")
            })
            .collect();
        let resp = self
            .client
            .send_message_batch()
            .queue_url(&self.url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| sdk_error(format!("send to {}", self.name()), e))?;
        if let Some(failed) = resp.failed.first() {
            // SQS says whose fault a refused entry is: the sender's fails again unchanged.
            let class = if failed.sender_fault {
                ErrorClass::Permanent
            } else {
                ErrorClass::Transient
            };
            return Err(of_class(
                class,
                format!("send to {}", self.name()),
                format!(
                    "{} of {} messages refused: {} {}",
                    resp.failed.len(),
                    chunk.len(),
                    failed.code,
                    failed.message.clone().unwrap_or_default()
                ),
            ));
        }
        Ok(())
    }
}
