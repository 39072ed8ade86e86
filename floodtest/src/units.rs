//! How figures read on a terminal: short, with their unit. The summary
//! uses these, so a figure reads the same wherever it is shown.

/// Microseconds with the unit that keeps three figures: `850us`,
/// `1.24ms`, `20.4ms`, `2.50s`.
pub(crate) fn micros(us: u64) -> String {
    let v = us as f64;
    match us {
        0..=999 => format!("{us}us"),
        1_000..=9_999 => format!("{:.2}ms", v / 1e3),
        10_000..=99_999 => format!("{:.1}ms", v / 1e3),
        100_000..=999_999 => format!("{:.0}ms", v / 1e3),
        _ => format!("{:.2}s", v / 1e6),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_keep_three_digits_and_their_unit() {
        let shown: Vec<String> = [0, 850, 1_240, 20_431, 418_000, 2_500_000]
            .into_iter()
            .map(micros)
            .collect();
        assert_eq!(
            shown,
            ["0us", "850us", "1.24ms", "20.4ms", "418ms", "2.50s"]
        );
    }
}
