//! The report's figures, computed from the files the tools wrote (and only
//! from them, so anyone can check a report against its CSVs).
//!
//! - Memory per connection is `c1m_common::Costs`, the method of every
//!   such figure (the memory table and per-conn.png too): growth over the
//!   idle baseline (the first sample, taken before the flood) per
//!   connection added, the median over the plateau (at least 99% of the
//!   most connections seen), and as its `±` half the range the memory moved
//!   over the plateau while the connections held still. Server bytes is
//!   RSS; kernel bytes is `Slab` plus TCP buffer pages, which are
//!   system-wide: on loopback they hold both ends of each connection, and
//!   whatever else the machine did meanwhile, which the `±` shows.
//! - Messages and latency come from the JSON summaries of `msggen` and
//!   `floodtest`, read as the types the tools write ([`MsggenSummary`],
//!   [`FloodSummary`]); when a run was cut short and a summary is missing,
//!   from the last row of their CSV instead.

use anyhow::Context;
use c1m_common::{kernel_kb, thousands, Cost, Costs};
use c1m_common::{
    FloodInterval, FloodSummary, MemSample, MsggenInterval, MsggenSummary, Percentiles,
    StatsSnapshot,
};
use serde::de::DeserializeOwned;
use std::path::Path;

/// File names in the output folder.
pub(crate) const MEM_CSV: &str = "mem.csv";
/// The client's memlog: floodtest's processes.
pub(crate) const CLIENT_MEM_CSV: &str = "client-mem.csv";
pub(crate) const FLOOD_CSV: &str = "flood.csv";
pub(crate) const FLOOD_JSON: &str = "flood.json";
pub(crate) const MSGGEN_CSV: &str = "msggen.csv";
pub(crate) const MSGGEN_JSON: &str = "msggen.json";
/// The friends graph of a run with events (`msggen graph`).
pub(crate) const FRIENDS_CSV: &str = "friends.csv";
/// The events' msggen summary (`msggen --publish comet-events`).
pub(crate) const EVENTS_JSON: &str = "msggen-events.json";
/// comet-server's last `/stats`, taken at the end of the hold.
pub(crate) const SERVER_STATS_JSON: &str = "server-stats.json";

/// Delivery latency percentiles, microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Latency {
    pub p50: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

/// Memory before the flood and over the plateau of the load, and what a
/// connection costs by `c1m_common::Costs` (the one method of every
/// bytes-per-connection figure, with its `±`).
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryFigures {
    /// The baseline: the first sample holding the fewest connections.
    pub before: MemSample,
    /// The samples holding at least 99% of the peak connections.
    pub plateau: Vec<MemSample>,
    /// Server resident memory added per connection.
    pub server: Option<Cost>,
    /// Kernel memory (Slab plus TCP pages) added per connection.
    pub kernel: Option<Cost>,
    /// How far kernel memory moved over the plateau while the connections
    /// held still, KiB (max - min); `None` with fewer than three samples.
    pub kernel_moved_kb: Option<f64>,
}

impl MemoryFigures {
    /// The figures of `mem`, or `None` without samples.
    pub(crate) fn of(mem: &[MemSample]) -> Option<Self> {
        let costs = Costs::new(mem)?;
        Some(Self {
            before: costs.baseline().clone(),
            plateau: costs.plateau().iter().map(|s| (*s).clone()).collect(),
            server: costs.at_peak(|s| s.rss_kb),
            kernel: costs.at_peak(kernel_kb),
            kernel_moved_kb: costs.noise_kb(kernel_kb).map(|half| half * 2.0),
        })
    }
}

/// How memlog took its samples' connection counts, and what sampling
/// cost memlog itself (its `memlog_cpu_ms` column).
#[derive(Debug, Clone, PartialEq)]
pub struct SamplerFigures {
    /// Samples whose count is the server's own (`/stats`).
    pub from_server: usize,
    /// Samples that counted the sockets (all, without `--server-stats`).
    pub counted: usize,
    /// memlog's CPU over the run's length: 0.05 is 5% of one core.
    pub cpu_share: f64,
}

impl SamplerFigures {
    /// `None` for a file without the CPU column (an older memlog's) or
    /// without a sample after the first.
    pub(crate) fn of(mem: &[MemSample]) -> Option<Self> {
        let span_s = mem.last()?.elapsed_s;
        let cpu_ms: f64 = mem.iter().map(|s| s.memlog_cpu_ms).sum();
        if span_s <= 0.0 || cpu_ms <= 0.0 {
            return None;
        }
        Some(Self {
            from_server: mem.iter().filter(|s| s.server_conns.is_some()).count(),
            counted: mem.iter().filter(|s| s.counted_conns.is_some()).count(),
            // The first row holds memlog's start-up; the span starts there.
            cpu_share: cpu_ms / 1000.0 / span_s,
        })
    }
}

/// The median (the mean of the middle two for an even count).
pub fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}

/// Everything the report's table shows; `None` where the file it comes
/// from is missing or lacks the figure.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Figures {
    /// Rows in mem.csv.
    pub mem_samples: usize,
    /// Most connections memlog saw (the server's count, or the
    /// ESTABLISHED sockets on the server port).
    pub peak_conns: Option<u64>,
    pub memory: Option<MemoryFigures>,
    /// How memlog counted, and its own CPU.
    pub sampler: Option<SamplerFigures>,
    /// Most connections floodtest held open at once.
    pub client_peak_open: Option<u64>,
    /// Connection attempts that failed, by class.
    pub failed_conns: Vec<(String, u64)>,
    pub client_bytes_per_conn: Option<f64>,
    /// Connections opened over the time it took to open them all.
    pub connect_rate_mean: Option<f64>,
    /// The best one-interval connect rate.
    pub connect_rate_peak: Option<f64>,
    /// Messages per second msggen achieved over its run.
    pub message_rate: Option<f64>,
    pub sent: Option<u64>,
    pub send_failed: Option<u64>,
    /// Messages the server found no connection for.
    pub dropped: Option<u64>,
    /// Chunks (heartbeats and messages) floodtest received.
    pub chunks: Option<u64>,
    pub delivered: Option<u64>,
    pub lost: Option<u64>,
    pub latency: Option<Latency>,
    /// Friends' events, in a run with them.
    pub events: Option<EventFigures>,
    /// A group's processes one by one, in a run with `--workers`.
    pub processes: Option<ProcessFigures>,
}

/// A group's front and workers each alone: their RSS in the server's last
/// `/stats` (the end of the hold, every connection still open). RSS, not
/// PSS: each also counts the pages of the binary it shares with the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProcessFigures {
    /// The front's RSS, bytes (with `--friends`, the graph is in it).
    pub front_rss: u64,
    /// Workers that answered.
    pub workers: usize,
    /// Their RSS, bytes: the smallest, the median and the largest.
    pub worker_rss: [u64; 3],
}

impl ProcessFigures {
    fn of(stats: &StatsSnapshot) -> Option<Self> {
        let group = stats.group.as_ref()?;
        let mut rss: Vec<u64> = stats
            .workers
            .iter()
            .filter(|w| w.up)
            .map(|w| w.stats.rss_bytes)
            .collect();
        rss.sort_unstable();
        let (&min, &max) = (rss.first()?, rss.last()?);
        Some(Self {
            front_rss: group.front_rss_bytes,
            workers: rss.len(),
            worker_rss: [min, rss[rss.len() / 2], max],
        })
    }
}

/// Friends' events: what msggen published and what floodtest received.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct EventFigures {
    pub sent: u64,
    pub rate: f64,
    /// Deliveries comet-server said it queued (the sum of its answers'
    /// `connections`).
    pub expected: u64,
    /// Events floodtest received.
    pub received: u64,
    /// Events whose publisher had no friend online.
    pub unheard: u64,
    /// Events in attempts that may have reached the server before failing:
    /// with any, `expected` is not exact (`docs/ENVELOPE.md`).
    pub uncertain: u64,
    pub failed: u64,
}

impl EventFigures {
    /// Deliveries queued that floodtest never received.
    pub fn lost(&self) -> u64 {
        self.expected.saturating_sub(self.received)
    }
}

impl Figures {
    /// Why the run lost messages, if it did: gaps floodtest saw in a
    /// connection's sequence, or sends the server refused. A message to an
    /// id with no connection (`dropped`) is not a loss: nobody was there.
    pub fn losses(&self) -> Option<String> {
        let lost = self.lost.unwrap_or(0);
        let failed = self.send_failed.unwrap_or(0);
        let messages = (lost > 0 || failed > 0).then(|| {
            format!(
                "messages lost: {} missing in the streams, {} sends failed (of {} sent)",
                thousands(lost),
                thousands(failed),
                thousands(self.sent.unwrap_or(0))
            )
        });
        let events = self
            .events
            .filter(|e| e.lost() > 0 || e.failed > 0)
            .map(|e| {
                format!(
                    "friends' events lost: {} of {} deliveries never arrived, {} events failed",
                    thousands(e.lost()),
                    thousands(e.expected),
                    thousands(e.failed)
                )
            });
        match (messages, events) {
            (Some(m), Some(e)) => Some(format!("{m}; {e}")),
            (m, e) => m.or(e),
        }
    }
}

/// Reads the figures from the files in `dir`.
pub fn read_figures(dir: &Path) -> anyhow::Result<Figures> {
    let mem: Vec<MemSample> = read_csv(&dir.join(MEM_CSV))?;
    let flood: Vec<FloodInterval> = read_csv(&dir.join(FLOOD_CSV))?;
    let msggen: Vec<MsggenInterval> = read_csv(&dir.join(MSGGEN_CSV))?;
    let flood_json: Option<FloodSummary> = read_json(&dir.join(FLOOD_JSON))?;
    let msggen_json: Option<MsggenSummary> = read_json(&dir.join(MSGGEN_JSON))?;
    let events_json: Option<MsggenSummary> = read_json(&dir.join(EVENTS_JSON))?;
    let server_stats: Option<StatsSnapshot> = read_json(&dir.join(SERVER_STATS_JSON))?;
    let (flood_json, msggen_json) = (flood_json.as_ref(), msggen_json.as_ref());

    let memory = MemoryFigures::of(&mem);
    let last_flood = flood.last();
    let last_msggen = msggen.last();
    Ok(Figures {
        mem_samples: mem.len(),
        peak_conns: mem.iter().map(|s| s.conns).max(),
        memory,
        sampler: SamplerFigures::of(&mem),
        client_peak_open: flood_json
            .map(|f| f.open)
            .or(flood.iter().map(|r| r.open).max()),
        failed_conns: flood_json.map(failed_classes).unwrap_or_default(),
        // Only where enough connections were held for it to mean something.
        client_bytes_per_conn: flood_json
            .and_then(FloodSummary::client_bytes_per_conn)
            .map(|b| b as f64),
        connect_rate_mean: flood_json
            .map(|f| f.connect_rate)
            .filter(|r| *r > 0.0)
            .or_else(|| connect_rate_mean(&flood)),
        connect_rate_peak: flood.iter().map(|r| r.connect_rate).reduce(f64::max),
        message_rate: msggen_json.map(|m| m.achieved_rate).or_else(|| {
            last_msggen
                .filter(|r| r.elapsed_s > 0.0)
                .map(|r| r.sent as f64 / r.elapsed_s)
        }),
        sent: msggen_json.map(|m| m.sent).or(last_msggen.map(|r| r.sent)),
        send_failed: msggen_json
            .map(|m| m.failed)
            .or(last_msggen.map(|r| r.failed)),
        dropped: msggen_json
            .map(|m| m.dropped)
            .or(last_msggen.map(|r| r.dropped)),
        chunks: flood_json
            .map(|f| f.chunks)
            .or(last_flood.map(|r| r.chunks)),
        // Messages only: friends' events have their own figures.
        delivered: flood_json
            .map(|f| f.messages.saturating_sub(f.events))
            .or(last_flood.map(|r| r.messages)),
        lost: flood_json.map(|f| f.lost).or(last_flood.map(|r| r.lost)),
        latency: flood_json
            .and_then(|f| latency(&f.latency_us))
            .or_else(|| worst_interval_latency(&flood)),
        events: events_json.map(|e| EventFigures {
            sent: e.sent,
            rate: e.achieved_rate,
            expected: e.expected.unwrap_or(0),
            received: flood_json.map_or(0, |f| f.events),
            unheard: e.unheard.unwrap_or(0),
            uncertain: e.uncertain.unwrap_or(0),
            failed: e.failed,
        }),
        processes: server_stats.as_ref().and_then(ProcessFigures::of),
    })
}

/// The rows of a CSV file, or none if it does not exist (the tool never
/// started, or this preset does not use it).
pub fn read_csv<T: DeserializeOwned>(path: &Path) -> anyhow::Result<Vec<T>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let mut reader =
        csv::Reader::from_path(path).with_context(|| format!("opening {}", path.display()))?;
    let mut rows = Vec::new();
    for (i, row) in reader.deserialize().enumerate() {
        match row {
            Ok(r) => rows.push(r),
            // A tool killed mid-write leaves a cut last line: keep the
            // rows before it.
            Err(_) if is_last_line_cut(path, i) => break,
            Err(e) => {
                return Err(e).with_context(|| format!("reading {} row {}", path.display(), i + 2))
            }
        }
    }
    Ok(rows)
}

fn is_last_line_cut(path: &Path, row: usize) -> bool {
    std::fs::read_to_string(path)
        .map(|text| !text.ends_with('\n') && text.lines().count() == row + 2)
        .unwrap_or(false)
}

/// A tool's JSON summary, or none if it does not exist or is empty (the
/// tool never started, or was killed before writing it).
fn read_json<T: DeserializeOwned>(path: &Path) -> anyhow::Result<Option<T>> {
    if !path.exists() {
        return Ok(None);
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    if text.trim().is_empty() {
        return Ok(None);
    }
    serde_json::from_str(&text)
        .map(Some)
        .with_context(|| format!("parsing {}", path.display()))
}

/// The connection failure classes that occurred, with their counts.
fn failed_classes(flood: &FloodSummary) -> Vec<(String, u64)> {
    flood
        .failed
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(class, n)| (class.clone(), *n))
        .collect()
}

/// The summary's latency percentiles; none when no message arrived (the
/// summary then holds zeros).
fn latency(l: &Percentiles) -> Option<Latency> {
    (l.max > 0).then_some(Latency {
        p50: l.p50,
        p99: l.p99,
        p999: l.p999,
        max: l.max,
    })
}

/// Without the summary, the worst interval's percentiles: an upper bound,
/// never an understatement.
fn worst_interval_latency(flood: &[FloodInterval]) -> Option<Latency> {
    let rows: Vec<_> = flood.iter().filter(|r| r.latency_max_us > 0).collect();
    (!rows.is_empty()).then(|| Latency {
        p50: rows.iter().map(|r| r.latency_p50_us).max().unwrap_or(0),
        p99: rows.iter().map(|r| r.latency_p99_us).max().unwrap_or(0),
        p999: rows.iter().map(|r| r.latency_p999_us).max().unwrap_or(0),
        max: rows.iter().map(|r| r.latency_max_us).max().unwrap_or(0),
    })
}

/// Connections opened divided by the time floodtest took to open them: the
/// first interval whose `opened` count reached the final one.
pub(crate) fn connect_rate_mean(flood: &[FloodInterval]) -> Option<f64> {
    let opened = flood.iter().map(|r| r.opened).max()?;
    let done = flood.iter().find(|r| r.opened == opened)?;
    (opened > 0 && done.elapsed_s > 0.0).then(|| opened as f64 / done.elapsed_s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gap_or_a_refused_send_is_a_loss_but_an_absent_id_is_not() {
        let clean = Figures {
            sent: Some(1_000),
            dropped: Some(7),
            lost: Some(0),
            send_failed: Some(0),
            ..Figures::default()
        };
        assert_eq!(clean.losses(), None);
        let gap = Figures {
            lost: Some(3),
            ..clean.clone()
        };
        assert_eq!(
            gap.losses().as_deref(),
            Some("messages lost: 3 missing in the streams, 0 sends failed (of 1,000 sent)")
        );
        let refused = Figures {
            send_failed: Some(1),
            ..clean.clone()
        };
        assert!(refused.losses().is_some());
    }

    #[test]
    fn a_friends_event_queued_and_never_received_is_a_loss() {
        let events = EventFigures {
            sent: 100,
            expected: 2_200,
            received: 2_200,
            unheard: 3,
            ..EventFigures::default()
        };
        let heard = Figures {
            lost: Some(0),
            events: Some(events),
            ..Figures::default()
        };
        assert_eq!(heard.losses(), None, "an unheard event reached nobody");
        let short = Figures {
            events: Some(EventFigures {
                received: 2_150,
                ..events
            }),
            ..heard.clone()
        };
        assert_eq!(
            short.losses().as_deref(),
            Some("friends' events lost: 50 of 2,200 deliveries never arrived, 0 events failed")
        );
        let both = Figures {
            lost: Some(1),
            sent: Some(10),
            ..short
        };
        let why = both.losses().unwrap();
        assert!(why.starts_with("messages lost: 1") && why.contains("; friends' events lost: 50"));
    }

    pub(super) fn sample(
        elapsed_s: f64,
        rss_kb: u64,
        conns: u64,
        slab_kb: u64,
        tcp_mem_kb: u64,
    ) -> MemSample {
        MemSample {
            unix_ms: 1_700_000_000_000 + (elapsed_s * 1000.0) as u64,
            elapsed_s,
            rss_kb,
            pss_kb: rss_kb,
            vsz_kb: rss_kb * 4,
            procs: 1,
            conns,
            slab_kb,
            tcp_mem_kb,
            mem_available_kb: 20_000_000,
            ..MemSample::default()
        }
    }

    #[test]
    fn the_samplers_share_is_its_cpu_over_the_run() {
        let row = |elapsed_s, counted: Option<u64>, memlog_cpu_ms| MemSample {
            server_conns: Some(10),
            counted_conns: counted,
            memlog_cpu_ms,
            ..sample(elapsed_s, 1, 10, 1, 1)
        };
        let mem = [
            row(0.0, Some(10), 30.0),
            row(1.0, None, 5.0),
            row(2.0, None, 5.0),
            row(3.0, Some(10), 110.0),
            row(4.0, Some(10), 50.0),
        ];
        let f = SamplerFigures::of(&mem).unwrap();
        assert_eq!((f.from_server, f.counted), (5, 3));
        // 200 ms of CPU over 4 s.
        assert!((f.cpu_share - 0.05).abs() < 1e-9, "{f:?}");
        // An older memlog's file has no CPU column: no figure, not 0%.
        let old = [sample(0.0, 1, 0, 1, 1), sample(1.0, 1, 5, 1, 1)];
        assert_eq!(SamplerFigures::of(&old), None);
        assert_eq!(SamplerFigures::of(&[]), None);
    }

    #[test]
    fn memory_per_connection_is_the_median_over_the_plateau() {
        let mem = [
            sample(0.0, 4_000, 0, 100_000, 0),
            sample(1.0, 20_000, 5_000, 125_000, 40),
            sample(2.0, 44_000, 9_950, 150_000, 80),
            // Another process grabs 100 MB of slab for one sample.
            sample(3.0, 45_000, 10_000, 250_000, 80),
            sample(4.0, 45_000, 10_000, 150_000, 80),
            sample(5.0, 30_000, 4_000, 130_000, 10),
        ];
        let d = MemoryFigures::of(&mem).unwrap();
        let times: Vec<f64> = d.plateau.iter().map(|s| s.elapsed_s).collect();
        assert_eq!(times, [2.0, 3.0, 4.0]);
        // RSS per connection: 40,000 KiB / 9,950, 41,000 / 10,000 (twice);
        // it moved 1,000 KiB over the plateau: ±500 KiB over 10,000.
        let server = d.server.unwrap();
        assert_eq!(server.bytes, 41_000.0 * 1024.0 / 10_000.0);
        assert_eq!(server.plus_minus, Some(500.0 * 1024.0 / 10_000.0));
        // Kernel: the burst is one sample of three, so the median is a
        // quiet one (50,080 KiB over 9,950); the burst shows in the ±
        // (100,000 KiB moved: ±50,000 over 9,950) and in how far it moved.
        let kernel = d.kernel.unwrap();
        assert_eq!(kernel.bytes, 50_080.0 * 1024.0 / 9_950.0);
        assert_eq!(kernel.plus_minus, Some(50_000.0 * 1024.0 / 9_950.0));
        assert_eq!(d.kernel_moved_kb, Some(100_000.0));
        assert_eq!(MemoryFigures::of(&mem[..1]).unwrap().server, None);
        assert!(MemoryFigures::of(&[]).is_none());
    }

    #[test]
    fn a_groups_processes_are_reported_one_by_one_from_its_last_stats() {
        use c1m_common::{GroupCounters, WorkerStats};
        let worker = |index: u64, up: bool, rss_bytes: u64| WorkerStats {
            index,
            up,
            stats: StatsSnapshot {
                rss_bytes,
                ..StatsSnapshot::default()
            },
            ..WorkerStats::default()
        };
        let stats = StatsSnapshot {
            group: Some(GroupCounters {
                front_rss_bytes: 120 << 20,
                ..GroupCounters::default()
            }),
            // The one down answers nothing: its zero is no figure.
            workers: vec![
                worker(0, true, 9 << 20),
                worker(1, false, 0),
                worker(2, true, 7 << 20),
                worker(3, true, 8 << 20),
            ],
            ..StatsSnapshot::default()
        };
        let p = ProcessFigures::of(&stats).unwrap();
        assert_eq!(p.front_rss, 120 << 20);
        assert_eq!(p.workers, 3);
        assert_eq!(p.worker_rss, [7 << 20, 8 << 20, 9 << 20]);
        // A standalone server, or a group none of whose workers answered.
        assert_eq!(ProcessFigures::of(&StatsSnapshot::default()), None);
        let none_up = StatsSnapshot {
            workers: vec![worker(0, false, 0)],
            ..stats
        };
        assert_eq!(ProcessFigures::of(&none_up), None);
    }

    #[test]
    fn median_of_odd_even_and_no_values() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(vec![]), None);
    }

    #[test]
    fn summaries_win_over_csv_rows_and_csv_fills_in() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(MSGGEN_CSV),
            "unix_ms,elapsed_s,sent,failed,dropped,rate,gap_p50_us,gap_p99_us,gap_max_us\n\
             1,1.0,900,1,2,900.0,1000,1100,1500\n",
        )
        .unwrap();
        let write_flood = |summary: &FloodSummary| {
            let text = serde_json::to_string(summary).unwrap();
            std::fs::write(dir.path().join(FLOOD_JSON), text).unwrap();
        };
        write_flood(&FloodSummary {
            open: 990,
            failed: [("refused".to_owned(), 10), ("timeout".to_owned(), 0)].into(),
            messages: 800,
            lost: 3,
            latency_us: Percentiles {
                count: 800,
                p50: 100,
                p99: 900,
                p999: 2000,
                max: 5000,
            },
            client_rss_bytes_per_conn: 1234,
            ..FloodSummary::default()
        });
        let f = read_figures(dir.path()).unwrap();
        assert_eq!(
            (f.sent, f.send_failed, f.dropped),
            (Some(900), Some(1), Some(2))
        );
        assert_eq!(
            (f.client_peak_open, f.delivered, f.lost),
            (Some(990), Some(800), Some(3))
        );
        assert_eq!(f.failed_conns, vec![("refused".to_owned(), 10)]);
        // 990 held: too few connections for a client figure to mean much.
        assert_eq!(f.client_bytes_per_conn, None);
        assert_eq!(f.latency.unwrap().p999, 2000);
        write_flood(&FloodSummary {
            open: 10_000,
            client_rss_bytes_per_conn: 61,
            ..FloodSummary::default()
        });
        assert_eq!(
            read_figures(dir.path()).unwrap().client_bytes_per_conn,
            Some(61.0)
        );
        write_flood(&FloodSummary {
            chunks: 40_000,
            ..FloodSummary::default()
        });
        let heartbeats_only = read_figures(dir.path()).unwrap();
        assert_eq!(
            (heartbeats_only.chunks, heartbeats_only.latency),
            (Some(40_000), None)
        );
        assert_eq!((f.peak_conns, f.mem_samples), (None, 0));
    }

    #[test]
    fn a_cut_last_line_is_dropped_but_a_bad_middle_line_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(MEM_CSV);
        let header = "unix_ms,elapsed_s,rss_kb,pss_kb,vsz_kb,procs,conns,slab_kb,tcp_mem_kb,mem_available_kb\n";
        std::fs::write(
            &path,
            format!("{header}1,0.0,1,1,1,1,0,1,1,1\n2,1.0,2,2,2,1,5,1,1,1\n3,2.0,3"),
        )
        .unwrap();
        let rows: Vec<MemSample> = read_csv(&path).unwrap();
        assert_eq!(rows.len(), 2);
        std::fs::write(
            &path,
            format!("{header}1,0.0,x,1,1,1,0,1,1,1\n2,1.0,2,2,2,1,5,1,1,1\n"),
        )
        .unwrap();
        assert!(read_csv::<MemSample>(&path).is_err());
    }

    #[test]
    fn connect_rate_is_opened_over_the_time_to_open_them() {
        let row = |elapsed_s: f64, opened: u64, connect_rate: f64| FloodInterval {
            unix_ms: 0,
            elapsed_s,
            target: 1000,
            open: opened,
            opened,
            closed: 0,
            failed: 0,
            chunks: 0,
            bytes: 0,
            messages: 0,
            lost: 0,
            connect_rate,
            message_rate: 0.0,
            latency_p50_us: 0,
            latency_p99_us: 0,
            latency_p999_us: 0,
            latency_max_us: 0,
            events: 0,
        };
        let rows = [
            row(1.0, 400, 400.0),
            row(2.0, 1000, 600.0),
            row(3.0, 1000, 0.0),
        ];
        assert_eq!(connect_rate_mean(&rows), Some(500.0));
        assert_eq!(connect_rate_mean(&rows[..0]), None);
    }
}
