//! The final summary: what `--json` writes and the last lines printed.
//!
//! The JSON schema is this struct; a test pins its field names, because the
//! `experiment` tool and people's scripts read it.

use crate::class::{ClassCounts, ErrorClass};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Percentiles of a histogram of microseconds (all 0 when it is empty).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        Self {
            count: h.len(),
            p50: h.value_at_quantile(0.5),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

/// The whole run, once it has ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
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
    /// Worker threads over all processes.
    pub workers: u64,
    /// `null` for a run that ended as planned; otherwise what failed (a
    /// child process that died, a worker error): the figures cover the run
    /// until then.
    pub incomplete: Option<String>,
}

/// The class names with their counts, every class present.
pub(crate) fn failed_map(failed: &ClassCounts) -> BTreeMap<String, u64> {
    ErrorClass::ALL
        .iter()
        .map(|c| (c.name().to_owned(), failed[c.index()]))
        .collect()
}

/// The non-zero classes as `name=count ...`, or `none`.
pub(crate) fn failed_brief(failed: &ClassCounts) -> String {
    failed_names(&failed_map(failed))
}

fn failed_names(failed: &BTreeMap<String, u64>) -> String {
    let parts: Vec<String> = failed
        .iter()
        .filter(|(_, v)| **v > 0)
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if parts.is_empty() {
        "none".to_owned()
    } else {
        parts.join(" ")
    }
}

impl Summary {
    /// The human-readable end of a run.
    pub fn render(&self) -> String {
        format!(
            "floodtest: {} {:.1}s: peak open {}/{}, opened {}, closed {}, failed {} ({})\n\
             floodtest: ramp {:.1}s at {:.0} conn/s; connect p50 {}us p99 {}us max {}us\n\
             floodtest: chunks {} bytes {} messages {} lost {}; latency p50 {}us p99 {}us p999 {}us max {}us\n\
             floodtest: client memory {} B per held connection ({} process(es) x {} worker(s))",
            if self.incomplete.is_some() {
                "incomplete, ended after"
            } else {
                "done in"
            },
            self.elapsed_s,
            self.open,
            self.target,
            self.opened,
            self.closed,
            self.failed_total,
            failed_names(&self.failed),
            self.ramp_secs,
            self.connect_rate,
            self.connect_us.p50,
            self.connect_us.p99,
            self.connect_us.max,
            self.chunks,
            self.bytes,
            self.messages,
            self.lost,
            self.latency_us.p50,
            self.latency_us.p99,
            self.latency_us.p999,
            self.latency_us.max,
            self.client_rss_bytes_per_conn,
            self.procs,
            self.workers,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_schema_is_pinned() {
        let mut failed = [0; ErrorClass::ALL.len()];
        failed[ErrorClass::Refused.index()] = 2;
        let s = Summary {
            target: 10,
            open: 8,
            opened: 8,
            closed: 8,
            failed: failed_map(&failed),
            failed_total: 2,
            chunks: 16,
            bytes: 1600,
            messages: 4,
            lost: 1,
            latency_us: Percentiles {
                count: 4,
                p50: 100,
                p99: 200,
                p999: 200,
                max: 210,
            },
            connect_us: Percentiles::default(),
            client_rss_bytes_per_conn: 300,
            ramp_secs: 0.5,
            connect_rate: 16.0,
            elapsed_s: 2.0,
            addr_retries: 0,
            procs: 1,
            workers: 2,
            incomplete: Some("child 1 of 2: signal: 9 (SIGKILL)".to_owned()),
        };
        let v: serde_json::Value = serde_json::to_value(&s).unwrap();
        // serde_json's map is sorted, so compare sorted names.
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let mut expected = vec![
            "target",
            "open",
            "opened",
            "closed",
            "failed",
            "failed_total",
            "chunks",
            "bytes",
            "messages",
            "lost",
            "latency_us",
            "connect_us",
            "client_rss_bytes_per_conn",
            "ramp_secs",
            "connect_rate",
            "elapsed_s",
            "addr_retries",
            "procs",
            "workers",
            "incomplete",
        ];
        expected.sort_unstable();
        assert_eq!(keys, expected);
        let classes: Vec<&str> = v["failed"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            classes,
            [
                "addr_in_use",
                "addr_unavailable",
                "closed_by_server",
                "fd_exhausted",
                "other",
                "protocol",
                "refused",
                "reset",
                "status",
                "timeout"
            ]
        );
        let p: Vec<&str> = v["latency_us"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(p, ["count", "max", "p50", "p99", "p999"]);
        let back: Summary = serde_json::from_value(v).unwrap();
        assert_eq!(back, s);
        assert!(s.render().contains("refused=2"));
    }
}
