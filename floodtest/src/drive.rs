//! The controller: polls the fleet on a tick and decides when the run
//! moves on: pausing at `--pause-every` steps, holding for `--duration`
//! once the ramp is done, and ending on SIGINT/SIGTERM, when nothing is left
//! open, when the workers finish, or when part of the fleet has died (the run
//! is then incomplete). A child process runs the same loop but leaves pauses
//! and the end to its parent.

use crate::fleet::Fleet;
use crate::report::Reporter;
use crate::stats::Snapshot;
use c1m_common::{Repeat, StopSignals};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the controller polls the workers.
pub(crate) const TICK: Duration = Duration::from_millis(100);

/// SIGINT and SIGTERM end the run cleanly (summary and CSV are written); a
/// second SIGINT exits at once (130): the clean end is taking too long for
/// the user. Repeated SIGTERMs are ignored (see [`Repeat::Exit`]).
pub(crate) fn catch_stop_signals() -> std::io::Result<StopSignals> {
    StopSignals::install(&[libc::SIGINT, libc::SIGTERM], Repeat::Exit(130))
}

/// Pause and hold settings for the parent (or a single process).
pub(crate) struct Pacing {
    pub(crate) pause_secs: Option<Duration>,
    pub(crate) duration: Option<Duration>,
}

/// Where a pause stands.
enum Pause {
    Running,
    Until(Instant),
    Enter(Arc<AtomicBool>),
}

/// How a run ended.
pub(crate) struct Ended {
    /// Why the run is incomplete, if part of the fleet failed.
    pub(crate) incomplete: Option<String>,
    /// Each agent's own summary, when the fleet is agents.
    pub(crate) agents: Vec<c1m_common::AgentSummary>,
}

/// Runs the parent's (or single process's) loop to the end of the run.
pub(crate) fn drive(
    mut fleet: Box<dyn Fleet>,
    stop: &StopSignals,
    pacing: &Pacing,
    report: &mut Reporter,
) -> anyhow::Result<Ended> {
    let mut hold_since: Option<Instant> = None;
    let mut pause = Pause::Running;
    loop {
        std::thread::sleep(TICK);
        let snap = fleet.poll();
        let (ramp_done, all_ended, finished) = (snap.ramp_done(), snap.all_ended(), snap.finished);
        let (paused, open) = (snap.paused && !snap.started_all, snap.counters.open());
        report.absorb(snap);
        if stop.caught().is_some() || finished {
            break;
        }
        if let Some(why) = fleet.broken() {
            report.notice(&format!("{why}: ending the run"));
            break;
        }
        match &pause {
            Pause::Running if paused => {
                pause = match pacing.pause_secs {
                    Some(secs) => {
                        report.notice(&format!("paused at {open} open for {secs:?}"));
                        Pause::Until(Instant::now() + secs)
                    }
                    None => {
                        report.notice(&format!("paused at {open} open; press Enter to go on"));
                        Pause::Enter(wait_for_enter())
                    }
                };
            }
            Pause::Until(t) if Instant::now() >= *t => {
                fleet.release();
                pause = Pause::Running;
            }
            Pause::Enter(pressed) if pressed.load(Ordering::Relaxed) => {
                fleet.release();
                pause = Pause::Running;
            }
            _ => {}
        }
        if ramp_done && hold_since.is_none() {
            hold_since = Some(Instant::now());
            report.ramp_done();
        }
        if let (Some(since), Some(d)) = (hold_since, pacing.duration) {
            if since.elapsed() >= d {
                break;
            }
        }
        if all_ended {
            report.notice("no connection is open and none will be: ending");
            break;
        }
        report.tick()?;
    }
    let joined = fleet.join();
    report.absorb(joined.last);
    Ok(Ended {
        incomplete: (!joined.failures.is_empty()).then(|| joined.failures.join("; ")),
        agents: joined.agents,
    })
}

/// Waits for Enter on stdin in a thread; the flag is set when it comes.
fn wait_for_enter() -> Arc<AtomicBool> {
    let pressed = Arc::new(AtomicBool::new(false));
    let flag = pressed.clone();
    std::thread::spawn(move || {
        let mut line = String::new();
        if std::io::stdin().is_terminal() {
            let _ = std::io::stdin().read_line(&mut line);
        }
        flag.store(true, Ordering::Relaxed);
    });
    pressed
}

/// A child's loop: report every tick until its workers have finished
/// (the parent says when, through stdin; a signal also ends it).
pub(crate) fn drive_child(
    mut fleet: Box<dyn Fleet>,
    stop: StopSignals,
    emit: impl Fn(&Snapshot) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    loop {
        std::thread::sleep(TICK);
        if stop.caught().is_some() {
            break;
        }
        let snap = fleet.poll();
        // A failed worker ends the child; the join below says why.
        if snap.finished || fleet.broken().is_some() {
            break;
        }
        // The parent may be gone; PR_SET_PDEATHSIG will end us then.
        let _ = emit(&snap);
    }
    let mut joined = fleet.join();
    if !joined.failures.is_empty() {
        // No last snapshot: the parent sees this child as failed.
        anyhow::bail!("{}", joined.failures.join("; "));
    }
    joined.last.finished = true;
    emit(&joined.last)
}
