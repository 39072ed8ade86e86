//! What a person (and `--csv`) sees while the run goes on.
//!
//! The controller hands every polled [`Snapshot`] to the [`Reporter`], which
//! keeps the run's totals and histograms, and on its clock:
//! - on a terminal, redraws an indicatif bar every second: open/target,
//!   connect rate, failures by class, chunks/s, msgs/s, p99 latency;
//! - off a terminal, prints a plain line every `--report-interval`, ending in
//!   the seeds' `Stats: {Active, Closed, Chunks}`;
//! - writes one [`FloodInterval`] per `--report-interval` to `--csv`.
//!
//! Resource exhaustion (descriptors, source addresses) is reported once, with
//! the fix, the first time its count moves.

use crate::class::ErrorClass;
use crate::stats::{new_hist, Counters, Snapshot};
use crate::summary::{close_map, failed_brief, failed_map, percentiles};
use c1m_common::Exhaustion;
use c1m_common::FloodSummary;
use c1m_common::{unix_ms_now, FloodInterval};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::fs::File;
use std::path::Path;
use std::time::{Duration, Instant};

const BAR_EVERY: Duration = Duration::from_secs(1);

/// Counters at the start of a rate window, and the latency since.
struct Window {
    since: Instant,
    counters: Counters,
    latency: Histogram<u64>,
}

impl Window {
    fn new(now: Instant, counters: Counters) -> Self {
        Self {
            since: now,
            counters,
            latency: new_hist(),
        }
    }

    fn rate(&self, now: Instant, from: u64, to: u64) -> f64 {
        let secs = now.duration_since(self.since).as_secs_f64();
        if secs > 0.0 {
            (to - from) as f64 / secs
        } else {
            0.0
        }
    }
}

pub(crate) struct Reporter {
    target: u64,
    start: Instant,
    interval: Duration,
    bar: Option<ProgressBar>,
    csv: Option<csv::Writer<File>>,
    latest: Snapshot,
    total_latency: Histogram<u64>,
    total_connect: Histogram<u64>,
    peak_open: u64,
    /// Length of the ramp and the streams opened in it.
    ramp: Option<(f64, u64)>,
    line: Window,
    bar_window: Window,
    warned: [bool; ErrorClass::ALL.len()],
}

impl Reporter {
    pub(crate) fn new(
        target: u64,
        interval: Duration,
        csv_path: Option<&Path>,
        tty: bool,
    ) -> anyhow::Result<Self> {
        use anyhow::Context;
        let csv = match csv_path {
            Some(p) => Some(csv::Writer::from_writer(
                File::create(p).with_context(|| format!("creating {}", p.display()))?,
            )),
            None => None,
        };
        let bar = tty.then(|| {
            let bar = ProgressBar::with_draw_target(Some(target), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{bar:30} {pos}/{len} open {msg}")
                    .expect("static template is valid"),
            );
            bar
        });
        let now = Instant::now();
        Ok(Self {
            target,
            start: now,
            interval,
            bar,
            csv,
            latest: Snapshot::empty(),
            total_latency: new_hist(),
            total_connect: new_hist(),
            peak_open: 0,
            ramp: None,
            line: Window::new(now, Counters::default()),
            bar_window: Window::new(now, Counters::default()),
            warned: [false; ErrorClass::ALL.len()],
        })
    }

    /// Prints a notice above the bar, or on stderr.
    pub(crate) fn notice(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(format!("floodtest: {text}")),
            None => say(&mut std::io::stderr(), &format!("floodtest: {text}")),
        }
    }

    /// Takes in a polled snapshot.
    pub(crate) fn absorb(&mut self, snap: Snapshot) {
        let _ = self.total_latency.add(&snap.latency);
        let _ = self.total_connect.add(&snap.connect);
        let _ = self.line.latency.add(&snap.latency);
        let _ = self.bar_window.latency.add(&snap.latency);
        self.peak_open = self.peak_open.max(snap.counters.open());
        for class in [ErrorClass::FdExhausted, ErrorClass::AddrUnavailable] {
            if snap.counters.failed[class.index()] > 0 && !self.warned[class.index()] {
                self.warned[class.index()] = true;
                self.notice(&exhaustion_fix(class));
            }
        }
        self.latest = snap;
    }

    /// Notes the end of the ramp.
    pub(crate) fn ramp_done(&mut self) {
        let (first, last) = (self.latest.first_start_us, self.latest.last_open_us);
        let secs = if first < last {
            (last - first) as f64 / 1e6
        } else {
            self.start.elapsed().as_secs_f64()
        };
        self.ramp = Some((secs, self.latest.counters.opened));
        let c = &self.latest.counters;
        self.notice(&format!(
            "ramp done in {secs:.1}s: open {}/{}, failed {} ({})",
            c.open(),
            self.target,
            c.failed_total(),
            failed_brief(&c.failed)
        ));
    }

    /// Draws the bar and writes interval lines and records when due.
    pub(crate) fn tick(&mut self) -> anyhow::Result<()> {
        let now = Instant::now();
        if self.bar.is_some() && now.duration_since(self.bar_window.since) >= BAR_EVERY {
            let msg = self.status(now, &self.bar_window);
            if let Some(bar) = &self.bar {
                bar.set_position(self.latest.counters.open());
                bar.set_message(msg);
            }
            self.bar_window = Window::new(now, self.latest.counters);
        }
        if now.duration_since(self.line.since) >= self.interval {
            self.interval_line(now)?;
        }
        Ok(())
    }

    /// Rates and failures over a window, for the bar and the plain line.
    fn status(&self, now: Instant, w: &Window) -> String {
        let c = &self.latest.counters;
        format!(
            "{:.0} conn/s | failed {} ({}) | chunks {:.0}/s msgs {:.0}/s lost {} | p99 {}us",
            w.rate(now, w.counters.opened, c.opened),
            c.failed_total(),
            failed_brief(&c.failed),
            w.rate(now, w.counters.chunks, c.chunks),
            w.rate(now, w.counters.messages, c.messages),
            c.lost,
            if w.latency.is_empty() {
                0
            } else {
                w.latency.value_at_quantile(0.99)
            },
        )
    }

    fn interval_line(&mut self, now: Instant) -> anyhow::Result<()> {
        let c = self.latest.counters;
        let elapsed = now.duration_since(self.start).as_secs_f64();
        if self.bar.is_none() {
            let line = format!(
                "floodtest: {elapsed:.1}s open {}/{} | {} | Stats: {{{},{},{}}}",
                c.open(),
                self.target,
                self.status(now, &self.line),
                c.open(),
                c.closed,
                c.chunks
            );
            say(&mut std::io::stdout(), &line);
        }
        if let Some(csv) = &mut self.csv {
            let p = percentiles(&self.line.latency);
            csv.serialize(FloodInterval {
                unix_ms: unix_ms_now(),
                elapsed_s: elapsed,
                target: self.target,
                open: c.open(),
                opened: c.opened,
                closed: c.closed,
                failed: c.failed_total(),
                chunks: c.chunks,
                bytes: c.bytes,
                messages: c.messages,
                lost: c.lost,
                connect_rate: self.line.rate(now, self.line.counters.opened, c.opened),
                message_rate: self.line.rate(now, self.line.counters.messages, c.messages),
                latency_p50_us: p.p50,
                latency_p99_us: p.p99,
                latency_p999_us: p.p999,
                latency_max_us: p.max,
            })?;
            csv.flush()?;
        }
        self.line = Window::new(now, c);
        Ok(())
    }

    /// Ends the live view (a last interval record) and builds the summary.
    pub(crate) fn finish(mut self, procs: u64, workers: u64) -> anyhow::Result<FloodSummary> {
        self.interval_line(Instant::now())?;
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        let c = self.latest.counters;
        let (ramp_secs, ramp_opened) = self.ramp.unwrap_or((0.0, 0));
        let held = self.latest.peak_open.max(1);
        Ok(FloodSummary {
            target: self.target,
            open: self.peak_open,
            opened: c.opened,
            closed: c.closed,
            failed: failed_map(&c.failed),
            failed_total: c.failed_total(),
            close_codes: close_map(&c.closes),
            chunks: c.chunks,
            bytes: c.bytes,
            messages: c.messages,
            lost: c.lost,
            latency_us: percentiles(&self.total_latency),
            connect_us: percentiles(&self.total_connect),
            client_rss_bytes_per_conn: (self.latest.rss_delta_bytes.max(0) as u64) / held,
            ramp_secs,
            connect_rate: if ramp_secs > 0.0 {
                ramp_opened as f64 / ramp_secs
            } else {
                0.0
            },
            elapsed_s: self.start.elapsed().as_secs_f64(),
            addr_retries: c.addr_retries,
            procs,
            workers,
            incomplete: None,
        })
    }
}

/// Writes a line where a reader may have gone (`floodtest | head`): the run
/// goes on and still writes its summary, CSV and JSON, rather than panic as
/// `println!` does on a closed pipe.
pub(crate) fn say(out: &mut impl std::io::Write, line: &str) {
    let _ = writeln!(out, "{line}");
}

/// The one-time message for a resource running out.
fn exhaustion_fix(class: ErrorClass) -> String {
    match class {
        ErrorClass::FdExhausted => Exhaustion::Process.fix().to_owned(),
        _ => "out of source addresses (EADDRNOTAVAIL): every (source IP, port) pair to this destination \
              is taken; fix: more --source-ips with --bind-mode explicit or noport, or widen \
              net.ipv4.ip_local_port_range (sysctl -w net.ipv4.ip_local_port_range=\"1024 65535\")"
            .to_owned(),
    }
}
