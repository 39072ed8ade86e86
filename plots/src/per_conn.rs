//! `plots per-conn`: what one connection costs, in user space and in the
//! kernel, against how many connections are open, from memlog CSVs.
//!
//! Each sample is a point at (connections, cost per connection), cost being
//! growth over the baseline sample divided by the connections added (see
//! [`crate::measure`]). Samples with fewer than `--min-conns` connections
//! over the baseline are left out (default: 5% of the peak, at least 100),
//! since there a few MB of allocator noise over few connections swamps the
//! figure. Each legend entry carries the median cost at the plateau, the
//! number a reader came for.

use crate::canvas::{self, colour};
use crate::format::{format_bytes, format_count, format_tick};
use crate::legend::{LegendEntry, Marker};
use crate::load::{load_inputs, Input};
use crate::measure::{self, Figures, KernelPart};
use crate::panel::{self, Axis, Panel, Series};
use crate::ChartArgs;
use c1m_common::parse_count;
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
/// past the threshold, in bytes; the legend names the plateau figure.
fn scatter(
    input: &Input<MemSample>,
    min_conns: u64,
    what: String,
    colour: plotters::style::RGBColor,
    marker: Marker,
    kb: impl Fn(&MemSample) -> u64 + Copy,
) -> Series {
    let (_, base) = measure::baseline(&input.rows);
    let label = match measure::plateau_per_conn(&input.rows, kb) {
        Some((peak, bytes)) => format!(
            "{what}: {}/conn at {}",
            format_bytes(bytes),
            format_count(peak as f64)
        ),
        None => what,
    };
    Series::new(
        LegendEntry::point(label, colour, marker),
        false,
        input
            .rows
            .iter()
            .filter(|s| s.conns.saturating_sub(base.conns) >= min_conns)
            .map(|s| measure::per_conn_bytes(s, base, kb).map(|b| (s.conns as f64, b))),
    )
}

fn series(inputs: &[Input<MemSample>], args: &PerConnArgs) -> anyhow::Result<Vec<Series>> {
    let single = inputs.len() == 1;
    let mut out = vec![];
    for (i, input) in inputs.iter().enumerate() {
        let min_conns = args
            .min_conns
            .unwrap_or_else(|| measure::default_min_conns(&input.rows));
        let (_, base) = measure::baseline(&input.rows);
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
        let user = args.figures.series;
        out.push(scatter(
            input,
            min_conns,
            name(format!("{} (user space)", user.name())),
            pick(0),
            Marker::Circle,
            move |s| user.kb(s),
        ));
        for (k, &part) in args.figures.kernel.parts().iter().enumerate() {
            let marker = match part {
                KernelPart::Slab => Marker::Triangle,
                KernelPart::TcpMem => Marker::Cross,
            };
            out.push(scatter(
                input,
                min_conns,
                name(part.name().to_owned()),
                pick(k + 1),
                marker,
                move |s| part.kb(s),
            ));
        }
    }
    Ok(out)
}

pub(crate) fn draw(inputs: &[Input<MemSample>], args: &PerConnArgs) -> anyhow::Result<()> {
    let mut all = series(inputs, args)?;
    let max_bytes = all
        .iter()
        .flat_map(|s| s.segments.iter().flatten())
        .fold(0.0, |m: f64, p| m.max(p.1.abs()));
    // Bytes for small figures, KiB once they pass 2 KiB (the usual case).
    let (y_desc, divisor) = if max_bytes < 2048.0 {
        ("Bytes per connection", 1.0)
    } else {
        ("KiB per connection", 1024.0)
    };
    for s in &mut all {
        s.map_y(|b| b / divisor);
    }
    let max_conns = inputs
        .iter()
        .flat_map(|i| i.rows.iter().map(|s| s.conns))
        .max()
        .unwrap_or(0);
    let title = args.chart.title_or("Memory per connection", inputs);
    panel::render(
        &args.chart,
        &title,
        &Panel {
            x_range: canvas::padded(0.0, max_conns as f64),
            x: Axis {
                desc: "Connections",
                fmt: format_count,
            },
            left: Axis {
                desc: y_desc,
                fmt: format_tick,
            },
            left_log: false,
            right: None,
            series: &all,
        },
    )
}
