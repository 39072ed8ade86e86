//! Arbitrary bytes through every parser a client can reach: the subscriber
//! request parser/router, the admin head parser and the batch-body parser.
//! None may panic, and what they return must be consistent with the input.

#![no_main]

use c1m_common::parse_batch;
use c1m_server::parse_admin_head;
use c1m_server::MAX_HEAD;
use c1m_server::{parse_request, Parsed, RequestLimits};
use libfuzzer_sys::fuzz_target;

const MAX_ID: u64 = 1_000_000;
const LIMITS: RequestLimits = RequestLimits {
    max_id: MAX_ID,
    max_ids: 16,
};

fuzz_target!(|data: &[u8]| {
    match parse_request(data, LIMITS) {
        Ok(Parsed::Complete { request, len }) => {
            assert!(len <= data.len() && len <= MAX_HEAD);
            assert!(request.route.id() <= MAX_ID);
            let more = request.route.more_ids();
            assert!(more.len() < LIMITS.max_ids && more.iter().all(|&id| id <= MAX_ID));
        }
        Ok(Parsed::Incomplete) => assert!(data.len() <= MAX_HEAD),
        Err(reject) => assert!(reject.status.code() >= 400),
    }
    if let Ok(Some(head)) = parse_admin_head(data, Some("token"), MAX_ID) {
        assert!(head.len <= data.len());
    }
    let mut seen = 0;
    let lines = parse_batch(data, MAX_ID, |id, message| {
        assert!(id <= MAX_ID);
        assert!(!message.contains(&b'\n'));
        seen += 1;
    });
    assert_eq!(lines.accepted, seen);
});
