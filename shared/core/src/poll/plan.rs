//! Batch planning: UID FETCH commands of bounded bytes and count (R-F2, R-F6).

use crate::limits::Limits;
use crate::ports::MessageMeta;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Batch {
    /// Fetched whole in one UID FETCH.
    Whole(Vec<MessageMeta>),
    /// Above the size limit: only its head is fetched (R-F6).
    Head(MessageMeta),
    /// Size unknown (the server gave no RFC822.SIZE, or 0): fetched alone, at most one byte
    /// past the size limit, so it can neither swell a batch nor pass the limit unseen.
    Unsized(MessageMeta),
}

impl Batch {
    pub(crate) fn metas(&self) -> &[MessageMeta] {
        match self {
            Batch::Whole(m) => m,
            Batch::Head(m) | Batch::Unsized(m) => std::slice::from_ref(m),
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
        // Batches stay in UID order (the watermark follows them), so a message fetched on its
        // own first closes the batch before it.
        let alone = match meta.size {
            None => Some(Batch::Unsized(*meta)),
            Some(size) if size > limits.max_message_bytes => Some(Batch::Head(*meta)),
            Some(_) => None,
        };
        if let Some(alone) = alone {
            if !current.is_empty() {
                batches.push(Batch::Whole(std::mem::take(&mut current)));
                bytes = 0;
            }
            batches.push(alone);
            continue;
        }
        let size = meta.size.unwrap_or(0);
        if !current.is_empty()
            && (bytes + size > limits.fetch_batch_bytes
                || current.len() >= limits.fetch_batch_messages)
        {
            batches.push(Batch::Whole(std::mem::take(&mut current)));
            bytes = 0;
        }
        bytes += size;
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
            size: Some(size),
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

    #[test]
    fn a_message_of_unknown_size_is_fetched_alone_and_never_joins_a_batch() {
        let limits = Limits {
            fetch_batch_bytes: 100,
            fetch_batch_messages: 10,
            max_message_bytes: 1000,
            ..Limits::default()
        };
        let unknown = MessageMeta {
            uid: 2,
            size: None,
            arrived: None,
        };
        let batches = plan_batches(&[meta(1, 10), unknown, meta(3, 10)], &limits);
        assert_eq!(
            batches,
            vec![
                Batch::Whole(vec![meta(1, 10)]),
                Batch::Unsized(unknown),
                Batch::Whole(vec![meta(3, 10)]),
            ]
        );
    }
}
