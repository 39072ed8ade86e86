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

use crate::failure::{Failure, FailureClass};
use crate::publish::Kind;
use crate::stats::Stats;
use crate::SendArgs;
use anyhow::Context;
use c1m_common::{unix_ms_now, EnvelopeKind, FirstError, MsggenInterval, MsggenSummary};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

/// A file created before the run, written at its end.
#[derive(Debug)]
pub(crate) struct OutputFile {
    pub(crate) path: PathBuf,
    pub(crate) file: File,
}

impl OutputFile {
    fn create(path: &Path) -> anyhow::Result<Self> {
        let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Self {
            path: path.to_owned(),
            file,
        })
    }

    /// Writes the summary as pretty JSON.
    pub(crate) fn write_json(self, s: &MsggenSummary) -> anyhow::Result<()> {
        serde_json::to_writer_pretty(&self.file, s)
            .with_context(|| format!("writing {}", self.path.display()))
    }
}

/// Every output path of a run, opened before the first message.
#[derive(Debug)]
pub(crate) struct Outputs {
    pub(crate) csv: Option<csv::Writer<File>>,
    pub(crate) json: Option<OutputFile>,
    pub(crate) last_seqs: Option<OutputFile>,
}

impl Outputs {
    pub(crate) fn create(args: &SendArgs) -> anyhow::Result<Self> {
        let csv = args
            .csv
            .as_deref()
            .map(|p| csv::Writer::from_path(p).with_context(|| format!("creating {}", p.display())))
            .transpose()?;
        Ok(Self {
            csv,
            json: args.json.as_deref().map(OutputFile::create).transpose()?,
            last_seqs: args
                .last_seqs
                .as_deref()
                .map(OutputFile::create)
                .transpose()?,
        })
    }
}

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
        csv: Option<csv::Writer<File>>,
        tty: bool,
        total: Option<u64>,
    ) -> Self {
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
        Self {
            stats,
            csv,
            bar,
            last_sent: 0,
            last_elapsed_s: 0.0,
        }
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
pub(crate) fn fill_counters(s: &mut MsggenSummary, stats: &Stats, kind: Kind) {
    s.sent = stats.sent.load(Relaxed);
    s.dropped = stats.dropped.load(Relaxed);
    if kind.envelope() == EnvelopeKind::Event {
        s.expected = Some(stats.expected.load(Relaxed));
        s.unheard = Some(stats.unheard.load(Relaxed));
        s.uncertain = Some(stats.uncertain.load(Relaxed));
        s.unreported = Some(stats.unreported.load(Relaxed));
    }
    s.unsent = stats.unsent.load(Relaxed);
    s.failed = stats.failed.total();
    s.failed_by_class = stats.failed.by_name();
    s.errors_by_class = stats.errors.by_name();
    s.failed_by_status = stats.failed_by_status.by_code();
    s.errors_by_status = stats.errors_by_status.by_code();
    s.first_error = stats.first_failure().map(|f| FirstError {
        class: f.class.name().to_owned(),
        status: f.status,
        hint: hint(kind, &s.target, &f),
        detail: f.detail,
    });
    s.stopped_early = stats.stopped_early();
    s.connections = stats.peak_open.load(Relaxed);
    s.connects = stats.connects.load(Relaxed);
    s.answer_us = stats.answer_times();
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
        s.sent, s.released, s.ids, s.dist, s.duration_s
    );
    let _ = writeln!(
        out,
        "msggen: dropped by target (no connection) {}, failed {}, unsent {}, retries {}",
        s.dropped, s.failed, s.unsent, s.retries
    );
    if let (Some(expected), Some(unheard), Some(uncertain)) = (s.expected, s.unheard, s.uncertain) {
        let _ = writeln!(
            out,
            "msggen: events fanned out to {expected} connections (expected: floodtest's events should equal it), unheard {unheard} (no friend online), uncertain {uncertain}"
        );
    }
    if let Some(unreported) = s.unreported.filter(|&n| n > 0) {
        let _ = writeln!(
            out,
            "msggen: {unreported} events' reach not reported by the target (a comet-server with --broker knows only what NATS took): count them at the subscribers"
        );
    }
    for (class, n) in &s.failed_by_class {
        let _ = writeln!(
            out,
            "msggen:   failed {class}: {n}{}",
            statuses(class, &s.failed_by_status)
        );
    }
    for (class, n) in &s.errors_by_class {
        let _ = writeln!(
            out,
            "msggen:   failed attempts {class}: {n}{}",
            statuses(class, &s.errors_by_status)
        );
    }
    if let Some(e) = &s.first_error {
        let status = e.status.map_or(String::new(), |st| format!(" {st}"));
        let _ = writeln!(
            out,
            "msggen: first failure: {}{status}: {}",
            e.class, e.detail
        );
        if let Some(hint) = &e.hint {
            let _ = writeln!(out, "msggen: hint: {hint}");
        }
    }
    if let Some(reason) = &s.stopped_early {
        let _ = writeln!(out, "msggen: stopped early: {reason}");
    }
    let a = &s.answer_us;
    let _ = writeln!(
        out,
        "msggen: {} connection(s) at most, {} opened; answer p50 {} us, p99 {} us, max {} us",
        s.connections, s.connects, a.p50, a.p99, a.max
    );
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

/// `" (404: 20, 405: 1)"`: the status codes behind an HTTP status class.
fn statuses(class: &str, by_status: &std::collections::BTreeMap<String, u64>) -> String {
    let codes: Vec<String> = by_status
        .iter()
        .filter(|(code, _)| {
            code.parse()
                .is_ok_and(|c| FailureClass::of_status(c).name() == class)
        })
        .map(|(code, n)| format!("{code}: {n}"))
        .collect();
    if codes.is_empty() {
        String::new()
    } else {
        format!(" ({})", codes.join(", "))
    }
}

/// The likely cause of `failure` and its fix, when msggen knows one.
pub(crate) fn hint(kind: Kind, target: &str, failure: &Failure) -> Option<String> {
    let status = failure.status.unwrap_or(0);
    let text = match (failure.class, kind, status) {
        (FailureClass::Refused, ..) => format!("nothing listens at {target}: start the server, or point --target at its publish listener"),
        (FailureClass::Timeout, ..) => "the target answered nothing within --timeout: is it overloaded, or is --target a port that reads without answering?".to_owned(),
        (FailureClass::BadResponse, ..) => format!("{target} did not answer HTTP/1.x msggen can read: is it the right port and protocol?"),
        (_, Kind::CometEvents, 404) if failure.detail.contains("--friends") => "events fan out over a friends graph: start comet-server with --friends FILE (`msggen graph` writes one)".to_owned(),
        (_, k, 404 | 405) if k.is_comet() => format!("--target must be comet-server's admin listener (its --admin address, 127.0.0.1:8001 by default); {target} answers {status} to the publish request, as the subscriber port does"),
        (_, k, 401 | 403) if k.is_comet() => "the admin API wants its token: give --token or COMET_ADMIN_TOKEN (comet-server's --admin-token)".to_owned(),
        (_, Kind::Comet | Kind::CometEvents, 413) => "the batch is over the server's --max-body: lower --batch-bytes or --batch-max".to_owned(),
        (_, Kind::Nchan, 403..=405) => format!("no nchan_publisher location answers at {target}/pub/<channel>: --target is the base URL of a location with nchan_publisher and nchan_channel_id"),
        (_, Kind::Pushpin, 404 | 405) => "--target must be Pushpin's publish endpoint (its HTTP control port, 5561 by default)".to_owned(),
        (_, Kind::Mercure, 401 | 403) => "the hub refused the JWT: --jwt-key must be its publisher key (or --token a JWT it signed)".to_owned(),
        (_, Kind::Centrifugo, 401) => "--token must be Centrifugo's HTTP API key (http_api.key)".to_owned(),
        (_, _, 429) => "the server throttles: lower --rate, or raise its limits".to_owned(),
        _ => return None,
    };
    Some(text)
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
        fill_counters(&mut summary, &stats, Kind::Comet);
        let value = serde_json::to_value(&summary).unwrap();
        let keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys.join(","),
            "achieved_rate,answer_us,connections,connects,dist,dropped,duration_s,\
             errors_by_class,errors_by_status,expected,failed,failed_by_class,failed_by_status,\
             first_error,gap_us,generators,ids,messages_per_write,publish,rate_target,released,\
             retries,send_span_s,senders,sent,size,stopped_by_signal,stopped_early,target,\
             uncertain,unheard,unreported,unsent,writes"
        );
        assert_eq!(value["sent"], 5);
        // Messages have no fan-out figures; events have all four.
        assert_eq!(value["expected"], serde_json::Value::Null);
        stats.expected.store(12, Relaxed);
        stats.unheard.store(1, Relaxed);
        fill_counters(&mut summary, &stats, Kind::CometEvents);
        assert_eq!(
            (summary.expected, summary.unheard, summary.uncertain),
            (Some(12), Some(1), Some(0))
        );
        assert_eq!(summary.unreported, Some(0));
        let mut text = Vec::new();
        print(&summary, &mut text);
        let text = String::from_utf8(text).unwrap();
        assert!(
            text.contains("events fanned out to 12 connections") && text.contains("unheard 1"),
            "{text}"
        );
        let generator = value["generators"][0].as_object().unwrap();
        let keys: Vec<&str> = generator.keys().map(String::as_str).collect();
        assert_eq!(
            keys.join(","),
            "failed,generator,ids_used,max_seq,numbered,sent"
        );
    }
}
