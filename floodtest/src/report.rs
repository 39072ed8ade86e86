//! What a person (and `--csv`) sees while the run goes on.
//!
//! The controller hands every polled [`Snapshot`] to the [`Reporter`], which
//! keeps the run's totals and histograms, and on its clock:
//! - on a terminal, redraws an indicatif bar every second: open/target,
//!   connect rate, failures and p99 latency while ramping; time held and
//!   left, open, msgs/s, lost, failures and p99 while holding (in 80
//!   columns: [`crate::live`]);
//! - off a terminal, prints a plain line every `--report-interval` with the
//!   same figures and the failure classes, ending in the seeds' `Stats:
//!   {Active, Closed, Chunks}`;
//! - writes one [`FloodInterval`] per `--report-interval` to `--csv`.
//!
//! Each failure class is reported once, the first time its count moves:
//! resource exhaustion (descriptors, source addresses) with the fix, any
//! other class with what its first failure looked like ([`crate::failure`]).

use crate::class::ErrorClass;
use crate::live::{Live, Phase, BAR_WIDTH};
use crate::stats::{new_hist, Counters, Snapshot, Timings};
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
    /// `--duration`: how long the hold lasts, for the time left.
    hold: Option<Duration>,
    /// When the hold began (the end of the ramp).
    hold_since: Option<Instant>,
    interval: Duration,
    bar: Option<ProgressBar>,
    csv: Option<csv::Writer<File>>,
    latest: Snapshot,
    /// Every histogram over the whole run.
    total: Timings,
    peak_open: u64,
    /// Length of the ramp and the streams opened in it.
    ramp: Option<(f64, u64)>,
    line: Window,
    bar_window: Window,
    /// Classes whose first failure (or fix) has been printed.
    warned: [bool; ErrorClass::ALL.len()],
}

impl Reporter {
    pub(crate) fn new(
        target: u64,
        hold: Option<Duration>,
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
                ProgressStyle::with_template(&format!("{{bar:{BAR_WIDTH}}} {{msg}}"))
                    .expect("static template is valid"),
            );
            bar
        });
        let now = Instant::now();
        Ok(Self {
            target,
            start: now,
            hold,
            hold_since: None,
            interval,
            bar,
            csv,
            latest: Snapshot::empty(),
            total: Timings::new(),
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
        self.total.add(&snap.timings);
        let _ = self.line.latency.add(&snap.timings.latency);
        let _ = self.bar_window.latency.add(&snap.timings.latency);
        self.peak_open = self.peak_open.max(snap.counters.open());
        for class in ErrorClass::ALL {
            if snap.counters.failed[class.index()] == 0 || self.warned[class.index()] {
                continue;
            }
            // Once per class: running out of something gets its fix, any
            // other failure what its first one looked like.
            let text = match class {
                ErrorClass::FdExhausted | ErrorClass::AddrUnavailable | ErrorClass::NotLocal => {
                    exhaustion_fix(class)
                }
                _ => match snap.failures.first.get(class.name()) {
                    Some(first) => format!("first {} failure: {first}", class.name()),
                    None => continue,
                },
            };
            self.warned[class.index()] = true;
            self.notice(&text);
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
        self.hold_since = Some(Instant::now());
        if let Some(bar) = &self.bar {
            // The bar showed the ramp; the hold's message says the rest.
            bar.set_style(ProgressStyle::with_template("{msg}").expect("static template is valid"));
        }
        let c = &self.latest.counters;
        self.notice(&format!(
            "ramp done in {secs:.1}s: open {}/{}, failed {} ({})",
            c.open(),
            self.target,
            c.failed_total(),
            failed_brief(&c.failed, &self.latest.failures)
        ));
    }

    /// Draws the bar and writes interval lines and records when due.
    pub(crate) fn tick(&mut self) -> anyhow::Result<()> {
        let now = Instant::now();
        if self.bar.is_some() && now.duration_since(self.bar_window.since) >= BAR_EVERY {
            let msg = self.live(now, &self.bar_window).bar_message();
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

    /// The run now, with rates over the window `w`, for the bar and the
    /// plain line.
    fn live(&self, now: Instant, w: &Window) -> Live {
        let c = &self.latest.counters;
        let phase = match self.hold_since {
            None => Phase::Ramp,
            Some(since) => {
                let held = now.duration_since(since);
                Phase::Hold {
                    held,
                    left: self.hold.map(|d| d.saturating_sub(held)),
                }
            }
        };
        Live {
            open: c.open(),
            target: self.target,
            phase,
            connect_rate: w.rate(now, w.counters.opened, c.opened),
            chunk_rate: w.rate(now, w.counters.chunks, c.chunks),
            message_rate: w.rate(now, w.counters.messages, c.messages),
            lost: c.lost,
            failed: c.failed_total(),
            failed_classes: failed_brief(&c.failed, &self.latest.failures),
            p99_us: (!w.latency.is_empty()).then(|| w.latency.value_at_quantile(0.99)),
        }
    }

    fn interval_line(&mut self, now: Instant) -> anyhow::Result<()> {
        let c = self.latest.counters;
        let elapsed = now.duration_since(self.start).as_secs_f64();
        if self.bar.is_none() {
            let line = format!(
                "floodtest: {elapsed:.1}s {} | Stats: {{{},{},{}}}",
                self.live(now, &self.line).line(),
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
                events: c.events,
            })?;
            csv.flush()?;
        }
        self.line = Window::new(now, c);
        Ok(())
    }

    /// Every histogram of the run so far.
    pub(crate) fn timings(&self) -> &Timings {
        &self.total
    }

    /// Ends the live view (a last interval record) and builds the summary.
    pub(crate) fn finish(mut self, procs: u64, workers: u64) -> anyhow::Result<FloodSummary> {
        self.interval_line(Instant::now())?;
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        let c = self.latest.counters;
        let (ramp_secs, ramp_opened) = self.ramp.unwrap_or((0.0, 0));
        let rss_conns = self.latest.rss_conns.max(1);
        Ok(FloodSummary {
            target: self.target,
            open: self.peak_open,
            held: self.latest.held,
            opened: c.opened,
            closed: c.closed,
            failed: failed_map(&c.failed),
            failed_total: c.failed_total(),
            close_codes: close_map(&c.closes),
            status_codes: self.latest.failures.codes_by_name(),
            first_failures: self.latest.failures.first.clone(),
            chunks: c.chunks,
            bytes: c.bytes,
            messages: c.messages,
            events: c.events,
            lost: c.lost,
            latency_us: percentiles(&self.total.latency),
            connect_us: percentiles(&self.total.connect),
            head_us: percentiles(&self.total.head),
            first_byte_us: percentiles(&self.total.first_byte),
            client_rss_bytes_per_conn: (self.latest.rss_delta_bytes.max(0) as u64) / rss_conns,
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
            check_failed: None,
            agents: Vec::new(),
        })
    }
}

/// Writes a line where a reader may have gone (`floodtest | head`): the run
/// goes on and still writes its summary, CSV and JSON, rather than panic as
/// `println!` does on a closed pipe.
pub(crate) fn say(out: &mut impl std::io::Write, line: &str) {
    let _ = writeln!(out, "{line}");
}

/// How to make a source address usable, for the refusal before the run and
/// the notice during it.
pub(crate) const NOT_LOCAL_FIX: &str =
    "fix: add it to an interface (`ip addr add <ip>/32 dev lo`, as root) \
     or use 127.x.y.z addresses, which are all local";

/// The one-time message for a resource running out.
fn exhaustion_fix(class: ErrorClass) -> String {
    match class {
        ErrorClass::FdExhausted => Exhaustion::Process.fix().to_owned(),
        ErrorClass::NotLocal => format!("a source address is not on this host (EADDRNOTAVAIL at bind); {NOT_LOCAL_FIX}"),
        _ => "out of source addresses (EADDRNOTAVAIL): every (source IP, port) pair to this destination \
              is taken; fix: more --source-ips with --bind-mode explicit or noport, or widen \
              net.ipv4.ip_local_port_range (sysctl -w net.ipv4.ip_local_port_range=\"1024 65535\")"
            .to_owned(),
    }
}
