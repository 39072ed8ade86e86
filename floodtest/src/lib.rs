//! `floodtest`: opens and holds many long-lived HTTP streams and measures
//! what arrives on them.
//!
//! The seeds' Erlang `floodtest`, the patched-libevent client of Part 3 and
//! icomet's benchmark as one tool that works against any HTTP/1.1 streaming
//! server. How it fits together:
//!
//! - [`plan`] checks the run before any connect (4-tuple capacity,
//!   descriptors per process) and cuts it into units, one per worker;
//! - [`worker`] holds connections as compact records in a slab on a mio
//!   event loop ([`addr`] opens them, [`stream`], [`websocket`] and
//!   [`messages`] read them, [`tls`] under `https://` and `wss://`);
//! - [`fleet`] and [`children`] run the workers as threads or, past the
//!   descriptor limit, as child processes (`--procs`);
//! - [`drive`] paces the run (pauses, hold, signals); [`report`] and
//!   [`summary`] show and record it;
//! - [`agents`] runs it over several machines: `floodtest agent` on each,
//!   coordinated over NATS by `floodtest --agents`.

mod addr;
mod agents;
mod args;
mod children;
mod class;
mod drive;
mod failure;
mod fleet;
mod live;
mod messages;
mod pacing;
mod plan;
mod preset;
mod report;
mod stats;
mod stream;
mod summary;
mod target;
mod tls;
mod units;
mod websocket;
mod worker;

pub use agents::agent::{run_agent, AgentArgs};
pub use agents::Wanted;
pub use args::Args;

use anyhow::Context;
use children::ChildFleet;
use drive::{drive, drive_child, Pacing};
use fleet::{Fleet, LocalFleet};
use plan::Plan;
use report::Reporter;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use worker::Control;

/// Runs the tool with `argv` (without the program name, for children) and
/// the parsed `args`; returns 0 when the target was held, 1 when not (or a
/// stream broke HTTP framing: [`summary::check`]), and
/// an error (exit 2) when it cannot start or part of it failed (after the
/// summary, marked incomplete, is written).
pub fn run(args: Args, argv: Vec<String>) -> anyhow::Result<ExitCode> {
    let stop = drive::catch_stop_signals().context("installing the SIGINT/SIGTERM handlers")?;
    // An agent's `--procs` children get the controller's flags, --agents
    // included: as children they only run their slice.
    if args.agents.is_some() && args.child.is_none() {
        let mut report = open_outputs(&args)?;
        let started = agents::controller::start(&args, &argv, &report, &stop)?;
        let fleet = Box::new(started.fleet);
        let ended = drive(fleet, &stop, &pacing(&args), &mut report)?;
        return conclude(&args, report, ended, started.procs, started.workers);
    }
    let fd_limit = c1m_common::raise_nofile_to_hard().context("raising RLIMIT_NOFILE")?;
    let ephemeral = plan::ephemeral_range()?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
    let plan = Plan::new(&args, fd_limit, ephemeral, cores)?;
    let control = Arc::new(Control::default());

    if let Some(slot) = args.child {
        let fleet = children::start_local(plan.units(slot.index), control)?;
        drive_child(Box::new(fleet), stop, children::emit)?;
        return Ok(ExitCode::SUCCESS);
    }

    let mut report = open_outputs(&args)?;
    report.notice(&plan.describe());
    let fleet: Box<dyn Fleet> = if plan.procs > 1 {
        Box::new(ChildFleet::spawn(plan.procs, &argv)?)
    } else {
        Box::new(LocalFleet::start(plan.units(0), control)?)
    };
    let ended = drive(fleet, &stop, &pacing(&args), &mut report)?;
    conclude(&args, report, ended, plan.procs, plan.workers)
}

fn pacing(args: &Args) -> Pacing {
    Pacing {
        pause_secs: args.pause_secs,
        duration: args.duration,
    }
}

/// Checks that the JSON summary can be written and opens the live view
/// (and the CSV).
fn open_outputs(args: &Args) -> anyhow::Result<Reporter> {
    if let Some(path) = &args.json {
        // Found out now, not after an hour's run whose summary has nowhere to go.
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    }
    let tty = std::io::stderr().is_terminal();
    Reporter::new(
        args.conns,
        args.duration,
        args.report_interval,
        args.csv.as_deref(),
        tty,
    )
}

/// Writes the summary (and its JSON) of an ended run and says how it went.
fn conclude(
    args: &Args,
    report: Reporter,
    ended: drive::Ended,
    procs: u64,
    workers: u64,
) -> anyhow::Result<ExitCode> {
    let mut summary = report.finish(procs, workers)?;
    summary.incomplete = ended.incomplete.clone();
    summary.agents = ended.agents;
    let min_open = args.min_open.unwrap_or(args.conns);
    if ended.incomplete.is_none() {
        summary.check_failed = summary::check(&summary, min_open);
    }
    report::say(&mut std::io::stdout(), &summary::render(&summary));
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&summary)?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(why) = ended.incomplete {
        anyhow::bail!("run incomplete: {why}; the summary covers what ran until then");
    }
    Ok(match &summary.check_failed {
        None => ExitCode::SUCCESS,
        Some(why) => {
            report::say(
                &mut std::io::stderr(),
                &format!("floodtest: check failed: {why}"),
            );
            ExitCode::from(1)
        }
    })
}
