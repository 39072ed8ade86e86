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
//! (`rss_bytes`, and later the broker's state or a per-worker breakdown)
//! are written in [`StatsSnapshot`] itself; one added later is
//! `#[serde(default)]`, so a newer tool still reads an older server.

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
            /// Bytes written to subscriber connections.
            bytes_out: "counter",
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
        }
    };
}

macro_rules! stats_snapshot {
    ($( #[doc = $doc:literal] $name:ident : $kind:literal ),* $(,)?) => {
        /// A copy of every counter plus the process RSS, as `/stats` answers.
        /// A field an older server does not send reads as 0.
        #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(default)]
        #[cfg_attr(test, derive(schemars::JsonSchema))]
        pub struct StatsSnapshot {
            $( #[doc = $doc] pub $name: u64, )*
            /// Resident set size of the whole server process, bytes.
            pub rss_bytes: u64,
        }
    };
}

server_counters!(stats_snapshot);

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
}
