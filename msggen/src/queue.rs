//! The hand-off from the pacer thread to one sender task, and the stop
//! signal they share.
//!
//! A queue is a mutex-guarded `Vec<u32>` of id offsets plus a tokio
//! `Notify`: the pacer appends everything due for that sender with one lock
//! per release (about once a millisecond), the sender swaps out up to a batch
//! with one lock per batch. An entry costs 4 bytes; the length is capped so a
//! target that stops answering cannot make msggen hoard memory.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use tokio::sync::Notify;

#[derive(Debug, Default)]
pub(crate) struct Queue {
    state: Mutex<State>,
    ready: Notify,
}

#[derive(Debug, Default)]
struct State {
    items: Vec<u32>,
    closed: bool,
}

impl Queue {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends as many of `items` as fit under `cap` entries and returns how
    /// many did not fit.
    pub(crate) fn push(&self, items: &[u32], cap: usize) -> usize {
        if items.is_empty() {
            return 0;
        }
        let taken = {
            let mut state = self.state();
            let room = cap.saturating_sub(state.items.len()).min(items.len());
            state.items.extend_from_slice(&items[..room]);
            room
        };
        if taken > 0 {
            self.ready.notify_one();
        }
        items.len() - taken
    }

    pub(crate) fn len(&self) -> usize {
        self.state().items.len()
    }

    /// No more items will come; a waiting sender wakes up.
    pub(crate) fn close(&self) {
        self.state().closed = true;
        self.ready.notify_one();
    }

    /// Waits for items and moves up to `max` of them, oldest first, into
    /// `out`. Returns false once the queue is closed and empty.
    pub(crate) async fn take(&self, max: usize, out: &mut Vec<u32>) -> bool {
        loop {
            {
                let mut state = self.state();
                if !state.items.is_empty() {
                    let n = max.min(state.items.len());
                    out.extend(state.items.drain(..n));
                    return true;
                }
                if state.closed {
                    return false;
                }
            }
            // notify_one stores a permit when nobody waits, so an append
            // between the check above and this await is not missed.
            self.ready.notified().await;
        }
    }

    /// Empties the queue and returns how many items it held.
    pub(crate) fn discard(&self) -> usize {
        std::mem::take(&mut self.state().items).len()
    }
}

/// Set once, on SIGINT/SIGTERM: the pacer releases nothing more and the
/// senders give up retrying.
#[derive(Debug, Default)]
pub(crate) struct Stop {
    flag: AtomicBool,
    changed: Notify,
}

impl Stop {
    /// Sets the stop; true when this call set it (it was not set before).
    pub(crate) fn set(&self) -> bool {
        let was_set = self.flag.swap(true, Ordering::SeqCst);
        self.changed.notify_waiters();
        !was_set
    }

    pub(crate) fn is_set(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Returns once the stop is set.
    pub(crate) async fn wait(&self) {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            // Registered before the check, so a set() in between wakes us.
            notified.as_mut().enable();
            if self.is_set() {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn hands_over_in_order_up_to_the_cap() {
        let q = Queue::default();
        assert_eq!(q.push(&[1, 2, 3, 4], 3), 1);
        let mut out = Vec::new();
        assert!(q.take(2, &mut out).await);
        assert_eq!(out, [1, 2]);
        q.close();
        assert!(q.take(10, &mut out).await);
        assert_eq!(out, [1, 2, 3]);
        assert!(!q.take(10, &mut out).await);
    }

    #[tokio::test]
    async fn a_waiting_taker_wakes_on_push_and_on_close() {
        let q = Arc::new(Queue::default());
        let taker = {
            let q = Arc::clone(&q);
            tokio::spawn(async move {
                let mut out = Vec::new();
                let first = q.take(10, &mut out).await;
                let second = q.take(10, &mut out).await;
                (first, second, out)
            })
        };
        tokio::task::yield_now().await;
        q.push(&[7], 10);
        q.close();
        assert_eq!(taker.await.unwrap(), (true, false, vec![7]));
    }

    #[tokio::test]
    async fn stop_wakes_waiters() {
        let stop = Arc::new(Stop::default());
        let waiter = {
            let stop = Arc::clone(&stop);
            tokio::spawn(async move { stop.wait().await })
        };
        tokio::task::yield_now().await;
        stop.set();
        waiter.await.unwrap();
        assert!(stop.is_set());
    }
}
