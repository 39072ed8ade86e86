//! `plots per-conn`: what one connection costs, in user space and in the
//! kernel, against how many connections are open, from memlog CSVs.
//!
//! Each sample is a point at (connections, cost per connection), cost being
//! growth over the baseline sample divided by the connections added (see
//! [`crate::measure`]). User space and the kernel each get a panel and a
//! unit: bytes beside KiB on one axis hid the user space. Samples with
//! fewer than `--min-conns` connections over the baseline are left out
//! (default: 5% of the peak, at least 100), since there a few MB of
//! allocator noise over few connections swamps the figure. Each legend
//! entry carries the run's figure (the median over the plateau) with its
//! `±`, the number a reader came for, and says why when it is below zero.

use crate::canvas::{self, colour};
use crate::format::{format_bytes, format_count, format_tick};
use crate::legend::{LegendEntry, Marker};
use crate::load::{load_inputs, Input};
use crate::measure::{self, Figures, KernelPart};
use crate::panel::{self, Axis, Panel, Series};
use crate::ChartArgs;
use c1m_common::parse_count;
use c1m_common::Costs;
use c1m_common::MemSample;

#[derive(Debug, Clone, clap::Args)]
pub struct PerConnArgs {
    #[command(flatten)]
    pub chart: ChartArgs,
    #[command(flatten)]
    pub figures: Figures,
    /// Leave out samples holding fewer connections than this over the
    /// baseline (default: 5% of the peak, at least 100)
    #[arg(long, value_parser = parse_count, value_name = "N")]
    pub min_conns: Option<u64>,
}

pub(crate) fn run(args: &PerConnArgs) -> anyhow::Result<()> {
    canvas::check_png_path(&args.chart.out)?;
    let inputs = load_inputs::<MemSample>(&args.chart.files, &args.chart.labels)?;
    draw(&inputs, args)
}

/// One scatter series of an input: `kb` per connection at every sample
/// past the threshold, in bytes; the legend names the run's figure with
/// its uncertainty, and says why when that figure is below zero.
fn scatter(
    input: &Input<MemSample>,
    costs: &Costs,
    min_conns: u64,
    what: String,
    colour: plotters::style::RGBColor,
    marker: Marker,
    kb: impl Fn(&MemSample) -> u64 + Copy,
) -> Series {
    let base = costs.baseline();
    let peak = input.rows.iter().map(|s| s.conns).max().unwrap_or(0);
    let label = match costs.at_peak(kb) {
        Some(cost) => {
            let plus_minus = cost
                .plus_minus
                .map_or_else(String::new, |pm| format!(" ± {}", format_bytes(pm)));
            // Growth can be negative: the counter fell under its level at
            // the baseline (buffers the idle sample held, freed since, or
            // another process giving memory back). Say so, not just draw it.
            let why = if cost.bytes < 0.0 {
                ", below 0: it fell under its baseline level (memory freed elsewhere)"
            } else {
                ""
            };
            format!(
                "{what}: {}{plus_minus}/conn at {}{why}",
                format_bytes(cost.bytes),
                format_count(peak as f64)
            )
        }
        None => what,
    };
    Series::new(
        LegendEntry::point(label, colour, marker),
        false,
        input
            .rows
            .iter()
            .filter(|s| s.conns.saturating_sub(base.conns) >= min_conns)
            .map(|s| costs.at(s, kb).map(|c| (s.conns as f64, c.bytes))),
    )
}

/// The series of each panel: (user space, kernel).
fn series(
    inputs: &[Input<MemSample>],
    args: &PerConnArgs,
) -> anyhow::Result<(Vec<Series>, Vec<Series>)> {
    let single = inputs.len() == 1;
    let (mut user, mut kernel) = (vec![], vec![]);
    for (i, input) in inputs.iter().enumerate() {
        let costs = Costs::new(&input.rows).expect("loading refuses empty files");
        let min_conns = args
            .min_conns
            .unwrap_or_else(|| measure::default_min_conns(&costs, &input.rows));
        let base = costs.baseline();
        let peak = input.rows.iter().map(|s| s.conns).max().unwrap_or(0);
        if peak == base.conns {
            anyhow::bail!(
                "{}: connections stay at {peak} in every sample, so no cost per connection \
                 can be measured; was memlog's --port the server's?",
                input.path.display()
            );
        }
        if peak.saturating_sub(base.conns) < min_conns.max(1) {
            anyhow::bail!(
                "{}: connections only grow from {} to {}, fewer than the {} added that make a \
                 per-connection figure meaningful; lower --min-conns",
                input.path.display(),
                base.conns,
                peak,
                min_conns.max(1)
            );
        }
        let name = |what: String| {
            if single {
                what
            } else {
                format!("{}: {what}", input.label)
            }
        };
        let pick = |k: usize| colour(if single { k } else { i });
        let figure = args.figures.series;
        user.push(scatter(
            input,
            &costs,
            min_conns,
            name(format!("{} (user space)", figure.name())),
            pick(0),
            Marker::Circle,
            move |s| figure.kb(s),
        ));
        for (k, &part) in args.figures.kernel.parts().iter().enumerate() {
            let marker = match part {
                KernelPart::Slab | KernelPart::Total => Marker::Triangle,
                KernelPart::TcpMem => Marker::Cross,
            };
            kernel.push(scatter(
                input,
                &costs,
                min_conns,
                name(part.name().to_owned()),
                pick(k + 1),
                marker,
                move |s| part.kb(s),
            ));
        }
    }
    Ok((user, kernel))
}

/// Rescales a panel's bytes to KiB once they pass 2 KiB; its axis name.
fn scale_bytes(series: &mut [Series], what: &str) -> String {
    let max_bytes = series
        .iter()
        .flat_map(|s| s.segments.iter().flatten())
        .fold(0.0, |m: f64, p| m.max(p.1.abs()));
    let (unit, divisor) = if max_bytes < 2048.0 {
        ("bytes", 1.0)
    } else {
        ("KiB", 1024.0)
    };
    for s in series.iter_mut() {
        s.map_y(|b| b / divisor);
    }
    format!("{what}, {unit} per conn")
}

pub(crate) fn draw(inputs: &[Input<MemSample>], args: &PerConnArgs) -> anyhow::Result<()> {
    let (mut user, mut kernel) = series(inputs, args)?;
    // Each its own panel and unit: ~150 B of user space against ~10 KiB of
    // kernel memory, on one KiB axis, was a row of dots on zero.
    let user_desc = scale_bytes(&mut user, "User space");
    let kernel_desc = scale_bytes(&mut kernel, "Kernel");
    let max_conns = inputs
        .iter()
        .flat_map(|i| i.rows.iter().map(|s| s.conns))
        .max()
        .unwrap_or(0);
    let title = args.chart.title_or("Memory per connection", inputs);
    let x_range = canvas::padded(0.0, max_conns as f64);
    let panel = |series, desc, bottom| panel_of(series, desc, bottom, x_range.clone());
    if kernel.is_empty() {
        panel::render(&args.chart, &title, &[panel(&user, &user_desc, true)])
    } else {
        panel::render(
            &args.chart,
            &title,
            &[
                panel(&user, &user_desc, false),
                panel(&kernel, &kernel_desc, true),
            ],
        )
    }
}

/// One panel of the chart over the connections axis (described only at
/// the bottom).
fn panel_of<'a>(
    series: &'a [Series],
    desc: &'a str,
    bottom: bool,
    x_range: std::ops::Range<f64>,
) -> Panel<'a> {
    Panel {
        x_range,
        x: Axis {
            desc: if bottom { "Connections" } else { "" },
            fmt: format_count,
        },
        left: Axis {
            desc,
            fmt: format_tick,
        },
        left_log: false,
        right: None,
        series,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        per_conn: PerConnArgs,
    }

    #[test]
    fn user_space_gets_its_own_panel_in_bytes_and_a_negative_figure_says_why() {
        let args = Cli::parse_from(["x", "a.csv", "-o", "p.png", "--kernel", "both"]).per_conn;
        let (mut user, mut kernel) = series(&[crate::load::c10k_memlog()], &args).unwrap();
        let user_desc = scale_bytes(&mut user, "User space");
        let kernel_desc = scale_bytes(&mut kernel, "Kernel");
        assert_eq!(user_desc, "User space, bytes per conn");
        assert_eq!(kernel_desc, "Kernel, KiB per conn");
        let label = &user[0].entry.label;
        assert!(label.starts_with("RSS (user space): 19"), "{label}");
        assert!(label.contains(" ± "), "{label}");
        let top = panel_of(&user, &user_desc, false, 0.0..10_000.0);
        let share = panel::visible_share(&top, &user[0]);
        // The dots sit near 165 B, away from zero, on their own axis.
        assert!(top.series[0].segments[0].iter().all(|p| p.1 > 100.0));
        assert!(share < 1.0 && share > 0.0, "{share}");
        let tcp = &kernel[1].entry.label;
        assert!(tcp.starts_with("kernel TCP mem: -"), "{tcp}");
        assert!(
            tcp.ends_with("below 0: it fell under its baseline level (memory freed elsewhere)"),
            "{tcp}"
        );
        assert!(!kernel[0].entry.label.contains("below 0"));
    }
}
