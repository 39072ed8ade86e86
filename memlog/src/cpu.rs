//! memlog's own CPU time, so each sample records what it cost
//! (`memlog_cpu_ms`) and a run's file says the sampler's share of the
//! machine: the sum of the column over the run's length.
//!
//! `getrusage(RUSAGE_THREAD)`: user + system time of the thread that
//! samples (memlog's only busy one), which includes the kernel's work for
//! a netlink dump, done on the reading thread. The thread rather than the
//! process, so a program that samples from one of its threads (the
//! benchmark, the tests) measures the sampling. One system call per
//! sample.

use std::time::Duration;

/// CPU used by the calling thread since it started.
fn used() -> Duration {
    // SAFETY: an all-zero rusage is valid; getrusage fills it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid rusage for the call. RUSAGE_THREAD
    // (Linux 2.6.26+) cannot fail with a valid pointer.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// CPU time between readings, on one thread.
pub(crate) struct CpuMeter {
    last: Duration,
}

impl CpuMeter {
    /// The first reading counts from the thread's start (memlog's main
    /// thread: the process's): what memlog spent getting ready belongs to
    /// the first sample.
    pub(crate) fn new() -> Self {
        CpuMeter {
            last: Duration::ZERO,
        }
    }

    /// Milliseconds of CPU since the previous call (microsecond
    /// resolution, as the kernel reports it).
    pub(crate) fn since_last_ms(&mut self) -> f64 {
        let now = used();
        let spent = now.saturating_sub(self.last);
        self.last = now;
        spent.as_micros() as f64 / 1000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn work_shows_and_idle_does_not() {
        let mut meter = CpuMeter::new();
        // Since this test's thread started: next to nothing, but counted.
        assert!(meter.since_last_ms() < 1000.0);
        let started = Instant::now();
        let mut x = 0u64;
        while started.elapsed() < Duration::from_millis(30) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        // 30 ms of spinning; on a busy machine some of it waits for a core.
        let busy = meter.since_last_ms();
        assert!((1.0..1000.0).contains(&busy), "{busy} ms");
        std::thread::sleep(Duration::from_millis(30));
        let idle = meter.since_last_ms();
        assert!(idle < 5.0, "{idle} ms asleep");
    }
}
