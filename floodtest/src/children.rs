//! `--procs N`: the run split over child processes.
//!
//! RLIMIT_NOFILE caps one process (here at 20,000 descriptors), so past it
//! the parent re-executes itself N times with `--child K/N` appended. Each
//! child plans the same run and takes its own slice of connection indices
//! (and, in explicit mode, of local ports), so children never share a source
//! pair. The protocol is lines of JSON and text over pipes:
//!
//! - child stdout -> parent: one [`Snapshot`] per tick (cumulative counters,
//!   gauges, histograms since its previous line; the last has `finished`);
//! - parent -> child stdin: `release` (pass a pause step) and `stop`; EOF
//!   also stops the child, and PR_SET_PDEATHSIG ends it if the parent dies.
//!
//! Child stderr is the parent's, so a child's refusal or error is seen as is.
//! A child whose output ends without its last snapshot has died (crashed,
//! killed, refused): its connections died with it, so its view counts them
//! closed, the parent ends the run and writes the summary marked incomplete.

use crate::fleet::{Fleet, Joined, LocalFleet};
use crate::stats::{Snapshot, Timings};
use crate::worker::Control;
use anyhow::Context;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the parent knows of one child.
struct View {
    /// Latest cumulative figures; histograms accumulate until polled.
    snap: Snapshot,
    /// The child's stdout closed: it has exited or is about to.
    gone: bool,
    /// It went without its last word (`finished`): it died.
    died: bool,
}

pub(crate) struct ChildFleet {
    children: Vec<Child>,
    stdins: Vec<Option<ChildStdin>>,
    views: Vec<Arc<Mutex<View>>>,
    readers: Vec<JoinHandle<()>>,
}

impl ChildFleet {
    /// Starts `procs` children of this executable with `argv` (the parent's
    /// arguments) plus `--child K/N`.
    pub(crate) fn spawn(procs: u64, argv: &[String]) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("finding this executable to start children")?;
        let mut fleet = ChildFleet {
            children: Vec::new(),
            stdins: Vec::new(),
            views: Vec::new(),
            readers: Vec::new(),
        };
        for k in 0..procs {
            let mut child = Command::new(&exe)
                .args(argv)
                .arg("--child")
                .arg(format!("{k}/{procs}"))
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .with_context(|| format!("starting child {k} of {procs}"))?;
            let stdout = child.stdout.take().expect("stdout is piped");
            let view = Arc::new(Mutex::new(View {
                snap: Snapshot::starting(),
                gone: false,
                died: false,
            }));
            let reader_view = view.clone();
            fleet
                .readers
                .push(std::thread::spawn(move || read_child(stdout, reader_view)));
            fleet.stdins.push(child.stdin.take());
            fleet.children.push(child);
            fleet.views.push(view);
        }
        Ok(fleet)
    }

    fn send(&mut self, line: &str) {
        for stdin in self.stdins.iter_mut() {
            // A child that has gone cannot be told; its reader marks it gone.
            if let Some(s) = stdin {
                if writeln!(s, "{line}").is_err() {
                    *stdin = None;
                }
            }
        }
    }
}

/// Reads one child's snapshot lines into its view until EOF.
fn read_child(stdout: std::process::ChildStdout, view: Arc<Mutex<View>>) {
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        let Ok(snap) = serde_json::from_str::<Snapshot>(&line) else {
            continue;
        };
        let mut v = view.lock().unwrap_or_else(|p| p.into_inner());
        // Lines between two polls each carry their own histograms.
        let mut timings = std::mem::replace(&mut v.snap.timings, Timings::new());
        timings.add(&snap.timings);
        v.snap = Snapshot { timings, ..snap };
    }
    view.lock().unwrap_or_else(|p| p.into_inner()).gone = true;
}

impl Fleet for ChildFleet {
    fn poll(&mut self) -> Snapshot {
        let mut merged = Snapshot::empty();
        for view in &self.views {
            let mut v = view.lock().unwrap_or_else(|p| p.into_inner());
            if v.gone && !v.snap.finished {
                // Its descriptors closed with it; it will not start more.
                v.died = true;
                v.snap.mark_dead();
            }
            merged.merge(&v.snap);
            v.snap.timings.reset();
        }
        merged
    }

    fn release(&mut self) {
        self.send("release");
    }

    fn stop(&mut self) {
        self.send("stop");
    }

    fn broken(&mut self) -> Option<String> {
        let procs = self.children.len();
        let died: Vec<String> = self
            .views
            .iter()
            .enumerate()
            .filter(|(_, v)| v.lock().unwrap_or_else(|p| p.into_inner()).died)
            .map(|(k, _)| match self.children[k].try_wait() {
                Ok(Some(status)) => format!("child {k} of {procs} ended early ({status})"),
                _ => format!("child {k} of {procs} ended early"),
            })
            .collect();
        (!died.is_empty()).then(|| died.join(", "))
    }

    fn join(mut self: Box<Self>) -> Joined {
        self.stop();
        self.stdins.clear();
        let wait = stop_wait(self.children.len());
        let deadline = Instant::now() + wait;
        let statuses: Vec<_> = self
            .children
            .iter_mut()
            .map(|child| wait_until(child, deadline, wait))
            .collect();
        for reader in std::mem::take(&mut self.readers) {
            let _ = reader.join();
        }
        let last = self.poll();
        let procs = self.children.len();
        let mut failures = Vec::new();
        for (k, (status, view)) in statuses.into_iter().zip(&self.views).enumerate() {
            let died = view.lock().unwrap_or_else(|p| p.into_inner()).died;
            match status {
                Ok(status) if !status.success() => {
                    failures.push(format!("child {k} of {procs}: {status}"))
                }
                Ok(_) if died => failures.push(format!(
                    "child {k} of {procs}: exited without its last report"
                )),
                Ok(_) => {}
                Err(e) => failures.push(format!("child {k} of {procs}: {e:#}")),
            }
        }
        Joined {
            last,
            failures,
            agents: Vec::new(),
        }
    }
}

/// How long children may take to close their connections and report once
/// told to stop: 30 s, plus a second per child. One child's 20,000 closes
/// take well under a second alone, but at 1M (51 children, 53 servers and
/// memlog on 2 cores) every close is also work for the server that sees it,
/// and the whole teardown took over 30 s here.
fn stop_wait(procs: usize) -> Duration {
    Duration::from_secs(30 + procs as u64)
}

/// Waits for `child` until `deadline`, then kills it: the run's end is
/// bounded even if a child hangs.
fn wait_until(child: &mut Child, deadline: Instant, wait: Duration) -> anyhow::Result<ExitStatus> {
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if Instant::now() >= deadline {
            child.kill()?;
            child.wait()?;
            anyhow::bail!("did not stop within {}s; killed", wait.as_secs());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A child's side: obey the parent's commands on stdin and die with it.
pub(crate) fn serve_parent(control: Arc<Control>) {
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes a signal number and touches no
    // memory of ours.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
    }
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            match line.as_deref().map(str::trim) {
                Ok("release") => {
                    control.gate.fetch_add(1, Ordering::Relaxed);
                }
                Ok("stop") | Err(_) => break,
                Ok(_) => {}
            }
        }
        control.stop.store(true, Ordering::Relaxed);
    });
}

/// Writes a child's snapshot line for the parent.
pub(crate) fn emit(snap: &Snapshot) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, snap)?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}

/// Starts this child's workers.
pub(crate) fn start_local(
    units: Vec<crate::plan::Unit>,
    control: Arc<Control>,
) -> anyhow::Result<LocalFleet> {
    serve_parent(control.clone());
    LocalFleet::start(units, control)
}
