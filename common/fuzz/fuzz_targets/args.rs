//! Arbitrary text through every argument parser the tools share, and the
//! batch-line and friends-file readers: none may panic, and what they
//! accept must be within the bounds they promise.

#![no_main]

use std::time::Duration;

use c1m_common::{
    count_within, duration_within, parse_batch, parse_count, parse_duration, read_friends, HeaderField, IdLimit, IdRange, Ipv4List, PortRange, MAX_DURATION,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut seen = 0;
    let lines = parse_batch(data, 1_000_000, |id, message| {
        assert!(id <= 1_000_000 && !message.contains(&b'\n'));
        seen += 1;
    });
    assert_eq!(lines.accepted, seen);
    let limit = IdLimit {
        max: 1_000_000,
        why: "fuzz",
    };
    let _ = read_friends(data, limit, |user, friend| {
        assert!(user <= 1_000_000 && friend <= 1_000_000);
    });
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_count(text);
    let _ = parse_duration(text);
    if let Ok(n) = count_within(text, 1, 1_000_000) {
        assert!((1..=1_000_000).contains(&n));
    }
    if let Ok(d) = duration_within(text, Duration::from_millis(1), MAX_DURATION) {
        assert!(d >= Duration::from_millis(1) && d <= MAX_DURATION);
    }
    if let Ok(r) = text.parse::<IdRange>() {
        assert!(r.len() >= 1);
    }
    let _ = text.parse::<PortRange>();
    let _ = text.parse::<Ipv4List>();
    let _ = text.parse::<HeaderField>();
});
