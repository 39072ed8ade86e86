//! Starting and keeping the workers of a group: each is this binary again
//! with hidden arguments (`--worker-index`, `--group-id`), waited for until
//! it says it is ready, restarted under the same index when it dies
//! (counted), and stopped with SIGTERM when the front stops.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// What a worker prints on stdout once it serves: `comet-server worker <i> ready`.
pub(crate) const WORKER_READY: &str = "comet-server worker ";

/// Time a worker has to say it is ready.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Time the workers have to end their streams after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(30);

/// A worker that dies within this long of starting is restarted after a
/// growing pause (a crash loop must not spin).
const QUICK_DEATH: Duration = Duration::from_secs(2);

/// Per worker: what `/stats` shows about the process.
#[derive(Default)]
pub(crate) struct Slot {
    pub(crate) pid: AtomicU32,
    pub(crate) up: AtomicBool,
    pub(crate) restarts: AtomicU64,
}

/// Every worker's slot, by index.
pub(crate) type Slots = Vec<Slot>;

/// The running workers and how to start one again.
pub(crate) struct Supervisor {
    /// The command line of worker `i`, without the program.
    args: Box<dyn Fn(usize) -> Vec<String> + Send>,
    children: Vec<Option<(Child, Instant)>>,
    /// Pause before the next restart of each worker after quick deaths.
    pause: Vec<Duration>,
    restart_at: Vec<Option<Instant>>,
    /// Restarted workers not yet ready.
    starting: Vec<Option<mpsc::Receiver<()>>>,
}

impl Supervisor {
    pub(crate) fn new(workers: usize, args: Box<dyn Fn(usize) -> Vec<String> + Send>) -> Self {
        Self {
            args,
            children: (0..workers).map(|_| None).collect(),
            pause: vec![Duration::ZERO; workers],
            restart_at: vec![None; workers],
            starting: (0..workers).map(|_| None).collect(),
        }
    }

    /// Starts every worker and waits until each is ready.
    pub(crate) fn start_all(&mut self, slots: &Slots) -> anyhow::Result<()> {
        let mut waiting = Vec::new();
        for index in 0..self.children.len() {
            waiting.push(self.spawn(index, slots)?);
        }
        for (index, ready) in waiting.into_iter().enumerate() {
            match ready.recv_timeout(START_TIMEOUT) {
                Ok(()) => slots[index].up.store(true, Relaxed),
                Err(_) => bail!("worker {index} did not say it was ready within {START_TIMEOUT:?}"),
            }
        }
        Ok(())
    }

    /// Starts worker `index`; the receiver hears once it is ready.
    fn spawn(&mut self, index: usize, slots: &Slots) -> anyhow::Result<mpsc::Receiver<()>> {
        let exe = std::env::current_exe().context("finding this executable to start workers")?;
        let mut child = Command::new(exe)
            .args((self.args)(index))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting worker {index}"))?;
        slots[index].pid.store(child.id(), Relaxed);
        let stdout = child.stdout.take().context("worker stdout")?;
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name(format!("worker-{index}-ready"))
            .spawn(move || {
                let mut line = String::new();
                if BufReader::new(stdout).read_line(&mut line).is_ok()
                    && line.starts_with(WORKER_READY)
                {
                    let _ = tx.send(());
                }
            })?;
        self.children[index] = Some((child, Instant::now()));
        Ok(rx)
    }

    /// Restarts every worker that has died (counted in its slot); call it
    /// every ~100 ms. A worker that keeps dying at once waits longer each
    /// time (up to 5 s) before its next start.
    pub(crate) fn check(&mut self, slots: &Slots) {
        let now = Instant::now();
        for index in 0..self.children.len() {
            if let Some(ready) = &self.starting[index] {
                if ready.try_recv().is_ok() {
                    slots[index].up.store(true, Relaxed);
                    self.starting[index] = None;
                }
            }
            if let Some((child, started)) = &mut self.children[index] {
                let Ok(Some(status)) = child.try_wait() else {
                    continue;
                };
                let quick = started.elapsed() < QUICK_DEATH;
                eprintln!(
                    "comet-server: worker {index} (pid {}) ended: {status}; restarting",
                    child.id()
                );
                slots[index].up.store(false, Relaxed);
                self.children[index] = None;
                self.pause[index] = if quick {
                    (self.pause[index] * 2)
                        .clamp(Duration::from_millis(100), Duration::from_secs(5))
                } else {
                    Duration::ZERO
                };
                self.restart_at[index] = Some(now + self.pause[index]);
            }
            if self.restart_at[index].is_some_and(|at| at <= now) {
                self.restart_at[index] = None;
                slots[index].restarts.fetch_add(1, Relaxed);
                match self.spawn(index, slots) {
                    Ok(ready) => self.starting[index] = Some(ready),
                    Err(e) => {
                        eprintln!("comet-server: {e:#}");
                        self.restart_at[index] = Some(now + Duration::from_secs(1));
                    }
                }
            }
        }
    }

    /// SIGTERM to every worker (each ends its streams), then waits; one
    /// still running after [`STOP_GRACE`] is killed.
    pub(crate) fn stop_all(&mut self) {
        for (child, _) in self.children.iter().flatten() {
            if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            }
        }
        let deadline = Instant::now() + STOP_GRACE;
        for (child, _) in self.children.iter_mut().flatten() {
            while matches!(child.try_wait(), Ok(None)) {
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}
