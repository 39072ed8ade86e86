//! The final summary: what `--json` writes and the last lines printed.
//!
//! The document is [`FloodSummary`] (`common/src/wire/flood_summary.rs`,
//! schema `docs/schema/flood-summary.json`), which `experiment` and people's
//! scripts read; this module fills and prints it.

use crate::class::{ClassCounts, ErrorClass};
use crate::websocket::{close_bucket_name, CloseCounts};
use c1m_common::{FloodSummary, Percentiles};
use hdrhistogram::Histogram;
use std::collections::BTreeMap;

/// The percentiles of a histogram of microseconds (all 0 when it is empty).
pub(crate) fn percentiles(h: &Histogram<u64>) -> Percentiles {
    if h.is_empty() {
        return Percentiles::default();
    }
    Percentiles {
        count: h.len(),
        p50: h.value_at_quantile(0.5),
        p99: h.value_at_quantile(0.99),
        p999: h.value_at_quantile(0.999),
        max: h.max(),
    }
}

/// The class names with their counts, every class present.
pub(crate) fn failed_map(failed: &ClassCounts) -> BTreeMap<String, u64> {
    ErrorClass::ALL
        .iter()
        .map(|c| (c.name().to_owned(), failed[c.index()]))
        .collect()
}

/// The close codes servers sent, only those seen.
pub(crate) fn close_map(closes: &CloseCounts) -> BTreeMap<String, u64> {
    (0..closes.len())
        .filter(|&b| closes[b] > 0)
        .map(|b| (close_bucket_name(b), closes[b]))
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

/// The human-readable end of a run.
pub(crate) fn render(s: &FloodSummary) -> String {
    format!(
        "floodtest: {} {:.1}s: peak open {}/{}, opened {}, closed {}, failed {} ({})\n\
         floodtest: ramp {:.1}s at {:.0} conn/s; connect p50 {}us p99 {}us max {}us\n\
         floodtest: chunks {} bytes {} messages {} lost {}; latency p50 {}us p99 {}us p999 {}us max {}us\n\
         floodtest: client memory {} B per held connection ({} process(es) x {} worker(s)){}",
        if s.incomplete.is_some() {
            "incomplete, ended after"
        } else {
            "done in"
        },
        s.elapsed_s,
        s.open,
        s.target,
        s.opened,
        s.closed,
        s.failed_total,
        failed_names(&s.failed),
        s.ramp_secs,
        s.connect_rate,
        s.connect_us.p50,
        s.connect_us.p99,
        s.connect_us.max,
        s.chunks,
        s.bytes,
        s.messages,
        s.lost,
        s.latency_us.p50,
        s.latency_us.p99,
        s.latency_us.p999,
        s.latency_us.max,
        s.client_rss_bytes_per_conn,
        s.procs,
        s.workers,
        if s.close_codes.is_empty() {
            String::new()
        } else {
            format!("\nfloodtest: websocket closes from the server: {}", failed_names(&s.close_codes))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_schema_is_pinned() {
        let mut failed = [0; ErrorClass::ALL.len()];
        failed[ErrorClass::Refused.index()] = 2;
        let s = FloodSummary {
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
            close_codes: [("1001".to_owned(), 8)].into(),
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
            "close_codes",
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
                "handshake",
                "other",
                "protocol",
                "refused",
                "reset",
                "status",
                "timeout",
                "tls"
            ]
        );
        let p: Vec<&str> = v["latency_us"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(p, ["count", "max", "p50", "p99", "p999"]);
        let back: FloodSummary = serde_json::from_value(v).unwrap();
        assert_eq!(back, s);
        assert!(render(&s).contains("refused=2"));
    }
}
