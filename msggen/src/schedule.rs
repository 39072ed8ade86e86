//! The send schedule: message `k` (counting from 0) is due at
//! `start + k / rate`. The pacer asks "how many are due by now?" rather than
//! sleeping an interval after each send, so a late wake-up is caught up at
//! the next release and the long-run rate cannot drift. Everything here is a
//! pure function of elapsed time, which is how the tests drive it with a fake
//! clock.

use c1m_common::parse_count;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// The highest paced rate: 50 times the 200,000 msg/s one process is
/// meant to reach; each sender queues up to 2 s of its share (4 bytes a
/// message), so this bounds that memory to 80 MB.
pub(crate) const MAX_RATE: f64 = 10_000_000.0;

/// How fast to send.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    /// Messages per second over the whole process.
    PerSecond(f64),
    /// As fast as the target accepts (throughput measurement): the pacer
    /// keeps every sender's queue topped up instead of following a clock.
    Max,
}

impl FromStr for Rate {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        const FORM: &str = "expected messages per second such as 1000, 16666, 200k, 0.5, or max";
        let s = s.trim();
        if s.eq_ignore_ascii_case("max") {
            return Ok(Rate::Max);
        }
        let per_second = match parse_count(s) {
            Ok(n) => n as f64,
            Err(_) => s.parse::<f64>().map_err(|_| format!("{s:?}: {FORM}"))?,
        };
        if !(per_second.is_finite() && per_second > 0.0) {
            return Err(format!("{s:?}: the rate must be above 0 ({FORM})"));
        }
        if per_second > MAX_RATE {
            return Err(format!(
                "{s:?}: above {MAX_RATE} msg/s no schedule is kept (the queues would hold seconds of it): use --rate max to send as fast as the target accepts"
            ));
        }
        Ok(Rate::PerSecond(per_second))
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rate::PerSecond(r) => write!(f, "{r} msg/s"),
            Rate::Max => f.write_str("max"),
        }
    }
}

/// A paced schedule of `total` messages at `per_second`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Schedule {
    per_second: f64,
    total: u64,
}

impl Schedule {
    /// `total` messages, or as many as fall within `duration` (message `k`
    /// is in if it is due before `duration`), whichever is fewer.
    pub(crate) fn new(per_second: f64, count: Option<u64>, duration: Option<Duration>) -> Self {
        assert!(per_second > 0.0, "a schedule needs a positive rate");
        let by_duration = duration.map(|d| (d.as_secs_f64() * per_second).ceil() as u64);
        let total = match (count, by_duration) {
            (Some(c), Some(d)) => c.min(d),
            (Some(c), None) => c,
            (None, Some(d)) => d,
            (None, None) => u64::MAX,
        };
        Self { per_second, total }
    }

    /// How many messages the schedule holds.
    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    /// How many messages are due by `elapsed` since the start: message `k` is
    /// due at `k / rate`, so `floor(elapsed * rate) + 1` of them, at most
    /// `total`.
    pub(crate) fn due_by(&self, elapsed: Duration) -> u64 {
        // `as` saturates; the add must too (a run of years at 10M/s).
        let due = ((elapsed.as_secs_f64() * self.per_second).floor() as u64).saturating_add(1);
        due.min(self.total)
    }

    /// When message `k` is due, counted from the start; `Duration::MAX` when
    /// that is beyond what a `Duration` holds (a tiny rate, a huge count).
    pub(crate) fn due_at(&self, k: u64) -> Duration {
        Duration::try_from_secs_f64(k as f64 / self.per_second).unwrap_or(Duration::MAX)
    }

    /// When the pacer should next wake, after releasing the first `released`
    /// messages at `elapsed`: at the next message's due time, but not sooner
    /// than `tick` from now, so high rates go out in batches of about
    /// `rate * tick`. `None` once everything is released.
    pub(crate) fn next_wake(
        &self,
        released: u64,
        elapsed: Duration,
        tick: Duration,
    ) -> Option<Duration> {
        if released >= self.total {
            return None;
        }
        Some(self.due_at(released).max(elapsed + tick))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn parses_rates() {
        assert_eq!("16666".parse(), Ok(Rate::PerSecond(16666.0)));
        assert_eq!("200k".parse(), Ok(Rate::PerSecond(200_000.0)));
        assert_eq!("0.5".parse(), Ok(Rate::PerSecond(0.5)));
        assert_eq!("max".parse(), Ok(Rate::Max));
        assert!("0".parse::<Rate>().is_err());
        assert!("-3".parse::<Rate>().is_err());
        assert!("fast".parse::<Rate>().is_err());
        assert_eq!("10M".parse(), Ok(Rate::PerSecond(MAX_RATE)));
        let too_fast = "1e300".parse::<Rate>().unwrap_err();
        assert!(too_fast.contains("use --rate max"), "{too_fast}");
    }

    /// Extreme but accepted rates and counts saturate instead of
    /// overflowing (a panic in the pacer).
    #[test]
    fn extremes_saturate() {
        let s = Schedule::new(MAX_RATE, Some(u64::MAX), None);
        assert_eq!(s.due_by(Duration::MAX), u64::MAX);
        let slow = Schedule::new(1e-20, Some(3), None);
        assert_eq!(slow.due_at(2), Duration::MAX);
        assert_eq!(slow.next_wake(1, Duration::ZERO, MS), Some(Duration::MAX));
    }

    #[test]
    fn totals_from_count_and_duration() {
        let d = Some(Duration::from_secs(60));
        assert_eq!(Schedule::new(16666.0, None, d).total(), 999_960);
        assert_eq!(Schedule::new(16666.0, Some(10), d).total(), 10);
        assert_eq!(
            Schedule::new(2.0, Some(1000), Some(Duration::from_millis(1500))).total(),
            3
        );
    }

    #[test]
    fn first_message_is_due_at_the_start() {
        let s = Schedule::new(1000.0, Some(5), None);
        assert_eq!(s.due_by(Duration::ZERO), 1);
        assert_eq!(s.due_by(Duration::from_micros(999)), 1);
        assert_eq!(s.due_by(MS), 2);
        assert_eq!(s.due_by(Duration::from_secs(9)), 5);
    }

    /// A pacer that always wakes late by a varying amount still releases
    /// exactly `rate * t` by any time t: lateness never accumulates.
    #[test]
    fn late_wakeups_do_not_drift() {
        let s = Schedule::new(16666.0, None, Some(Duration::from_secs(60)));
        let mut now = Duration::ZERO;
        let mut released = 0;
        let mut releases = 0u64;
        let mut biggest = 0;
        while let Some(wake) = s.next_wake(released, now, MS) {
            // Fake clock: every wake-up is 0-300 us late.
            now = wake + Duration::from_micros(releases * 37 % 300);
            let due = s.due_by(now);
            biggest = biggest.max(due - released);
            released = due;
            releases += 1;
            let expected = ((now.as_secs_f64() * 16666.0).floor() as u64 + 1).min(s.total());
            assert_eq!(released, expected, "at {now:?}");
        }
        assert_eq!(released, 999_960);
        // One release per tick plus lateness (1-1.3 ms), each of ~17-22
        // messages.
        assert!((46_000..=60_001).contains(&releases), "{releases} releases");
        assert!(biggest <= 23, "a release of {biggest} messages");
    }

    #[test]
    fn low_rates_release_one_message_at_its_due_time() {
        let s = Schedule::new(10.0, Some(3), None);
        assert_eq!(
            s.next_wake(1, Duration::ZERO, MS),
            Some(Duration::from_millis(100))
        );
        assert_eq!(s.due_by(Duration::from_millis(100)), 2);
        assert_eq!(s.next_wake(3, Duration::from_millis(200), MS), None);
    }
}
