//! `plots`: PNG charts and markdown tables from the CSVs c1m's tools write.
//!
//! - `memory`: memory against time, as Part 2's "Mem usage with 10k active
//!   connections, 1000 msg/sec", with kernel memory and connections beside.
//! - `per-conn`: what one connection costs in user space and in the kernel,
//!   against how many are open.
//! - `flood`: open connections, messages/s and delivery latency over time
//!   from floodtest's CSV (with msggen's send rate, given its CSV).
//! - `table`: icomet's table of connections against VIRT/RES, in markdown.
//!
//! Every chart takes several CSVs (`--label` names them, one colour each)
//! so two servers compare on one picture. CSVs are read through the record
//! types of `c1m_common::records` ([`load`]); drawing uses a font compiled
//! into the binary ([`canvas`]). A chart of a day-long log at one sample a
//! second (86,400 rows) renders in ~0.2 s.

#![forbid(unsafe_code)]

mod canvas;
mod flood;
mod format;
mod legend;
mod load;
mod measure;
mod memory;
mod panel;
mod per_conn;
mod table;

use canvas::Size;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Draws memory-over-time, per-connection and flood charts as PNG, and
/// markdown tables, from c1m CSVs
#[derive(Debug, Parser)]
#[command(name = "plots", version)]
pub struct Args {
    /// What to draw.
    #[command(subcommand)]
    pub command: Command,
}

/// The charts and tables plots draws.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Memory (user space and kernel) and connections against time, from
    /// memlog CSVs
    Memory(memory::MemoryArgs),
    /// Bytes per connection (user space and kernel) against connections,
    /// from memlog CSVs
    PerConn(per_conn::PerConnArgs),
    /// Open connections, messages/s and latency p50/p99 against time, from
    /// floodtest CSVs
    Flood(flood::FloodArgs),
    /// A markdown table of connections against VIRT, RES, PSS and bytes per
    /// connection, from a memlog CSV
    Table(table::TableArgs),
}

/// What every chart subcommand takes.
#[derive(Debug, Clone, clap::Args)]
pub struct ChartArgs {
    /// CSV files to draw, one colour each
    #[arg(required = true, value_name = "CSV")]
    pub files: Vec<PathBuf>,
    /// The PNG to write
    #[arg(short, long, value_name = "PNG")]
    pub out: PathBuf,
    /// Legend name of each CSV, in file order (default: the file's stem)
    #[arg(long = "label", value_name = "NAME")]
    pub labels: Vec<String>,
    /// Chart title (default: says what is drawn, from the data)
    #[arg(long)]
    pub title: Option<String>,
    /// Image size in pixels
    #[arg(long, default_value = "1024x640", value_name = "WxH")]
    pub size: Size,
}

impl ChartArgs {
    /// `--title`, or `what` followed by the inputs' names when there are
    /// several, or when the one input was named with `--label` (a file
    /// stem such as `mem` says nothing worth a title).
    pub fn title_or<T>(&self, what: &str, inputs: &[load::Input<T>]) -> String {
        if let Some(title) = &self.title {
            return title.clone();
        }
        match inputs {
            [one] if !self.labels.is_empty() => format!("{what} ({})", one.label),
            [_] | [] => what.to_owned(),
            many => {
                let labels: Vec<&str> = many.iter().map(|i| i.label.as_str()).collect();
                format!("{what}: {}", labels.join(" vs "))
            }
        }
    }
}

/// Runs one subcommand; errors are the caller's to print (exit 2).
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Memory(a) => memory::run(&a)?,
        Command::PerConn(a) => per_conn::run(&a)?,
        Command::Flood(a) => flood::run(&a)?,
        Command::Table(a) => table::run(&a)?,
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn args_are_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn a_realistic_command_line_parses() {
        let args = Args::try_parse_from([
            "plots",
            "memory",
            "ours.csv",
            "mochi.csv",
            "--label",
            "c1m",
            "--label",
            "mochiweb",
            "--series",
            "pss",
            "--kernel",
            "both",
            "-o",
            "mem.png",
            "--size",
            "1280x720",
        ])
        .unwrap();
        let Command::Memory(m) = args.command else {
            panic!("expected the memory subcommand");
        };
        assert_eq!(
            m.chart.files,
            [PathBuf::from("ours.csv"), PathBuf::from("mochi.csv")]
        );
        assert_eq!(m.chart.labels, ["c1m", "mochiweb"]);
        assert_eq!(m.chart.out, PathBuf::from("mem.png"));
        assert_eq!(
            m.chart.size,
            Size {
                width: 1280,
                height: 720
            }
        );
        assert_eq!(m.figures.series, measure::UserSeries::Pss);
        assert_eq!(m.figures.kernel, measure::KernelChoice::Both);

        let args = Args::try_parse_from(["plots", "table", "mem.csv", "--step", "100k"]).unwrap();
        let Command::Table(t) = args.command else {
            panic!("expected the table subcommand");
        };
        assert_eq!(t.step, Some(100_000));
    }

    #[test]
    fn default_titles_name_inputs_only_when_it_helps() {
        let input = |label: &str| load::Input::<()> {
            label: label.to_owned(),
            path: PathBuf::from("x.csv"),
            rows: vec![],
        };
        let chart = |args: &[&str]| {
            let mut argv = vec!["plots", "flood", "a.csv", "-o", "a.png"];
            argv.extend(args);
            let Command::Flood(f) = Args::try_parse_from(argv).unwrap().command else {
                panic!("expected the flood subcommand");
            };
            f.chart
        };
        assert_eq!(chart(&[]).title_or("Flood", &[input("mem")]), "Flood");
        assert_eq!(
            chart(&["--label", "ours"]).title_or("Flood", &[input("ours")]),
            "Flood (ours)"
        );
        assert_eq!(
            chart(&[]).title_or("Flood", &[input("a"), input("b")]),
            "Flood: a vs b"
        );
        assert_eq!(
            chart(&["--title", "Mine"]).title_or("Flood", &[input("a"), input("b")]),
            "Mine"
        );
    }

    #[test]
    fn a_bad_size_is_refused() {
        let err = Args::try_parse_from(["plots", "flood", "f.csv", "-o", "f.png", "--size", "big"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("expected WIDTHxHEIGHT"), "{err}");
    }
}
