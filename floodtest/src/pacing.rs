//! Pacing new connections: a token bucket per worker.
//!
//! `--rate` is split evenly over workers and processes; each worker refills
//! its bucket from the monotonic clock and may burst 10 ms worth of tokens,
//! so a late wake-up catches up without a spike. Cost: three numbers.

use std::time::Duration;

/// A token bucket; `None` rate means unlimited.
#[derive(Debug, Clone)]
pub(crate) struct Pacer {
    /// Tokens per microsecond.
    per_us: Option<f64>,
    tokens: f64,
    burst: f64,
    last_us: u64,
}

impl Pacer {
    /// A bucket releasing `per_sec` tokens per second, starting full.
    pub(crate) fn new(per_sec: Option<f64>) -> Self {
        let burst = per_sec.map_or(0.0, |r| (r / 100.0).max(1.0));
        Self {
            per_us: per_sec.map(|r| r / 1e6),
            tokens: burst,
            burst,
            last_us: 0,
        }
    }

    /// Takes a token if one is there at `now_us` (monotonic microseconds).
    pub(crate) fn try_take(&mut self, now_us: u64) -> bool {
        let Some(per_us) = self.per_us else {
            return true;
        };
        let elapsed = now_us.saturating_sub(self.last_us) as f64;
        self.last_us = now_us;
        self.tokens = (self.tokens + elapsed * per_us).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// How long until the next token (zero if unlimited or one is there).
    pub(crate) fn wait(&self) -> Duration {
        match self.per_us {
            Some(per_us) if self.tokens < 1.0 => {
                Duration::from_micros(((1.0 - self.tokens) / per_us).ceil() as u64)
            }
            _ => Duration::ZERO,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_the_rate_over_time() {
        let mut p = Pacer::new(Some(1000.0));
        let mut taken = 0;
        // One second in 1 ms steps: the 10-token burst plus 1000 refilled.
        for ms in 0..=1000u64 {
            while p.try_take(ms * 1000) {
                taken += 1;
            }
        }
        assert!((1000..=1011).contains(&taken), "{taken}");
        assert!(p.wait() <= Duration::from_millis(1));
    }

    #[test]
    fn unlimited_never_waits() {
        let mut p = Pacer::new(None);
        assert!((0..10_000).all(|_| p.try_take(0)));
        assert_eq!(p.wait(), Duration::ZERO);
    }
}
