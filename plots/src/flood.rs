//! `plots flood`: a floodtest run over time, in two stacked panels sharing
//! the time axis. Above: connections open (left axis) and messages
//! received per second (right axis). Below: delivery latency p50 and p99 in
//! milliseconds; intervals that received no message have no latency and
//! leave a gap rather than a drop to zero.

use crate::canvas::{self, colour, Stroke};
use crate::format::{format_count, format_tick, TimeUnit};
use crate::legend::LegendEntry;
use crate::load::{last_elapsed_s, load_inputs, Input};
use crate::panel::{self, Axis, Panel, Series};
use crate::ChartArgs;
use c1m_common::records::FloodInterval;

#[derive(Debug, Clone, clap::Args)]
pub struct FloodArgs {
    #[command(flatten)]
    pub chart: ChartArgs,
}

pub fn run(args: &FloodArgs) -> anyhow::Result<()> {
    canvas::check_png_path(&args.chart.out)?;
    let inputs = load_inputs::<FloodInterval>(&args.chart.files, &args.chart.labels)?;
    draw(&inputs, &args.chart)
}

fn title(inputs: &[Input<FloodInterval>]) -> String {
    let labels: Vec<&str> = inputs.iter().map(|i| i.label.as_str()).collect();
    format!("Connections, messages and latency: {}", labels.join(" vs "))
}

/// The series of each panel: (upper, lower).
fn series(inputs: &[Input<FloodInterval>], time: TimeUnit) -> (Vec<Series>, Vec<Series>) {
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
        let x = |r: &FloodInterval| time.from_seconds(r.elapsed_s);
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
            entry(1, "messages/s (right axis)", Stroke::Dashed),
            true,
            rows.iter().map(|r| Some((x(r), r.message_rate))),
        ));
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

pub fn draw(inputs: &[Input<FloodInterval>], chart: &ChartArgs) -> anyhow::Result<()> {
    let last_s = last_elapsed_s(inputs);
    let time = TimeUnit::for_span(last_s);
    let (upper, lower) = series(inputs, time);
    let legend: Vec<LegendEntry> = upper
        .iter()
        .chain(&lower)
        .map(|s| s.entry.clone())
        .collect();
    let title = chart.title.clone().unwrap_or_else(|| title(inputs));
    let x_range = canvas::time_range(time.from_seconds(last_s));
    canvas::render(&chart.out, chart.size, &title, &legend, |area| {
        let height = area.dim_in_pixel().1;
        let (top, bottom) = area.split_vertically(height * 52 / 100);
        panel::draw(
            &top,
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
                right: Some(Axis {
                    desc: "Messages/s",
                    fmt: format_count,
                }),
                series: &upper,
            },
        )?;
        panel::draw(
            &bottom,
            &Panel {
                x_range,
                x: Axis {
                    desc: time.axis_label(),
                    fmt: format_tick,
                },
                left: Axis {
                    desc: "Latency (ms)",
                    fmt: format_tick,
                },
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
