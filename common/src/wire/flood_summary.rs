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
    /// Streams whose `200` head arrived, counting reconnects.
    pub opened: u64,
    /// Opened connections that ended, by either side (our own close at the
    /// end included).
    pub closed: u64,
    /// Connections that ended badly, by class; every class is present.
    pub failed: BTreeMap<String, u64>,
    /// Sum of `failed`.
    pub failed_total: u64,
    /// Chunks (chunked), events (sse) or reads (raw).
    pub chunks: u64,
    /// Body bytes received.
    pub bytes: u64,
    /// Envelopes received.
    pub messages: u64,
    /// Messages lost: sequence gaps seen within a connection.
    pub lost: u64,
    /// Delivery latency, `receive time - sent_us`.
    pub latency_us: Percentiles,
    /// `connect()` to an established TCP connection.
    pub connect_us: Percentiles,
    /// Client resident memory growth from before the first connect to the
    /// peak, divided by the peak open connections (summed over processes).
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
