//! `plots table`: icomet's table of connections against VIRT and RES, in
//! markdown, with PSS and the cost of one connection beside them.
//!
//! The first row is the baseline sample (the first holding the fewest
//! connections, normally the idle server); then, for every multiple of
//! `--step`, the first later sample at or past it; then the peak, if it
//! lies half a step or more past the last row or no step was reached.
//! Per-connection columns are `c1m_common::Costs`, the method of every
//! figure: growth over the first row divided by the connections added, the
//! plateau's median at the peak, each with its `±`.

use crate::format::{format_bytes, format_thousands};
use crate::load::load;
use crate::measure::UserSeries;
use c1m_common::parse_count;
use c1m_common::MemSample;
use c1m_common::{kernel_kb, Cost, Costs};
use std::fmt::Write as _;
use std::path::PathBuf;

#[derive(Debug, Clone, clap::Args)]
pub struct TableArgs {
    /// memlog CSV to tabulate
    #[arg(value_name = "CSV")]
    pub file: PathBuf,
    /// Connections between rows, such as 100k (default: a round step giving
    /// about ten rows)
    #[arg(long, value_parser = parse_count, value_name = "N")]
    pub step: Option<u64>,
    /// Write the table to this file instead of standard output
    #[arg(short, long, value_name = "MD")]
    pub out: Option<PathBuf>,
}

pub(crate) fn run(args: &TableArgs) -> anyhow::Result<()> {
    if args.step == Some(0) {
        anyhow::bail!("--step 0: the step between rows must be at least one connection");
    }
    let samples = load::<MemSample>(&args.file)?;
    let text = render(&samples, args.step);
    match &args.out {
        Some(path) => std::fs::write(path, &text)
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?,
        None => print!("{text}"),
    }
    Ok(())
}

/// A round step (1, 2 or 5 times a power of ten) giving at most ten rows
/// from the baseline to `peak_added` connections more.
pub(crate) fn auto_step(peak_added: u64) -> u64 {
    let raw = peak_added.div_ceil(10).max(1);
    let mut power = 1u64;
    loop {
        for m in [1, 2, 5] {
            if m * power >= raw {
                return m * power;
            }
        }
        power *= 10;
    }
}

/// The first multiple of `step` above `conns`; `None` past `u64::MAX` (a
/// corrupt or absurd count must not overflow).
fn next_multiple(conns: u64, step: u64) -> Option<u64> {
    (conns / step).checked_add(1)?.checked_mul(step)
}

/// The samples the table shows, in order (`samples` is not empty).
pub(crate) fn rows(samples: &[MemSample], step: u64) -> Vec<&MemSample> {
    let costs = Costs::new(samples).expect("loading refuses empty files");
    let base = costs.baseline();
    let base_at = samples
        .iter()
        .position(|s| std::ptr::eq(s, base))
        .expect("the baseline is one of the samples");
    let later = &samples[base_at + 1..];
    let mut picked = vec![base];
    let peak = later.iter().map(|s| s.conns).max().unwrap_or(base.conns);
    let mut target = next_multiple(base.conns, step);
    while let Some(t) = target.filter(|&t| t <= peak) {
        if let Some(s) = later.iter().find(|s| s.conns >= t) {
            if !std::ptr::eq(s, *picked.last().unwrap()) {
                picked.push(s);
            }
            // A jump past several steps at once gives one row, not repeats.
            target = next_multiple(s.conns, step);
        } else {
            break;
        }
    }
    let last = picked.last().unwrap().conns;
    if let Some(top) = later.iter().find(|s| s.conns == peak) {
        // A step past the peak still shows where the run got to.
        let only_baseline = picked.len() == 1;
        if peak > last && (only_baseline || peak >= last + step.div_ceil(2)) {
            picked.push(top);
        }
    }
    picked
}

/// A cost with its uncertainty: `2.76 KiB ± 12 B`, `-` where there is none.
fn show(cost: Option<Cost>) -> String {
    match cost {
        None => "-".to_owned(),
        Some(Cost {
            bytes,
            plus_minus: Some(pm),
        }) => format!("{} ± {}", format_bytes(bytes), format_bytes(pm)),
        Some(Cost { bytes, .. }) => format_bytes(bytes),
    }
}

/// The markdown table and its footnote.
pub(crate) fn render(samples: &[MemSample], step: Option<u64>) -> String {
    let costs = Costs::new(samples).expect("loading refuses empty files");
    let base = costs.baseline();
    let peak = samples.iter().map(|s| s.conns).max().unwrap_or(0);
    let step = step.unwrap_or_else(|| auto_step(peak - base.conns));
    let kb = |kb: u64| format_bytes(kb as f64 * 1024.0);
    let on_plateau = |s: &MemSample| costs.plateau().iter().any(|p| std::ptr::eq(*p, s));
    // The row on the plateau shows the run's figure (the median there), the
    // one the report's table of figures gives; the others, their sample's.
    let per_conn = |s: &MemSample, f: fn(&MemSample) -> u64| {
        show(if on_plateau(s) {
            costs.at_peak(f)
        } else {
            costs.at(s, f)
        })
    };
    let mut out = String::new();
    out.push_str(
        "| connections | VIRT | RES | PSS | RES per conn | PSS per conn | kernel per conn |\n",
    );
    out.push_str("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    let shown = rows(samples, step);
    for s in &shown {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            format_thousands(s.conns),
            kb(s.vsz_kb),
            kb(s.rss_kb),
            kb(s.pss_kb),
            per_conn(s, |s| UserSeries::Rss.kb(s)),
            per_conn(s, |s| UserSeries::Pss.kb(s)),
            per_conn(s, kernel_kb),
        );
    }
    let procs = shown.last().map_or(0, |s| s.procs);
    let _ = write!(
        out,
        "\nVIRT, RES and PSS are summed over the server's processes ({procs} at the last row). \
         Per connection: growth over the first row divided by the connections added; at the peak, \
         the median over the {} samples holding 99% of it or more. Kernel is Slab plus TCP pages, \
         system-wide: on loopback it includes the clients' sockets too. ± is half the range each \
         figure moved over those samples, while the connections held still, divided by the \
         connections added: what other activity on the machine can account for.\n",
        costs.plateau().len()
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(conns: u64) -> MemSample {
        MemSample {
            unix_ms: 0,
            elapsed_s: 0.0,
            rss_kb: 1000 + conns,
            pss_kb: 900 + conns,
            vsz_kb: 5000 + conns,
            procs: 1,
            conns,
            slab_kb: 1000 + 9 * conns,
            tcp_mem_kb: 0,
            mem_available_kb: 0,
            ..MemSample::default()
        }
    }

    /// A count near `u64::MAX` (a corrupt CSV) ends the steps instead of
    /// overflowing into a panic.
    #[test]
    fn absurd_counts_do_not_overflow() {
        let with = |conns| MemSample { conns, ..at(0) };
        let samples = [at(0), with(u64::MAX / 2), with(u64::MAX)];
        for step in [1, 7, 100_000, u64::MAX] {
            let shown = rows(&samples, step);
            assert_eq!(shown.first().unwrap().conns, 0, "step {step}");
            assert_eq!(shown.last().unwrap().conns, u64::MAX, "step {step}");
        }
        assert!(render(&samples, None).contains("18,446,744,073,709,551,615"));
    }

    #[test]
    fn auto_step_is_round_and_gives_about_ten_rows() {
        assert_eq!(auto_step(10_000), 1_000);
        assert_eq!(auto_step(1_000_000), 100_000);
        assert_eq!(auto_step(12_345), 2_000);
        assert_eq!(auto_step(35_000), 5_000);
        assert_eq!(auto_step(3), 1);
        assert_eq!(auto_step(0), 1);
    }

    #[test]
    fn rows_are_first_samples_at_or_past_each_step() {
        let samples: Vec<MemSample> = [0, 40, 99, 100, 150, 260, 270, 500, 480].map(at).to_vec();
        let conns: Vec<u64> = rows(&samples, 100).iter().map(|s| s.conns).collect();
        // 260 covers 200; a jump to 500 gives one row for 300-500.
        assert_eq!(conns, [0, 100, 260, 500]);
    }

    #[test]
    fn the_peak_gets_a_row_when_well_past_the_last_step() {
        let samples: Vec<MemSample> = [0, 100, 190].map(at).to_vec();
        let conns: Vec<u64> = rows(&samples, 100).iter().map(|s| s.conns).collect();
        assert_eq!(conns, [0, 100, 190]);
        let samples: Vec<MemSample> = [0, 100, 120].map(at).to_vec();
        let conns: Vec<u64> = rows(&samples, 100).iter().map(|s| s.conns).collect();
        assert_eq!(conns, [0, 100]);
    }

    #[test]
    fn a_step_past_the_peak_still_shows_the_peak() {
        let samples: Vec<MemSample> = [0, 500, 1000, 990].map(at).to_vec();
        let conns: Vec<u64> = rows(&samples, 100_000).iter().map(|s| s.conns).collect();
        assert_eq!(conns, [0, 1000]);
    }

    #[test]
    fn rows_start_at_the_baseline() {
        let samples: Vec<MemSample> = [300, 0, 100, 200].map(at).to_vec();
        let conns: Vec<u64> = rows(&samples, 100).iter().map(|s| s.conns).collect();
        assert_eq!(conns, [0, 100, 200]);
    }
}
