//! Arbitrary bytes through the envelope finder floodtest runs over every
//! stream: no panic, the bytes consumed never past the input, every
//! envelope found decodes again at its place, and scanning the bytes in two
//! pieces (the carry put in front of the rest, as floodtest does) finds the
//! same envelopes as scanning them whole.

#![no_main]

use c1m_common::{decode_envelope, scan_envelopes, Envelope};
use libfuzzer_sys::fuzz_target;

fn found(buf: &[u8]) -> (Vec<(u64, u64, u64, Vec<u8>)>, usize) {
    let mut got = Vec::new();
    let used = scan_envelopes(buf, |e: Envelope<'_>| {
        got.push((e.header.id, e.header.generator, e.header.seq, e.payload.to_vec()))
    });
    (got, used)
}

fuzz_target!(|data: &[u8]| {
    let (whole, used) = found(data);
    assert!(used <= data.len());
    if let Ok(Some((_, len))) = decode_envelope(data) {
        assert!(len <= data.len());
    }
    // Split at a point the input chooses, carry as floodtest does.
    let cut = data.first().map_or(0, |&b| b as usize % (data.len() + 1));
    let (mut first, used) = found(&data[..cut]);
    let mut rest = data[used..cut].to_vec();
    rest.extend_from_slice(&data[cut..]);
    let (second, _) = found(&rest);
    first.extend(second);
    assert_eq!(first, whole, "split at {cut}");
});
