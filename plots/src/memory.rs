//! `plots memory`: memory against time, Part 2's "Mem usage with 10k active
//! connections, 1000 msg/sec", from memlog CSVs.
//!
//! Two panels over one time axis, each with the unit its data needs:
//! above, the user-space figure (RSS or PSS, thick solid line); below,
//! kernel memory (Slab dashed, TCP pages dotted, or their total); in both,
//! the connections held (right axis: shaded with one input, a thin line
//! with several). On one axis the server's few MiB were a flat line under
//! the kernel's hundreds. Kernel counters are system-wide, so they are
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

/// The series of every input, x in `time`, memory in KiB: user space for
/// the upper panel, kernel growth for the lower; the connections (right
/// axis) go in both, so each panel shows what the memory follows.
fn series(
    inputs: &[Input<MemSample>],
    args: &MemoryArgs,
    time: TimeUnit,
) -> (Vec<Series>, Vec<Series>) {
    let single = inputs.len() == 1;
    let (mut user, mut kernel) = (vec![], vec![]);
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
        let figure = args.figures.series;
        user.push(Series::new(
            LegendEntry::line(
                name(&format!("{} (user space)", figure.name())),
                pick(),
                Stroke::Solid,
            ),
            false,
            input.rows.iter().map(|s| Some((x(s), figure.kb(s) as f64))),
        ));
        let first = &input.rows[0];
        for (k, part) in args.figures.kernel.parts().iter().enumerate() {
            let stroke = if k == 0 {
                Stroke::Dashed
            } else {
                Stroke::Dotted
            };
            kernel.push(Series::new(
                LegendEntry::line(name(&format!("{} growth", part.name())), pick(), stroke),
                false,
                input.rows.iter().map(|s| {
                    let growth = part.kb(s) as f64 - part.kb(first) as f64;
                    Some((x(s), growth))
                }),
            ));
        }
        if !args.no_conns {
            let conns = Series::new(
                LegendEntry::line(
                    name("connections (right axis)"),
                    pick(),
                    // Overlapping shades of several inputs would muddle.
                    if single { Stroke::Shade } else { Stroke::Thin },
                ),
                true,
                input.rows.iter().map(|s| Some((x(s), s.conns as f64))),
            );
            user.push(conns.clone());
            kernel.push(conns);
        }
    }
    (user, kernel)
}

/// Rescales one panel's memory series (KiB) into the unit its own largest
/// value calls for; returns the axis description.
fn scale_memory(series: &mut [Series], what: &str) -> String {
    let max_kb = series
        .iter()
        .filter(|s| !s.right_axis)
        .flat_map(|s| s.segments.iter().flatten())
        .fold(0.0, |m: f64, p| m.max(p.1.abs()));
    let mem = MemUnit::for_max_kb(max_kb);
    for s in series.iter_mut().filter(|s| !s.right_axis) {
        s.map_y(|kb| mem.scale_kb(kb));
    }
    format!("{what} ({})", mem.name())
}

/// The two panels of the chart, each with the unit its own data needs:
/// the user-space line is a few MiB where the kernel's growth is hundreds,
/// and on one axis it was a flat line along the bottom.
fn panels<'a>(
    inputs: &[Input<MemSample>],
    args: &MemoryArgs,
    user: &'a mut [Series],
    kernel: &'a mut [Series],
) -> [(Panel<'a>, String); 2] {
    let last_s = last_elapsed_s(inputs);
    let time = TimeUnit::for_span(last_s);
    let x_range = canvas::time_range(time.scale_seconds(last_s));
    let user_desc = scale_memory(user, "User space");
    let kernel_desc = if args.figures.kernel.parts().is_empty() {
        String::new()
    } else {
        scale_memory(kernel, "Kernel growth")
    };
    let right = (!args.no_conns).then_some(Axis {
        desc: "Connections",
        fmt: format_count,
    });
    let panel = |series: &'a [Series], bottom: bool| Panel {
        x_range: x_range.clone(),
        x: Axis {
            desc: if bottom { time.axis_label() } else { "" },
            fmt: format_tick,
        },
        left: Axis {
            desc: "",
            fmt: format_tick,
        },
        left_log: false,
        right: right.as_ref().map(|a| Axis {
            desc: a.desc,
            fmt: a.fmt,
        }),
        series,
    };
    let kernel_shown = !args.figures.kernel.parts().is_empty();
    [
        (panel(user, !kernel_shown), user_desc),
        (panel(kernel, true), kernel_desc),
    ]
}

pub(crate) fn draw(inputs: &[Input<MemSample>], args: &MemoryArgs) -> anyhow::Result<()> {
    let time = TimeUnit::for_span(last_elapsed_s(inputs));
    let (mut user, mut kernel) = series(inputs, args, time);
    let kernel_shown = !args.figures.kernel.parts().is_empty();
    let [(mut top, top_desc), (mut bottom, bottom_desc)] =
        panels(inputs, args, &mut user, &mut kernel);
    top.left.desc = &top_desc;
    bottom.left.desc = &bottom_desc;
    let title = args.chart.title_or(&what(inputs), inputs);
    if kernel_shown {
        panel::render(&args.chart, &title, &[top, bottom])
    } else {
        panel::render(&args.chart, &title, &[top])
    }
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
                ..MemSample::default()
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
        let (user, kernel) = series(
            &[input("ours", 5), input("other", 5)],
            &args,
            TimeUnit::Minutes,
        );
        assert_eq!(
            labels(&user),
            [
                "ours: RSS (user space)",
                "ours: connections (right axis)",
                "other: RSS (user space)",
                "other: connections (right axis)",
            ]
        );
        assert_eq!(
            labels(&kernel),
            [
                "ours: kernel Slab growth",
                "ours: kernel TCP mem growth",
                "ours: connections (right axis)",
                "other: kernel Slab growth",
                "other: kernel TCP mem growth",
                "other: connections (right axis)",
            ]
        );
        assert!(kernel[..3].iter().all(|s| s.entry.colour == colour(0)));
        assert!(kernel[3..].iter().all(|s| s.entry.colour == colour(1)));
        // Kernel memory is growth since the first sample; time in minutes.
        assert_eq!(kernel[0].segments[0][2], (2.0, 190.0));
    }

    #[test]
    fn one_input_gets_a_colour_per_series_and_part_2s_title() {
        let args = Cli::parse_from(["x", "a.csv", "-o", "m.png", "--series", "pss"]).memory;
        let inputs = [input("ours", 3)];
        let (user, kernel) = series(&inputs, &args, TimeUnit::Minutes);
        assert_eq!(
            labels(&user),
            ["PSS (user space)", "connections (right axis)"]
        );
        assert_eq!(
            labels(&kernel),
            ["kernel Slab growth", "connections (right axis)"]
        );
        assert_ne!(user[0].entry.colour, kernel[0].entry.colour);
        assert_eq!(user[0].segments[0][1], (1.0, 9_100.0));
        assert_eq!(
            args.chart.title_or(&what(&inputs), &inputs),
            "Memory use with 20 connections"
        );
    }

    #[test]
    fn user_space_spans_a_visible_part_of_its_own_axis() {
        // On one axis with the kernel's ~90 MiB, the server's 2 MiB of
        // growth over 4 MiB was a line along the bottom (2% of the axis).
        let args = Cli::parse_from(["x", "a.csv", "-o", "m.png", "--kernel", "both"]).memory;
        let inputs = [crate::load::c10k_memlog()];
        let time = TimeUnit::for_span(last_elapsed_s(&inputs));
        let (mut user, mut kernel) = series(&inputs, &args, time);
        let [(top, _), (bottom, _)] = panels(&inputs, &args, &mut user, &mut kernel);
        let share = panel::visible_share(&top, &top.series[0]);
        assert!(share >= 0.25, "RSS spans {share:.2} of its axis");
        assert_eq!(top.series[0].entry.label, "RSS (user space)");
        let slab = panel::visible_share(&bottom, &bottom.series[0]);
        assert!(slab >= 0.8, "Slab growth spans {slab:.2} of its axis");
        // The connections shade spans its right axis in both panels.
        assert!(panel::visible_share(&top, &top.series[1]) >= 0.8);
    }
}
