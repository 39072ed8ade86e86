//! What a run counts, shared between the senders (writers) and the reporter
//! (the one reader): atomics for the counters, one mutex-guarded histogram
//! for the inter-send gaps (touched once per batch write, not per message).
//! A gap is the time between two consecutive batch writes on one connection.
//!
//! Failures are counted by class and HTTP status, never logged one by one.
//! Two views: `errors` counts failed attempts (a batch retried three times
//! and then accepted adds three), `failed` counts messages that failed for
//! good. The first failed attempt is kept whole, and a run of failed
//! attempts with no success between them is counted, so a run against the
//! wrong port stops early and says why.

use crate::failure::{Failure, FailureClass};
use crate::publish::Fanout;
use c1m_common::GapSummary;
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Per-class counters.
#[derive(Debug, Default)]
pub(crate) struct ClassCounts([AtomicU64; FailureClass::ALL.len()]);

impl ClassCounts {
    pub(crate) fn add(&self, class: FailureClass, n: u64) {
        self.0[class.index()].fetch_add(n, Relaxed);
    }

    pub(crate) fn total(&self) -> u64 {
        self.0.iter().map(|c| c.load(Relaxed)).sum()
    }

    /// Non-zero classes by name, for the summary.
    pub(crate) fn by_name(&self) -> BTreeMap<String, u64> {
        FailureClass::ALL
            .iter()
            .map(|&c| (c.name().to_owned(), self.0[c.index()].load(Relaxed)))
            .filter(|&(_, n)| n > 0)
            .collect()
    }
}

/// Counts by HTTP status code (a mutex: touched only by failures).
#[derive(Debug, Default)]
pub(crate) struct StatusCounts(Mutex<BTreeMap<u16, u64>>);

impl StatusCounts {
    pub(crate) fn add(&self, status: u16, n: u64) {
        *lock(&self.0).entry(status).or_default() += n;
    }

    /// Status codes as strings (JSON object keys), for the summary.
    pub(crate) fn by_code(&self) -> BTreeMap<String, u64> {
        lock(&self.0)
            .iter()
            .map(|(status, n)| (status.to_string(), *n))
            .collect()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Counters shared by the senders and read by the reporter.
#[derive(Debug)]
pub(crate) struct Stats {
    pub(crate) start: Instant,
    /// Messages accepted by the target (2xx for their batch).
    pub(crate) sent: AtomicU64,
    /// Messages the target reported as reaching no connection.
    pub(crate) dropped: AtomicU64,
    /// Events (`--publish comet-events`): connection deliveries the server
    /// said it queued (the sum of its answers' `connections`), events no
    /// friend heard, and events of attempts that failed after they may
    /// have been fanned out (a retry can deliver them twice).
    pub(crate) expected: AtomicU64,
    pub(crate) unheard: AtomicU64,
    pub(crate) uncertain: AtomicU64,
    /// Events accepted by a server whose answer did not say what they
    /// reached (comet-server in broker mode): not in `expected`.
    pub(crate) unreported: AtomicU64,
    /// Messages that failed for good, by the class of their last failure.
    pub(crate) failed: ClassCounts,
    /// Failed attempts (each retry of a batch counts), by class.
    pub(crate) errors: ClassCounts,
    /// `failed` and `errors` of HTTP answers, by status code.
    pub(crate) failed_by_status: StatusCounts,
    pub(crate) errors_by_status: StatusCounts,
    /// The first failed attempt of the run.
    first_failure: Mutex<Option<Failure>>,
    /// Failed attempts since the last answered one, over every sender.
    consecutive_failures: AtomicU64,
    /// Why the run stopped before its end, when it did (first reason wins).
    stopped_early: Mutex<Option<String>>,
    /// Connections (lanes) open now, the most open at once, and every
    /// connection opened (reconnects included).
    open: AtomicU64,
    pub(crate) peak_open: AtomicU64,
    pub(crate) connects: AtomicU64,
    pub(crate) retries: AtomicU64,
    /// Messages released by the pacer but never written because the run
    /// was stopped (SIGINT/SIGTERM): they got no sequence number.
    pub(crate) unsent: AtomicU64,
    /// Batch writes and the messages they carried.
    pub(crate) writes: AtomicU64,
    pub(crate) written: AtomicU64,
    /// Nanoseconds from `start` to the latest batch write (any connection).
    last_write_ns: AtomicU64,
    gaps: Mutex<Gaps>,
    /// Time from writing a request to reading its answer, microseconds.
    answers: Mutex<Histogram<u64>>,
}

/// Inter-send gaps (per connection) in microseconds: since the start of the
/// run, and since the last report.
#[derive(Debug)]
struct Gaps {
    total: Histogram<u64>,
    interval: Histogram<u64>,
}

/// The percentiles of a gap histogram (all 0 when it is empty).
fn gap_summary(h: &Histogram<u64>) -> GapSummary {
    if h.is_empty() {
        return GapSummary::default();
    }
    GapSummary {
        count: h.len(),
        mean: h.mean(),
        p50: h.value_at_quantile(0.5),
        p90: h.value_at_quantile(0.9),
        p99: h.value_at_quantile(0.99),
        p999: h.value_at_quantile(0.999),
        max: h.max(),
    }
}

/// No gap is recorded above this (an hour); longer ones are clamped.
const GAP_MAX_US: u64 = 3_600_000_000;

impl Stats {
    pub(crate) fn new(start: Instant) -> Self {
        let histogram = || Histogram::new_with_bounds(1, GAP_MAX_US, 3).expect("valid bounds");
        Self {
            start,
            sent: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            expected: AtomicU64::new(0),
            unheard: AtomicU64::new(0),
            uncertain: AtomicU64::new(0),
            unreported: AtomicU64::new(0),
            failed: ClassCounts::default(),
            errors: ClassCounts::default(),
            failed_by_status: StatusCounts::default(),
            errors_by_status: StatusCounts::default(),
            first_failure: Mutex::new(None),
            consecutive_failures: AtomicU64::new(0),
            stopped_early: Mutex::new(None),
            open: AtomicU64::new(0),
            peak_open: AtomicU64::new(0),
            connects: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            unsent: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            written: AtomicU64::new(0),
            last_write_ns: AtomicU64::new(0),
            gaps: Mutex::new(Gaps {
                total: histogram(),
                interval: histogram(),
            }),
            answers: Mutex::new(histogram()),
        }
    }

    /// Counts a failed attempt; returns how many attempts in a row have
    /// now failed.
    pub(crate) fn attempt_failed(&self, failure: &Failure) -> u64 {
        self.errors.add(failure.class, 1);
        if let Some(status) = failure.status {
            self.errors_by_status.add(status, 1);
        }
        lock(&self.first_failure).get_or_insert_with(|| failure.clone());
        self.consecutive_failures.fetch_add(1, Relaxed) + 1
    }

    /// An attempt succeeded: the run of failures is broken.
    pub(crate) fn attempt_succeeded(&self) {
        self.consecutive_failures.store(0, Relaxed);
    }

    /// An event batch's answer: what its events reached.
    pub(crate) fn record_fanout(&self, fanout: Fanout) {
        self.expected.fetch_add(fanout.connections, Relaxed);
        self.unheard.fetch_add(fanout.unheard, Relaxed);
    }

    /// A round of requests was answered `answer_time` after its write.
    pub(crate) fn record_answer(&self, answer_time: Duration) {
        let us = (answer_time.as_micros() as u64).clamp(1, GAP_MAX_US);
        let _ = lock(&self.answers).record(us);
    }

    /// Counts `n` messages as failed for good by `failure`.
    pub(crate) fn messages_failed(&self, failure: &Failure, n: u64) {
        self.failed.add(failure.class, n);
        if let Some(status) = failure.status {
            self.failed_by_status.add(status, n);
        }
    }

    /// The first failed attempt of the run, if any.
    pub(crate) fn first_failure(&self) -> Option<Failure> {
        lock(&self.first_failure).clone()
    }

    /// Records why the run stops early; false if a reason was already set.
    pub(crate) fn stop_early(&self, reason: String) -> bool {
        let mut stopped = lock(&self.stopped_early);
        if stopped.is_some() {
            return false;
        }
        *stopped = Some(reason);
        true
    }

    pub(crate) fn stopped_early(&self) -> Option<String> {
        lock(&self.stopped_early).clone()
    }

    /// A connection was opened.
    pub(crate) fn lane_opened(&self) {
        self.connects.fetch_add(1, Relaxed);
        let open = self.open.fetch_add(1, Relaxed) + 1;
        self.peak_open.fetch_max(open, Relaxed);
    }

    /// A connection was closed or dropped.
    pub(crate) fn lane_closed(&self) {
        self.open.fetch_sub(1, Relaxed);
    }

    /// Answer times over the whole run.
    pub(crate) fn answer_times(&self) -> GapSummary {
        gap_summary(&lock(&self.answers))
    }

    /// Notes a batch of `messages` put on the wire at `at`, `since_previous`
    /// after the previous write on the same connection (None for its first):
    /// that gap goes into the histograms. Per connection, because writes on
    /// different connections in the same tick are microseconds apart and
    /// would hide the spacing of the schedule.
    pub(crate) fn record_write(
        &self,
        at: Instant,
        messages: u64,
        since_previous: Option<Duration>,
    ) {
        let now_ns = at.duration_since(self.start).as_nanos() as u64;
        self.last_write_ns.fetch_max(now_ns, Relaxed);
        self.writes.fetch_add(1, Relaxed);
        self.written.fetch_add(messages, Relaxed);
        let Some(gap) = since_previous else {
            return;
        };
        let gap_us = (gap.as_micros() as u64).min(GAP_MAX_US);
        let mut gaps = self.gaps.lock().unwrap_or_else(|e| e.into_inner());
        // Cannot fail: the value is within the bounds.
        let _ = gaps.total.record(gap_us);
        let _ = gaps.interval.record(gap_us);
    }

    /// Seconds from the start to the latest batch write.
    pub(crate) fn send_span_s(&self) -> f64 {
        self.last_write_ns.load(Relaxed) as f64 / 1e9
    }

    /// Gaps since the last call (then forgotten), for one report interval.
    pub(crate) fn take_interval_gaps(&self) -> GapSummary {
        let mut gaps = self.gaps.lock().unwrap_or_else(|e| e.into_inner());
        let summary = gap_summary(&gaps.interval);
        gaps.interval.reset();
        summary
    }

    /// Gaps over the whole run.
    pub(crate) fn total_gaps(&self) -> GapSummary {
        let gaps = self.gaps.lock().unwrap_or_else(|e| e.into_inner());
        gap_summary(&gaps.total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_are_between_consecutive_writes() {
        let start = Instant::now();
        let stats = Stats::new(start);
        let ms = Duration::from_millis;
        stats.record_write(start, 10, None);
        for (at, gap) in [(1, 1), (2, 1), (4, 2)] {
            stats.record_write(start + ms(at), 10, Some(ms(gap)));
        }
        let g = stats.take_interval_gaps();
        assert_eq!(g.count, 3);
        assert_eq!(g.max, 2000);
        assert_eq!(g.p50, 1000);
        assert_eq!(stats.take_interval_gaps().count, 0);
        assert_eq!(stats.total_gaps().count, 3);
        assert_eq!(stats.written.load(Relaxed), 40);
        assert!((stats.send_span_s() - 0.004).abs() < 1e-9);
    }
}
