//! The final summary: what `--json` writes and the last lines printed.
//!
//! The document is [`FloodSummary`] (`common/src/wire/flood_summary.rs`,
//! schema `docs/schema/flood-summary.json`), which `experiment` and people's
//! scripts read; this module fills and prints it.

use crate::class::{ClassCounts, ErrorClass};
use crate::failure::Failures;
use crate::units::micros;
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

/// The non-zero classes as `name=count ...`, `status` split by code
/// (`status_404=100`, which does not read as HTTP 100), or `none`.
pub(crate) fn failed_brief(failed: &ClassCounts, failures: &Failures) -> String {
    failed_names(&failed_map(failed), &failures.codes_by_name())
}

fn failed_names(failed: &BTreeMap<String, u64>, codes: &BTreeMap<String, u64>) -> String {
    let status = ErrorClass::Status.name();
    let parts: Vec<String> = failed
        .iter()
        .filter(|(_, v)| **v > 0)
        .flat_map(|(k, v)| match k.as_str() {
            _ if k == status && !codes.is_empty() => codes
                .iter()
                .map(|(code, n)| format!("{status}_{code}={n}"))
                .collect::<Vec<_>>(),
            _ => vec![format!("{k}={v}")],
        })
        .collect();
    if parts.is_empty() {
        "none".to_owned()
    } else {
        parts.join(" ")
    }
}

/// What the run's check found wrong, if anything: the connections were
/// held when `min_open` of them were open at the peak and still open at
/// the end, and no stream broke HTTP framing (a server that does is broken
/// however many connections it keeps).
pub(crate) fn check(s: &FloodSummary, min_open: u64) -> Option<String> {
    let protocol = s
        .failed
        .get(ErrorClass::Protocol.name())
        .copied()
        .unwrap_or(0);
    let ended = || {
        format!(
            "{} ended early ({})",
            s.failed_total,
            failed_names(&s.failed, &s.status_codes)
        )
    };
    if s.open < min_open {
        Some(format!(
            "peak open {} of the {min_open} required; {}",
            s.open,
            ended()
        ))
    } else if s.held < min_open {
        Some(format!(
            "{} of the {min_open} required were still open when the run ended (peak {}); {}",
            s.held,
            s.open,
            ended()
        ))
    } else if protocol > 0 {
        Some(format!(
            "{protocol} stream(s) ended on a protocol error: the server broke HTTP/1.1 framing"
        ))
    } else {
        None
    }
}

/// `61 B per held connection`, or why there is no such figure.
fn client_memory(s: &FloodSummary) -> String {
    match s.client_bytes_per_conn() {
        Some(bytes) => format!("{bytes} B per held connection"),
        None => format!(
            "per connection not shown under {} held (fixed costs and page granularity swamp it)",
            c1m_common::thousands(FloodSummary::PER_CONN_MIN_CONNS)
        ),
    }
}

/// `p50 2.53ms p99 20.4ms`, or `-` when nothing was recorded.
fn p50_p99(p: &Percentiles) -> String {
    if p.count == 0 {
        return "-".to_owned();
    }
    format!("p50 {} p99 {}", micros(p.p50), micros(p.p99))
}

/// The human-readable end of a run.
pub(crate) fn render(s: &FloodSummary) -> String {
    let outcome = if s.incomplete.is_some() {
        "incomplete, ended after"
    } else {
        "done in"
    };
    let latency = if s.latency_us.count == 0 {
        "-".to_owned()
    } else {
        let l = &s.latency_us;
        format!(
            "p50 {} p99 {} p999 {} max {}",
            micros(l.p50),
            micros(l.p99),
            micros(l.p999),
            micros(l.max)
        )
    };
    format!(
        "floodtest: {outcome} {:.1}s: peak open {}/{}, held to the end {}, opened {}, closed {}, failed {} ({})\n\
         floodtest: ramp {:.1}s at {:.0} conn/s; from connect() to: TCP established {}, response head {}, first body byte {}\n\
         floodtest: chunks {} bytes {} messages {} (events {}) lost {}; latency {latency}\n\
         floodtest: {} process(es) x {} worker(s); client memory {}{}",
        s.elapsed_s,
        s.open,
        s.target,
        s.held,
        s.opened,
        s.closed,
        s.failed_total,
        failed_names(&s.failed, &s.status_codes),
        s.ramp_secs,
        s.connect_rate,
        p50_p99(&s.connect_us),
        p50_p99(&s.head_us),
        p50_p99(&s.first_byte_us),
        s.chunks,
        s.bytes,
        s.messages,
        s.events,
        s.lost,
        s.procs,
        s.workers,
        client_memory(s),
        if s.close_codes.is_empty() {
            String::new()
        } else {
            let codes = failed_names(&s.close_codes, &BTreeMap::new());
            format!("\nfloodtest: websocket closes from the server: {codes}")
        },
    ) + &per_agent(s)
}

/// A line per agent of a run over several: its share and how it went.
fn per_agent(s: &FloodSummary) -> String {
    s.agents
        .iter()
        .map(|a| {
            let p = &a.summary;
            format!(
                "\nfloodtest: agent {} ({}): peak open {}/{}, held {}, failed {} ({}), messages {} lost {}, latency {}{}",
                a.name,
                a.host,
                p.open,
                p.target,
                p.held,
                p.failed_total,
                failed_names(&p.failed, &p.status_codes),
                p.messages,
                p.lost,
                p50_p99(&p.latency_us),
                p.incomplete.as_ref().map_or_else(String::new, |why| format!(", incomplete: {why}"))
            )
        })
        .collect()
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
            status_codes: BTreeMap::new(),
            first_failures: BTreeMap::new(),
            chunks: 16,
            bytes: 1600,
            messages: 4,
            events: 0,
            lost: 1,
            latency_us: Percentiles {
                count: 4,
                p50: 100,
                p99: 200,
                p999: 200,
                max: 210,
            },
            connect_us: Percentiles::default(),
            head_us: Percentiles::default(),
            first_byte_us: Percentiles::default(),
            client_rss_bytes_per_conn: 300,
            ramp_secs: 0.5,
            connect_rate: 16.0,
            elapsed_s: 2.0,
            addr_retries: 0,
            procs: 1,
            workers: 2,
            close_codes: [("1001".to_owned(), 8)].into(),
            incomplete: Some("child 1 of 2: signal: 9 (SIGKILL)".to_owned()),
            held: 8,
            check_failed: None,
            agents: Vec::new(),
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
            "status_codes",
            "first_failures",
            "close_codes",
            "chunks",
            "bytes",
            "messages",
            "events",
            "lost",
            "latency_us",
            "connect_us",
            "head_us",
            "first_byte_us",
            "client_rss_bytes_per_conn",
            "ramp_secs",
            "connect_rate",
            "elapsed_s",
            "addr_retries",
            "procs",
            "workers",
            "incomplete",
            "held",
            "check_failed",
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
                "addr_not_local",
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
        // 8 held: too few for a per-connection figure; 10,000 are enough.
        assert!(
            render(&s)
                .contains("2 worker(s); client memory per connection not shown under 10,000 held"),
            "{}",
            render(&s)
        );
        let many = FloodSummary {
            open: 10_000,
            ..s.clone()
        };
        assert!(render(&many).contains("client memory 300 B per held connection"));
    }
}
