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
//!   [`summary`] show and record it.

mod addr;
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
    let fd_limit = c1m_common::raise_nofile_to_hard().context("raising RLIMIT_NOFILE")?;
    let ephemeral = plan::ephemeral_range()?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
    let plan = Plan::new(&args, fd_limit, ephemeral, cores)?;
    let stop = drive::catch_stop_signals().context("installing the SIGINT/SIGTERM handlers")?;
    let control = Arc::new(Control::default());

    if let Some(slot) = args.child {
        let fleet = children::start_local(plan.units(slot.index), control)?;
        drive_child(Box::new(fleet), stop, children::emit)?;
        return Ok(ExitCode::SUCCESS);
    }

    if let Some(path) = &args.json {
        // Found out now, not after an hour's run whose summary has nowhere to go.
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    }
    let tty = std::io::stderr().is_terminal();
    let mut report = Reporter::new(
        args.conns,
        args.duration,
        args.report_interval,
        args.csv.as_deref(),
        tty,
    )?;
    report.notice(&plan.describe());
    let fleet: Box<dyn Fleet> = if plan.procs > 1 {
        Box::new(ChildFleet::spawn(plan.procs, &argv)?)
    } else {
        Box::new(LocalFleet::start(plan.units(0), control)?)
    };
    let pacing = Pacing {
        pause_secs: args.pause_secs,
        duration: args.duration,
    };
    let incomplete = drive(fleet, stop, &pacing, &mut report)?;
    let mut summary = report.finish(plan.procs, plan.workers)?;
    summary.incomplete = incomplete.clone();
    let min_open = args.min_open.unwrap_or(args.conns);
    if incomplete.is_none() {
        summary.check_failed = summary::check(&summary, min_open);
    }
    report::say(&mut std::io::stdout(), &summary::render(&summary));
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&summary)?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(why) = incomplete {
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
