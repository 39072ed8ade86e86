//! The pacer: one OS thread that decides when each message goes and to which
//! id, and hands it to the sender owning that id.
//!
//! It runs on its own thread rather than on a tokio timer because tokio's
//! timer wheel has 1 ms granularity and rounds sleeps up, while
//! `thread::sleep` is a `clock_nanosleep` good to ~60 us here. Each wake-up
//! it asks the [`Schedule`] how many messages are due by now, samples their
//! ids, and appends them to the senders' queues; it then sleeps until the
//! next message is due, but at least `--tick`. Its cost is the id sampling
//! (tens of ns a message) and one queue lock per sender per release.
//!
//! With `--rate max` there is no clock: the pacer keeps every queue topped
//! up with a few batches' worth, so the senders are never idle and the rate
//! measured is what the target accepts.

use crate::failure::FailureClass;
use crate::ids::{owner, IdSampler};
use crate::queue::{Queue, Stop};
use crate::schedule::Schedule;
use crate::stats::Stats;
use rand::Rng;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The pacer sleeps at most this long at a time, so a stop is seen quickly
/// even at a rate of one message a minute.
const MAX_SLEEP: Duration = Duration::from_millis(50);

/// How the pacer releases messages.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Pace {
    /// Follow the schedule; a queue holds at most `backlog` entries and what
    /// does not fit counts as failed (class `backlog`).
    Paced { schedule: Schedule, backlog: usize },
    /// Keep each queue at `high_water` entries or more, until `total`
    /// messages or `deadline`.
    Max {
        total: u64,
        deadline: Option<Duration>,
        high_water: usize,
    },
}

pub(crate) struct Pacer<R> {
    pub(crate) pace: Pace,
    pub(crate) tick: Duration,
    pub(crate) sampler: IdSampler,
    pub(crate) rng: R,
    pub(crate) queues: Vec<Arc<Queue>>,
    pub(crate) stats: Arc<Stats>,
    pub(crate) stop: Arc<Stop>,
}

impl<R: Rng> Pacer<R> {
    /// Releases messages until the schedule is done, the deadline passes or
    /// the stop is set; then closes every queue. Returns how many messages
    /// were released (handed to a queue or counted as backlog failures).
    pub(crate) fn run(mut self) -> u64 {
        // Closes every queue however this ends, a panic included: a
        // sender waiting on an open queue would wait forever.
        let _close = CloseOnDrop(self.queues.clone());
        let start = self.stats.start;
        let senders = self.queues.len() as u32;
        let mut per_sender: Vec<Vec<u32>> = vec![Vec::new(); self.queues.len()];
        let mut released = 0u64;
        while !self.stop.is_set() {
            let elapsed = start.elapsed();
            let (due, cap) = match self.pace {
                Pace::Paced { schedule, backlog } => (schedule.due_by(elapsed), backlog),
                Pace::Max {
                    total,
                    deadline,
                    high_water,
                } => {
                    if deadline.is_some_and(|d| elapsed >= d) {
                        break;
                    }
                    let low = self.queues.iter().all(|q| q.len() < high_water);
                    let chunk = if low { high_water as u64 } else { 0 };
                    ((released + chunk).min(total), usize::MAX)
                }
            };
            for _ in released..due {
                let offset = self.sampler.sample(&mut self.rng);
                per_sender[owner(offset, senders)].push(offset);
            }
            released = due;
            for (queue, items) in self.queues.iter().zip(per_sender.iter_mut()) {
                let refused = queue.push(items, cap);
                if refused > 0 {
                    self.stats.failed.add(FailureClass::Backlog, refused as u64);
                }
                items.clear();
            }
            let wake = match self.pace {
                Pace::Paced { schedule, .. } => {
                    match schedule.next_wake(released, start.elapsed(), self.tick) {
                        Some(wake) => wake,
                        None => break,
                    }
                }
                Pace::Max { total, .. } if released >= total => break,
                Pace::Max { .. } => start.elapsed() + self.tick,
            };
            sleep_until(start, wake);
        }
        released
    }
}

struct CloseOnDrop(Vec<Arc<Queue>>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        for queue in &self.0 {
            queue.close();
        }
    }
}

/// Sleeps until `wake` after `start`, at most [`MAX_SLEEP`]; `wake` may be
/// `Duration::MAX` (a message due in centuries), which `start + wake`
/// would not survive.
fn sleep_until(start: Instant, wake: Duration) {
    let left = wake.saturating_sub(start.elapsed());
    if !left.is_zero() {
        std::thread::sleep(left.min(MAX_SLEEP));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Dist;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn pacer(pace: Pace, senders: usize) -> Pacer<ChaCha8Rng> {
        pacer_with(pace, senders, ChaCha8Rng::seed_from_u64(1))
    }

    fn pacer_with<R>(pace: Pace, senders: usize, rng: R) -> Pacer<R> {
        Pacer {
            pace,
            tick: Duration::from_millis(1),
            sampler: IdSampler::new(Dist::Uniform, 100),
            rng,
            queues: (0..senders).map(|_| Arc::new(Queue::default())).collect(),
            stats: Arc::new(Stats::new(Instant::now())),
            stop: Arc::new(Stop::default()),
        }
    }

    /// 2,000 messages at 20,000/s take ~0.1 s, land on their owners' queues,
    /// and what does not fit a full queue is counted, not lost.
    #[test]
    fn releases_the_schedule_to_the_owners() {
        let schedule = Schedule::new(20_000.0, Some(2_000), None);
        let p = pacer(
            Pace::Paced {
                schedule,
                backlog: 400,
            },
            4,
        );
        let (queues, stats) = (p.queues.clone(), Arc::clone(&p.stats));
        assert_eq!(p.run(), 2_000);
        // The last message is due 99.95 ms after the schedule's start.
        let took = stats.start.elapsed();
        assert!(took >= Duration::from_millis(99), "{took:?}");
        let queued: usize = queues.iter().map(|q| q.len()).sum();
        // ~500 a sender against a cap of 400: some are refused, and counted.
        assert!(stats.failed.total() > 0);
        assert_eq!(queued as u64 + stats.failed.total(), 2_000);
        for (k, q) in queues.iter().enumerate() {
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            let mut items = Vec::new();
            while rt.block_on(q.take(1000, &mut items)) {}
            assert!(items.iter().all(|&off| owner(off, 4) == k));
        }
    }

    #[test]
    fn max_pace_stops_at_the_total() {
        let p = pacer(
            Pace::Max {
                total: 5_000,
                deadline: Some(Duration::from_secs(10)),
                high_water: 10_000,
            },
            2,
        );
        let queues = p.queues.clone();
        assert_eq!(p.run(), 5_000);
        assert_eq!(queues.iter().map(|q| q.len()).sum::<usize>(), 5_000);
    }

    /// An Rng that panics, to stand for any panic inside the pacer.
    struct Exploding;

    impl rand::RngCore for Exploding {
        fn next_u32(&mut self) -> u32 {
            panic!("boom")
        }
        fn next_u64(&mut self) -> u64 {
            panic!("boom")
        }
        fn fill_bytes(&mut self, _: &mut [u8]) {
            panic!("boom")
        }
    }

    /// A panicking pacer still closes the queues, so the senders end and
    /// the run reports the panic instead of hanging.
    #[test]
    fn a_panicking_pacer_closes_the_queues() {
        let pace = Pace::Paced {
            schedule: Schedule::new(1000.0, Some(10), None),
            backlog: 100,
        };
        let p = pacer_with(pace, 2, Exploding);
        let queues = p.queues.clone();
        assert!(std::thread::spawn(move || p.run()).join().is_err());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        for q in &queues {
            // An open queue would make take() wait: the timeout turns that
            // into a failure instead of a hung test.
            let taken = rt.block_on(async {
                tokio::time::timeout(Duration::from_secs(5), q.take(10, &mut Vec::new())).await
            });
            assert_eq!(taken, Ok(false), "the queue is closed and empty");
        }
    }

    #[test]
    fn a_stop_ends_the_pacer_early() {
        let schedule = Schedule::new(1.0, Some(1_000), None);
        let p = pacer(
            Pace::Paced {
                schedule,
                backlog: 10,
            },
            1,
        );
        p.stop.set();
        assert_eq!(p.run(), 0);
    }
}
