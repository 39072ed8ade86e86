//! `plots flood`: a floodtest run over time, in three stacked panels
//! sharing the time axis: connections open; messages per second received
//! (and sent, with `--msggen`); delivery latency p50 and p99 in
//! milliseconds. Each figure has its own axis: on a shared one the sent
//! series hid under the open-connections line.
//!
//! Figures are drawn as what they are. An interval's figure (a rate, a
//! percentile) is one value over the whole interval, a step; a line from
//! one interval's end to the next drew ramps that did not happen. Open
//! connections are a reading at each interval's end: a dot per reading
//! joined by a line. Intervals that received no message have no latency
//! and leave a gap rather than a drop to zero.
//!
//! With `--msggen`, the generator's send rate is shaded under the receive
//! rate, on floodtest's timeline (lined up by wall clock, `unix_ms`), so a
//! server that falls behind shows as the line leaving the shade.

use crate::canvas::{self, colour, Stroke};
use crate::format::{format_count, format_tick, TimeUnit};
use crate::legend::LegendEntry;
use crate::load::{last_elapsed_s, load, load_inputs, Input};
use crate::panel::{self, Axis, Panel, Series};
use crate::ChartArgs;
use c1m_common::{FloodInterval, MsggenInterval};
use std::path::PathBuf;

#[derive(Debug, Clone, clap::Args)]
pub struct FloodArgs {
    #[command(flatten)]
    pub chart: ChartArgs,
    /// Latency axis scale; auto is log when the inputs' median p50s differ
    /// threefold or more (a faster server would otherwise be a flat line
    /// along zero), linear otherwise
    #[arg(long, value_enum, default_value_t = LatencyScale::Auto, value_name = "SCALE")]
    pub latency_scale: LatencyScale,
    /// msggen CSV of the same run: its send rate is drawn beside the
    /// receive rate (with one floodtest CSV)
    #[arg(long, value_name = "CSV")]
    pub msggen: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LatencyScale {
    Auto,
    Linear,
    Log,
}

/// Whether the latency panel is drawn on a log scale.
fn log_latency(inputs: &[Input<FloodInterval>], scale: LatencyScale) -> bool {
    match scale {
        LatencyScale::Linear => false,
        LatencyScale::Log => true,
        LatencyScale::Auto => {
            let medians: Vec<u64> = inputs
                .iter()
                .filter_map(|i| {
                    let mut p50: Vec<u64> = i
                        .rows
                        .iter()
                        .map(|r| r.latency_p50_us)
                        .filter(|&v| v > 0)
                        .collect();
                    p50.sort_unstable();
                    p50.get(p50.len() / 2).copied()
                })
                .collect();
            match (medians.iter().min(), medians.iter().max()) {
                (Some(&lo), Some(&hi)) => hi >= lo * 3,
                _ => false,
            }
        }
    }
}

pub(crate) fn run(args: &FloodArgs) -> anyhow::Result<()> {
    canvas::check_png_path(&args.chart.out)?;
    if args.msggen.is_some() && args.chart.files.len() != 1 {
        anyhow::bail!(
            "--msggen goes with one floodtest CSV (got {}): draw each run on its own chart",
            args.chart.files.len()
        );
    }
    let inputs = load_inputs::<FloodInterval>(&args.chart.files, &args.chart.labels)?;
    let sent = match &args.msggen {
        Some(path) => load::<MsggenInterval>(path)?,
        None => vec![],
    };
    draw(
        &inputs,
        &sent,
        &args.chart,
        log_latency(&inputs, args.latency_scale),
    )
}

/// msggen's send rate on the timeline of `flood` (seconds since floodtest
/// started), lined up by wall clock, as `(start, end, rate)` of each of its
/// intervals; those outside floodtest's run are left out.
fn sent_rate(flood: &[FloodInterval], sent: &[MsggenInterval]) -> Vec<(f64, f64, f64)> {
    let (first, last) = (&flood[0], &flood[flood.len() - 1]);
    let on_flood =
        |m: &MsggenInterval| first.elapsed_s + (m.unix_ms as f64 - first.unix_ms as f64) / 1000.0;
    let mut out = Vec::new();
    let mut start: Option<f64> = None;
    for m in sent {
        let end = on_flood(m);
        let from = start.unwrap_or(end - (m.elapsed_s.min(1.0)));
        start = Some(end);
        if (0.0..=last.elapsed_s).contains(&end) {
            out.push((from.max(0.0), end, m.rate));
        }
    }
    out
}

/// An interval's figure as what it is: one value over the whole interval
/// (from the previous row's end, or 0, to its own), not a line from one
/// interval's end to the next, which drew ramps that did not happen.
/// `None` leaves a gap.
fn steps(intervals: impl IntoIterator<Item = (f64, f64, Option<f64>)>) -> Vec<Option<(f64, f64)>> {
    let mut out = Vec::new();
    for (from, to, value) in intervals {
        match value {
            Some(v) => out.extend([Some((from, v)), Some((to, v))]),
            None => out.push(None),
        }
    }
    out
}

/// Each row's interval on the time axis: from the previous row's end (0
/// for the first) to its own.
fn intervals(rows: &[FloodInterval], time: TimeUnit) -> Vec<(f64, f64)> {
    let mut from = 0.0;
    rows.iter()
        .map(|r| {
            let to = time.scale_seconds(r.elapsed_s);
            let span = (from, to);
            from = to;
            span
        })
        .collect()
}

/// The series of each panel: (connections, messages, latency).
fn series(
    inputs: &[Input<FloodInterval>],
    sent: &[MsggenInterval],
    time: TimeUnit,
) -> [Vec<Series>; 3] {
    let single = inputs.len() == 1;
    let [mut conns, mut messages, mut latency] = [vec![], vec![], vec![]];
    for (i, input) in inputs.iter().enumerate() {
        let entry = |k: usize, what: &str, stroke| {
            let name = if single {
                what.to_owned()
            } else {
                format!("{}: {what}", input.label)
            };
            LegendEntry::line(name, colour(if single { k } else { i }), stroke)
        };
        let ms = |us: u64| us as f64 / 1000.0;
        // floodtest writes 0 for an interval without messages.
        let has_latency = |r: &FloodInterval| r.latency_p50_us > 0 || r.latency_p99_us > 0;
        let rows = &input.rows;
        let spans = intervals(rows, time);
        let stepped = |value: &dyn Fn(&FloodInterval) -> Option<f64>| {
            steps(spans.iter().zip(rows).map(|(&(a, b), r)| (a, b, value(r))))
        };
        // A gauge read at each interval's end: a dot per reading.
        conns.push(Series::new(
            entry(0, "open connections", Stroke::Sampled),
            false,
            rows.iter()
                .map(|r| Some((time.scale_seconds(r.elapsed_s), r.open as f64))),
        ));
        if !sent.is_empty() {
            // Shaded under the received line, so both show where they
            // agree (sent exactly as received is the healthy case).
            let spans = sent_rate(rows, sent)
                .into_iter()
                .map(|(a, b, rate)| (time.scale_seconds(a), time.scale_seconds(b), Some(rate)));
            messages.push(Series::new(
                entry(5, "messages/s sent (msggen)", Stroke::Shade),
                false,
                steps(spans),
            ));
        }
        messages.push(Series::new(
            entry(1, "messages/s received", Stroke::Solid),
            false,
            stepped(&|r| Some(r.message_rate)),
        ));
        latency.push(Series::new(
            entry(2, "latency p50", Stroke::Solid),
            false,
            stepped(&|r| has_latency(r).then(|| ms(r.latency_p50_us))),
        ));
        latency.push(Series::new(
            entry(3, "latency p99", Stroke::Dashed),
            false,
            stepped(&|r| has_latency(r).then(|| ms(r.latency_p99_us))),
        ));
    }
    [conns, messages, latency]
}

pub(crate) fn draw(
    inputs: &[Input<FloodInterval>],
    sent: &[MsggenInterval],
    chart: &ChartArgs,
    log_latency: bool,
) -> anyhow::Result<()> {
    let last_s = last_elapsed_s(inputs);
    let time = TimeUnit::for_span(last_s);
    let [conns, messages, latency] = series(inputs, sent, time);
    let title = chart.title_or("Connections, messages and latency", inputs);
    let x_range = canvas::time_range(time.scale_seconds(last_s));
    let panel = |series, desc, fmt: fn(f64) -> String, bottom: bool, log: bool| Panel {
        x_range: x_range.clone(),
        x: Axis {
            desc: if bottom { time.axis_label() } else { "" },
            fmt: format_tick,
        },
        left: Axis { desc, fmt },
        left_log: log,
        right: None,
        series,
    };
    let latency_desc = if log_latency {
        "Latency (ms, log scale)"
    } else {
        "Latency (ms)"
    };
    panel::render(
        chart,
        &title,
        &[
            panel(&conns, "Open connections", format_count, false, false),
            panel(&messages, "Messages/s", format_count, false, false),
            panel(&latency, latency_desc, format_tick, true, log_latency),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::legend::Mark;

    fn input(p50_us: &[u64]) -> Input<FloodInterval> {
        let rows = p50_us
            .iter()
            .enumerate()
            .map(|(i, &p50)| FloodInterval {
                unix_ms: 1000 * i as u64,
                elapsed_s: i as f64,
                target: 10,
                open: 10,
                opened: 10,
                closed: 0,
                failed: 0,
                chunks: 0,
                bytes: 0,
                messages: 0,
                lost: 0,
                connect_rate: 0.0,
                message_rate: if p50 > 0 { 100.0 } else { 0.0 },
                latency_p50_us: p50,
                latency_p99_us: p50 * 5,
                latency_p999_us: p50 * 9,
                latency_max_us: p50 * 20,
                events: 0,
            })
            .collect();
        Input {
            label: "x".into(),
            path: "x.csv".into(),
            rows,
        }
    }

    #[test]
    fn auto_latency_scale_goes_log_when_medians_differ_threefold() {
        let fast = input(&[0, 300, 350, 400]);
        let slow = input(&[0, 0, 2000, 2100, 2200]);
        let close = input(&[500, 600, 700]);
        assert!(log_latency(
            &[fast.clone(), slow.clone()],
            LatencyScale::Auto
        ));
        assert!(!log_latency(&[fast.clone(), close], LatencyScale::Auto));
        assert!(!log_latency(
            std::slice::from_ref(&slow),
            LatencyScale::Auto
        ));
        assert!(!log_latency(&[fast.clone(), slow], LatencyScale::Linear));
        assert!(log_latency(&[fast], LatencyScale::Log));
    }

    #[test]
    fn send_rate_is_lined_up_by_wall_clock() {
        let flood = input(&[0, 300, 300, 300]).rows; // elapsed 0..=3 s
        let at = |unix_ms: u64, rate: f64| MsggenInterval {
            unix_ms,
            elapsed_s: 99.0,
            sent: 0,
            failed: 0,
            dropped: 0,
            rate,
            gap_p50_us: 0,
            gap_p99_us: 0,
            gap_max_us: 0,
        };
        let sent = [at(0, 1.0), at(1500, 2.0), at(2500, 3.0), at(4000, 4.0)];
        // msggen's own elapsed_s only bounds the first interval's length;
        // 4.0 s is past floodtest's end.
        assert_eq!(
            sent_rate(&flood, &sent),
            [(0.0, 0.0, 1.0), (0.0, 1.5, 2.0), (1.5, 2.5, 3.0)]
        );
        let late = [at(10_000, 5.0)];
        assert_eq!(sent_rate(&flood, &late), []);
    }

    #[test]
    fn interval_figures_are_steps_with_gaps_and_readings_are_dots() {
        let [conns, _, latency] = series(&[input(&[0, 300, 0, 400])], &[], TimeUnit::Seconds);
        assert_eq!(
            conns[0].segments,
            vec![vec![(0.0, 10.0), (1.0, 10.0), (2.0, 10.0), (3.0, 10.0)]]
        );
        assert_eq!(conns[0].entry.mark, Mark::Line(Stroke::Sampled));
        // p50 over (0, 1] s is 0.3 ms, none over (1, 2], 0.4 over (2, 3].
        assert_eq!(
            latency[0].segments,
            vec![vec![(0.0, 0.3), (1.0, 0.3)], vec![(2.0, 0.4), (3.0, 0.4)]]
        );
        assert_eq!(
            latency[1].segments,
            vec![vec![(0.0, 1.5), (1.0, 1.5)], vec![(2.0, 2.0), (3.0, 2.0)]]
        );
    }

    #[test]
    fn sent_and_received_share_a_panel_of_their_own() {
        let flood = input(&[300, 300, 300]);
        let sent = [MsggenInterval {
            unix_ms: 1000,
            elapsed_s: 1.0,
            sent: 100,
            failed: 0,
            dropped: 0,
            rate: 100.0,
            gap_p50_us: 0,
            gap_p99_us: 0,
            gap_max_us: 0,
        }];
        let [conns, messages, _] = series(&[flood], &sent, TimeUnit::Seconds);
        let labels: Vec<&str> = messages.iter().map(|s| s.entry.label.as_str()).collect();
        assert_eq!(labels, ["messages/s sent (msggen)", "messages/s received"]);
        assert!(conns.iter().all(|s| !s.entry.label.contains("messages")));
        // The sent rate is a shade (drawn first, under the received line).
        assert_eq!(messages[0].entry.mark, Mark::Line(Stroke::Shade));
        assert_eq!(messages[0].segments, vec![vec![(0.0, 100.0), (1.0, 100.0)]]);
    }
}
