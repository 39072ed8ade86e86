//! How figures read on a terminal: short, with their unit, and `-` where
//! there is nothing to show (no message yet has no p99, not a p99 of 0).
//! The progress bar, the interval lines and the summary all use these, so
//! a figure reads the same in each.

/// Microseconds with the unit that keeps three figures: `850us`,
/// `1.24ms`, `20.4ms`, `2.50s`.
pub(crate) fn micros(us: u64) -> String {
    // Thresholds are where the rounded figure would need the next unit.
    let v = us as f64;
    match v {
        _ if v < 999.5 => format!("{us}us"),
        _ if v < 9_995.0 => format!("{:.2}ms", v / 1e3),
        _ if v < 99_950.0 => format!("{:.1}ms", v / 1e3),
        _ if v < 999_500.0 => format!("{:.0}ms", v / 1e3),
        _ => format!("{:.2}s", v / 1e6),
    }
}

/// A count in at most five characters: `950`, `16.6k`, `250k`, `1.00M`.
pub(crate) fn count(n: f64) -> String {
    let n = n.max(0.0);
    match n {
        _ if n < 999.5 => format!("{n:.0}"),
        _ if n < 9_995.0 => format!("{:.2}k", n / 1e3),
        _ if n < 99_950.0 => format!("{:.1}k", n / 1e3),
        _ if n < 999_500.0 => format!("{:.0}k", n / 1e3),
        _ if n < 9_995_000.0 => format!("{:.2}M", n / 1e6),
        _ => format!("{:.1}M", n / 1e6),
    }
}

/// Whole seconds as `45s`, `2m05s`, `1h02m`.
pub(crate) fn clock(secs: u64) -> String {
    match secs {
        0..=59 => format!("{secs}s"),
        60..=3_599 => format!("{}m{:02}s", secs / 60, secs % 60),
        _ => format!("{}h{:02}m", secs / 3_600, secs % 3_600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_keep_three_digits_and_their_unit() {
        let shown: Vec<String> = [0, 850, 999, 1_240, 20_431, 99_999, 418_000, 2_500_000]
            .into_iter()
            .map(micros)
            .collect();
        assert_eq!(
            shown,
            ["0us", "850us", "999us", "1.24ms", "20.4ms", "100ms", "418ms", "2.50s"]
        );
        let shown: Vec<String> = [
            0.0,
            950.4,
            16_666.0,
            250_000.0,
            999_999.0,
            1_000_000.0,
            12e6,
        ]
        .into_iter()
        .map(count)
        .collect();
        assert_eq!(
            shown,
            ["0", "950", "16.7k", "250k", "1.00M", "1.00M", "12.0M"]
        );
        assert_eq!(
            (clock(45), clock(125), clock(3_720)),
            ("45s".into(), "2m05s".into(), "1h02m".into())
        );
    }
}
