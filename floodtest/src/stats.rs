//! Counters and histograms: owned by each worker, merged by one reader.
//!
//! A worker counts into a plain [`Tally`] (no atomics on the hot path) and,
//! every [`crate::worker::FLUSH_EVERY`], publishes its cumulative counters and
//! moves its histograms into a mutex-guarded slot that the controller drains
//! on its tick. Child processes send the same [`Snapshot`] as a JSON line, so
//! one merge serves threads and processes alike. Cost: four histograms per
//! worker (~140 KB each at most, pages touched only where values fall), no
//! state per connection.

use crate::class::{ClassCounts, ErrorClass};
use crate::websocket::CloseCounts;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Highest value a histogram keeps (100 s in microseconds); larger values
/// are clamped, so a stalled clock cannot make one record fail.
const HIST_MAX_US: u64 = 100_000_000;

/// An empty histogram of microseconds with 3 significant figures.
pub(crate) fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIST_MAX_US, 3).expect("static histogram bounds are valid")
}

/// Cumulative counts since the start of the run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Counters {
    /// Connection attempts begun (a reconnect is a new attempt).
    pub(crate) started: u64,
    /// TCP handshakes completed.
    pub(crate) connected: u64,
    /// Streams whose `200` response head arrived: held connections.
    pub(crate) opened: u64,
    /// Opened connections that ended since, by either side.
    pub(crate) closed: u64,
    /// Chunks (chunked), events (sse) or reads (raw).
    pub(crate) chunks: u64,
    /// Body bytes (after de-chunking).
    pub(crate) bytes: u64,
    /// Envelopes found.
    pub(crate) messages: u64,
    /// Messages known lost: sequence gaps within one connection.
    pub(crate) lost: u64,
    /// Explicit-bind pairs skipped because they were taken.
    pub(crate) addr_retries: u64,
    /// Connections that ended badly, by [`ErrorClass::index`].
    pub(crate) failed: ClassCounts,
    /// WebSocket Close frames from servers, by `websocket::close_bucket`.
    pub(crate) closes: CloseCounts,
}

impl Counters {
    pub(crate) fn add(&mut self, o: &Counters) {
        self.started += o.started;
        self.connected += o.connected;
        self.opened += o.opened;
        self.closed += o.closed;
        self.chunks += o.chunks;
        self.bytes += o.bytes;
        self.messages += o.messages;
        self.lost += o.lost;
        self.addr_retries += o.addr_retries;
        for (a, b) in self.failed.iter_mut().zip(o.failed) {
            *a += b;
        }
        for (a, b) in self.closes.iter_mut().zip(o.closes) {
            *a += b;
        }
    }

    pub(crate) fn fail(&mut self, class: ErrorClass) {
        self.failed[class.index()] += 1;
    }

    pub(crate) fn failed_total(&self) -> u64 {
        self.failed.iter().sum()
    }

    /// Connections open now: opened and not yet closed.
    pub(crate) fn open(&self) -> u64 {
        self.opened - self.closed
    }
}

/// What a worker counts into while it runs.
pub(crate) struct Tally {
    pub(crate) counters: Counters,
    /// Delivery latency of envelopes, microseconds.
    pub(crate) latency: Histogram<u64>,
    /// Time from `connect()` to an established TCP connection, microseconds.
    pub(crate) connect: Histogram<u64>,
    /// Wall clock (the envelope's clock) at the current read, microseconds.
    pub(crate) now_us: u64,
}

impl Tally {
    pub(crate) fn new() -> Self {
        Self {
            counters: Counters::default(),
            latency: new_hist(),
            connect: new_hist(),
            now_us: 0,
        }
    }
}

impl Default for Tally {
    fn default() -> Self {
        Self::new()
    }
}

/// One look at a worker, a process or the whole fleet: cumulative counters,
/// gauges, and the histograms recorded since the previous snapshot.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Snapshot {
    pub(crate) counters: Counters,
    /// Connection attempts in flight (before the response head).
    pub(crate) connecting: u64,
    /// Connections waiting to reconnect after a backoff.
    pub(crate) waiting: u64,
    /// Every connection of the plan has been started at least once.
    pub(crate) started_all: bool,
    /// Nothing in flight and nothing more to start until a `--pause-every`
    /// step is released (or everything is started). The fleet is paused when
    /// this holds for every worker and `started_all` does not.
    pub(crate) paused: bool,
    /// The workers have stopped and this is their last word.
    pub(crate) finished: bool,
    /// Child processes only: resident-memory growth since before connecting,
    /// taken when this process held its peak, and that peak.
    pub(crate) rss_delta_bytes: i64,
    pub(crate) peak_open: u64,
    /// Wall clock (unix microseconds) of the first connect, `u64::MAX`
    /// before it, and of the latest response head, 0 before it: the ramp's
    /// span, exact to the microsecond rather than to the controller's tick.
    pub(crate) first_start_us: u64,
    pub(crate) last_open_us: u64,
    #[serde(with = "hist_wire")]
    pub(crate) latency: Histogram<u64>,
    #[serde(with = "hist_wire")]
    pub(crate) connect: Histogram<u64>,
}

impl Snapshot {
    /// The identity of [`Snapshot::merge`].
    pub(crate) fn empty() -> Self {
        Self {
            counters: Counters::default(),
            connecting: 0,
            waiting: 0,
            started_all: true,
            paused: true,
            finished: true,
            rss_delta_bytes: 0,
            peak_open: 0,
            first_start_us: u64::MAX,
            last_open_us: 0,
            latency: new_hist(),
            connect: new_hist(),
        }
    }

    /// A worker or child that has not reported yet: nothing started, so the
    /// controller cannot mistake silence for a finished ramp.
    pub(crate) fn starting() -> Self {
        Self {
            started_all: false,
            paused: false,
            finished: false,
            ..Self::empty()
        }
    }

    /// Folds `o` in: counters and gauges add, flags hold only if they hold
    /// for both, histograms merge.
    pub(crate) fn merge(&mut self, o: &Snapshot) {
        self.counters.add(&o.counters);
        self.connecting += o.connecting;
        self.waiting += o.waiting;
        self.started_all &= o.started_all;
        self.paused &= o.paused;
        self.finished &= o.finished;
        self.rss_delta_bytes += o.rss_delta_bytes;
        self.peak_open += o.peak_open;
        self.first_start_us = self.first_start_us.min(o.first_start_us);
        self.last_open_us = self.last_open_us.max(o.last_open_us);
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.latency.add(&o.latency);
        let _ = self.connect.add(&o.connect);
    }

    /// The ramp is over: everything started and nothing still connecting.
    pub(crate) fn ramp_done(&self) -> bool {
        self.started_all && self.connecting == 0
    }

    /// Nothing is open and nothing more will be: the run has no work left.
    pub(crate) fn all_ended(&self) -> bool {
        self.ramp_done() && self.waiting == 0 && self.counters.open() == 0
    }
}

/// Histograms travel as `[[value, count], ...]` of the recorded buckets:
/// re-recording a bucket's value in a histogram of the same bounds lands in
/// the same bucket, so the merge in the parent is exact.
mod hist_wire {
    use hdrhistogram::Histogram;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(super) fn serialize<S: Serializer>(h: &Histogram<u64>, s: S) -> Result<S::Ok, S::Error> {
        let buckets: Vec<(u64, u64)> = h
            .iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
            .collect();
        buckets.serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Histogram<u64>, D::Error> {
        let buckets = Vec::<(u64, u64)>::deserialize(d)?;
        let mut h = super::new_hist();
        for (value, count) in buckets {
            h.saturating_record_n(value, count);
        }
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_round_trips_exactly_through_json() {
        let mut s = Snapshot::empty();
        s.counters.opened = 7;
        s.counters.fail(ErrorClass::Reset);
        for v in [1, 5, 999, 12_345, 7_000_000] {
            s.latency.record(v).unwrap();
        }
        s.connect.record(250).unwrap();
        let back: Snapshot = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back.counters, s.counters);
        assert_eq!(back.latency.len(), 5);
        for q in [0.5, 0.99, 1.0] {
            assert_eq!(
                back.latency.value_at_quantile(q),
                s.latency.value_at_quantile(q)
            );
        }
        assert_eq!(back.latency.max(), s.latency.max());
        assert_eq!(back.connect.len(), 1);
    }

    #[test]
    fn merging_adds_counts_and_ands_flags() {
        let mut a = Snapshot::empty();
        let mut b = Snapshot::empty();
        a.counters.opened = 3;
        b.counters.opened = 4;
        b.counters.closed = 1;
        b.started_all = false;
        a.merge(&b);
        assert_eq!(a.counters.open(), 6);
        assert!(!a.ramp_done());
    }
}
