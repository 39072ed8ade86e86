//! `experiment`: runs a whole seed experiment with one command and writes
//! its report.
//!
//! The chain is `c1m-sysctl check` -> `comet-server` -> `memlog` on the
//! server -> `floodtest` (the preset's addressing and pacing, until the
//! server holds the target) -> `msggen` (the preset's load; with friends'
//! events, `msggen graph` before the server and a second msggen publishing
//! events) -> hold -> stop
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
mod args;
mod charts;
mod child;
mod compare;
mod figures;
mod load;
mod machine;
mod preset;
mod progress;
mod report;
mod run;
mod servers;
mod side_by_side;
mod signals;
mod supervisor;
mod target;
mod tools;

pub use args::{Args, CompareArgs, RunOptions};
pub use compare::compare;
pub use figures::{median, read_csv, read_figures, MemoryFigures, SamplerFigures};
pub use load::Load;
pub use machine::Machine;
pub use preset::{find_preset, Overrides, Plan};
pub use report::{per_conn, Outcome, Report, Step};
pub use target::{External, TargetKind};
pub use tools::Tool;

use anyhow::{bail, Context};
use c1m_common::{Repeat, StopSignals};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

/// Runs the experiment `args` names. Exit 0: complete; 1: ran but a check
/// failed (a limit, the target connections); 2: stopped early (the report
/// says why) or could not start.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    run_one(&args).map(|done| done.code)
}

/// What one run left behind, for a comparison.
pub(crate) struct Finished {
    pub(crate) code: ExitCode,
    /// The server's name and version.
    pub(crate) server: String,
    /// How it ended.
    pub(crate) outcome: Outcome,
}

/// Runs `args`' experiment; returns its exit code, server and outcome.
pub(crate) fn run_one(args: &Args) -> anyhow::Result<Finished> {
    let preset = preset::find_for(&args.preset, args.options.msg_rate)?;
    let mut plan = Plan::new(
        preset,
        Overrides {
            scale: Some(args.options.scale),
            connect_rate: args.options.rate,
            hold: args.options.duration,
            message_rate: args.options.msg_rate,
        },
    );
    let (_, fd_limit) = c1m_common::nofile_limits().context("reading RLIMIT_NOFILE")?;
    let comet_flags = [
        (args.workers.is_some(), "--workers"),
        (args.broker.is_some(), "--broker"),
    ]
    .into_iter()
    .find_map(|(given, flag)| given.then_some(flag));
    target::check(
        args.target,
        &args.external,
        plan.message_rate > 0,
        comet_flags,
    )?;
    plan.target = args.target;
    plan.external = args.external.clone();
    plan.workers = refuse_over(&plan, fd_limit, args.workers)?;
    plan.broker = args.broker.clone();
    plan.msg_tick = args.options.msg_tick;
    plan.agents = args
        .options
        .agents
        .clone()
        .zip(args.options.agents_broker.clone())
        .map(|(wanted, broker)| preset::FloodAgents { wanted, broker });
    let tools = tools::Tools::locate(args.options.bin_dir.as_deref())?;
    c1m_common::raise_nofile_to_hard().context("raising RLIMIT_NOFILE")?;
    // The figures of a run straight after a build were the build's (p99
    // 79.7 ms against 0.95 ms on the rerun): let it settle first.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let settled = load::settle(cores, args.options.settle, |m| println!("experiment: {m}"));
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
        .options
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
        server: None,
    };
    let watch = load::Watch::start(cores);
    let result = run::execute(&plan, &tools, &dir, &mut sup, &mut chain);
    let mut steps = sup.stop_all();
    let load = watch.finish();
    // Read before the verdict: a run that lost messages failed its check.
    let mut notes = chain.notes;
    let figures = figures::read_figures(&dir).unwrap_or_else(|e| {
        notes.push(format!("figures could not be read: {e:#}"));
        figures::Figures::default()
    });
    let outcome = match (result, chain.check_failed.take()) {
        (Err(e), _) => Outcome::Incomplete(format!("{e:#}")),
        (Ok(()), Some(why)) => Outcome::CheckFailed(why),
        (Ok(()), None) => match figures.losses() {
            Some(why) => Outcome::CheckFailed(why),
            None => Outcome::Complete,
        },
    };
    if let Outcome::Incomplete(why) | Outcome::CheckFailed(why) = &outcome {
        eprintln!("experiment: {why}");
    }

    let server = chain
        .server
        .take()
        .unwrap_or_else(|| plan.target.name().to_owned());
    // Whatever happened, draw and report what was measured.
    sup.ignore_signals();
    let charts = charts::draw(&tools, &dir, &mut sup);
    steps.extend(sup.steps().into_iter().skip(steps.len()));
    notes.extend(charts.notes);
    let sysctl = std::fs::read_to_string(dir.join("sysctl.stdout")).ok();
    let report = Report {
        command: command_line(),
        started: stamp,
        took: clock.elapsed(),
        machine,
        plan: &plan,
        server: server.clone(),
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
    let code = match &outcome {
        Outcome::Complete => ExitCode::SUCCESS,
        Outcome::CheckFailed(_) => ExitCode::from(1),
        Outcome::Incomplete(_) => ExitCode::from(2),
    };
    Ok(Finished {
        code,
        server,
        outcome,
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
pub(crate) fn prepare_out(dir: &Path) -> anyhow::Result<()> {
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
pub(crate) fn default_out(preset: &str, rfc3339: &str) -> PathBuf {
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
