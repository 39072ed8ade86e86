//! Arbitrary bytes through every decoder of the HTTP codec: both head
//! parsers and the body decoder. None may panic, a complete head must be
//! complete at its length and not before, and the body decoder must decode
//! the same bytes whole as split in two at any point.

#![no_main]

use c1m_http::{
    parse_request, parse_response, BodyDecoder, BodyError, BodyFraming, HeadLimits, HeaderSlots,
};
use libfuzzer_sys::fuzz_target;

const LIMITS: HeadLimits = HeadLimits::new(8 * 1024, 32);

/// What decoding `pieces` in order gives: body bytes, bytes used (0 after an
/// error), whether the body ended, and the error if any.
fn decode(framing: BodyFraming, pieces: &[&[u8]]) -> (Vec<u8>, usize, bool, Option<BodyError>) {
    let mut decoder = BodyDecoder::new(framing).expect("small lengths fit");
    let (mut body, mut used) = (Vec::new(), 0);
    for piece in pieces {
        if decoder.is_done() {
            break;
        }
        match decoder.decode(piece, |b| body.extend_from_slice(b)) {
            Ok(got) => {
                assert!(got.used <= piece.len());
                used += got.used;
            }
            // What was used before the error depends on the split: not compared.
            Err(e) => return (body, 0, false, Some(e)),
        }
    }
    (body, used, decoder.is_done(), None)
}

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(head)) = parse_request(data, &LIMITS, &mut HeaderSlots::new()) {
        assert!(head.len <= data.len() && head.len <= LIMITS.max_len());
        let mut slots = HeaderSlots::new();
        let again = parse_request(&data[..head.len], &LIMITS, &mut slots);
        let again = again.unwrap().unwrap();
        assert_eq!((again.len, again.body), (head.len, head.body));
        let mut slots = HeaderSlots::new();
        let shorter = parse_request(&data[..head.len - 1], &LIMITS, &mut slots);
        assert!(matches!(shorter, Ok(None)));
    }
    for method in ["GET", "HEAD"] {
        if let Ok(Some(head)) = parse_response(data, &LIMITS, method, &mut HeaderSlots::new()) {
            assert!(head.len <= data.len() && head.len <= LIMITS.max_len());
            let mut slots = HeaderSlots::new();
            let shorter = parse_response(&data[..head.len - 1], &LIMITS, method, &mut slots);
            assert!(matches!(shorter, Ok(None)));
        }
    }
    let Some((&split, input)) = data.split_first() else {
        return;
    };
    let at = usize::from(split).min(input.len());
    let framings = [
        BodyFraming::Chunked,
        BodyFraming::UntilClose,
        BodyFraming::Length(u64::from(split) * 3),
    ];
    for framing in framings {
        let whole = decode(framing, &[input]);
        let split = decode(framing, &[&input[..at], &input[at..]]);
        assert_eq!(whole, split, "{framing:?} split at {at}");
        if whole.3.is_none() {
            assert!(whole.0.len() <= whole.1);
        }
    }
});
