//! `/stats` and `/metrics` of a group: the sum over its workers (the same
//! fields as one server's, so every reader of one reads a group), then a
//! per-worker breakdown, the group's own counters and the broker's state.

use std::fmt::Write as _;

use c1m_common::StatsSnapshot;

use crate::stats;

/// Prometheus text of a group's (or a broker-mode server's) `/stats`: the
/// summed families as one server's, then the group's gauges and counters,
/// the per-worker families (`comet_worker_*{worker="i"}`), and the broker's.
pub(crate) fn to_prometheus(snap: &StatsSnapshot) -> String {
    {
        let mut out = stats::to_prometheus(snap);
        let mut family = |name: &str, kind: &str, help: &str, samples: &[(String, u64)]| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        let one = |v: u64| [(String::new(), v)];
        if let Some(g) = &snap.group {
            family(
                "comet_group_workers",
                "gauge",
                "Workers in the group",
                &one(g.workers),
            );
            family(
                "comet_group_workers_up",
                "gauge",
                "Workers answering now",
                &one(g.workers_up),
            );
            family(
                "comet_group_restarts_total",
                "counter",
                "Worker restarts after a crash",
                &one(g.restarts),
            );
            family(
                "comet_group_handoffs_total",
                "counter",
                "Connections handed to the owner of their id",
                &one(g.handoffs),
            );
            family(
                "comet_group_undeliverable_total",
                "counter",
                "Messages for a worker that did not answer",
                &one(g.undeliverable),
            );
            family(
                "comet_group_worker_sends_total",
                "counter",
                "Message requests from the front to its workers (several lines each as they fall behind)",
                &one(g.worker_sends),
            );
            family(
                "comet_group_front_rss_bytes",
                "gauge",
                "Resident set size of the front process",
                &one(g.front_rss_bytes),
            );
        }
        if let Some(first) = snap.workers.first() {
            for (i, (name, kind, _)) in stats::fields(&first.stats).into_iter().enumerate() {
                let suffix = if kind == "counter" { "_total" } else { "" };
                let samples: Vec<(String, u64)> = snap
                    .workers
                    .iter()
                    .map(|w| {
                        (
                            format!("{{worker=\"{}\"}}", w.index),
                            stats::fields(&w.stats)[i].2,
                        )
                    })
                    .collect();
                let name = format!("comet_worker_{name}{suffix}");
                family(&name, kind, "The same figure for one worker", &samples);
            }
        }
        if let Some(b) = &snap.broker {
            family(
                "comet_broker_connected",
                "gauge",
                "1 while connected to NATS",
                &one(u64::from(b.connected)),
            );
            family(
                "comet_broker_reconnects_total",
                "counter",
                "NATS connections re-established",
                &one(b.reconnects),
            );
            family(
                "comet_broker_published_total",
                "counter",
                "Messages published and confirmed by NATS",
                &one(b.published),
            );
            family(
                "comet_broker_received_total",
                "counter",
                "Messages received from NATS",
                &one(b.received),
            );
            family(
                "comet_broker_dropped_total",
                "counter",
                "Received messages that reached no connection here",
                &one(b.dropped),
            );
            family(
                "comet_broker_undeliverable_total",
                "counter",
                "Messages refused or not delivered",
                &one(b.undeliverable),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use c1m_common::{BrokerState, GroupCounters, WorkerStats};

    #[test]
    fn a_group_is_announced_once_per_family_with_its_workers() {
        let workers = (0..2)
            .map(|index| WorkerStats {
                index,
                stats: StatsSnapshot {
                    connections: index + 2,
                    ..StatsSnapshot::default()
                },
                ..WorkerStats::default()
            })
            .collect();
        let snap = StatsSnapshot {
            connections: 5,
            group: Some(GroupCounters {
                workers: 2,
                ..GroupCounters::default()
            }),
            workers,
            broker: Some(BrokerState::default()),
            ..StatsSnapshot::default()
        };
        let metrics = to_prometheus(&snap);
        assert!(metrics.contains("comet_connections 5\n"));
        assert!(metrics.contains(
            "# TYPE comet_worker_connections gauge\ncomet_worker_connections{worker=\"0\"} 2\ncomet_worker_connections{worker=\"1\"} 3\n"
        ));
        assert!(metrics.contains("comet_group_workers 2\n"));
        assert!(metrics.contains("comet_broker_connected 0\n"));
        let mut seen = std::collections::HashSet::new();
        for line in metrics.lines().filter(|l| l.starts_with("# TYPE ")) {
            assert!(
                seen.insert(line.split(' ').nth(2).unwrap().to_owned()),
                "{line}"
            );
        }
    }
}
