//! What a run tells: a progress bar on a terminal (or a plain line per
//! `--report-interval` otherwise), one `MsggenInterval` CSV record per
//! interval, and the summary, printed and as JSON.
//!
//! The summary document is [`MsggenSummary`]
//! (`common/src/wire/msggen_summary.rs`, schema
//! `docs/schema/msggen-summary.json`), which `experiment` reads; this module
//! fills, prints and writes it.
//!
//! The reporter is the only reader of the shared counters; it costs a few
//! atomic loads and one histogram swap per interval.

use crate::stats::Stats;
use anyhow::Context;
use c1m_common::{unix_ms_now, MsggenInterval, MsggenSummary};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

pub(crate) struct Reporter {
    stats: Arc<Stats>,
    csv: Option<csv::Writer<File>>,
    bar: Option<ProgressBar>,
    last_sent: u64,
    last_elapsed_s: f64,
}

impl Reporter {
    /// `total` sizes the progress bar (None: a spinner). The bar is drawn
    /// only when `tty` is true.
    pub(crate) fn new(
        stats: Arc<Stats>,
        csv_path: Option<&Path>,
        tty: bool,
        total: Option<u64>,
    ) -> anyhow::Result<Self> {
        let csv = csv_path
            .map(|p| csv::Writer::from_path(p).with_context(|| format!("creating {}", p.display())))
            .transpose()?;
        let bar = tty.then(|| {
            let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{elapsed_precise} [{bar:20}] {human_pos}/{human_len} {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar
        });
        Ok(Self {
            stats,
            csv,
            bar,
            last_sent: 0,
            last_elapsed_s: 0.0,
        })
    }

    /// Redraws the progress bar, if there is one.
    pub(crate) fn draw(&self) {
        if let Some(bar) = &self.bar {
            let s = &self.stats;
            bar.set_position(s.sent.load(Relaxed));
            let elapsed = s.start.elapsed().as_secs_f64().max(1e-9);
            bar.set_message(format!(
                "{:.0}/s failed {} dropped {} retries {}",
                s.sent.load(Relaxed) as f64 / elapsed,
                s.failed.total(),
                s.dropped.load(Relaxed),
                s.retries.load(Relaxed),
            ));
        }
    }

    /// Closes one report interval: a CSV record, and a plain line when there
    /// is no bar.
    pub(crate) fn interval(&mut self) -> anyhow::Result<()> {
        let s = &self.stats;
        let elapsed_s = s.start.elapsed().as_secs_f64();
        let sent = s.sent.load(Relaxed);
        let dt = (elapsed_s - self.last_elapsed_s).max(1e-9);
        let gaps = s.take_interval_gaps();
        let record = MsggenInterval {
            unix_ms: unix_ms_now(),
            elapsed_s,
            sent,
            failed: s.failed.total(),
            dropped: s.dropped.load(Relaxed),
            rate: (sent - self.last_sent) as f64 / dt,
            gap_p50_us: gaps.p50,
            gap_p99_us: gaps.p99,
            gap_max_us: gaps.max,
        };
        self.last_sent = sent;
        self.last_elapsed_s = elapsed_s;
        if let Some(csv) = &mut self.csv {
            csv.serialize(&record).context("writing the CSV")?;
            csv.flush().context("writing the CSV")?;
        }
        if self.bar.is_none() {
            eprintln!(
                "msggen: {:>7.1}s  sent {}  {:.0} msg/s  failed {}  dropped {}  gap p50 {} us p99 {} us max {} us",
                record.elapsed_s,
                record.sent,
                record.rate,
                record.failed,
                record.dropped,
                record.gap_p50_us,
                record.gap_p99_us,
                record.gap_max_us
            );
        } else {
            self.draw();
        }
        Ok(())
    }

    pub(crate) fn finish(&mut self) -> anyhow::Result<()> {
        self.interval()?;
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        Ok(())
    }
}

/// Fills the summary's counters from `stats`; the caller sets the
/// description.
pub(crate) fn fill_counters(s: &mut MsggenSummary, stats: &Stats) {
    s.sent = stats.sent.load(Relaxed);
    s.dropped = stats.dropped.load(Relaxed);
    s.unsent = stats.unsent.load(Relaxed);
    s.failed = stats.failed.total();
    s.failed_by_class = stats.failed.by_name();
    s.errors_by_class = stats.errors.by_name();
    s.retries = stats.retries.load(Relaxed);
    s.duration_s = stats.start.elapsed().as_secs_f64();
    s.send_span_s = stats.send_span_s();
    // N messages on schedule occupy N slots of 1/rate, the last written
    // at the start of its slot: count that slot, or short runs read high.
    let last_slot = s.rate_target.map_or(0.0, |r| 1.0 / r);
    let span = if s.send_span_s > 0.0 {
        s.send_span_s + last_slot
    } else {
        s.duration_s
    };
    s.achieved_rate = s.sent as f64 / span.max(1e-9);
    s.writes = stats.writes.load(Relaxed);
    s.messages_per_write = stats.written.load(Relaxed) as f64 / s.writes.max(1) as f64;
    s.gap_us = stats.total_gaps();
}

/// The human summary (errors writing it are ignored: it is the last
/// thing a run does, and the JSON file carries the same figures).
pub(crate) fn print(s: &MsggenSummary, out: &mut dyn Write) {
    let rate = match s.rate_target {
        Some(r) => format!(
            "{:.1} msg/s achieved of {r} asked ({:+.2}%)",
            s.achieved_rate,
            (s.achieved_rate / r - 1.0) * 100.0
        ),
        None => format!("{:.1} msg/s achieved (--rate max)", s.achieved_rate),
    };
    let _ = writeln!(
        out,
        "msggen: sent {} of {} released to {} ids ({}) in {:.2}s: {rate}",
        s.sent, s.released, s.ids, s.dist, s.send_span_s
    );
    let _ = writeln!(
        out,
        "msggen: dropped by target (no connection) {}, failed {}, unsent {}, retries {}",
        s.dropped, s.failed, s.unsent, s.retries
    );
    for (class, n) in &s.failed_by_class {
        let _ = writeln!(out, "msggen:   failed {class}: {n}");
    }
    for (class, n) in &s.errors_by_class {
        let _ = writeln!(out, "msggen:   failed attempts {class}: {n}");
    }
    let g = &s.gap_us;
    let _ = writeln!(
        out,
        "msggen: {} writes, {:.1} messages each; gap between a connection's writes p50 {} us, p90 {} us, p99 {} us, max {} us",
        s.writes, s.messages_per_write, g.p50, g.p90, g.p99, g.max
    );
    if s.errors_by_class.contains_key("no_descriptors") {
        let _ = writeln!(out, "msggen: {}", c1m_common::Exhaustion::Process.fix());
    }
    if s.failed_by_class.contains_key("backlog") {
        let _ = writeln!(
        out,
            "msggen: the target did not keep up with the rate (backlog): lower --rate, add --senders, or measure with --rate max"
        );
    }
}

/// Writes the summary as pretty JSON to `path`.
pub(crate) fn write_json(s: &MsggenSummary, path: &Path) -> anyhow::Result<()> {
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    serde_json::to_writer_pretty(file, s).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use c1m_common::GeneratorSummary;
    use std::time::Instant;

    /// The JSON summary is a contract (experiments and audits read it):
    /// its top-level fields are pinned here.
    #[test]
    fn json_summary_fields_are_pinned() {
        let stats = Stats::new(Instant::now());
        stats.sent.store(5, Relaxed);
        let mut summary = MsggenSummary {
            target: "http://127.0.0.1:8001".into(),
            ids: "1-10".into(),
            dist: "uniform".into(),
            rate_target: Some(10.0),
            senders: 1,
            size: 32,
            released: 5,
            generators: vec![GeneratorSummary::default()],
            ..Default::default()
        };
        fill_counters(&mut summary, &stats);
        let value = serde_json::to_value(&summary).unwrap();
        let keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys.join(","),
            "achieved_rate,dist,dropped,duration_s,errors_by_class,failed,failed_by_class,gap_us,\
             generators,ids,messages_per_write,rate_target,released,retries,send_span_s,\
             senders,sent,size,stopped_by_signal,target,unsent,writes"
        );
        assert_eq!(value["sent"], 5);
        let generator = value["generators"][0].as_object().unwrap();
        let keys: Vec<&str> = generator.keys().map(String::as_str).collect();
        assert_eq!(
            keys.join(","),
            "failed,generator,ids_used,max_seq,numbered,sent"
        );
    }
}
