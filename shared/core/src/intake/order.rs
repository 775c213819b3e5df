//! The order linking follows within one batch. Records of a batch run concurrently, so a
//! thread's first email and a reply to it, fetched in the same poll, would race for the
//! thread's claim: whichever got there first would create the case, and a reply could name a
//! case after its own "Re:" subject. [`BatchOrder`] lets every record ingest at once, then
//! links the first emails of threads (no In-Reply-To, no References) before any reply, so a
//! reply joins the case its thread's first email created, and finds that email by R-L1.
//!
//! Nobody waits on a reply, so there is no cycle: first emails never wait, and replies wait
//! only for every record to finish ingesting and every first email to finish linking. A record
//! that fails or panics releases what it holds when its guard drops.

use std::sync::Mutex;

use tokio::sync::Notify;

#[derive(Default)]
struct State {
    /// Records of the batch that have not finished ingesting.
    ingesting: usize,
    /// First emails of threads that are linking.
    starters: usize,
}

pub struct BatchOrder {
    state: Mutex<State>,
    changed: Notify,
}

/// Held while a record ingests; dropping it says the record is done ingesting.
pub struct Ingesting<'a> {
    order: &'a BatchOrder,
    done: bool,
}

/// Held while a thread's first email links.
pub struct Starter<'a> {
    order: &'a BatchOrder,
}

impl BatchOrder {
    /// A batch of `records` records (each calls [`BatchOrder::ingesting`] once).
    pub fn new(records: usize) -> Self {
        BatchOrder {
            state: Mutex::new(State {
                ingesting: records,
                starters: 0,
            }),
            changed: Notify::new(),
        }
    }

    pub fn ingesting(&self) -> Ingesting<'_> {
        Ingesting {
            order: self,
            done: false,
        }
    }

    fn update(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.state.lock().expect("not poisoned"));
        self.changed.notify_waiters();
    }

    fn settled(&self) -> bool {
        let s = self.state.lock().expect("not poisoned");
        s.ingesting == 0 && s.starters == 0
    }

    /// Waits until every record has ingested and every first email has linked.
    async fn settle(&self) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            // Registered before the check, so a change between check and await is not missed.
            changed.as_mut().enable();
            if self.settled() {
                return;
            }
            changed.await;
        }
    }
}

impl<'a> Ingesting<'a> {
    /// Ingest is done and the email starts a thread: it links now, and replies wait for it.
    pub fn starter(mut self) -> Starter<'a> {
        let order = self.order;
        // Counted as a starter before it stops counting as ingesting, so a waiting reply
        // never sees both at zero in between.
        order.update(|s| {
            s.starters += 1;
            s.ingesting = s.ingesting.saturating_sub(1);
        });
        self.done = true;
        Starter { order }
    }

    /// Ingest is done and the email replies to something: it links once the batch settled.
    pub async fn reply(mut self) {
        let order = self.order;
        order.update(|s| s.ingesting = s.ingesting.saturating_sub(1));
        self.done = true;
        order.settle().await;
    }
}

impl Drop for Ingesting<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.order
                .update(|s| s.ingesting = s.ingesting.saturating_sub(1));
        }
    }
}

impl Drop for Starter<'_> {
    fn drop(&mut self) {
        self.order
            .update(|s| s.starters = s.starters.saturating_sub(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn replies_link_after_every_first_email_whatever_the_timing() {
        let order = BatchOrder::new(3);
        let linked = Mutex::new(Vec::new());
        let failed_early = AtomicUsize::new(0);
        let reply = async {
            let g = order.ingesting();
            g.reply().await;
            linked.lock().unwrap().push("reply");
        };
        let starter = async {
            let g = order.ingesting();
            // The first email ingests slowly.
            for _ in 0..5 {
                tokio::task::yield_now().await;
            }
            let s = g.starter();
            tokio::task::yield_now().await;
            linked.lock().unwrap().push("starter");
            drop(s);
        };
        let failing = async {
            // A record that fails before linking releases its place.
            let _g = order.ingesting();
            failed_early.fetch_add(1, Ordering::SeqCst);
        };
        tokio::join!(reply, starter, failing);
        assert_eq!(*linked.lock().unwrap(), ["starter", "reply"]);
        assert_eq!(failed_early.load(Ordering::SeqCst), 1);
        assert!(order.settled());
    }

    #[tokio::test]
    async fn a_batch_of_replies_alone_does_not_wait() {
        let order = BatchOrder::new(2);
        let a = async { order.ingesting().reply().await };
        let b = async { order.ingesting().reply().await };
        tokio::join!(a, b);
        assert!(order.settled());
    }
}
