//! What a run tells: a progress bar on a terminal (or a plain line per
//! `--report-interval` otherwise), one `MsggenInterval` CSV record per
//! interval, and the summary, printed and as JSON.
//!
//! The reporter is the only reader of the shared counters; it costs a few
//! atomic loads and one histogram swap per interval.

use crate::sender::GeneratorSummary;
use crate::stats::{GapSummary, Stats};
use anyhow::Context;
use c1m_common::{unix_ms_now, MsggenInterval};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use std::collections::BTreeMap;
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

/// The JSON summary (`--json`) and the printed one.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Summary {
    pub(crate) target: String,
    pub(crate) ids: String,
    pub(crate) dist: String,
    /// The rate asked for, messages per second; null for `--rate max`.
    pub(crate) rate_target: Option<f64>,
    pub(crate) senders: u32,
    pub(crate) size: u64,
    /// Messages the pacer released (sent + failed + unsent).
    pub(crate) released: u64,
    /// Messages the target accepted.
    pub(crate) sent: u64,
    /// Of those, how many the target said reached no connection.
    pub(crate) dropped: u64,
    /// Released but never written, because the run was stopped by a signal.
    pub(crate) unsent: u64,
    /// Messages that failed for good, and by class of their last failure.
    pub(crate) failed: u64,
    pub(crate) failed_by_class: BTreeMap<&'static str, u64>,
    /// Failed attempts (including ones a retry then fixed), by class.
    pub(crate) errors_by_class: BTreeMap<&'static str, u64>,
    pub(crate) retries: u64,
    /// From the start of the schedule to the end of the run.
    pub(crate) duration_s: f64,
    /// From the start of the schedule to the last batch written.
    pub(crate) send_span_s: f64,
    /// `sent / (send_span_s + 1/rate_target)` (N messages fill N slots of
    /// 1/rate); `sent / send_span_s` with `--rate max`.
    pub(crate) achieved_rate: f64,
    /// Batch writes (retries included) and messages per write.
    pub(crate) writes: u64,
    pub(crate) messages_per_write: f64,
    /// Gaps between consecutive batch writes on one connection, microseconds.
    pub(crate) gap_us: GapSummary,
    pub(crate) stopped_by_signal: bool,
    /// Per generator: sequence numbers given, sent, failed (audit of loss).
    pub(crate) generators: Vec<GeneratorSummary>,
}

impl Summary {
    /// Fills the counters from `stats`; the caller sets the description.
    pub(crate) fn counters(&mut self, stats: &Stats) {
        self.sent = stats.sent.load(Relaxed);
        self.dropped = stats.dropped.load(Relaxed);
        self.unsent = stats.unsent.load(Relaxed);
        self.failed = stats.failed.total();
        self.failed_by_class = stats.failed.by_name();
        self.errors_by_class = stats.errors.by_name();
        self.retries = stats.retries.load(Relaxed);
        self.duration_s = stats.start.elapsed().as_secs_f64();
        self.send_span_s = stats.send_span_s();
        // N messages on schedule occupy N slots of 1/rate, the last written
        // at the start of its slot: count that slot, or short runs read high.
        let last_slot = self.rate_target.map_or(0.0, |r| 1.0 / r);
        let span = if self.send_span_s > 0.0 {
            self.send_span_s + last_slot
        } else {
            self.duration_s
        };
        self.achieved_rate = self.sent as f64 / span.max(1e-9);
        self.writes = stats.writes.load(Relaxed);
        self.messages_per_write = stats.written.load(Relaxed) as f64 / self.writes.max(1) as f64;
        self.gap_us = stats.total_gaps();
    }

    /// The human summary (errors writing it are ignored: it is the last
    /// thing a run does, and the JSON file carries the same figures).
    pub(crate) fn print(&self, out: &mut dyn Write) {
        let rate = match self.rate_target {
            Some(r) => format!(
                "{:.1} msg/s achieved of {r} asked ({:+.2}%)",
                self.achieved_rate,
                (self.achieved_rate / r - 1.0) * 100.0
            ),
            None => format!("{:.1} msg/s achieved (--rate max)", self.achieved_rate),
        };
        let _ = writeln!(
            out,
            "msggen: sent {} of {} released to {} ids ({}) in {:.2}s: {rate}",
            self.sent, self.released, self.ids, self.dist, self.send_span_s
        );
        let _ = writeln!(
            out,
            "msggen: dropped by target (no connection) {}, failed {}, unsent {}, retries {}",
            self.dropped, self.failed, self.unsent, self.retries
        );
        for (class, n) in &self.failed_by_class {
            let _ = writeln!(out, "msggen:   failed {class}: {n}");
        }
        for (class, n) in &self.errors_by_class {
            let _ = writeln!(out, "msggen:   failed attempts {class}: {n}");
        }
        let g = &self.gap_us;
        let _ = writeln!(
            out,
            "msggen: {} writes, {:.1} messages each; gap between a connection's writes p50 {} us, p90 {} us, p99 {} us, max {} us",
            self.writes, self.messages_per_write, g.p50, g.p90, g.p99, g.max
        );
        if self.errors_by_class.contains_key("no_descriptors") {
            let _ = writeln!(out, "msggen: {}", c1m_common::Exhaustion::Process.fix());
        }
        if self.failed_by_class.contains_key("backlog") {
            let _ = writeln!(
            out,
                "msggen: the target did not keep up with the rate (backlog): lower --rate, add --senders, or measure with --rate max"
            );
        }
    }

    pub(crate) fn write_json(&self, path: &Path) -> anyhow::Result<()> {
        let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        serde_json::to_writer_pretty(file, self)
            .with_context(|| format!("writing {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// The JSON summary is a contract (experiments and audits read it):
    /// its top-level fields are pinned here.
    #[test]
    fn json_summary_fields_are_pinned() {
        let stats = Stats::new(Instant::now());
        stats.sent.store(5, Relaxed);
        let mut summary = Summary {
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
        summary.counters(&stats);
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
