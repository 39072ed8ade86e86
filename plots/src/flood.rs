//! `plots flood`: a floodtest run over time, in two stacked panels sharing
//! the time axis. Above: connections open (left axis) and messages
//! received per second (right axis). Below: delivery latency p50 and p99 in
//! milliseconds; intervals that received no message have no latency and
//! leave a gap rather than a drop to zero.
//!
//! With `--msggen`, the generator's send rate is drawn beside the receive
//! rate, on floodtest's timeline (lined up by wall clock, `unix_ms`), so a
//! server that falls behind shows as the two rates parting.

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
/// started), lined up by wall clock; points outside floodtest's run are
/// left out.
fn sent_rate(flood: &[FloodInterval], sent: &[MsggenInterval]) -> Vec<Option<(f64, f64)>> {
    let (first, last) = (&flood[0], &flood[flood.len() - 1]);
    sent.iter()
        .map(|m| first.elapsed_s + (m.unix_ms as f64 - first.unix_ms as f64) / 1000.0)
        .zip(sent)
        .filter(|&(t, _)| (0.0..=last.elapsed_s).contains(&t))
        .map(|(t, m)| Some((t, m.rate)))
        .collect()
}

/// The series of each panel: (upper, lower).
fn series(
    inputs: &[Input<FloodInterval>],
    sent: &[MsggenInterval],
    time: TimeUnit,
) -> (Vec<Series>, Vec<Series>) {
    let single = inputs.len() == 1;
    let (mut upper, mut lower) = (vec![], vec![]);
    for (i, input) in inputs.iter().enumerate() {
        let entry = |k: usize, what: &str, stroke| {
            let name = if single {
                what.to_owned()
            } else {
                format!("{}: {what}", input.label)
            };
            LegendEntry::line(name, colour(if single { k } else { i }), stroke)
        };
        let x = |r: &FloodInterval| time.scale_seconds(r.elapsed_s);
        let ms = |us: u64| us as f64 / 1000.0;
        // floodtest writes 0 for an interval without messages.
        let has_latency = |r: &FloodInterval| r.latency_p50_us > 0 || r.latency_p99_us > 0;
        let rows = &input.rows;
        upper.push(Series::new(
            entry(0, "open connections", Stroke::Solid),
            false,
            rows.iter().map(|r| Some((x(r), r.open as f64))),
        ));
        upper.push(Series::new(
            entry(1, "messages/s received (right axis)", Stroke::Dashed),
            true,
            rows.iter().map(|r| Some((x(r), r.message_rate))),
        ));
        if !sent.is_empty() {
            let points = sent_rate(rows, sent).into_iter();
            upper.push(Series::new(
                entry(4, "messages/s sent (msggen, right axis)", Stroke::Dotted),
                true,
                points.map(|p| p.map(|(t, rate)| (time.scale_seconds(t), rate))),
            ));
        }
        lower.push(Series::new(
            entry(2, "latency p50", Stroke::Solid),
            false,
            rows.iter()
                .map(|r| has_latency(r).then(|| (x(r), ms(r.latency_p50_us)))),
        ));
        lower.push(Series::new(
            entry(3, "latency p99", Stroke::Dashed),
            false,
            rows.iter()
                .map(|r| has_latency(r).then(|| (x(r), ms(r.latency_p99_us)))),
        ));
    }
    (upper, lower)
}

pub(crate) fn draw(
    inputs: &[Input<FloodInterval>],
    sent: &[MsggenInterval],
    chart: &ChartArgs,
    log_latency: bool,
) -> anyhow::Result<()> {
    let last_s = last_elapsed_s(inputs);
    let time = TimeUnit::for_span(last_s);
    let (upper, lower) = series(inputs, sent, time);
    let legend: Vec<LegendEntry> = upper
        .iter()
        .chain(&lower)
        .map(|s| s.entry.clone())
        .collect();
    let title = chart.title_or("Connections, messages and latency", inputs);
    let x_range = canvas::time_range(time.scale_seconds(last_s));
    canvas::render(&chart.out, chart.size, &title, &legend, |area, style| {
        let height = area.dim_in_pixel().1;
        let (top, bottom) = area.split_vertically(height * 52 / 100);
        panel::draw(
            &top,
            style,
            &Panel {
                x_range: x_range.clone(),
                x: Axis {
                    desc: "",
                    fmt: format_tick,
                },
                left: Axis {
                    desc: "Open connections",
                    fmt: format_count,
                },
                left_log: false,
                right: Some(Axis {
                    desc: "Messages/s",
                    fmt: format_count,
                }),
                series: &upper,
            },
        )?;
        panel::draw(
            &bottom,
            style,
            &Panel {
                x_range,
                x: Axis {
                    desc: time.axis_label(),
                    fmt: format_tick,
                },
                left: Axis {
                    desc: if log_latency {
                        "Latency (ms, log scale)"
                    } else {
                        "Latency (ms)"
                    },
                    fmt: format_tick,
                },
                left_log: log_latency,
                // No series on it: the room kept lines the panels up.
                right: Some(Axis {
                    desc: "",
                    fmt: format_tick,
                }),
                series: &lower,
            },
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
        // msggen's own elapsed_s is ignored; 4.0 s is past floodtest's end.
        assert_eq!(
            sent_rate(&flood, &sent),
            [Some((0.0, 1.0)), Some((1.5, 2.0)), Some((2.5, 3.0))]
        );
        let late = [at(10_000, 5.0)];
        assert_eq!(sent_rate(&flood, &late), []);
    }

    #[test]
    fn intervals_without_messages_leave_gaps_in_latency() {
        let (upper, lower) = series(&[input(&[0, 300, 0, 400])], &[], TimeUnit::Seconds);
        assert_eq!(
            upper[0].segments,
            vec![vec![(0.0, 10.0), (1.0, 10.0), (2.0, 10.0), (3.0, 10.0)]]
        );
        assert_eq!(lower[0].segments, vec![vec![(1.0, 0.3)], vec![(3.0, 0.4)]]);
        assert_eq!(lower[1].segments, vec![vec![(1.0, 1.5)], vec![(3.0, 2.0)]]);
    }
}
