//! Arguments that feed arithmetic, checked at parse time against the range
//! where that arithmetic holds, so a tool given `--rate 0` or a timeout of
//! a thousand years says so before it starts instead of hanging, panicking
//! on `Instant + Duration` or wrapping a `u64` later.
//!
//! Each check parses with the shared parser ([`parse_duration`],
//! [`parse_count`]) and returns a one-line reason that names the bound, the
//! fix in the message; a tool adds what is specific to the flag (`leave
//! --rate out for no limit`). They plug into clap as
//! `value_parser = |s: &str| count_within(s, 1, MAX)`.

use crate::parse::{parse_count, parse_duration};
use std::time::Duration;

/// The longest duration any timeout, interval, pause or backoff of the
/// tools takes. Deadlines are `Instant + Duration`, which panics past the
/// clock's range, and several are kept as `u64` microseconds; a day is far
/// beyond any useful timeout and far inside both.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 60 * 60);

/// A duration as [`parse_duration`] reads it, within `min..=max`.
pub fn duration_within(input: &str, min: Duration, max: Duration) -> Result<Duration, String> {
    let d = parse_duration(input).map_err(|e| e.to_string())?;
    if d < min {
        return Err(if min <= Duration::from_millis(1) {
            format!("{input:?}: must be longer than 0s (at least {})", show(min))
        } else {
            format!("{input:?}: must be at least {}", show(min))
        });
    }
    if d > max {
        return Err(format!("{input:?}: must be at most {}", show(max)));
    }
    Ok(d)
}

/// A count as [`parse_count`] reads it, within `min..=max`.
pub fn count_within(input: &str, min: u64, max: u64) -> Result<u64, String> {
    let n = parse_count(input).map_err(|e| e.to_string())?;
    if n < min {
        return Err(format!(
            "{input:?}: must be at least {}",
            crate::thousands(min)
        ));
    }
    if n > max {
        return Err(format!(
            "{input:?}: must be at most {}",
            crate::thousands(max)
        ));
    }
    Ok(n)
}

/// `24h`, `10s`, `100ms`: a bound as a person writes it (and as
/// [`parse_duration`] reads it back).
fn show(d: Duration) -> String {
    let ms = d.as_millis();
    match ms {
        // A bound under a millisecond (msggen's and experiment's ticks).
        _ if d.subsec_nanos() % 1_000_000 != 0 => format!("{}us", d.as_micros()),
        _ if ms % 3_600_000 == 0 && ms > 0 => format!("{}h", ms / 3_600_000),
        _ if ms % 1_000 == 0 => format!("{}s", ms / 1_000),
        _ => format!("{ms}ms"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn durations_inside_the_bounds_pass() {
        assert_eq!(
            duration_within("10s", MS, MAX_DURATION),
            Ok(Duration::from_secs(10))
        );
        assert_eq!(duration_within("24h", MS, MAX_DURATION), Ok(MAX_DURATION));
        assert_eq!(duration_within("1ms", MS, MAX_DURATION), Ok(MS));
    }

    #[test]
    fn durations_outside_name_the_bound() {
        assert_eq!(
            duration_within("0s", MS, MAX_DURATION).unwrap_err(),
            "\"0s\": must be longer than 0s (at least 1ms)"
        );
        assert_eq!(
            duration_within("25h", MS, MAX_DURATION).unwrap_err(),
            "\"25h\": must be at most 24h"
        );
        assert_eq!(
            duration_within("50ms", Duration::from_millis(100), MAX_DURATION).unwrap_err(),
            "\"50ms\": must be at least 100ms"
        );
        assert_eq!(
            duration_within("5us", Duration::from_micros(10), MAX_DURATION).unwrap_err(),
            "\"5us\": must be longer than 0s (at least 10us)"
        );
        // Far past what Instant + Duration can hold.
        let huge = u64::MAX.to_string();
        assert!(duration_within(&huge, MS, MAX_DURATION)
            .unwrap_err()
            .ends_with("must be at most 24h"));
        assert!(duration_within("soon", MS, MAX_DURATION)
            .unwrap_err()
            .contains("expected a duration"));
    }

    #[test]
    fn counts_outside_name_the_bound() {
        assert_eq!(count_within("10k", 1, 1_000_000), Ok(10_000));
        assert_eq!(
            count_within("0", 1, 1_000_000).unwrap_err(),
            "\"0\": must be at least 1"
        );
        assert_eq!(
            count_within("2M", 1, 1_000_000).unwrap_err(),
            "\"2M\": must be at most 1,000,000"
        );
        assert!(count_within("x", 1, 2)
            .unwrap_err()
            .contains("expected a count"));
    }
}
