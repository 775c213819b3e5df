//! Batch planning: UID FETCH commands of bounded bytes and count (R-F2, R-F6).

use crate::limits::Limits;
use crate::ports::MessageMeta;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Batch {
    /// Fetched whole in one UID FETCH.
    Whole(Vec<MessageMeta>),
    /// Above the size limit: only its head is fetched (R-F6).
    Head(MessageMeta),
}

impl Batch {
    pub(crate) fn metas(&self) -> &[MessageMeta] {
        match self {
            Batch::Whole(m) => m,
            Batch::Head(m) => std::slice::from_ref(m),
        }
    }
}

/// Groups messages (in UID order) into UID FETCH commands of bounded bytes and count, so the
/// poller never holds more than `fetch_batch_bytes` of mail at once (one large message may
/// exceed it alone, up to `max_message_bytes`).
pub fn plan_batches(metas: &[MessageMeta], limits: &Limits) -> Vec<Batch> {
    let mut batches = Vec::new();
    let mut current: Vec<MessageMeta> = Vec::new();
    let mut bytes = 0u64;
    for meta in metas {
        if meta.size > limits.max_message_bytes {
            if !current.is_empty() {
                batches.push(Batch::Whole(std::mem::take(&mut current)));
                bytes = 0;
            }
            batches.push(Batch::Head(*meta));
            continue;
        }
        if !current.is_empty()
            && (bytes + meta.size > limits.fetch_batch_bytes
                || current.len() >= limits.fetch_batch_messages)
        {
            batches.push(Batch::Whole(std::mem::take(&mut current)));
            bytes = 0;
        }
        bytes += meta.size;
        current.push(*meta);
    }
    if !current.is_empty() {
        batches.push(Batch::Whole(current));
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(uid: u32, size: u64) -> MessageMeta {
        MessageMeta {
            uid,
            size,
            arrived: None,
        }
    }

    #[test]
    fn batches_respect_bytes_count_and_oversize() {
        let limits = Limits {
            fetch_batch_bytes: 100 * 1024,
            fetch_batch_messages: 3,
            max_message_bytes: 1024 * 1024,
            ..Limits::default()
        };
        let metas = vec![
            meta(1, 10),
            meta(2, 10),
            meta(3, 10),
            meta(4, 10),
            meta(5, 90 * 1024),
            meta(6, 20 * 1024),
            meta(7, 2 * 1024 * 1024),
            meta(8, 10),
        ];
        let batches = plan_batches(&metas, &limits);
        let shape: Vec<Vec<u32>> = batches
            .iter()
            .map(|b| b.metas().iter().map(|m| m.uid).collect())
            .collect();
        assert_eq!(
            shape,
            vec![vec![1, 2, 3], vec![4, 5], vec![6], vec![7], vec![8]]
        );
        assert!(matches!(batches[3], Batch::Head(_)));
    }
}
