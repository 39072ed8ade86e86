//! A FIFO of deadlines for one reactor. Every deadline of one kind is
//! `start + constant` (header timeout, poll timeout, write deadline), so deadlines arrive in
//! order and a queue replaces a timer per connection: 16 bytes per entry,
//! only while the connection waits; an entry for a connection that moved on
//! or closed is skipped by its generation when it expires.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub(super) struct Deadlines {
    after: Duration,
    queue: VecDeque<(Instant, u32, u32)>,
}

impl Deadlines {
    pub(super) fn new(after: Duration) -> Self {
        Self {
            after,
            queue: VecDeque::new(),
        }
    }

    /// Starts the clock for slab slot `key` of generation `gen`.
    pub(super) fn push(&mut self, now: Instant, key: usize, gen: u32) {
        self.queue.push_back((now + self.after, key as u32, gen));
    }

    /// The earliest deadline, if any.
    pub(super) fn next(&self) -> Option<Instant> {
        self.queue.front().map(|(at, _, _)| *at)
    }

    /// Removes and returns the next `(key, gen)` whose deadline has passed.
    pub(super) fn pop_expired(&mut self, now: Instant) -> Option<(usize, u32)> {
        match self.queue.front() {
            Some((at, key, gen)) if *at <= now => {
                let popped = (*key as usize, *gen);
                self.queue.pop_front();
                Some(popped)
            }
            _ => None,
        }
    }

    /// Frees the queue's spare capacity once it has drained after a burst.
    pub(super) fn shrink(&mut self) {
        if self.queue.is_empty() && self.queue.capacity() > 1024 {
            self.queue.shrink_to(64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_in_order() {
        let mut d = Deadlines::new(Duration::from_secs(1));
        let t0 = Instant::now();
        d.push(t0, 1, 10);
        d.push(t0 + Duration::from_millis(500), 2, 20);
        assert_eq!(d.next(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(d.pop_expired(t0 + Duration::from_millis(999)), None);
        assert_eq!(d.pop_expired(t0 + Duration::from_secs(1)), Some((1, 10)));
        assert_eq!(d.pop_expired(t0 + Duration::from_secs(1)), None);
        assert_eq!(d.pop_expired(t0 + Duration::from_secs(2)), Some((2, 20)));
    }
}
