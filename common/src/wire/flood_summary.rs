//! What `floodtest --json` writes at the end of a run (schema:
//! `docs/schema/flood-summary.json`). `floodtest` fills it from its merged
//! counters and histograms; `experiment` and people's scripts read it.
//!
//! A reader ignores fields it does not know, and a field added later is
//! `#[serde(default)]`, so an older summary still reads.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The whole run, once it has ended.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct FloodSummary {
    /// Connections asked for (`--conns`).
    pub target: u64,
    /// Peak connections open at once (sampled every 100 ms).
    pub open: u64,
    /// Connections still open when the run ended, before floodtest closed
    /// its own: what was held to the end.
    #[serde(default)]
    pub held: u64,
    /// Streams whose `200` head arrived, counting reconnects.
    pub opened: u64,
    /// Opened connections that ended, by either side (our own close at the
    /// end included).
    pub closed: u64,
    /// Connections that ended badly, by class; every class is present.
    pub failed: BTreeMap<String, u64>,
    /// Sum of `failed`.
    pub failed_total: u64,
    /// The non-200 answers of `failed.status` by status code (`"404": 100`).
    #[serde(default)]
    pub status_codes: BTreeMap<String, u64>,
    /// The first failure of each class that occurred, in words: for
    /// `status` the status line and the start of the body the server sent,
    /// for `protocol` the reason and the bytes, for a socket error the
    /// address and the errno's words.
    #[serde(default)]
    pub first_failures: BTreeMap<String, String>,
    /// Chunks (chunked), events (sse) or reads (raw).
    pub chunks: u64,
    /// Body bytes received.
    pub bytes: u64,
    /// Envelopes received, messages and events.
    pub messages: u64,
    /// Of `messages`, the event envelopes (`[c1e `: a publisher's event fanned
    /// out to its friends). Their loss is not a per-connection gap (a
    /// connection sees only its friends' events): it is `connections`
    /// summed over the server's `/publish` answers (`expected` in the summary
    /// of `msggen --publish comet-events`) minus this, over a run where no
    /// connection closed.
    #[serde(default)]
    pub events: u64,
    /// Messages lost: sequence gaps seen within a connection (messages only).
    pub lost: u64,
    /// Delivery latency, `receive time - sent_us`.
    pub latency_us: Percentiles,
    /// `connect()` to an established TCP connection.
    pub connect_us: Percentiles,
    /// `connect()` to the complete `200` response head.
    #[serde(default)]
    pub head_us: Percentiles,
    /// `connect()` to the first body bytes (a chunk, an event, a byte):
    /// the time to first byte of wrk and oha.
    #[serde(default)]
    pub first_byte_us: Percentiles,
    /// Client resident memory per held connection: each process's growth
    /// from the moment half its connections were open to its peak, over the
    /// connections added in between (from before the first connect when
    /// the ramp was too quick to see half way), summed over processes.
    /// What the first connections pay once (~0.5 MiB a process) falls out;
    /// still, under ~10,000 connections page and allocator granularity
    /// swamp the figure.
    pub client_rss_bytes_per_conn: u64,
    /// Seconds from the first connect to the last response head of the ramp
    /// (until every connection was started and answered or failed); 0 if the
    /// ramp never ended.
    pub ramp_secs: f64,
    /// Connections opened per second over the ramp.
    pub connect_rate: f64,
    /// Seconds from the start to the end of the run.
    pub elapsed_s: f64,
    /// Explicit-bind pairs skipped because they were taken.
    pub addr_retries: u64,
    /// Processes the run used (`--procs`; 1 without children).
    pub procs: u64,
    /// Worker threads per process.
    pub workers: u64,
    /// WebSocket Close frames the servers sent, by code (`1000`, `1001`,
    /// `1002`, `1003`, `1007`, `1008`, `1009`, `1011`, `other`, and `none`
    /// for a Close without a code); only the codes seen, empty for HTTP
    /// streams.
    #[serde(default)]
    pub close_codes: BTreeMap<String, u64>,
    /// `null` for a run that ended as planned; otherwise what failed (a
    /// child process that died, a worker error): the figures cover the run
    /// until then.
    pub incomplete: Option<String>,
    /// `null` when the run passed its check (the target, or `--min-open`,
    /// open at the peak and still held at the end, and no stream broke HTTP
    /// framing); otherwise what failed, as printed (exit 1).
    #[serde(default)]
    pub check_failed: Option<String>,
    /// With `--agents`: each agent's own summary of its share, with its
    /// histograms, sorted by name (absent from a run on one machine). The
    /// counters above are the sums of theirs; the percentiles above come
    /// from the merged histograms, not from averaging theirs. An agent lost
    /// mid-run has no entry (`incomplete` names it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub agents: Vec<AgentSummary>,
}

/// One agent's part of a run over several machines (`floodtest --agents`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct AgentSummary {
    /// The agent's name (`floodtest agent --name`).
    pub name: String,
    /// The host it ran on.
    pub host: String,
    /// Its summary of its own share, as it would write it alone.
    pub summary: FloodSummary,
    /// Its whole-run histograms, so a reader can merge them (or check the
    /// merge) exactly.
    pub histograms: HistogramBuckets,
}

/// Histograms of microseconds as their recorded buckets, `[value, count]`
/// for each bucket with a count, in value order: `value` is the highest
/// value equivalent to the bucket (HdrHistogram's `value_iterated_to`), so
/// recording it `count` times into a histogram of the same bounds (1 us to
/// 100 s, 3 significant figures) rebuilds the histogram exactly.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct HistogramBuckets {
    /// Delivery latency.
    pub latency_us: Vec<(u64, u64)>,
    /// `connect()` to an established TCP connection.
    pub connect_us: Vec<(u64, u64)>,
    /// `connect()` to the response head.
    pub head_us: Vec<(u64, u64)>,
    /// `connect()` to the first body bytes.
    pub first_byte_us: Vec<(u64, u64)>,
}

impl FloodSummary {
    /// Fewest connections held at the peak for which
    /// `client_rss_bytes_per_conn` means something: below, a few KiB of
    /// allocator and page granularity over few connections swamp a cost of
    /// ~60-90 B (at 2,000 here: 0 B one run, 400 B another).
    pub const PER_CONN_MIN_CONNS: u64 = 10_000;

    /// Client bytes per held connection, when enough were held for the
    /// figure to mean something ([`FloodSummary::PER_CONN_MIN_CONNS`]).
    pub fn client_bytes_per_conn(&self) -> Option<u64> {
        (self.open >= Self::PER_CONN_MIN_CONNS).then_some(self.client_rss_bytes_per_conn)
    }
}

/// Percentiles of a histogram of microseconds (all 0 when it is empty).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct Percentiles {
    /// Values recorded.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest value.
    pub max: u64,
}
