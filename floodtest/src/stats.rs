//! Counters and histograms: owned by each worker, merged by one reader.
//!
//! A worker counts into a plain [`Tally`] (no atomics on the hot path) and,
//! every [`crate::worker::FLUSH_EVERY`], publishes its cumulative counters and
//! moves its histograms into a mutex-guarded slot that the controller drains
//! on its tick. Child processes send the same [`Snapshot`] as a JSON line, so
//! one merge serves threads and processes alike. Cost: four histograms per
//! worker ([`Timings`]: latency, connect, head, first byte) (~140 KB each at most, pages touched only where values fall), no
//! state per connection.

use crate::class::{ClassCounts, ErrorClass};
use crate::failure::Failures;
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

/// The histograms of a run, microseconds: recorded by a worker, moved to
/// the controller on each flush and merged there.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Timings {
    /// Delivery latency of envelopes.
    #[serde(with = "hist_wire")]
    pub(crate) latency: Histogram<u64>,
    /// `connect()` to an established TCP connection.
    #[serde(with = "hist_wire")]
    pub(crate) connect: Histogram<u64>,
    /// `connect()` to the complete `200` response head.
    #[serde(with = "hist_wire", default = "new_hist")]
    pub(crate) head: Histogram<u64>,
    /// `connect()` to the first body bytes (chunk, event or byte): the
    /// time to first byte wrk and oha report.
    #[serde(with = "hist_wire", default = "new_hist")]
    pub(crate) first_byte: Histogram<u64>,
}

impl Timings {
    pub(crate) fn new() -> Self {
        Self {
            latency: new_hist(),
            connect: new_hist(),
            head: new_hist(),
            first_byte: new_hist(),
        }
    }

    fn all(&self) -> [&Histogram<u64>; 4] {
        [&self.latency, &self.connect, &self.head, &self.first_byte]
    }

    fn all_mut(&mut self) -> [&mut Histogram<u64>; 4] {
        [
            &mut self.latency,
            &mut self.connect,
            &mut self.head,
            &mut self.first_byte,
        ]
    }

    /// Adds `o`'s values.
    pub(crate) fn add(&mut self, o: &Timings) {
        for (mine, theirs) in self.all_mut().into_iter().zip(o.all()) {
            // Same bounds on both sides, so adding cannot fail.
            let _ = mine.add(theirs);
        }
    }

    /// Empties every histogram (after it was handed on).
    pub(crate) fn reset(&mut self) {
        for h in self.all_mut() {
            h.reset();
        }
    }
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
    /// Envelopes found, messages and events.
    pub(crate) messages: u64,
    /// Of `messages`, event envelopes (`[c1e `).
    #[serde(default)]
    pub(crate) events: u64,
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
        self.events += o.events;
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
    /// Recorded since the last flush.
    pub(crate) timings: Timings,
    /// Wall clock (the envelope's clock) at the current read, microseconds.
    pub(crate) now_us: u64,
    /// The first failure of each class, and non-200 answers by code.
    pub(crate) failures: Failures,
}

impl Tally {
    pub(crate) fn new() -> Self {
        Self {
            counters: Counters::default(),
            timings: Timings::new(),
            now_us: 0,
            failures: Failures::default(),
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
    /// Streams open when the workers were told to stop, just before they
    /// closed them: what was held to the end (0 until then).
    #[serde(default)]
    pub(crate) held: u64,
    /// The first failure of each class, and non-200 answers by code
    /// (cumulative).
    #[serde(default)]
    pub(crate) failures: Failures,
    /// Resident-memory growth of this process over `rss_conns` added
    /// connections (from half its connections open to its peak, see
    /// [`crate::fleet::LocalFleet`]), and its peak open.
    pub(crate) rss_delta_bytes: i64,
    #[serde(default)]
    pub(crate) rss_conns: u64,
    pub(crate) peak_open: u64,
    /// Wall clock (unix microseconds) of the first connect, `u64::MAX`
    /// before it, and of the latest response head, 0 before it: the ramp's
    /// span, exact to the microsecond rather than to the controller's tick.
    pub(crate) first_start_us: u64,
    pub(crate) last_open_us: u64,
    /// Recorded since the previous snapshot.
    pub(crate) timings: Timings,
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
            held: 0,
            failures: Failures::default(),
            rss_delta_bytes: 0,
            rss_conns: 0,
            peak_open: 0,
            first_start_us: u64::MAX,
            last_open_us: 0,
            timings: Timings::new(),
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
        self.held += o.held;
        self.failures.merge(&o.failures);
        self.rss_delta_bytes += o.rss_delta_bytes;
        self.rss_conns += o.rss_conns;
        self.peak_open += o.peak_open;
        self.first_start_us = self.first_start_us.min(o.first_start_us);
        self.last_open_us = self.last_open_us.max(o.last_open_us);
        self.timings.add(&o.timings);
    }

    /// A process or agent that went without its last word: its descriptors
    /// closed with it (or will, when it gives its controller up), and it
    /// starts nothing more.
    pub(crate) fn mark_dead(&mut self) {
        let c = &mut self.counters;
        c.closed = c.opened;
        self.connecting = 0;
        self.waiting = 0;
        self.started_all = true;
        self.paused = true;
        self.finished = true;
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

/// The recorded buckets of `h` as `(value, count)`: re-recording a
/// bucket's value in a histogram of the same bounds lands in the same
/// bucket, so [`from_buckets`] rebuilds `h` exactly (the `--procs` pipe and
/// the agents' messages carry histograms this way, and the `--agents`
/// summary its per-agent ones).
pub(crate) fn to_buckets(h: &Histogram<u64>) -> Vec<(u64, u64)> {
    h.iter_recorded()
        .map(|v| (v.value_iterated_to(), v.count_at_value()))
        .collect()
}

/// The histogram [`to_buckets`] took apart.
pub(crate) fn from_buckets(buckets: &[(u64, u64)]) -> Histogram<u64> {
    let mut h = new_hist();
    for &(value, count) in buckets {
        h.saturating_record_n(value, count);
    }
    h
}

impl Timings {
    /// Every histogram as its buckets, for a summary.
    pub(crate) fn buckets(&self) -> c1m_common::HistogramBuckets {
        c1m_common::HistogramBuckets {
            latency_us: to_buckets(&self.latency),
            connect_us: to_buckets(&self.connect),
            head_us: to_buckets(&self.head),
            first_byte_us: to_buckets(&self.first_byte),
        }
    }
}

/// Histograms travel as `[[value, count], ...]` of the recorded buckets
/// ([`to_buckets`]), so the merge in the parent is exact.
mod hist_wire {
    use hdrhistogram::Histogram;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(super) fn serialize<S: Serializer>(h: &Histogram<u64>, s: S) -> Result<S::Ok, S::Error> {
        super::to_buckets(h).serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Histogram<u64>, D::Error> {
        Ok(super::from_buckets(&Vec::<(u64, u64)>::deserialize(d)?))
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
            s.timings.latency.record(v).unwrap();
        }
        s.timings.connect.record(250).unwrap();
        s.timings.first_byte.record(900).unwrap();
        let back: Snapshot = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back.counters, s.counters);
        assert_eq!(back.timings.latency.len(), 5);
        for q in [0.5, 0.99, 1.0] {
            assert_eq!(
                back.timings.latency.value_at_quantile(q),
                s.timings.latency.value_at_quantile(q)
            );
        }
        assert_eq!(back.timings.latency.max(), s.timings.latency.max());
        assert_eq!(back.timings.connect.len(), 1);
        assert_eq!(back.timings.first_byte.max(), 900);
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
