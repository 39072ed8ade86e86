//! The comparison's `report.md`: one column per server, each figure of a
//! run's own report (read back from its folder by [`read_figures`]) with
//! its ratio to comet-server's, then the overlaid charts. Rendering is a
//! pure function of [`Comparison`], so a test can check the table against
//! each subfolder's files.
//!
//! [`read_figures`]: crate::read_figures

use crate::figures::{Figures, Latency};
use crate::report::{micros, notes_and_charts, per_conn, rate, Outcome};
use crate::target::TargetKind;
use c1m_common::thousands;
use std::fmt::Write;

/// One server's run.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Column {
    pub(crate) kind: TargetKind,
    /// Name and version.
    pub(crate) server: String,
    /// How it ended, or why it never ran.
    pub(crate) outcome: Outcome,
    pub(crate) figures: Figures,
}

/// Everything the comparison's report shows.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Comparison {
    pub(crate) title: String,
    pub(crate) command: String,
    pub(crate) started: String,
    pub(crate) load_before: String,
    pub(crate) load_after: String,
    pub(crate) columns: Vec<Column>,
    /// PNG files with what each shows.
    pub(crate) charts: Vec<(String, String)>,
    pub(crate) notes: Vec<String>,
}

/// One row: its label, each column's figure as a number (for the ratio)
/// and as text.
type Row = (&'static str, fn(&Figures) -> Option<f64>, fn(f64) -> String);

fn latency(f: &Figures, pick: fn(&Latency) -> u64) -> Option<f64> {
    f.latency.as_ref().map(|l| pick(l) as f64)
}

/// Messages floodtest received per second of msggen's sending.
pub(crate) fn delivered_rate(f: &Figures) -> Option<f64> {
    let (rate, sent, delivered) = (f.message_rate?, f.sent?, f.delivered?);
    (sent > 0).then(|| rate * delivered as f64 / sent as f64)
}

const ROWS: [Row; 11] = [
    (
        "server bytes per connection (RSS)",
        |f| Some(f.memory.as_ref()?.server?.bytes),
        per_conn,
    ),
    (
        "kernel bytes per connection (Slab + TCP, both ends)",
        |f| Some(f.memory.as_ref()?.kernel?.bytes),
        per_conn,
    ),
    (
        "connections held (peak)",
        |f| f.client_peak_open.map(|n| n as f64),
        count,
    ),
    ("connect rate", |f| f.connect_rate_mean, rate),
    ("messages sent", |f| f.sent.map(|n| n as f64), count),
    (
        "messages delivered",
        |f| f.delivered.map(|n| n as f64),
        count,
    ),
    ("delivered msg/s", delivered_rate, rate),
    ("lost", |f| f.lost.map(|n| n as f64), count),
    ("latency p50", |f| latency(f, |l| l.p50), us),
    ("latency p99", |f| latency(f, |l| l.p99), us),
    ("latency p99.9", |f| latency(f, |l| l.p999), us),
];

fn count(n: f64) -> String {
    thousands(n.round().max(0.0) as u64)
}

fn us(n: f64) -> String {
    micros(n.round().max(0.0) as u64)
}

/// `2.50x`: a figure over comet-server's, when both are there and the
/// comparison means something (not 0 over 0).
fn ratio(value: f64, comet: f64) -> Option<String> {
    (comet > 0.0 && value.is_finite()).then(|| format!("{:.2}x", value / comet))
}

impl Comparison {
    /// The whole `report.md`.
    pub(crate) fn render(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "# compare {}\n", self.title);
        let _ = writeln!(md, "```sh\n{}\n```\n", self.command);
        let _ = writeln!(
            md,
            "Started {}; load average {} before, {} after. Each server ran in turn on this machine, \
             with the same floodtest and msggen; its own report, CSVs and logs are in its subfolder.\n",
            self.started, self.load_before, self.load_after
        );
        self.render_table(&mut md);
        notes_and_charts(&mut md, &self.notes, &self.charts);
        md
    }

    fn render_table(&self, md: &mut String) {
        let comet = self.columns.iter().find(|c| c.kind == TargetKind::Comet);
        md.push_str("| |");
        for c in &self.columns {
            let _ = write!(md, " {} ({}) |", c.kind.name(), c.server);
        }
        md.push_str("\n| --- |");
        md.push_str(&" ---: |".repeat(self.columns.len()));
        md.push_str("\n| run |");
        for c in &self.columns {
            let _ = write!(md, " {} |", outcome(&c.outcome));
        }
        md.push('\n');
        for (label, value, text) in ROWS {
            let _ = write!(md, "| {label} |");
            let base = comet.and_then(|c| value(&c.figures));
            for c in &self.columns {
                let cell = match (value(&c.figures), base) {
                    (None, _) => "-".to_owned(),
                    (Some(v), Some(b)) if c.kind != TargetKind::Comet => match ratio(v, b) {
                        Some(r) => format!("{} ({r})", text(v)),
                        None => text(v),
                    },
                    (Some(v), _) => text(v),
                };
                let _ = write!(md, " {cell} |");
            }
            md.push('\n');
        }
        md.push_str(
            "\nIn brackets: the figure over comet-server's (above 1x: more bytes, more time, more \
             messages). Bytes per connection are `c1m_common::Costs`, growth over the idle \
             baseline per connection added, as in each run's report.\n\n",
        );
    }
}

fn outcome(o: &Outcome) -> String {
    match o {
        Outcome::Complete => "complete".into(),
        Outcome::CheckFailed(why) => format!("check failed: {why}"),
        Outcome::Incomplete(why) => format!("incomplete: {why}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::figures::Latency;

    fn figures(p50: u64, sent: u64, delivered: u64) -> Figures {
        Figures {
            sent: Some(sent),
            delivered: Some(delivered),
            lost: Some(0),
            message_rate: Some(1000.0),
            latency: Some(Latency {
                p50,
                p99: p50 * 4,
                p999: p50 * 8,
                max: p50 * 10,
            }),
            ..Figures::default()
        }
    }

    #[test]
    fn each_figure_sits_beside_its_ratio_to_comet_server() {
        let column = |kind, server: &str, f| Column {
            kind,
            server: server.into(),
            outcome: Outcome::Complete,
            figures: f,
        };
        let c = Comparison {
            title: "c10k".into(),
            command: "experiment compare c10k --targets comet,nchan".into(),
            started: "2026-12-02T02:00:00Z".into(),
            load_before: "0.50".into(),
            load_after: "1.20".into(),
            columns: vec![
                column(
                    TargetKind::Comet,
                    "comet-server 0.1.0",
                    figures(100, 2000, 2000),
                ),
                column(
                    TargetKind::Nchan,
                    "nginx/1.22.1 with nchan 1.3.6",
                    figures(250, 2000, 1000),
                ),
            ],
            charts: vec![],
            notes: vec![],
        };
        let md = c.render();
        assert!(
            md.contains("| | comet (comet-server 0.1.0) | nchan (nginx/1.22.1 with nchan 1.3.6) |"),
            "{md}"
        );
        assert!(
            md.contains("| latency p50 | 100 µs | 250 µs (2.50x) |"),
            "{md}"
        );
        assert!(
            md.contains("| delivered msg/s | 1,000/s | 500/s (0.50x) |"),
            "{md}"
        );
        // 0 lost over 0 lost is no ratio.
        assert!(md.contains("| lost | 0 | 0 |"), "{md}");
        assert!(
            md.contains("| server bytes per connection (RSS) | - | - |"),
            "{md}"
        );
        assert!(md.contains("| run | complete | complete |"), "{md}");
    }
}
