//! `experiment`: runs a whole seed experiment with one command and writes
//! its report.
//!
//! The chain is `c1m-sysctl check` -> `comet-server` -> `memlog` on the
//! server -> `floodtest` (the preset's addressing and pacing, until the
//! server holds the target) -> `msggen` (the preset's load) -> hold -> stop
//! everything -> `plots` -> `report.md`. Each tool is a child process (see
//! [`child`] for how none outlives the runner); the output folder gets every
//! CSV, JSON summary, chart and child log.
//!
//! - [`preset`]: the seed experiments as a data table, and scaling.
//! - [`run`]: the chain; [`supervisor`], [`child`], [`signals`]: keeping
//!   the children in hand.
//! - [`figures`], [`report`], [`charts`], [`machine`]: turning the files
//!   into `report.md`.

mod admin;
mod charts;
mod child;
mod figures;
mod load;
mod machine;
mod preset;
mod progress;
mod report;
mod run;
mod signals;
mod supervisor;
mod tools;

pub use figures::{median, read_csv, read_figures, MemoryFigures};
pub use load::Load;
pub use machine::Machine;
pub use preset::{find_preset, Overrides, Plan};
pub use report::{per_conn, Outcome, Report, Step};
pub use tools::Tool;

use anyhow::{bail, Context};
use c1m_common::parse_count;
use c1m_common::{Repeat, StopSignals};
use clap::Parser;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

/// Runs a seed experiment end to end (limits check, comet-server, memlog,
/// floodtest, msggen, plots) and writes report.md with its figures beside
/// the seed's.
///
/// Presets: part1 (10,000 connections, a chunk every 10 s, memory per
/// connection), part2 (10,000 connections, 1,000 msg/s to random ids, memory
/// over time), c10k (ramp to 10,000, then 16,666 msg/s, delivery latency).
/// part3 (1M and 16,666 msg/s to random ids) and icomet (ramp to 1M pausing
/// every 100K) run a group of worker processes (`comet-server --workers N`)
/// when one process cannot hold the connections.
#[derive(Debug, Parser)]
#[command(name = "experiment", version)]
pub struct Args {
    /// The experiment: part1, part2, c10k, part3, icomet
    pub preset: String,
    /// Multiplies the preset's connections and rates (0.1 runs a tenth)
    #[arg(long, default_value = "1", value_parser = parse_scale)]
    pub scale: f64,
    /// New connections per second while ramping up, at least 1 [default:
    /// the preset's, scaled]
    #[arg(long, value_parser = parse_rate)]
    pub rate: Option<u64>,
    /// How long to hold the load once every connection is open, e.g. 30s,
    /// 24h; 1s to 30 days [default: the preset's]
    #[arg(long, value_parser = parse_hold)]
    pub duration: Option<Duration>,
    /// Before starting, wait at most this long for the machine to settle
    /// (the build before the run done, no more runnable tasks than half the
    /// cores); 0s to 10m, 0s skips
    #[arg(long, default_value = "30s", value_parser = parse_settle)]
    pub settle: Duration,
    /// comet-server worker processes (`comet-server --workers N`: one front,
    /// N workers sharing the port, each id served by one of them) [default:
    /// as many as the connections need under RLIMIT_NOFILE; 1 runs a plain
    /// server]
    #[arg(long, value_parser = parse_count)]
    pub workers: Option<u64>,
    /// A NATS the user runs, nats://HOST:PORT[,...]: the server joins it
    /// (`comet-server --broker`), so the run's groups can span machines
    #[arg(long)]
    pub broker: Option<String>,
    /// Output folder [default: results/<preset>-<UTC start time>]
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Folder holding comet-server, floodtest, msggen, memlog, plots and
    /// c1m-sysctl [default: the folder of this executable]
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
}

fn parse_rate(s: &str) -> Result<u64, String> {
    // 0 would never open a connection; the flood would wait for ever.
    c1m_common::count_within(s, 1, 1_000_000_000)
}

fn parse_hold(s: &str) -> Result<Duration, String> {
    // Deadlines add the hold to Instants and other durations: a bound far
    // past any experiment keeps them from overflowing.
    c1m_common::duration_within(s, Duration::from_secs(1), MAX_HOLD)
}

fn parse_settle(s: &str) -> Result<Duration, String> {
    c1m_common::duration_within(s, Duration::ZERO, Duration::from_secs(600))
}

/// The longest hold: a month (Part 2 ran for a day).
const MAX_HOLD: Duration = Duration::from_secs(30 * 24 * 60 * 60);

fn parse_scale(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(f) if f.is_finite() && f > 0.0 => Ok(f),
        _ => Err(format!(
            "{s:?}: expected a positive number such as 0.1 or 2"
        )),
    }
}

/// Runs the experiment `args` names. Exit 0: complete; 1: ran but a check
/// failed (a limit, the target connections); 2: stopped early (the report
/// says why) or could not start.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let Some(preset) = preset::find_preset(&args.preset) else {
        bail!(
            "unknown preset {:?}: choose one of {}",
            args.preset,
            preset::names()
        );
    };
    let mut plan = Plan::new(
        preset,
        Overrides {
            scale: Some(args.scale),
            connect_rate: args.rate,
            hold: args.duration,
        },
    );
    let (_, fd_limit) = c1m_common::nofile_limits().context("reading RLIMIT_NOFILE")?;
    plan.workers = refuse_over(&plan, fd_limit, args.workers)?;
    plan.broker = args.broker.clone();
    let tools = tools::Tools::locate(args.bin_dir.as_deref())?;
    c1m_common::raise_nofile_to_hard().context("raising RLIMIT_NOFILE")?;
    // The figures of a run straight after a build were the build's (p99
    // 79.7 ms against 0.95 ms on the rerun): let it settle first.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let settled = load::settle(cores, args.settle, |m| println!("experiment: {m}"));
    if !settled.settled {
        println!(
            "experiment: still {:.1} tasks want the {cores} cores after {} s: going on; the report \
             flags the run if the load stays over the cores",
            settled.runnable,
            settled.waited.as_secs()
        );
    } else if settled.waited >= Duration::from_secs(1) {
        println!("experiment: settled after {} s", settled.waited.as_secs());
    }

    let started = SystemTime::now();
    let stamp = humantime::format_rfc3339_seconds(started).to_string();
    let dir = args
        .out
        .clone()
        .unwrap_or_else(|| default_out(preset.name, &stamp));
    prepare_out(&dir)?;
    let stop = StopSignals::install(&[libc::SIGINT, libc::SIGTERM, libc::SIGHUP], Repeat::Ignore)
        .context("installing the SIGINT/SIGTERM handler")?;
    let machine = machine::Machine::read();
    let clock = Instant::now();
    println!("{}: {} -> {}", preset.name, plan.about(), dir.display());

    let grace = supervisor::grace_for(plan.conns, fd_limit);
    let mut sup = supervisor::Supervisor::new(&dir, grace);
    sup.watch_signals(stop);
    let mut chain = run::Chain {
        check_failed: None,
        notes: Vec::new(),
    };
    let watch = load::Watch::start(cores);
    let result = run::execute(&plan, &tools, &dir, &mut sup, &mut chain);
    let mut steps = sup.stop_all();
    let load = watch.finish();
    let outcome = match (result, chain.check_failed.take()) {
        (Err(e), _) => Outcome::Incomplete(format!("{e:#}")),
        (Ok(()), Some(why)) => Outcome::CheckFailed(why),
        (Ok(()), None) => Outcome::Complete,
    };
    if let Outcome::Incomplete(why) | Outcome::CheckFailed(why) = &outcome {
        eprintln!("experiment: {why}");
    }

    // Whatever happened, draw and report what was measured.
    sup.ignore_signals();
    let charts = charts::draw(&tools, &dir, &mut sup);
    steps.extend(sup.steps().into_iter().skip(steps.len()));
    let mut notes = chain.notes;
    notes.extend(charts.notes);
    let figures = figures::read_figures(&dir).unwrap_or_else(|e| {
        notes.push(format!("figures could not be read: {e:#}"));
        figures::Figures::default()
    });
    let sysctl = std::fs::read_to_string(dir.join("sysctl.stdout")).ok();
    let report = Report {
        command: command_line(),
        started: stamp,
        took: clock.elapsed(),
        machine,
        plan: &plan,
        settle_wait: settled.waited,
        load: Some(load),
        outcome: outcome.clone(),
        figures,
        steps,
        charts: charts.charts,
        mem_table: charts.mem_table,
        sysctl,
        notes,
    };
    let path = dir.join("report.md");
    std::fs::write(&path, report.render())
        .with_context(|| format!("writing {}", path.display()))?;
    println!(
        "report: {} (took {:.0} s)",
        path.display(),
        report.took.as_secs_f64()
    );
    Ok(match outcome {
        Outcome::Complete => ExitCode::SUCCESS,
        Outcome::CheckFailed(_) => ExitCode::from(1),
        Outcome::Incomplete(_) => ExitCode::from(2),
    })
}

/// The worker processes the plan needs under a hard RLIMIT_NOFILE of
/// `fd_limit` (`asked`: `--workers`); says before anything starts when the
/// plan cannot run, with the fix.
fn refuse_over(plan: &Plan, fd_limit: u64, asked: Option<u64>) -> anyhow::Result<u64> {
    let needed = plan.workers_needed(fd_limit);
    let procs = asked.unwrap_or(needed);
    if procs < needed.max(1) {
        bail!(
            "--workers {procs}: {} connections need at least {needed} worker processes here \
             (RLIMIT_NOFILE {fd_limit}, planned 5% under it for the SO_REUSEPORT spread)",
            c1m_common::thousands(plan.conns)
        );
    }
    if procs > 256 {
        bail!(
            "{} connections need {procs} worker processes here (RLIMIT_NOFILE {fd_limit}); a \
             group has at most 256: raise the hard limit or scale the run down (--scale)",
            c1m_common::thousands(plan.conns)
        );
    }
    Ok(procs)
}

/// Creates the output folder; one that already holds files is refused, so
/// a report is never made from an earlier run's CSVs.
fn prepare_out(dir: &Path) -> anyhow::Result<()> {
    let used = std::fs::read_dir(dir)
        .map(|mut entries| entries.next().is_some())
        .unwrap_or(false);
    if used {
        bail!(
            "{} already holds files (an earlier run?): choose another --out or remove it",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}

/// `results/c10k-20261122-030102`.
fn default_out(preset: &str, rfc3339: &str) -> PathBuf {
    let stamp: String = rfc3339
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == 'T')
        .collect::<String>()
        .replace('T', "-");
    Path::new("results").join(format!("{preset}-{stamp}"))
}

/// How this run was started, for the report.
pub(crate) fn command_line() -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    child::shell_words(Path::new("experiment"), &args)
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
    fn parses_a_realistic_command_line() {
        let args = Args::try_parse_from([
            "experiment",
            "part2",
            "--scale",
            "0.5",
            "--rate",
            "2k",
            "--duration",
            "24h",
            "--out",
            "results/day",
            "--bin-dir",
            "target/release",
        ])
        .unwrap();
        assert_eq!(args.preset, "part2");
        assert_eq!(args.scale, 0.5);
        assert_eq!(args.rate, Some(2_000));
        assert_eq!(args.duration, Some(Duration::from_secs(86_400)));
        assert_eq!(args.out.as_deref(), Some(Path::new("results/day")));
        assert!(Args::try_parse_from(["experiment", "c10k", "--scale", "0"]).is_err());
        assert!(Args::try_parse_from(["experiment"]).is_err());
        assert_eq!(args.settle, Duration::from_secs(30));
    }

    #[test]
    fn values_that_feed_arithmetic_are_bounded_at_parse_time() {
        // --rate 0 went to floodtest, whose ramp then never ended; a huge
        // --duration overflowed the hold's deadline (hold + start-up time).
        let refusal = |flag: &str, value: &str| {
            Args::try_parse_from(["experiment", "c10k", flag, value])
                .unwrap_err()
                .to_string()
        };
        assert!(refusal("--rate", "0").contains("must be at least 1"));
        assert!(refusal("--duration", "18446744073709551615").contains("must be at most 720h"));
        assert!(refusal("--duration", "0s").contains("must be at least 1s"));
        assert!(refusal("--settle", "1h").contains("must be at most 600s"));
        let ok =
            Args::try_parse_from(["experiment", "part2", "--duration", "24h", "--settle", "0s"]);
        assert!(ok.is_ok());
    }

    #[test]
    fn an_output_folder_with_files_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        prepare_out(&dir).unwrap();
        prepare_out(&dir).unwrap();
        std::fs::write(dir.join("mem.csv"), "").unwrap();
        let err = prepare_out(&dir).unwrap_err().to_string();
        assert!(
            err.ends_with(
                "already holds files (an earlier run?): choose another --out or remove it"
            ),
            "{err}"
        );
    }

    #[test]
    fn default_folder_is_named_after_preset_and_time() {
        assert_eq!(
            default_out("c10k", "2026-11-22T03:01:02Z"),
            Path::new("results/c10k-20261122-030102")
        );
    }

    #[test]
    fn runs_past_one_process_get_a_group_of_workers() {
        let plan = |name: &str, scale: f64| {
            Plan::new(
                preset::find_preset(name).unwrap(),
                Overrides {
                    scale: Some(scale),
                    ..Overrides::default()
                },
            )
        };
        // Routed messages cross workers now: part3 runs at full scale.
        assert_eq!(refuse_over(&plan("part3", 1.0), 20_000, None).unwrap(), 53);
        assert_eq!(refuse_over(&plan("c10k", 3.0), 20_000, None).unwrap(), 2);
        assert_eq!(refuse_over(&plan("c10k", 1.0), 20_000, None).unwrap(), 1);
        assert_eq!(refuse_over(&plan("icomet", 1.0), 20_000, None).unwrap(), 53);
        assert_eq!(refuse_over(&plan("c10k", 0.1), 20_000, Some(2)).unwrap(), 2);
        let err = refuse_over(&plan("icomet", 1.0), 20_000, Some(10))
            .unwrap_err()
            .to_string();
        assert!(err.contains("need at least 53 worker processes"), "{err}");
        let err = refuse_over(&plan("icomet", 10.0), 20_000, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("a group has at most 256"), "{err}");
    }
}
