//! Server-wide counters: atomics written by the reactors and the admin
//! side, read by `/stats` (JSON) and `/metrics` (Prometheus text).
//!
//! Reactors add their per-loop-iteration totals once per wake-up
//! ([`LocalCounts::flush`]) rather than touching shared cache lines per
//! message, so two cores do not bounce them at 100,000 messages/s.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use c1m_common::StatsSnapshot;

/// Builds the atomics, the per-reactor tallies and the Prometheus text from
/// the one list of counters ([`c1m_common::server_counters!`]), the list
/// `/stats`'s [`StatsSnapshot`] is made from too.
macro_rules! counters {
    ($( #[doc = $doc:literal] $name:ident : $kind:literal ),* $(,)?) => {
        /// The shared counters.
        #[derive(Debug, Default)]
        pub(crate) struct Stats {
            $( #[doc = $doc] pub(crate) $name: AtomicU64, )*
        }

        /// Counts a reactor gathers during one loop iteration.
        #[derive(Debug, Default)]
        pub(crate) struct LocalCounts {
            $( pub(crate) $name: u64, )*
        }

        impl Stats {
            /// Every counter now, plus the process RSS.
            pub(crate) fn snapshot(&self) -> StatsSnapshot {
                StatsSnapshot {
                    $( $name: self.$name.load(Relaxed), )*
                    rss_bytes: c1m_common::rss_bytes(c1m_common::Pid::Current).unwrap_or(0),
                    ..StatsSnapshot::default()
                }
            }
        }

        impl LocalCounts {
            /// Adds the gathered counts to `stats` and zeroes them.
            pub(crate) fn flush(&mut self, stats: &Stats) {
                $(
                    if self.$name != 0 {
                        stats.$name.fetch_add(self.$name, Relaxed);
                        self.$name = 0;
                    }
                )*
            }
        }

        /// Adds another process's counters to `into` (a group's `/stats` is
        /// the sum over its workers; gauges add up too).
        pub(crate) fn add(into: &mut StatsSnapshot, other: &StatsSnapshot) {
            $( into.$name += other.$name; )*
            into.rss_bytes += other.rss_bytes;
        }

        /// `(name, "counter" | "gauge", value)` of every counter, then the
        /// RSS: for a group's per-worker breakdown.
        pub(crate) fn fields(snapshot: &StatsSnapshot) -> Vec<(&'static str, &'static str, u64)> {
            vec![
                $( (stringify!($name), $kind, snapshot.$name), )*
                ("rss_bytes", "gauge", snapshot.rss_bytes),
            ]
        }

        /// Prometheus text exposition format (0.0.4) of a snapshot:
        /// `comet_` names, counters with the conventional `_total` suffix.
        pub(crate) fn to_prometheus(snapshot: &StatsSnapshot) -> String {
            let mut out = String::new();
            $(
                let help = $doc.trim();
                let suffix = if $kind == "counter" { "_total" } else { "" };
                let name = format_args!("comet_{}{suffix}", stringify!($name));
                let _ = writeln!(out, "# HELP {name} {help}");
                let _ = writeln!(out, "# TYPE {name} {}", $kind);
                let _ = writeln!(out, "{name} {}", snapshot.$name);
            )*
            let _ = writeln!(out, "# HELP comet_rss_bytes Resident set size of the server process");
            let _ = writeln!(out, "# TYPE comet_rss_bytes gauge");
            let _ = writeln!(out, "comet_rss_bytes {}", snapshot.rss_bytes);
            out
        }
    };
}

c1m_common::server_counters!(counters);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_counts_flush_into_shared_counters() {
        let stats = Stats::default();
        let mut local = LocalCounts {
            messages_out: 3,
            bytes_out: 100,
            ..Default::default()
        };
        local.flush(&stats);
        local.messages_out = 2;
        local.flush(&stats);
        let snap = stats.snapshot();
        assert_eq!(snap.messages_out, 5);
        assert_eq!(snap.bytes_out, 100);
        assert_eq!(local.messages_out, 0);
        assert!(snap.rss_bytes > 0);
    }

    #[test]
    fn prometheus_text_has_help_type_and_value() {
        let snap = StatsSnapshot {
            dropped: 7,
            ..Default::default()
        };
        let text = to_prometheus(&snap);
        assert!(
            text.contains("# HELP comet_dropped_total Messages for an id with no connection.\n")
        );
        assert!(text.contains("# TYPE comet_dropped_total counter\ncomet_dropped_total 7\n"));
        assert!(text.contains("# TYPE comet_connections gauge\ncomet_connections 0\n"));
        // Every sample is preceded by the HELP and TYPE of its own name, and
        // every counter's name ends in _total.
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len() % 3, 0);
        for family in lines.chunks(3) {
            let name = family[2].split(' ').next().unwrap();
            assert!(
                family[0].starts_with(&format!("# HELP {name} ")),
                "{family:?}"
            );
            let kind = family[1].strip_prefix(&format!("# TYPE {name} ")).unwrap();
            assert!(["counter", "gauge"].contains(&kind), "{family:?}");
            assert_eq!(kind == "counter", name.ends_with("_total"), "{family:?}");
            assert!(family[2].split(' ').nth(1).unwrap().parse::<u64>().is_ok());
        }
    }
}
