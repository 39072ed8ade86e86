//! The one rule for a subscriber id, wherever one arrives: a path
//! (`/test/7`, `/send/7`, `/check/7`), a `POST /send` batch line, a friends
//! file line. One rule so that an id one route accepts no other refuses.
//!
//! An id is one or more ASCII digits whose value fits in u64: no sign,
//! space, `+` or `0x`. Leading zeros are allowed and count for nothing
//! (`007` is 7, however many zeros), as in a `Content-Length`; the cap is
//! the value, never the digit count. Allocation-free, one pass.

/// The id `digits` spell, or `None` when they are not an id.
pub fn parse_id(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |value, &b| {
        if !b.is_ascii_digit() {
            return None;
        }
        value.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn digits_within_u64_and_nothing_else() {
        assert_eq!(parse_id(b"0"), Some(0));
        assert_eq!(parse_id(b"18446744073709551615"), Some(u64::MAX));
        // Zero padding is no part of the value: 25 digits, id 7.
        assert_eq!(parse_id(b"0000000000000000000000007"), Some(7));
        for bad in [
            &b""[..],
            b"18446744073709551616",
            b"+1",
            b" 1",
            b"1 ",
            b"-1",
            b"0x1",
        ] {
            assert_eq!(parse_id(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    proptest! {
        #[test]
        fn any_u64_with_any_padding_reads_back(id in any::<u64>(), zeros in 0usize..40) {
            let text = format!("{}{id}", "0".repeat(zeros));
            prop_assert_eq!(parse_id(text.as_bytes()), Some(id));
        }

        #[test]
        fn agrees_with_std_on_digits(text in "[0-9]{1,30}") {
            let trimmed = text.trim_start_matches('0');
            let std = if trimmed.is_empty() { Some(0) } else { trimmed.parse::<u64>().ok() };
            prop_assert_eq!(parse_id(text.as_bytes()), std);
        }
    }
}
