//! Rendering `report.md`: the command, the machine, the plan, a table of
//! this run's figures beside the seed's, the charts, and what each step
//! did. Rendering is a pure function of [`Report`], so a test pins its text.

use crate::figures::{Figures, Latency, ProcessFigures, SamplerFigures};
use crate::load::Load;
use crate::machine::Machine;
use crate::preset::{Plan, SeedFigures};
use crate::target::TargetKind;
use c1m_common::thousands;
use c1m_common::{Cost, FloodSummary};
use std::fmt::Write;
use std::time::Duration;

/// How the run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Ran to the end and every check passed.
    Complete,
    /// Ran to the end but a check failed (a limit, the target count).
    CheckFailed(String),
    /// Stopped early; the figures cover what was measured until then.
    Incomplete(String),
}

/// One child process the run started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The tool (`comet-server`, `floodtest`, ...).
    pub name: String,
    /// Its process id.
    pub pid: u32,
    /// The command line it was started with.
    pub command: String,
    /// How it ended ("exit 0", "killed by SIGTERM", "not started").
    pub result: String,
}

/// Everything `report.md` shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Report<'a> {
    /// The runner's own command line.
    pub command: String,
    /// RFC 3339, UTC.
    pub started: String,
    /// How long the run took.
    pub took: Duration,
    /// The machine it ran on.
    pub machine: Machine,
    /// What was run.
    pub plan: &'a Plan,
    /// The server measured, with its version (`comet-server 0.1.0`,
    /// `nginx/1.22.1 with nchan 1.3.6`, `pushpin 1.36.0`).
    pub server: String,
    /// How long the runner waited for the machine to settle first.
    pub settle_wait: Duration,
    /// The load over the run; `None` when it was not watched.
    pub load: Option<Load>,
    /// How it ended.
    pub outcome: Outcome,
    /// The figures read back from the tools' output.
    pub figures: Figures,
    /// Every child process started, in order.
    pub steps: Vec<Step>,
    /// PNG files in the output folder, with what each shows.
    pub charts: Vec<(String, String)>,
    /// `plots table` output: memory by connection count.
    pub mem_table: Option<String>,
    /// `c1m-sysctl check` output.
    pub sysctl: Option<String>,
    /// Things the reader should know (a target not reached, a plot that
    /// failed).
    pub notes: Vec<String>,
}

impl Report<'_> {
    /// The whole `report.md`.
    pub fn render(&self) -> String {
        let mut md = String::new();
        let plan = self.plan;
        let _ = writeln!(md, "# {}: {}\n", plan.preset.name, plan.about());
        let _ = match &self.outcome {
            Outcome::Complete => writeln!(md, "**Complete.**\n"),
            Outcome::CheckFailed(why) => writeln!(md, "**Check failed:** {why}\n"),
            Outcome::Incomplete(why) => writeln!(
                md,
                "**Incomplete:** {why}. The figures cover what was measured until then.\n"
            ),
        };
        let disturbed = self.disturbances();
        if !disturbed.is_empty() {
            let _ = writeln!(
                md,
                "**Disturbed:** {}. Figures from a busy machine are the machine's as much as the \
                 server's: rerun on a quiet one to compare.\n",
                disturbed.join("; ")
            );
        }
        let _ = writeln!(md, "```sh\n{}\n```\n", self.command);
        let _ = writeln!(
            md,
            "Started {}, took {}.\n",
            self.started,
            humantime::format_duration(Duration::from_secs(self.took.as_secs()))
        );
        self.render_machine(&mut md);
        self.render_plan(&mut md);
        self.render_figures(&mut md);
        notes_and_charts(&mut md, &self.notes, &self.charts);
        if let Some(table) = &self.mem_table {
            let _ = writeln!(md, "## Memory by connections\n\n{}\n", table.trim_end());
        }
        self.render_steps(&mut md);
        if let Some(sysctl) = &self.sysctl {
            let _ = writeln!(
                md,
                "## Limits (c1m-sysctl check)\n\n```\n{}\n```",
                sysctl.trim_end()
            );
        }
        md
    }

    fn render_machine(&self, md: &mut String) {
        let m = &self.machine;
        md.push_str("## Machine\n\n| | |\n| --- | --- |\n");
        let _ = writeln!(md, "| cores | {} ({}) |", m.cores, m.cpu_model);
        let _ = writeln!(
            md,
            "| memory | {:.1} GiB |",
            m.memory_kb as f64 / (1024.0 * 1024.0)
        );
        let _ = writeln!(md, "| kernel | {} |", m.kernel);
        let _ = writeln!(md, "| load average at start | {} |", m.load_average);
        let _ = writeln!(
            md,
            "| waited for the machine to settle | {} s |",
            self.settle_wait.as_secs()
        );
        if let Some(load) = self.load.filter(|l| l.samples > 0) {
            let _ = writeln!(
                md,
                "| load during the run | {:.1} runnable tasks on average, {} at the most, over {} \
                 cores {:.0}% of the time |",
                load.mean,
                load.peak,
                m.cores,
                load.over_cores * 100.0
            );
        }
        md.push('\n');
    }

    /// Why the figures may be the machine's rather than the server's: the
    /// load over the cores, or kernel memory that moved while the
    /// connections held still.
    fn disturbances(&self) -> Vec<String> {
        let mut out = Vec::new();
        let cores = self.machine.cores.max(1);
        if let Some(load) = self.load.filter(|l| l.mean > cores as f64) {
            out.push(format!(
                "the load exceeded the cores: {:.1} runnable tasks on average for {cores} cores ({} at \
                 the most), so client, server and generator waited for CPU",
                load.mean, load.peak
            ));
        }
        let memory = self.figures.memory.as_ref();
        let moved = memory.and_then(|m| Some((m, m.kernel_moved_kb?, m.kernel?)));
        if let Some((m, moved_kb, kernel)) = moved {
            let added =
                m.plateau.iter().map(|s| s.conns).min().unwrap_or(0) as f64 - m.before.conns as f64;
            let growth_kb = kernel.bytes * added / 1024.0;
            // A tenth of what the connections cost is past any rounding.
            if added > 0.0 && moved_kb > growth_kb.abs() / 10.0 {
                out.push(format!(
                    "the machine's memory moved without the connections moving: Slab + TCP pages \
                     ranged over {:.1} MiB across the {} samples holding {} connections, against \
                     {:.1} MiB that the connections added, so the kernel figure is {} a connection",
                    moved_kb / 1024.0,
                    m.plateau.len(),
                    thousands(added as u64 + m.before.conns),
                    growth_kb / 1024.0,
                    kernel
                        .plus_minus
                        .map_or_else(|| "uncertain".to_owned(), |pm| format!("±{}", bytes(pm)))
                ));
            }
        }
        out
    }

    fn render_plan(&self, md: &mut String) {
        let p = self.plan;
        md.push_str("## Plan\n\n| | |\n| --- | --- |\n");
        let _ = writeln!(md, "| server | {} |", self.server);
        let scale = if p.scale == 1.0 {
            String::new()
        } else {
            format!(" (scale {})", p.scale)
        };
        let _ = writeln!(md, "| connections | {}{scale} |", thousands(p.conns));
        let _ = writeln!(
            md,
            "| connect rate | {}/s (about {} to open them all) |",
            thousands(p.connect_rate),
            humantime::format_duration(Duration::from_secs(p.ramp().as_secs().max(1)))
        );
        let _ = writeln!(md, "| addressing | {} |", p.preset.addressing.describe());
        if let Some(pause) = p.pause {
            let _ = writeln!(
                md,
                "| pauses | {} s every {} connections |",
                pause.secs,
                thousands(pause.every)
            );
        }
        let heartbeat = p
            .preset
            .heartbeat
            .map(|h| {
                format!(
                    "a chunk every {} per connection",
                    humantime::format_duration(h)
                )
            })
            .unwrap_or_else(|| "none".into());
        let _ = writeln!(md, "| heartbeat | {heartbeat} |");
        let messages = if p.message_rate == 0 {
            "none".into()
        } else {
            let tick = (p.msg_tick)
                .map(|t| format!(", released every {}", humantime::format_duration(t)))
                .unwrap_or_default();
            format!("{} msg/s to random ids{tick}", thousands(p.message_rate))
        };
        let _ = writeln!(md, "| messages | {messages} |");
        let _ = writeln!(md, "| hold | {} |", humantime::format_duration(p.hold));
        let procs = if p.workers > 1 {
            format!(
                "{} workers and their front (`--workers`, one port with SO_REUSEPORT)",
                p.workers
            )
        } else {
            "1".into()
        };
        if p.target == TargetKind::Comet {
            let _ = writeln!(md, "| server processes | {procs} |");
        }
        if let Some(broker) = &p.broker {
            let _ = writeln!(md, "| broker | NATS at {broker} |");
        }
        if let Some(agents) = &p.agents {
            let _ = writeln!(
                md,
                "| client | floodtest agents ({}) over NATS at {} |",
                agents.wanted, agents.broker
            );
        }
        md.push('\n');
    }

    fn render_figures(&self, md: &mut String) {
        let f = &self.figures;
        let seed: &SeedFigures = &self.plan.preset.seed;
        let _ = writeln!(
            md,
            "## Figures\n\n| figure | this run | seed: {} |\n| --- | --- | --- |",
            seed.source
        );
        let mut row = |what: &str, ours: String, theirs: Option<&str>| {
            let _ = writeln!(md, "| {what} | {ours} | {} |", theirs.unwrap_or("-"));
        };
        let memory = f.memory.as_ref();
        let server = memory.and_then(|m| m.server);
        let kernel = memory.and_then(|m| m.kernel);
        row(
            "peak connections (server, ESTABLISHED)",
            opt(f.peak_conns, thousands),
            seed.peak_conns,
        );
        row(
            "peak connections open (client)",
            opt(f.client_peak_open, thousands),
            None,
        );
        row(
            "server user-space bytes per connection",
            opt(server, cost),
            seed.server_bytes_per_conn,
        );
        if let Some(p) = f.processes {
            row(
                "server processes alone (RSS at the end of the hold)",
                processes(p),
                None,
            );
        }
        row(
            "kernel bytes per connection (Slab + TCP pages, both loopback ends)",
            opt(kernel, cost),
            None,
        );
        row(
            "server + kernel bytes per connection",
            opt(
                server.zip(kernel).map(|(s, k)| Cost {
                    bytes: s.bytes + k.bytes,
                    plus_minus: s.plus_minus.zip(k.plus_minus).map(|(a, b)| a + b),
                }),
                cost,
            ),
            seed.server_and_kernel_bytes_per_conn,
        );
        let client = match (f.client_bytes_per_conn, f.client_peak_open) {
            (Some(b), _) => per_conn(b),
            (None, Some(open)) if open < FloodSummary::PER_CONN_MIN_CONNS => format!(
                "not shown under {} connections (fixed costs swamp it)",
                thousands(FloodSummary::PER_CONN_MIN_CONNS)
            ),
            _ => "n/a".to_owned(),
        };
        row("client bytes per connection", client, None);
        row(
            "connect rate (mean to open all / best interval)",
            format!(
                "{} / {}",
                opt(f.connect_rate_mean, rate),
                opt(f.connect_rate_peak, rate)
            ),
            seed.connect_rate,
        );
        let failed = if f.failed_conns.is_empty() {
            "0".to_owned()
        } else {
            f.failed_conns
                .iter()
                .map(|(class, n)| format!("{class} {}", thousands(*n)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        row("connection attempts failed", failed, None);
        row(
            "message rate achieved (msggen)",
            opt(f.message_rate, |r| {
                format!("{} msg/s", thousands(r.round() as u64))
            }),
            seed.message_rate,
        );
        row("messages sent (msggen)", opt(f.sent, thousands), None);
        row(
            "messages the server had no connection for",
            opt(f.dropped, thousands),
            None,
        );
        row(
            "messages delivered (floodtest)",
            opt(f.delivered, thousands),
            None,
        );
        row(
            "messages lost (sequence gaps)",
            opt(f.lost, thousands),
            None,
        );
        if let Some(e) = f.events {
            row(
                "friends' events sent (msggen --publish comet-events)",
                format!(
                    "{} at {} events/s ({} reached no friend online, {} failed)",
                    thousands(e.sent),
                    thousands(e.rate.round() as u64),
                    thousands(e.unheard),
                    thousands(e.failed)
                ),
                None,
            );
            let uncertain = match e.uncertain {
                0 => String::new(),
                n => format!("; {} uncertain: not exact", thousands(n)),
            };
            row(
                "friends' events: deliveries queued / received / lost",
                format!(
                    "{} / {} / {}{uncertain}",
                    thousands(e.expected),
                    thousands(e.received),
                    thousands(e.lost())
                ),
                None,
            );
        }
        let per_conn_chunks = |n: u64| match f.client_peak_open.filter(|&c| c > 0) {
            Some(conns) => format!(
                "{} ({:.1} per connection)",
                thousands(n),
                n as f64 / conns as f64
            ),
            None => thousands(n),
        };
        row(
            "chunks received (floodtest: heartbeats and messages)",
            opt(f.chunks, per_conn_chunks),
            seed.chunks,
        );
        row(
            "delivery latency p50 / p99 / p99.9 / max",
            opt(f.latency, latency),
            None,
        );
        md.push_str(
            "\nEvery bytes-per-connection figure in this report (this table, the memory table, \
             per-conn.png) is one method, growth over the idle baseline: memory at a sample minus \
             memory at the first memlog sample (before the flood), over the connections added; the \
             figure is the median over the samples holding at least 99% of the peak connections, \
             and ± is half the range that memory moved over those samples while the connections \
             held still, over the connections added: what other activity on the machine can \
             account for. Server bytes is the server's RSS; kernel bytes is Slab plus TCP buffer \
             pages, which are system-wide: they hold both loopback ends and anything else the \
             machine did. Client bytes is floodtest's RSS growth from half its connections open to \
             its peak, over the connections added. KiB = 1,024 bytes.\n\n",
        );
        if let (Some(m), Some(first), Some(last)) = (
            memory,
            memory.and_then(|m| m.plateau.first()),
            memory.and_then(|m| m.plateau.last()),
        ) {
            let _ = writeln!(
                md,
                "Samples used: the first ({:.1} s, {} connections, RSS {} KiB) against {} of the {} \
                 in mem.csv, from {:.1} s to {:.1} s.\n",
                m.before.elapsed_s,
                thousands(m.before.conns),
                thousands(m.before.rss_kb),
                m.plateau.len(),
                f.mem_samples,
                first.elapsed_s,
                last.elapsed_s
            );
        }
        if let Some(s) = &f.sampler {
            let _ = writeln!(md, "{}\n", sampler_line(s, f.mem_samples));
        }
    }

    fn render_steps(&self, md: &mut String) {
        md.push_str("## Steps\n\n| step | pid | command | result |\n| --- | --- | --- | --- |\n");
        for s in &self.steps {
            let _ = writeln!(
                md,
                "| {} | {} | `{}` | {} |",
                s.name,
                s.pid,
                s.command.replace('|', "\\|"),
                s.result
            );
        }
        md.push_str(
            "\nEach step's output is in `<step>.stdout` and `<step>.stderr` beside this report.\n\n",
        );
    }
}

fn opt<T>(value: Option<T>, show: impl Fn(T) -> String) -> String {
    value.map(show).unwrap_or_else(|| "n/a".into())
}

/// A cost with its uncertainty: `4,410 B ± 120 B (4.3 KiB)`.
fn cost(c: Cost) -> String {
    match c.plus_minus {
        Some(pm) => format!(
            "{} B ± {} ({:.1} KiB)",
            thousands_signed(c.bytes),
            bytes(pm),
            c.bytes / 1024.0
        ),
        None => per_conn(c.bytes),
    }
}

/// The notes, then the charts (PNG file, what it shows), of a report or
/// a comparison.
pub(crate) fn notes_and_charts(md: &mut String, notes: &[String], charts: &[(String, String)]) {
    if !notes.is_empty() {
        md.push_str("Notes:\n\n");
        for n in notes {
            let _ = writeln!(md, "- {n}");
        }
        md.push('\n');
    }
    if !charts.is_empty() {
        md.push_str("## Charts\n\n");
        for (file, what) in charts {
            let _ = writeln!(md, "{what}:\n\n![{what}]({file})\n");
        }
    }
}

/// `-512` or `4,410`: a whole number of bytes with separators.
fn thousands_signed(value: f64) -> String {
    let rounded = value.round();
    let sign = if rounded < 0.0 { "-" } else { "" };
    format!("{sign}{}", thousands(rounded.abs() as u64))
}

/// `front 118.2 MiB; 53 workers 7.9 MiB median (7.6-8.3 MiB)`.
fn processes(p: ProcessFigures) -> String {
    let [min, median, max] = p.worker_rss.map(mib);
    format!(
        "front {}; {} workers {median} median ({min} to {max})",
        mib(p.front_rss),
        p.workers
    )
}

/// Bytes as `7.9 MiB`.
fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// `120 B` or `10,200 B`.
fn bytes(b: f64) -> String {
    format!("{} B", thousands_signed(b))
}

/// Bytes per connection: `4,410 B (4.3 KiB)`; a negative delta is shown
/// as measured.
pub fn per_conn(bytes: f64) -> String {
    format!("{} B ({:.1} KiB)", thousands_signed(bytes), bytes / 1024.0)
}

/// A per-second rate: `1,950/s`.
pub(crate) fn rate(per_sec: f64) -> String {
    format!("{}/s", thousands(per_sec.round().max(0.0) as u64))
}

/// Microseconds as `850 µs` or `1.25 ms`.
pub(crate) fn micros(us: u64) -> String {
    if us < 1_000 {
        format!("{us} µs")
    } else {
        format!("{:.2} ms", us as f64 / 1000.0)
    }
}

fn latency(l: Latency) -> String {
    format!(
        "{} / {} / {} / {}",
        micros(l.p50),
        micros(l.p99),
        micros(l.p999),
        micros(l.max)
    )
}

/// How memlog counted connections, and what it cost itself.
fn sampler_line(s: &SamplerFigures, samples: usize) -> String {
    let how = if s.from_server > 0 {
        format!(
            "connections from the server's own `/stats` in {} of {} samples, the sockets \
             counted in {} (the cross-check; memlog says on stderr when they disagree)",
            thousands(s.from_server as u64),
            thousands(samples as u64),
            thousands(s.counted as u64)
        )
    } else {
        "the sockets counted in every sample (netlink sock_diag)".to_owned()
    };
    format!(
        "memlog: {how}; its own CPU {:.1}% of one core over the run.",
        s.cpu_share * 100.0
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_numbers() {
        assert_eq!(per_conn(4410.4), "4,410 B (4.3 KiB)");
        assert_eq!(per_conn(-512.0), "-512 B (-0.5 KiB)");
        assert_eq!(rate(1949.6), "1,950/s");
        assert_eq!(micros(850), "850 µs");
        assert_eq!(micros(1_250), "1.25 ms");
    }

    #[test]
    fn a_groups_processes_read_front_then_workers() {
        let p = ProcessFigures {
            front_rss: 118 << 20,
            workers: 53,
            worker_rss: [7 << 20, 15 << 19, 9 << 20],
        };
        assert_eq!(
            processes(p),
            "front 118.0 MiB; 53 workers 7.5 MiB median (7.0 MiB to 9.0 MiB)"
        );
    }

    #[test]
    fn the_sampler_line_says_where_counts_came_from_and_the_cpu() {
        let from_server = SamplerFigures {
            from_server: 1200,
            counted: 121,
            cpu_share: 0.0834,
        };
        assert_eq!(
            sampler_line(&from_server, 1200),
            "memlog: connections from the server's own `/stats` in 1,200 of 1,200 samples, the \
             sockets counted in 121 (the cross-check; memlog says on stderr when they disagree); \
             its own CPU 8.3% of one core over the run."
        );
        let counted = SamplerFigures {
            from_server: 0,
            counted: 60,
            cpu_share: 0.004,
        };
        assert!(sampler_line(&counted, 60).starts_with("memlog: the sockets counted in every"));
    }
}
