//! Backpressure between publishers and reactors, without polling.
//!
//! Each reactor counts the deliveries sent to it and not yet written
//! ([`Queued`]). A publisher waits while any count is over [`MAX_BACKLOG`];
//! a reactor whose count falls back to it wakes that count's waiters once
//! ([`Queued::done`]), so a publisher resumes as soon as there is room
//! instead of on the next tick of a timer (it used to re-check every
//! 500 µs, which a message published behind a burst paid in latency). The
//! reactor's cost is the `fetch_sub` it already paid plus one comparison;
//! the wake-up (a mutex and the waiters' wakers) happens only on a crossing.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use tokio::sync::Notify;

/// Deliveries a reactor may have queued before publishers wait (~2 MB of
/// queued records and message bytes at 16-byte messages).
pub(crate) const MAX_BACKLOG: usize = 64 * 1024;

/// One reactor's deliveries sent but not yet written.
#[derive(Debug, Default)]
pub(crate) struct Queued {
    count: AtomicUsize,
    /// Told when the count falls from over [`MAX_BACKLOG`] to it or below.
    drained: Notify,
}

impl Queued {
    /// `n` more deliveries were sent to the reactor.
    pub(crate) fn add(&self, n: usize) {
        self.count.fetch_add(n, Relaxed);
    }

    /// The reactor has handled `n` of them.
    pub(crate) fn done(&self, n: usize) {
        let before = self.count.fetch_sub(n, Relaxed);
        if before > MAX_BACKLOG && before - n <= MAX_BACKLOG {
            self.drained.notify_waiters();
        }
    }

    pub(crate) fn get(&self) -> usize {
        self.count.load(Relaxed)
    }

    /// Waits until the count is at most [`MAX_BACKLOG`].
    async fn room(&self) {
        loop {
            // Registered before the check: a crossing between the check and
            // the await still wakes this waiter (the notify takes the lock
            // that `enable` took, so after it the check sees the new count).
            let notified = self.drained.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.get() <= MAX_BACKLOG {
                return;
            }
            notified.await;
        }
    }
}

/// Waits until no count in `queued` is over [`MAX_BACKLOG`]: one pass that
/// finds every count at or under it.
pub(crate) async fn room<'a>(queued: impl Iterator<Item = &'a Queued> + Clone) {
    while let Some(full) = queued.clone().find(|q| q.get() > MAX_BACKLOG) {
        full.room().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_waiting_publisher_resumes_when_the_reactor_catches_up() {
        let queued = std::sync::Arc::new([Queued::default(), Queued::default()]);
        queued[1].add(MAX_BACKLOG + 10);
        let waiter = {
            let queued = queued.clone();
            tokio::spawn(async move { room(queued.iter()).await })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "resumed while over the limit");
        queued[1].done(5);
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "resumed while still over the limit");
        queued[1].done(5);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("not woken when the count fell to the limit")
            .unwrap();
    }

    #[tokio::test]
    async fn no_wait_under_the_limit() {
        let queued = Queued::default();
        queued.add(MAX_BACKLOG);
        room(std::iter::once(&queued)).await;
    }
}
