//! The set of children a run started, watched together: every wait the
//! runner does goes through [`Supervisor::wait_for`], which fails as soon as
//! a signal arrives or a child ends when it should not, so a dead server
//! stops the flood within one poll instead of at the end of the hold.
//!
//! Children stop in the reverse of the order they started (msggen, then
//! floodtest, memlog, the server), each with SIGTERM and, after the grace
//! period, SIGKILL.

use crate::child::{describe, Child, POLL};
use crate::report::Step;
use crate::signals;
use anyhow::bail;
use c1m_common::StopSignals;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::{Duration, Instant};

/// How long a child has to end after SIGTERM before it gets SIGKILL, at
/// least: floodtest closing 10K connections and writing its summary needs a
/// few seconds on a busy machine. See [`grace_for`] for larger runs.
pub(crate) const GRACE: Duration = Duration::from_secs(10);

/// The SIGTERM-to-SIGKILL grace for a run of `conns` connections: [`GRACE`]
/// plus a second per 10,000. At 1M on this 2-core machine, floodtest's 51
/// processes closing their connections (and the servers seeing each close)
/// took over 30 s, and memlog's last count of 2M sockets took several
/// seconds; killed, floodtest would leave its JSON summary unwritten. When
/// floodtest runs child processes (over one process's connections) the
/// grace also outlasts its own wait for them (30 s + 1 s per child).
pub(crate) fn grace_for(conns: u64, fd_limit: u64) -> Duration {
    let by_conns = GRACE + Duration::from_secs(conns / 10_000);
    let children = c1m_common::procs_needed(conns, fd_limit);
    if children > 1 {
        by_conns.max(Duration::from_secs(35 + children))
    } else {
        by_conns
    }
}

/// Index of a child in its supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Id(usize);

/// When a child ending by itself is not a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ends {
    /// It runs until the runner stops it (server, memlog, floodtest).
    Never,
    /// It finishes its job with exit 0 (msggen with a duration, plots).
    Success,
    /// Its exit code is its answer (`c1m-sysctl check`).
    Any,
}

struct Entry {
    child: Child,
    ends: Ends,
    stopped_by_runner: bool,
}

/// The children of one run.
pub(crate) struct Supervisor {
    dir: PathBuf,
    entries: Vec<Entry>,
    /// The stop signals that interrupt waits; `None` before
    /// [`Supervisor::watch_signals`] and after [`Supervisor::ignore_signals`]
    /// (the run is over, while plotting and reporting).
    signals: Option<StopSignals>,
    /// SIGTERM to SIGKILL when stopping a child.
    grace: Duration,
}

impl Supervisor {
    /// Children write their output into `dir`; each stopped child gets
    /// `grace` between SIGTERM and SIGKILL.
    pub(crate) fn new(dir: &Path, grace: Duration) -> Supervisor {
        Supervisor {
            dir: dir.to_path_buf(),
            entries: Vec::new(),
            signals: None,
            grace,
        }
    }

    /// Starts a child named `name` (its log files are `<name>.stdout` and
    /// `<name>.stderr`).
    pub(crate) fn start(
        &mut self,
        name: &str,
        program: &Path,
        args: &[String],
        ends: Ends,
    ) -> anyhow::Result<Id> {
        let child = Child::spawn(name, program, args, &self.dir)?;
        self.entries.push(Entry {
            child,
            ends,
            stopped_by_runner: false,
        });
        Ok(Id(self.entries.len() - 1))
    }

    pub(crate) fn child(&self, id: Id) -> &Child {
        &self.entries[id.0].child
    }

    /// From now on a caught stop signal interrupts waits.
    pub(crate) fn watch_signals(&mut self, signals: StopSignals) {
        self.signals = Some(signals);
    }

    /// From now on signals no longer interrupt waits (the run is over and
    /// only bounded work is left).
    pub(crate) fn ignore_signals(&mut self) {
        self.signals = None;
    }

    /// Fails if a signal arrived or a child ended badly.
    pub(crate) fn check(&mut self) -> anyhow::Result<()> {
        if let Some(signal) = self.signals.and_then(|s| s.caught()) {
            bail!("interrupted by {}", signals::name(signal));
        }
        for e in &mut self.entries {
            if e.stopped_by_runner {
                continue;
            }
            if let Some(status) = e.child.poll()? {
                let expected = match e.ends {
                    Ends::Never => false,
                    Ends::Success => status.success(),
                    Ends::Any => true,
                };
                if !expected {
                    bail!(
                        "{} ended unexpectedly ({}){}",
                        e.child.name(),
                        describe(status),
                        last_words(&e.child.stderr)
                    );
                }
            }
        }
        Ok(())
    }

    /// Polls `done` until it returns `Some` (that value), or `timeout`
    /// passes (`None`), checking the children and signals between polls.
    pub(crate) fn wait_for<T>(
        &mut self,
        timeout: Duration,
        mut done: impl FnMut(&mut Supervisor) -> anyhow::Result<Option<T>>,
    ) -> anyhow::Result<Option<T>> {
        let deadline = Instant::now() + timeout;
        loop {
            self.check()?;
            if let Some(value) = done(self)? {
                return Ok(Some(value));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(POLL);
        }
    }

    /// Waits `duration`, watching the children.
    pub(crate) fn hold(&mut self, duration: Duration) -> anyhow::Result<()> {
        self.wait_for(duration, |_| Ok(None::<()>)).map(|_| ())
    }

    /// Waits up to `timeout` for child `id` to end by itself.
    pub(crate) fn wait_exit(
        &mut self,
        id: Id,
        timeout: Duration,
    ) -> anyhow::Result<Option<ExitStatus>> {
        self.wait_for(timeout, |s| s.exited(id))
    }

    /// How child `id` ended, once it has.
    pub(crate) fn exited(&mut self, id: Id) -> anyhow::Result<Option<ExitStatus>> {
        self.entries[id.0].child.poll()
    }

    /// Stops one child (SIGTERM, then SIGKILL after the grace).
    pub(crate) fn stop(&mut self, id: Id) -> anyhow::Result<ExitStatus> {
        let e = &mut self.entries[id.0];
        let was_running = e.child.poll()?.is_none();
        e.stopped_by_runner |= was_running;
        e.child.stop(self.grace)
    }

    /// Stops every child still running, newest first, and returns what each
    /// did. A child that cannot be stopped is reported, not fatal: the
    /// others still get stopped.
    pub(crate) fn stop_all(&mut self) -> Vec<Step> {
        for i in (0..self.entries.len()).rev() {
            if let Err(e) = self.stop(Id(i)) {
                eprintln!(
                    "experiment: stopping {}: {e:#}",
                    self.entries[i].child.name()
                );
            }
        }
        self.steps()
    }

    /// What each child did so far.
    pub(crate) fn steps(&mut self) -> Vec<Step> {
        self.entries
            .iter_mut()
            .map(|e| {
                let result = match e.child.poll() {
                    Ok(Some(status)) if e.stopped_by_runner => {
                        format!("stopped by the runner, {}", describe(status))
                    }
                    Ok(Some(status)) => describe(status),
                    Ok(None) => "running".into(),
                    Err(err) => format!("{err:#}"),
                };
                Step {
                    name: e.child.name().to_owned(),
                    pid: e.child.pid(),
                    command: e.child.command.clone(),
                    result,
                }
            })
            .collect()
    }
}

/// `: <last line of stderr>` when the child left one, to say why it died.
fn last_words(stderr: &Path) -> String {
    std::fs::read_to_string(stderr)
        .ok()
        .and_then(|text| {
            text.lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .map(str::to_owned)
        })
        .map(|line| format!(": {}", line.trim()))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(s: &mut Supervisor, name: &str, script: &str, ends: Ends) -> Id {
        s.start(
            name,
            Path::new("/bin/sh"),
            &["-c".to_owned(), script.to_owned()],
            ends,
        )
        .unwrap()
    }

    #[test]
    fn the_grace_grows_with_the_connections() {
        assert_eq!(grace_for(9_999, 20_000), GRACE);
        assert_eq!(
            grace_for(1_000_000, 20_000),
            GRACE + Duration::from_secs(100)
        );
        // 6 flood children: floodtest waits 36 s for them.
        assert_eq!(grace_for(100_000, 20_000), Duration::from_secs(41));
    }

    #[test]
    fn a_dying_child_fails_the_wait_and_the_others_are_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Supervisor::new(dir.path(), GRACE);
        sh(&mut s, "server", "sleep 30", Ends::Never);
        sh(&mut s, "flood", "echo no route >&2; exit 2", Ends::Never);
        let err = s.hold(Duration::from_secs(20)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "flood ended unexpectedly (exit 2): no route"
        );
        let steps = s.stop_all();
        assert_eq!(steps[0].result, "stopped by the runner, killed by SIGTERM");
        assert_eq!(steps[1].result, "exit 2");
        assert_eq!(steps[1].command, "sh -c 'echo no route >&2; exit 2'");
    }

    #[test]
    fn a_child_allowed_to_finish_may_end_with_success() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Supervisor::new(dir.path(), GRACE);
        let gen = sh(&mut s, "msggen", "exit 0", Ends::Success);
        let status = s.wait_exit(gen, Duration::from_secs(10)).unwrap().unwrap();
        assert!(status.success());
        // A check's exit code is its answer, not a crash.
        let check = sh(&mut s, "sysctl", "exit 1", Ends::Any);
        let status = s
            .wait_exit(check, Duration::from_secs(10))
            .unwrap()
            .unwrap();
        assert_eq!(status.code(), Some(1));
        s.hold(Duration::from_millis(100)).unwrap();
        let steps = s.stop_all();
        assert_eq!(
            (steps[0].result.as_str(), steps[1].result.as_str()),
            ("exit 0", "exit 1")
        );
    }
}
