//! `/stats` and `/metrics` of a group: the sum over its workers (the same
//! fields as one server's, so every reader of one reads a group), then a
//! per-worker breakdown, the group's own counters and the broker's state.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::broker::BrokerState;
use crate::stats::Snapshot;

/// `GET /stats` of a front, or of a standalone server in broker mode.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct GroupSnapshot {
    /// The sum over the workers (gauges too).
    #[serde(flatten)]
    pub total: Snapshot,
    /// The group's own counters (`--workers`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<GroupCounters>,
    /// Each worker, by index.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workers: Vec<WorkerSnapshot>,
    /// The NATS link (`--broker`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker: Option<BrokerState>,
}

/// What the front counts itself.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct GroupCounters {
    /// Workers in the group.
    pub workers: u64,
    /// Workers up now (answering).
    pub workers_up: u64,
    /// Worker restarts after a crash.
    pub restarts: u64,
    /// Connections handed from the worker that accepted them to the owner of their id.
    pub handoffs: u64,
    /// Messages for a worker that did not answer (down or restarting).
    pub undeliverable: u64,
    /// Resident set size of the front process, bytes (not in `rss_bytes`).
    pub front_rss_bytes: u64,
}

/// One worker in `/stats`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct WorkerSnapshot {
    /// Its index in the group (it owns the ids `id % workers == index`).
    pub index: u64,
    /// Its process id now.
    pub pid: u32,
    /// Whether it answered this `/stats`.
    pub up: bool,
    /// Times it was restarted after a crash.
    pub restarts: u64,
    /// Its counters (zero when it did not answer).
    #[serde(flatten)]
    pub stats: Snapshot,
}

impl GroupSnapshot {
    /// Prometheus text: the summed families as one server's, then the
    /// group's gauges and counters, the per-worker families
    /// (`comet_worker_*{worker="i"}`), and the broker's.
    pub fn to_prometheus(&self) -> String {
        let mut out = self.total.to_prometheus();
        let mut family = |name: &str, kind: &str, help: &str, samples: &[(String, u64)]| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        let one = |v: u64| [(String::new(), v)];
        if let Some(g) = &self.group {
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
                "comet_group_front_rss_bytes",
                "gauge",
                "Resident set size of the front process",
                &one(g.front_rss_bytes),
            );
        }
        if let Some(first) = self.workers.first() {
            for (i, (name, kind, _)) in first.stats.fields().into_iter().enumerate() {
                let suffix = if kind == "counter" { "_total" } else { "" };
                let samples: Vec<(String, u64)> = self
                    .workers
                    .iter()
                    .map(|w| (format!("{{worker=\"{}\"}}", w.index), w.stats.fields()[i].2))
                    .collect();
                let name = format!("comet_worker_{name}{suffix}");
                family(&name, kind, "The same figure for one worker", &samples);
            }
        }
        if let Some(b) = &self.broker {
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

    #[test]
    fn a_group_reads_as_one_server_and_lists_its_workers() {
        let worker = |index, connections| WorkerSnapshot {
            index,
            pid: 10 + index as u32,
            up: true,
            restarts: 0,
            stats: Snapshot {
                connections,
                ..Snapshot::default()
            },
        };
        let snap = GroupSnapshot {
            total: Snapshot {
                connections: 5,
                ..Snapshot::default()
            },
            group: Some(GroupCounters {
                workers: 2,
                ..GroupCounters::default()
            }),
            workers: vec![worker(0, 2), worker(1, 3)],
            broker: Some(BrokerState::default()),
        };
        let text = serde_json::to_string(&snap).unwrap();
        // A reader of one server's /stats reads the sum.
        let one: Snapshot = serde_json::from_str(&text).unwrap();
        assert_eq!(one.connections, 5);
        let back: GroupSnapshot = serde_json::from_str(&text).unwrap();
        assert_eq!(back, snap);
        let metrics = snap.to_prometheus();
        assert!(metrics.contains("comet_connections 5\n"));
        assert!(metrics.contains(
            "# TYPE comet_worker_connections gauge\ncomet_worker_connections{worker=\"0\"} 2\ncomet_worker_connections{worker=\"1\"} 3\n"
        ));
        assert!(metrics.contains("comet_broker_connected 0\n"));
        // Every family is announced once, before its samples.
        let mut seen = std::collections::HashSet::new();
        for line in metrics.lines().filter(|l| l.starts_with("# TYPE ")) {
            assert!(
                seen.insert(line.split(' ').nth(2).unwrap().to_owned()),
                "{line}"
            );
        }
    }
}
