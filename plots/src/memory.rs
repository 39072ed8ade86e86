//! `plots memory`: memory against time, Part 2's "Mem usage with 10k active
//! connections, 1000 msg/sec", from memlog CSVs.
//!
//! Drawn per input: the user-space figure (RSS or PSS, thick solid line),
//! kernel memory (Slab dashed, TCP pages dotted) and the connections held
//! (right axis: shaded with one input, a thin line with several). Kernel counters are system-wide, so they are
//! drawn as growth since the input's first sample: the machine's baseline
//! (often larger than the server) says nothing about the connections.
//!
//! With one input each series has its own colour; with several, colour
//! says which input and the stroke says which series.

use crate::canvas::{self, colour, Stroke};
use crate::format::{format_count, format_tick, MemUnit, TimeUnit};
use crate::legend::LegendEntry;
use crate::load::{last_elapsed_s, load_inputs, Input};
use crate::measure::Figures;
use crate::panel::{self, Axis, Panel, Series};
use crate::ChartArgs;
use c1m_common::MemSample;

#[derive(Debug, Clone, clap::Args)]
pub struct MemoryArgs {
    #[command(flatten)]
    pub chart: ChartArgs,
    #[command(flatten)]
    pub figures: Figures,
    /// Leave out the connections line (right axis)
    #[arg(long)]
    pub no_conns: bool,
}

pub(crate) fn run(args: &MemoryArgs) -> anyhow::Result<()> {
    canvas::check_png_path(&args.chart.out)?;
    let inputs = load_inputs::<MemSample>(&args.chart.files, &args.chart.labels)?;
    draw(&inputs, args)
}

/// What the default title says: Part 2's wording for one input.
fn what(inputs: &[Input<MemSample>]) -> String {
    match inputs {
        [one] => {
            let peak = one.rows.iter().map(|s| s.conns).max().unwrap_or(0);
            format!("Memory use with {} connections", format_count(peak as f64))
        }
        _ => "Memory use".to_owned(),
    }
}

/// The series of every input: x in `time`, memory in KiB.
fn series(inputs: &[Input<MemSample>], args: &MemoryArgs, time: TimeUnit) -> Vec<Series> {
    let single = inputs.len() == 1;
    let mut out = vec![];
    for (i, input) in inputs.iter().enumerate() {
        // One input: a colour per series; several: a colour per input.
        let mut next = 0;
        let mut pick = || {
            let c = colour(if single { next } else { i });
            next += 1;
            c
        };
        let name = |what: &str| {
            if single {
                what.to_owned()
            } else {
                format!("{}: {what}", input.label)
            }
        };
        let x = |s: &MemSample| time.scale_seconds(s.elapsed_s);
        let user = args.figures.series;
        out.push(Series::new(
            LegendEntry::line(
                name(&format!("{} (user space)", user.name())),
                pick(),
                Stroke::Solid,
            ),
            false,
            input.rows.iter().map(|s| Some((x(s), user.kb(s) as f64))),
        ));
        let first = &input.rows[0];
        for (k, part) in args.figures.kernel.parts().iter().enumerate() {
            let stroke = if k == 0 {
                Stroke::Dashed
            } else {
                Stroke::Dotted
            };
            out.push(Series::new(
                LegendEntry::line(name(&format!("{} growth", part.name())), pick(), stroke),
                false,
                input.rows.iter().map(|s| {
                    let growth = part.kb(s) as f64 - part.kb(first) as f64;
                    Some((x(s), growth))
                }),
            ));
        }
        if !args.no_conns {
            out.push(Series::new(
                LegendEntry::line(
                    name("connections (right axis)"),
                    pick(),
                    // Overlapping shades of several inputs would muddle.
                    if single { Stroke::Shade } else { Stroke::Thin },
                ),
                true,
                input.rows.iter().map(|s| Some((x(s), s.conns as f64))),
            ));
        }
    }
    out
}

pub(crate) fn draw(inputs: &[Input<MemSample>], args: &MemoryArgs) -> anyhow::Result<()> {
    let last_s = last_elapsed_s(inputs);
    let time = TimeUnit::for_span(last_s);
    let mut all = series(inputs, args, time);
    let max_kb = all
        .iter()
        .filter(|s| !s.right_axis)
        .flat_map(|s| s.segments.iter().flatten())
        .fold(0.0, |m: f64, p| m.max(p.1.abs()));
    let mem = MemUnit::for_max_kb(max_kb);
    for s in all.iter_mut().filter(|s| !s.right_axis) {
        s.map_y(|kb| mem.scale_kb(kb));
    }
    let title = args.chart.title_or(&what(inputs), inputs);
    let y_desc = format!("Memory ({})", mem.name());
    panel::render(
        &args.chart,
        &title,
        &Panel {
            x_range: canvas::time_range(time.scale_seconds(last_s)),
            x: Axis {
                desc: time.axis_label(),
                fmt: format_tick,
            },
            left: Axis {
                desc: &y_desc,
                fmt: format_tick,
            },
            left_log: false,
            right: (!args.no_conns).then_some(Axis {
                desc: "Connections",
                fmt: format_count,
            }),
            series: &all,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        memory: MemoryArgs,
    }

    fn input(label: &str, rows: usize) -> Input<MemSample> {
        let rows = (0..rows as u64)
            .map(|i| MemSample {
                unix_ms: i * 1000,
                elapsed_s: i as f64 * 60.0,
                rss_kb: 10_000 + i * 100,
                pss_kb: 9_000 + i * 100,
                vsz_kb: 50_000,
                procs: 1,
                conns: i * 10,
                slab_kb: 400_000 + i * 95,
                tcp_mem_kb: 100,
                mem_available_kb: 1,
            })
            .collect();
        Input {
            label: label.to_owned(),
            path: format!("{label}.csv").into(),
            rows,
        }
    }

    fn labels(series: &[Series]) -> Vec<&str> {
        series.iter().map(|s| s.entry.label.as_str()).collect()
    }

    #[test]
    fn several_inputs_are_named_and_coloured_by_input() {
        let args =
            Cli::parse_from(["x", "a.csv", "b.csv", "-o", "m.png", "--kernel", "both"]).memory;
        let all = series(
            &[input("ours", 5), input("other", 5)],
            &args,
            TimeUnit::Minutes,
        );
        assert_eq!(
            labels(&all),
            [
                "ours: RSS (user space)",
                "ours: kernel Slab growth",
                "ours: kernel TCP mem growth",
                "ours: connections (right axis)",
                "other: RSS (user space)",
                "other: kernel Slab growth",
                "other: kernel TCP mem growth",
                "other: connections (right axis)",
            ]
        );
        assert!(all[..4].iter().all(|s| s.entry.colour == colour(0)));
        assert!(all[4..].iter().all(|s| s.entry.colour == colour(1)));
        // Kernel memory is growth since the first sample; time in minutes.
        assert_eq!(all[1].segments[0][2], (2.0, 190.0));
    }

    #[test]
    fn one_input_gets_a_colour_per_series_and_part_2s_title() {
        let args = Cli::parse_from(["x", "a.csv", "-o", "m.png", "--series", "pss"]).memory;
        let inputs = [input("ours", 3)];
        let all = series(&inputs, &args, TimeUnit::Minutes);
        assert_eq!(
            labels(&all),
            [
                "PSS (user space)",
                "kernel Slab growth",
                "connections (right axis)"
            ]
        );
        assert_ne!(all[0].entry.colour, all[1].entry.colour);
        assert_eq!(all[0].segments[0][1], (1.0, 9_100.0));
        assert_eq!(
            args.chart.title_or(&what(&inputs), &inputs),
            "Memory use with 20 connections"
        );
    }
}
