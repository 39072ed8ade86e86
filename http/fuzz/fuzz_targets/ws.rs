//! Arbitrary bytes through both WebSocket decoders. Neither may panic; the
//! incremental one must give the same events and verdict whole as split in
//! two at any point; the bounded one must say `None` for every prefix of a
//! frame it reads and never report a frame longer than its input.

#![no_main]

use c1m_http::ws::{read_client_frame, Bounds, Event, FrameDecoder, MessageState, WsError};
use libfuzzer_sys::fuzz_target;

const BOUNDS: Bounds = Bounds {
    frame: 1024,
    message: 4096,
};

/// Events as text, and the verdict, from decoding `pieces` in order.
fn incremental(pieces: &[&[u8]]) -> (Vec<u8>, Option<WsError>) {
    let mut decoder = FrameDecoder::new();
    let mut seen = Vec::new();
    for piece in pieces {
        let result = decoder.decode(piece, &BOUNDS, |event| match event {
            Event::Data(b) | Event::Control(_, b) => seen.extend_from_slice(b),
            Event::MessageEnd(kind) => seen.extend_from_slice(format!("<{kind:?}>").as_bytes()),
            Event::ControlEnd(op) => seen.extend_from_slice(format!("<{op:?}>").as_bytes()),
        });
        if let Err(e) = result {
            // What came before the error depends on the split: not compared.
            return (Vec::new(), Some(e));
        }
    }
    (seen, None)
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, input)) = data.split_first() else {
        return;
    };
    let at = usize::from(split).min(input.len());
    let whole = incremental(&[input]);
    let split = incremental(&[&input[..at], &input[at..]]);
    assert_eq!(whole, split, "split at {at}");

    let mut buf = input.to_vec();
    let mut state = MessageState::default();
    let mut offset = 0;
    loop {
        let before = state;
        let Ok(Some(frame)) = read_client_frame(&mut buf[offset..], &mut state, 1024) else {
            break;
        };
        assert!(frame.len <= input.len() - offset && frame.payload.end == frame.len);
        let mut prefix = input[offset..offset + frame.len - 1].to_vec();
        let mut again = before;
        assert_eq!(read_client_frame(&mut prefix, &mut again, 1024), Ok(None));
        assert_eq!(again, before, "a prefix changes nothing");
        offset += frame.len;
    }
});
