//! Properties of the WebSocket codec over generated input, through its
//! public surface: messages framed any way (fragmented, with control frames
//! between fragments) decode to the same messages whatever the read
//! boundaries, on both decoders; arbitrary bytes get the same verdict whole
//! or in two pieces, and nothing panics.

use c1m_http::ws::{
    apply_mask, read_client_frame, write_frame_header, Bounds, Event, FrameDecoder, MessageState,
    Opcode, WsError,
};
use proptest::prelude::*;

const BOUNDS: Bounds = Bounds {
    frame: 4096,
    message: 1 << 20,
};

/// A message: text or binary, and the sizes of the fragments it is cut into.
#[derive(Debug, Clone)]
struct Message {
    text: bool,
    payload: Vec<u8>,
    fragments: Vec<usize>,
    ping_between: bool,
}

fn a_message() -> impl Strategy<Value = Message> {
    (
        any::<bool>(),
        "\\PC{0,60}",
        prop::collection::vec(any::<u8>(), 0..300),
        prop::collection::vec(0usize..80, 0..4),
        any::<bool>(),
    )
        .prop_map(|(text, s, bytes, fragments, ping_between)| Message {
            text,
            payload: if text { s.into_bytes() } else { bytes },
            fragments,
            ping_between,
        })
}

/// The frames of `messages`, masked with `mask` if given: each message cut
/// at its fragment sizes, a Ping after its first fragment when asked.
fn encode(messages: &[Message], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = Vec::new();
    let frame = |out: &mut Vec<u8>, fin: bool, opcode: Opcode, payload: &[u8]| {
        write_frame_header(out, fin, opcode, payload.len(), mask);
        let start = out.len();
        out.extend_from_slice(payload);
        if let Some(key) = mask {
            apply_mask(&mut out[start..], key, 0);
        }
    };
    for m in messages {
        let mut rest = &m.payload[..];
        let mut opcode = if m.text { Opcode::Text } else { Opcode::Binary };
        for (i, &size) in m.fragments.iter().enumerate() {
            // Text fragments may cut a code point: the decoders must not mind.
            let (now, later) = rest.split_at(size.min(rest.len()));
            frame(&mut out, false, opcode, now);
            if i == 0 && m.ping_between {
                frame(&mut out, true, Opcode::Ping, b"between");
            }
            opcode = Opcode::Continuation;
            rest = later;
        }
        frame(&mut out, true, opcode, rest);
    }
    out
}

/// (text, payload) of each message decoded.
type Messages = Vec<(bool, Vec<u8>)>;

/// The messages the incremental decoder reads from `input` cut at `cuts`,
/// and the pings.
fn decode_incremental(input: &[u8], cuts: &[usize]) -> Result<(Messages, usize), WsError> {
    let mut decoder = FrameDecoder::new();
    let (mut messages, mut pings, mut data) = (Vec::new(), 0, Vec::new());
    let mut last = 0;
    for &cut in cuts.iter().chain([&input.len()]) {
        let cut = cut.clamp(last, input.len());
        decoder.decode(&input[last..cut], &BOUNDS, |event| match event {
            Event::Data(bytes) => data.extend_from_slice(bytes),
            Event::MessageEnd(kind) => {
                messages.push((kind == c1m_http::ws::Kind::Text, std::mem::take(&mut data)))
            }
            Event::ControlEnd(Opcode::Ping) => pings += 1,
            Event::Control(..) | Event::ControlEnd(_) => {}
        })?;
        last = cut;
    }
    Ok((messages, pings))
}

proptest! {
    #[test]
    fn any_split_of_a_servers_frames_decodes_the_same(
        messages in prop::collection::vec(a_message(), 0..6),
        mut cuts in prop::collection::vec(0usize..4000, 0..8),
    ) {
        let input = encode(&messages, None);
        cuts.sort_unstable();
        let (got, pings) = decode_incremental(&input, &cuts).unwrap();
        let want: Vec<(bool, Vec<u8>)> = messages.iter().map(|m| (m.text, m.payload.clone())).collect();
        prop_assert_eq!(got, want);
        prop_assert_eq!(pings, messages.iter().filter(|m| m.ping_between && !m.fragments.is_empty()).count());
    }

    #[test]
    fn a_clients_frames_read_whole_give_the_messages(
        messages in prop::collection::vec(a_message(), 0..6),
        key in any::<[u8; 4]>(),
    ) {
        let mut buf = encode(&messages, Some(key));
        let mut state = MessageState::default();
        let (mut at, mut data, mut got) = (0, Vec::new(), Vec::new());
        while at < buf.len() {
            let before = state;
            let frame = read_client_frame(&mut buf[at..], &mut state, 4096).unwrap().unwrap();
            let payload = buf[at..][frame.payload.clone()].to_vec();
            // Every prefix of the frame needs more (masked bytes or not, the
            // header is read the same).
            for cut in 0..frame.len {
                let mut prefix = buf[at..at + cut].to_vec();
                let mut again = before;
                prop_assert_eq!(read_client_frame(&mut prefix, &mut again, 4096), Ok(None));
            }
            if !frame.opcode.is_control() {
                data.extend_from_slice(&payload);
                if frame.fin {
                    got.push(std::mem::take(&mut data));
                }
            }
            at += frame.len;
        }
        prop_assert!(state.is_idle());
        let want: Vec<Vec<u8>> = messages.iter().map(|m| m.payload.clone()).collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn random_bytes_get_one_verdict_whole_or_split(
        input in prop::collection::vec(any::<u8>(), 0..400),
        cut in 0usize..400,
    ) {
        let whole = decode_incremental(&input, &[]);
        let split = decode_incremental(&input, &[cut]);
        prop_assert_eq!(whole.is_ok(), split.is_ok());
        if let (Ok(a), Ok(b)) = (&whole, &split) {
            prop_assert_eq!(a, b);
        }
        let mut buf = input.clone();
        let _ = read_client_frame(&mut buf, &mut MessageState::default(), 4096);
    }
}
