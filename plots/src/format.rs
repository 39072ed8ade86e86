//! How numbers look on axes and in tables: counts with K/M/G suffixes,
//! memory in binary units, thousands separators, and the unit an axis uses
//! (seconds, minutes or hours; MiB or GiB) chosen from the data's span.
//!
//! memlog's `*_kb` fields are the kernel's kB, which are KiB (1,024 bytes),
//! so every memory figure here is in binary units and says so (`MiB`,
//! `KiB`): the seeds' "KB" and "m" are the same units under older names.

/// A count or rate on a tick or in a legend: `950`, `2.5K`, `10K`, `1.2M`.
/// Decimal suffixes (K = 1,000), up to two decimals, trailing zeros dropped.
pub(crate) fn format_count(value: f64) -> String {
    const SCALES: [(f64, &str); 4] = [(1.0, ""), (1e3, "K"), (1e6, "M"), (1e9, "G")];
    let magnitude = value.abs();
    let mut i = SCALES
        .iter()
        .rposition(|&(scale, _)| magnitude >= scale)
        .unwrap_or(0);
    // Move up when rounding reaches the next suffix: 999,999 is "1M", not "1000K".
    if i + 1 < SCALES.len() && round_to(magnitude / SCALES[i].0, 2) >= 1000.0 {
        i += 1;
    }
    let (scale, suffix) = SCALES[i];
    format!("{}{suffix}", trim_decimal(value / scale, 2))
}

/// An integer with thousands separators: `1,000,000`.
pub(crate) fn format_thousands(n: u64) -> String {
    c1m_common::thousands(n)
}

/// A size in bytes, in the binary unit that keeps it short, to three
/// significant digits: `512 B`, `2.76 KiB`, `24.2 MiB`, `288 MiB`, `1.41 GiB`.
pub(crate) fn format_bytes(bytes: f64) -> String {
    const KIB: f64 = 1024.0;
    let magnitude = bytes.abs();
    let (value, unit) = if magnitude < KIB {
        return format!("{} B", trim_decimal(bytes, 0));
    } else if magnitude < KIB * KIB {
        (bytes / KIB, "KiB")
    } else if magnitude < KIB * KIB * KIB {
        (bytes / (KIB * KIB), "MiB")
    } else {
        (bytes / (KIB * KIB * KIB), "GiB")
    };
    let places = match value.abs() {
        v if v < 9.995 => 2,
        v if v < 99.95 => 1,
        _ => 0,
    };
    // Fixed places, not trimmed, so a table column reads evenly.
    format!("{value:.places$} {unit}")
}

/// A plain tick value: up to two decimals, trailing zeros dropped.
pub(crate) fn format_tick(value: f64) -> String {
    trim_decimal(value, 2)
}

fn round_to(value: f64, places: i32) -> f64 {
    let factor = 10f64.powi(places);
    (value * factor).round() / factor
}

fn trim_decimal(value: f64, places: usize) -> String {
    let mut s = format!("{value:.places$}");
    if s.contains('.') {
        let trimmed = s.trim_end_matches('0').trim_end_matches('.').len();
        s.truncate(trimmed);
    }
    if s == "-0" {
        s = "0".to_owned();
    }
    s
}

/// The unit of a time axis, picked so the numbers stay small and whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimeUnit {
    Seconds,
    Minutes,
    Hours,
}

impl TimeUnit {
    /// Seconds up to 3 minutes, minutes up to 3 hours (Part 2's "Minutes
    /// Elapsed"), hours beyond.
    pub(crate) fn for_span(span_s: f64) -> Self {
        if span_s <= 180.0 {
            Self::Seconds
        } else if span_s <= 3.0 * 3600.0 {
            Self::Minutes
        } else {
            Self::Hours
        }
    }

    pub(crate) fn scale_seconds(self, s: f64) -> f64 {
        match self {
            Self::Seconds => s,
            Self::Minutes => s / 60.0,
            Self::Hours => s / 3600.0,
        }
    }

    pub(crate) fn axis_label(self) -> &'static str {
        match self {
            Self::Seconds => "Seconds elapsed",
            Self::Minutes => "Minutes elapsed",
            Self::Hours => "Hours elapsed",
        }
    }
}

/// The unit of a memory axis: MiB until the data passes 4 GiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MemUnit {
    MiB,
    GiB,
}

impl MemUnit {
    pub(crate) fn for_max_kb(max_kb: f64) -> Self {
        if max_kb.abs() < 4.0 * 1024.0 * 1024.0 {
            Self::MiB
        } else {
            Self::GiB
        }
    }

    pub(crate) fn scale_kb(self, kb: f64) -> f64 {
        match self {
            Self::MiB => kb / 1024.0,
            Self::GiB => kb / (1024.0 * 1024.0),
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::MiB => "MiB",
            Self::GiB => "GiB",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_take_k_m_g_suffixes() {
        assert_eq!(format_count(0.0), "0");
        assert_eq!(format_count(950.0), "950");
        assert_eq!(format_count(1000.0), "1K");
        assert_eq!(format_count(2500.0), "2.5K");
        assert_eq!(format_count(10_000.0), "10K");
        assert_eq!(format_count(12_340.0), "12.34K");
        assert_eq!(format_count(250_000.0), "250K");
        assert_eq!(format_count(1_000_000.0), "1M");
        assert_eq!(format_count(1_500_000.0), "1.5M");
        assert_eq!(format_count(2e9), "2G");
        assert_eq!(format_count(-3000.0), "-3K");
        assert_eq!(format_count(0.25), "0.25");
    }

    #[test]
    fn rounding_moves_to_the_next_suffix() {
        assert_eq!(format_count(999.999), "1K");
        assert_eq!(format_count(999_999.0), "1M");
        assert_eq!(format_count(999.0), "999");
    }

    #[test]
    fn thousands_are_separated() {
        assert_eq!(format_thousands(0), "0");
        assert_eq!(format_thousands(999), "999");
        assert_eq!(format_thousands(1000), "1,000");
        assert_eq!(format_thousands(100_000), "100,000");
        assert_eq!(format_thousands(1_000_000), "1,000,000");
    }

    #[test]
    fn bytes_use_binary_units() {
        assert_eq!(format_bytes(512.0), "512 B");
        assert_eq!(format_bytes(2826.24), "2.76 KiB");
        assert_eq!(format_bytes(24.2 * 1024.0 * 1024.0), "24.2 MiB");
        assert_eq!(format_bytes(10.0 * 1024.0), "10.0 KiB");
        assert_eq!(format_bytes(288.0 * 1024.0 * 1024.0), "288 MiB");
        assert_eq!(format_bytes(1.5 * 1024.0 * 1024.0 * 1024.0), "1.50 GiB");
        assert_eq!(format_bytes(-2048.0), "-2.00 KiB");
    }

    #[test]
    fn time_unit_follows_the_span() {
        assert_eq!(TimeUnit::for_span(120.0), TimeUnit::Seconds);
        assert_eq!(TimeUnit::for_span(3600.0), TimeUnit::Minutes);
        assert_eq!(TimeUnit::for_span(24.0 * 3600.0), TimeUnit::Hours);
        assert_eq!(TimeUnit::Minutes.scale_seconds(90.0), 1.5);
    }

    #[test]
    fn memory_unit_follows_the_peak() {
        assert_eq!(MemUnit::for_max_kb(250.0 * 1024.0), MemUnit::MiB);
        assert_eq!(MemUnit::for_max_kb(8.0 * 1024.0 * 1024.0), MemUnit::GiB);
        assert_eq!(MemUnit::MiB.scale_kb(2048.0), 2.0);
    }
}
