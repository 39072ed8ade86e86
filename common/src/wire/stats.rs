//! comet-server's counters: `GET /stats` answers one [`StatsSnapshot`]
//! (schema: `docs/schema/admin-stats.json`), `GET /metrics` the same
//! figures as Prometheus text.
//!
//! The counters are listed once, in [`server_counters!`]: this module builds
//! the snapshot from the list, and the server builds its atomics, its
//! per-reactor tallies and its Prometheus text from the same list, so a
//! counter added there appears everywhere, with one doc line that is also
//! its Prometheus `HELP`.
//!
//! A reader ignores fields it does not know. Fields that are not counters
//! (`rss_bytes`, a group's `group` and `workers`, the `broker` state) are
//! written in [`StatsSnapshot`] itself; one added later is
//! `#[serde(default)]`, so a newer tool still reads an older server. A
//! group's front answers with the sum of its workers' counters in the same
//! fields, so a reader of one server reads a group.

use serde::{Deserialize, Serialize};

/// Calls `$then! { $( #[doc = "..."] name: "gauge" | "counter", )* }` with
/// every counter of comet-server, in `/stats` order: the one list the
/// snapshot, the server's atomics and its Prometheus text are made from.
/// The doc line is the Prometheus `HELP`; the kind its `TYPE`.
#[macro_export]
macro_rules! server_counters {
    ($then:ident) => {
        $then! {
            /// Subscriber connections open now (any state).
            connections: "gauge",
            /// Subscriber connections in a streaming or waiting state, known to the router.
            logged_in: "gauge",
            /// Subscriber connections accepted.
            accepted: "counter",
            /// Logins to the router (a stream or long-poll started).
            logins: "counter",
            /// Logouts from the router (client closed, slow, timeout or shutdown).
            logouts: "counter",
            /// Messages accepted by the admin API.
            messages_in: "counter",
            /// Live messages sent to subscriber connections (one per connection reached; history replays not counted).
            messages_out: "counter",
            /// Messages for an id with no connection.
            dropped: "counter",
            /// Events accepted by `POST /publish` (each goes to the publisher's online friends).
            events_in: "counter",
            /// Events whose publisher had no online friend.
            events_unheard: "counter",
            /// Event deliveries written to subscriber connections (part of messages_out).
            fanout_out: "counter",
            /// Messages accepted by `POST /broadcast`.
            broadcasts_in: "counter",
            /// Broadcast deliveries written to subscriber connections (part of messages_out).
            broadcast_out: "counter",
            /// Bytes written to subscriber connections.
            bytes_out: "counter",
            /// Batches written by the publishing thread while their reactor was idle, without waking it.
            direct_writes: "counter",
            /// Connections closed because their unsent bytes passed --max-pending.
            slow_consumer_closes: "counter",
            /// Subscriber and admin requests refused with 4xx.
            bad_requests: "counter",
            /// Connections closed because their request head was not complete in --header-timeout.
            header_timeouts: "counter",
            /// Long-polls answered empty after --poll-timeout.
            poll_timeouts: "counter",
            /// Connections refused with 503 above --max-conns.
            over_capacity: "counter",
            /// Stream connections closed for sending over 8 KiB after their request.
            stray_closes: "counter",
            /// Accept calls that failed for lack of file descriptors (EMFILE/ENFILE).
            accept_exhausted: "counter",
            /// `GET /presence` readers streaming now.
            presence_readers: "gauge",
            /// Presence readers closed because they fell behind (a full queue).
            presence_closes: "counter",
            /// Heartbeat chunks written (--heartbeat).
            heartbeats: "counter",
            /// Explicit "messages lost" notices sent on replay.
            lost_notices: "counter",
            /// WebSocket data frames received from /ws clients (counted and dropped).
            ws_frames_in: "counter",
            /// /ws connections failed for breaking RFC 6455 (closed with 1002, 1007 or 1009).
            ws_protocol_closes: "counter",
            /// TLS handshakes that failed, and TLS sessions ended by a bad record.
            tls_failures: "counter",
            /// Connections handed to the worker of the group that owns their id (`--workers`); not closes.
            handed_off: "counter",
            /// Connections received from another worker of the group, served here as if accepted here.
            handed_in: "counter",
            /// Handed-off connections whose descriptor never arrived (the owner was out of descriptors).
            handoff_lost: "counter",
        }
    };
}

macro_rules! stats_snapshot {
    ($( #[doc = $doc:literal] $name:ident : $kind:literal ),* $(,)?) => {
        /// A copy of every counter plus the process RSS, as `/stats` answers.
        #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
        #[cfg_attr(test, derive(schemars::JsonSchema))]
        pub struct StatsSnapshot {
            // A counter missing from an older server's answer reads as 0.
            $( #[doc = $doc] #[serde(default)] pub $name: u64, )*
            /// Resident set size of the whole server process, bytes (a
            /// group's: the sum over its workers, the front apart).
            pub rss_bytes: u64,
            /// A group's front (`--workers`): the group's own counters.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub group: Option<GroupCounters>,
            /// A group's front: each worker's figures, by index (the fields
            /// above are their sum).
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            pub workers: Vec<WorkerStats>,
            /// Broker mode (`--broker`): the NATS link.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub broker: Option<BrokerState>,
        }
    };
}

server_counters!(stats_snapshot);

/// What a group's front counts itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct GroupCounters {
    /// Workers in the group.
    pub workers: u64,
    /// Workers that answered this `/stats`.
    pub workers_up: u64,
    /// Worker restarts after a crash.
    pub restarts: u64,
    /// Connections handed from the worker that accepted them to the owner of their id.
    pub handoffs: u64,
    /// Messages for a worker that did not answer (down or restarting).
    pub undeliverable: u64,
    /// Message requests from the front to its workers: each carries the
    /// lines that arrived for its worker while the one before was in
    /// flight, so messages over this is how much the front coalesced.
    #[serde(default)]
    pub worker_sends: u64,
    /// Resident set size of the front process, bytes (not in `rss_bytes`).
    pub front_rss_bytes: u64,
}

/// One worker of a group in its front's `/stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct WorkerStats {
    /// Its index in the group (it owns the ids with `id % workers == index`).
    pub index: u64,
    /// Its process id now.
    pub pid: u32,
    /// Whether it answered this `/stats`.
    pub up: bool,
    /// Times it was restarted after a crash.
    pub restarts: u64,
    /// Its own counters (zero when it did not answer).
    #[serde(flatten)]
    pub stats: StatsSnapshot,
}

/// The broker side of `/stats`: the NATS connection and what crossed it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct BrokerState {
    /// Connected to a NATS server now.
    pub connected: bool,
    /// Connections (re-)established after the first.
    pub reconnects: u64,
    /// The last error the NATS client reported, if any.
    #[serde(default)]
    pub last_error: Option<String>,
    /// Messages (lines) this front published and NATS confirmed.
    pub published: u64,
    /// Messages (lines) received from NATS and routed into this group.
    pub received: u64,
    /// Received messages that reached no connection in this group.
    pub dropped: u64,
    /// Messages that could not be delivered: refused with 503 while NATS was
    /// away or unconfirmed, and received messages a worker could not take.
    pub undeliverable: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! names {
        ($( #[doc = $doc:literal] $name:ident : $kind:literal ),* $(,)?) => {
            [$( (stringify!($name), $kind) ),*]
        };
    }

    #[test]
    fn the_snapshot_has_every_counter_in_list_order_then_rss() {
        let counters = server_counters!(names);
        let value = serde_json::to_value(StatsSnapshot::default()).unwrap();
        let mut keys: Vec<&str> = counters.iter().map(|(name, _)| *name).collect();
        keys.push("rss_bytes");
        keys.sort_unstable();
        let fields: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(fields, keys);
        assert!(counters
            .iter()
            .all(|(_, kind)| ["gauge", "counter"].contains(kind)));
    }

    #[test]
    fn a_group_reads_as_one_server_and_lists_its_workers() {
        let worker = |index, connections| WorkerStats {
            index,
            pid: 10 + index as u32,
            up: true,
            restarts: 0,
            stats: StatsSnapshot {
                connections,
                ..StatsSnapshot::default()
            },
        };
        let group = StatsSnapshot {
            connections: 5,
            group: Some(GroupCounters {
                workers: 2,
                ..GroupCounters::default()
            }),
            workers: vec![worker(0, 2), worker(1, 3)],
            broker: Some(BrokerState::default()),
            ..StatsSnapshot::default()
        };
        let text = serde_json::to_string(&group).unwrap();
        let back: StatsSnapshot = serde_json::from_str(&text).unwrap();
        assert_eq!(back, group);
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            value["workers"][1]["connections"], 3,
            "a worker's counters sit beside its pid"
        );
        // One server's answer has none of the group's fields.
        let one = serde_json::to_value(StatsSnapshot::default()).unwrap();
        assert!(one.get("workers").is_none() && one.get("broker").is_none());
    }
}
