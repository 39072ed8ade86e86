//! How busy the machine is, for figures a user can trust on a shared one:
//! waiting (bounded) for the load to settle before the run, and watching it
//! during the run so the report can say when the run competed for the
//! CPU.
//!
//! The measure is the kernel's count of runnable tasks (`procs_running` in
//! `/proc/stat`), read four times a second: the instantaneous figure the load
//! average smooths over a minute. Straight after a build the load average
//! still reads 3-4 for a minute while the CPU is already idle; this count
//! is not fooled by that. The runner's own read counts itself, so one is
//! taken off. Our children count: a run whose own processes and the
//! others' together wanted more CPUs than there are was disturbed.
//!
//! Cost: one small file read four times a second, and one thread while
//! watching.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often the count is read.
const EVERY: Duration = Duration::from_millis(250);

/// Runnable tasks now, other than the reader; `None` if /proc cannot say.
pub(crate) fn runnable() -> Option<u32> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("procs_running "))?;
    let n: u32 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(n.saturating_sub(1))
}

/// The mean of `samples`, 0 for none.
fn mean(samples: &[u32]) -> f64 {
    if samples.is_empty() {
        0.0
    } else {
        samples.iter().map(|&n| f64::from(n)).sum::<f64>() / samples.len() as f64
    }
}

/// What waiting for the machine to settle found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Settled {
    /// How long the runner waited.
    pub(crate) waited: Duration,
    /// Runnable tasks over the last second of the wait.
    pub(crate) runnable: f64,
    /// Whether it settled, or the bound ran out.
    pub(crate) settled: bool,
}

/// Waits, at most `bound`, until the last second's mean of runnable tasks
/// is at most half of `cores` (the build that preceded the run has ended
/// and nothing else wants the CPUs); `say` is told once when waiting.
pub(crate) fn settle(cores: usize, bound: Duration, mut say: impl FnMut(String)) -> Settled {
    let start = Instant::now();
    let window = (Duration::from_secs(1).as_millis() / EVERY.as_millis()) as usize;
    let quiet = cores as f64 / 2.0;
    let mut recent: Vec<u32> = Vec::new();
    let mut told = false;
    loop {
        let Some(n) = runnable() else {
            return Settled {
                waited: start.elapsed(),
                runnable: 0.0,
                settled: true,
            };
        };
        recent.push(n);
        if recent.len() > window {
            recent.remove(0);
        }
        let now = mean(&recent);
        let full = recent.len() == window;
        if full && now <= quiet {
            return Settled {
                waited: start.elapsed(),
                runnable: now,
                settled: true,
            };
        }
        if start.elapsed() >= bound {
            return Settled {
                waited: start.elapsed(),
                runnable: now,
                settled: false,
            };
        }
        if full && !told {
            told = true;
            say(format!(
                "waiting for the machine to settle: {now:.1} tasks want the {cores} cores \
                 (at most {} s; --settle 0s skips)",
                bound.as_secs()
            ));
        }
        std::thread::sleep(EVERY);
    }
}

/// The load over a run.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Load {
    /// Mean runnable tasks over the run (the runner's own read not
    /// counted; its children are).
    pub mean: f64,
    /// The most seen at once.
    pub peak: u32,
    /// Share of the readings with more runnable tasks than cores.
    pub over_cores: f64,
    /// Readings taken.
    pub samples: usize,
}

impl Load {
    fn of(samples: &[u32], cores: usize) -> Load {
        let over = samples.iter().filter(|&&n| n as usize > cores).count();
        Load {
            mean: mean(samples),
            peak: samples.iter().copied().max().unwrap_or(0),
            over_cores: if samples.is_empty() {
                0.0
            } else {
                over as f64 / samples.len() as f64
            },
            samples: samples.len(),
        }
    }
}

/// Reads the count in a thread until [`Watch::finish`].
pub(crate) struct Watch {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<u32>>>,
    thread: Option<JoinHandle<()>>,
    cores: usize,
}

impl Watch {
    pub(crate) fn start(cores: usize) -> Watch {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let (flag, into) = (stop.clone(), samples.clone());
        let thread = std::thread::Builder::new()
            .name("load".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    if let Some(n) = runnable() {
                        into.lock().unwrap_or_else(|p| p.into_inner()).push(n);
                    }
                    std::thread::sleep(EVERY);
                }
            })
            .ok();
        Watch {
            stop,
            samples,
            thread,
            cores,
        }
    }

    /// Stops reading; the load over the time watched.
    pub(crate) fn finish(mut self) -> Load {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        Load::of(&samples, self.cores)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_load_over_a_run_counts_readings_past_the_cores() {
        let load = Load::of(&[1, 2, 3, 4, 0], 2);
        assert_eq!((load.mean, load.peak, load.samples), (2.0, 4, 5));
        assert_eq!(load.over_cores, 0.4);
        assert_eq!(Load::of(&[], 2), Load::default());
    }

    #[test]
    fn this_machine_has_a_count_and_a_watch_reads_it() {
        assert!(runnable().is_some());
        let watch = Watch::start(2);
        std::thread::sleep(EVERY * 3);
        assert!(watch.finish().samples >= 1);
        // A bound of zero returns at once, whatever the load.
        let s = settle(1_000, Duration::ZERO, |_| {});
        assert!(s.waited < Duration::from_secs(2));
    }
}
