//! What a run counts, shared between the senders (writers) and the reporter
//! (the one reader): atomics for the counters, one mutex-guarded histogram
//! for the inter-send gaps (touched once per batch write, not per message).
//! A gap is the time between two consecutive batch writes on one connection.
//!
//! Failures are counted by class, never logged one by one. Two views:
//! `errors` counts failed attempts (a batch retried three times and then
//! accepted adds three), `failed` counts messages that failed for good.

use c1m_common::GapSummary;
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Why an attempt or a message failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum FailureClass {
    /// Nothing listens on the target (ECONNREFUSED).
    Refused,
    /// The connection was reset or broke (ECONNRESET, EPIPE, ECONNABORTED).
    Reset,
    /// The target closed the connection before answering.
    Closed,
    /// No connection or answer within --timeout.
    Timeout,
    /// The target answered 5xx.
    Status5xx,
    /// The target answered 429 Too Many Requests or 408 Request Timeout:
    /// it asks to be tried again later, so it is retried like a 5xx.
    Throttled,
    /// The target answered 4xx other than 408/429 (not retried: the same
    /// batch would fail again).
    Status4xx,
    /// The target answered with a status that is neither 2xx, 4xx nor 5xx.
    StatusOther,
    /// The target took the batch but refused some of its lines (its answer
    /// said `"rejected": N`); not retried, the same lines would be refused.
    Rejected,
    /// The answer was not HTTP/1.x the codec could read, or was framed
    /// ambiguously (RFC 9112 6.3).
    BadResponse,
    /// This process is out of file descriptors (EMFILE/ENFILE).
    NoDescriptors,
    /// No local address or port to connect from (EADDRNOTAVAIL).
    NoAddress,
    /// Another I/O error.
    Io,
    /// Not sent at all: the target did not keep up and the sender's queue
    /// was full (msggen holds at most ~2 s of messages per sender).
    Backlog,
}

impl FailureClass {
    pub(crate) const ALL: [FailureClass; 14] = [
        FailureClass::Refused,
        FailureClass::Reset,
        FailureClass::Closed,
        FailureClass::Timeout,
        FailureClass::Status5xx,
        FailureClass::Throttled,
        FailureClass::Status4xx,
        FailureClass::StatusOther,
        FailureClass::Rejected,
        FailureClass::BadResponse,
        FailureClass::NoDescriptors,
        FailureClass::NoAddress,
        FailureClass::Io,
        FailureClass::Backlog,
    ];

    /// The name in summaries and JSON.
    pub(crate) fn name(self) -> &'static str {
        match self {
            FailureClass::Refused => "refused",
            FailureClass::Reset => "reset",
            FailureClass::Closed => "closed",
            FailureClass::Timeout => "timeout",
            FailureClass::Status5xx => "status_5xx",
            FailureClass::Throttled => "throttled",
            FailureClass::Status4xx => "status_4xx",
            FailureClass::StatusOther => "status_other",
            FailureClass::Rejected => "rejected",
            FailureClass::BadResponse => "bad_response",
            FailureClass::NoDescriptors => "no_descriptors",
            FailureClass::NoAddress => "no_address",
            FailureClass::Io => "io",
            FailureClass::Backlog => "backlog",
        }
    }

    /// Whether retrying the same batch may succeed.
    pub(crate) fn retryable(self) -> bool {
        !matches!(
            self,
            FailureClass::Status4xx
                | FailureClass::StatusOther
                | FailureClass::Rejected
                | FailureClass::Backlog
        )
    }

    /// The class of an I/O error.
    pub(crate) fn of_io(err: &io::Error) -> Self {
        if c1m_common::is_exhaustion(err).is_some() {
            return FailureClass::NoDescriptors;
        }
        match err.kind() {
            io::ErrorKind::ConnectionRefused => FailureClass::Refused,
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => FailureClass::Reset,
            io::ErrorKind::UnexpectedEof => FailureClass::Closed,
            io::ErrorKind::TimedOut => FailureClass::Timeout,
            io::ErrorKind::AddrNotAvailable => FailureClass::NoAddress,
            _ => FailureClass::Io,
        }
    }

    /// The class of a non-2xx HTTP status.
    pub(crate) fn of_status(status: u16) -> Self {
        match status {
            408 | 429 => FailureClass::Throttled,
            400..=499 => FailureClass::Status4xx,
            500..=599 => FailureClass::Status5xx,
            _ => FailureClass::StatusOther,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

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

/// Counters shared by the senders and read by the reporter.
#[derive(Debug)]
pub(crate) struct Stats {
    pub(crate) start: Instant,
    /// Messages accepted by the target (2xx for their batch).
    pub(crate) sent: AtomicU64,
    /// Messages the target reported as reaching no connection.
    pub(crate) dropped: AtomicU64,
    /// Messages that failed for good, by the class of their last failure.
    pub(crate) failed: ClassCounts,
    /// Failed attempts (each retry of a batch counts), by class.
    pub(crate) errors: ClassCounts,
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
            failed: ClassCounts::default(),
            errors: ClassCounts::default(),
            retries: AtomicU64::new(0),
            unsent: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            written: AtomicU64::new(0),
            last_write_ns: AtomicU64::new(0),
            gaps: Mutex::new(Gaps {
                total: histogram(),
                interval: histogram(),
            }),
        }
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
    fn classes_io_errors() {
        let of = |kind| FailureClass::of_io(&io::Error::from(kind));
        assert_eq!(of(io::ErrorKind::ConnectionRefused), FailureClass::Refused);
        assert_eq!(of(io::ErrorKind::ConnectionReset), FailureClass::Reset);
        assert_eq!(of(io::ErrorKind::UnexpectedEof), FailureClass::Closed);
        let emfile = io::Error::from_raw_os_error(24); // EMFILE on Linux
        assert_eq!(FailureClass::of_io(&emfile), FailureClass::NoDescriptors);
        assert_eq!(FailureClass::of_status(503), FailureClass::Status5xx);
        assert_eq!(FailureClass::of_status(413), FailureClass::Status4xx);
        assert!(!FailureClass::Status4xx.retryable());
        assert_eq!(FailureClass::of_status(429), FailureClass::Throttled);
        assert_eq!(FailureClass::of_status(408), FailureClass::Throttled);
        assert!(FailureClass::Throttled.retryable());
        assert!(FailureClass::Status5xx.retryable());
    }

    #[test]
    fn names_are_unique_and_in_index_order() {
        for (i, c) in FailureClass::ALL.iter().enumerate() {
            assert_eq!(c.index(), i);
        }
        let mut names: Vec<_> = FailureClass::ALL.iter().map(|c| c.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), FailureClass::ALL.len());
    }

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
