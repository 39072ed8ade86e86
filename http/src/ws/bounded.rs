//! The decoder a server runs on a client's frames: whole frames from a
//! buffer the caller keeps, each at most the caller's bound, so a server
//! holds at most one frame's bytes for a client that is sending, and
//! nothing for one that is not. It checks what RFC 6455 asks of a server:
//! every client frame masked (5.1), no reserved bits or opcodes, control
//! frames whole and at most 125 bytes, continuations only inside a
//! message, text that is UTF-8 across fragments; and it unmasks the
//! payload in place.
//!
//! What it keeps between frames is a [`MessageState`], one byte: the data
//! message under way and its UTF-8 state. A frame is read only once it is
//! all in the buffer, and the state changes only then, so the caller can
//! call again with more bytes after `Ok(None)`.

use std::ops::Range;

use super::error::WsError;
use super::frame::{apply_mask, extended_len_bytes, first_byte, second_byte, Message, Opcode};

/// The data message a client is sending, kept between its frames (one
/// byte; `Default` outside any message).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MessageState(Option<Message>);

impl MessageState {
    /// Outside any message: nothing is kept between frames.
    pub fn is_idle(&self) -> bool {
        self.0.is_none()
    }
}

/// One whole client frame, unmasked in the caller's buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFrame {
    /// What the frame is.
    pub opcode: Opcode,
    /// The last frame of its message (always set on control frames).
    pub fin: bool,
    /// Where the payload is in the buffer.
    pub payload: Range<usize>,
    /// The frame's length in bytes, header included: where the next one
    /// starts.
    pub len: usize,
}

/// Reads the frame at the start of `buf`: `Ok(None)` until it is all
/// there (and within `max_payload`, which is checked as soon as the header
/// says the length, so the caller never buffers more than
/// `max_payload` + 14 bytes).
pub fn read_client_frame(
    buf: &mut [u8],
    state: &mut MessageState,
    max_payload: usize,
) -> Result<Option<ClientFrame>, WsError> {
    let [b0, b1, ..] = *buf else {
        return Ok(None);
    };
    let (opcode, fin) = first_byte(b0, state.0.map(Message::kind))?;
    let len7 = second_byte(b1, opcode, true)?;
    let extended = extended_len_bytes(len7);
    let Some(length) = buf.get(2..2 + extended) else {
        return Ok(None);
    };
    let payload_len = match extended {
        0 => u64::from(len7),
        _ if length[0] & 0x80 != 0 && extended == 8 => {
            return Err(WsError::Protocol("64-bit length with its top bit set"))
        }
        _ => length.iter().fold(0u64, |n, &b| n << 8 | u64::from(b)),
    };
    let payload_len = usize::try_from(payload_len)
        .ok()
        .filter(|&n| n <= max_payload)
        .ok_or(WsError::TooLarge)?;
    let start = 2 + extended + 4;
    let len = start + payload_len;
    if buf.len() < len {
        return Ok(None);
    }
    let key = [
        buf[start - 4],
        buf[start - 3],
        buf[start - 2],
        buf[start - 1],
    ];
    let payload = &mut buf[start..len];
    apply_mask(payload, key, 0);
    let mut message = Message::start(opcode).or(state.0);
    if let (false, Some(message)) = (opcode.is_control(), &mut message) {
        message.feed(payload)?;
        if fin {
            message.finish()?;
        }
    }
    if !opcode.is_control() {
        state.0 = if fin { None } else { message };
    }
    Ok(Some(ClientFrame {
        opcode,
        fin,
        payload: start..len,
        len,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::{write_frame, write_frame_header};

    const KEY: [u8; 4] = [0x12, 0x34, 0x56, 0x78];

    fn masked(fin: bool, opcode: Opcode, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        write_frame_header(&mut out, fin, opcode, payload.len(), Some(KEY));
        let start = out.len();
        out.extend_from_slice(payload);
        apply_mask(&mut out[start..], KEY, 0);
        out
    }

    /// Reads every frame of `input`: (opcode, fin, payload) each.
    fn frames(input: &[u8], max: usize) -> Result<Vec<(Opcode, bool, Vec<u8>)>, WsError> {
        let mut buf = input.to_vec();
        let mut state = MessageState::default();
        let mut got = Vec::new();
        let mut at = 0;
        while at < buf.len() {
            let Some(frame) = read_client_frame(&mut buf[at..], &mut state, max)? else {
                break;
            };
            let payload = buf[at..][frame.payload.clone()].to_vec();
            got.push((frame.opcode, frame.fin, payload));
            at += frame.len;
        }
        Ok(got)
    }

    #[test]
    fn reads_and_unmasks_frames_and_fragments() {
        let mut input = masked(false, Opcode::Text, "a\u{e9}".as_bytes().split_at(2).0);
        input.extend(masked(true, Opcode::Ping, b"hi"));
        input.extend(masked(
            true,
            Opcode::Continuation,
            &"a\u{e9}".as_bytes()[2..],
        ));
        input.extend(masked(true, Opcode::Binary, &[7; 300]));
        let got = frames(&input, 1000).unwrap();
        assert_eq!(got.len(), 4);
        assert_eq!(got[0], (Opcode::Text, false, vec![b'a', 0xC3]));
        assert_eq!(got[1], (Opcode::Ping, true, b"hi".to_vec()));
        assert_eq!(got[2], (Opcode::Continuation, true, vec![0xA9]));
        assert_eq!(got[3], (Opcode::Binary, true, vec![7; 300]));
    }

    #[test]
    fn every_prefix_of_a_frame_needs_more_and_changes_nothing() {
        let input = masked(false, Opcode::Text, &[b'x'; 200]);
        for cut in 0..input.len() {
            let mut buf = input[..cut].to_vec();
            let mut state = MessageState::default();
            assert_eq!(
                read_client_frame(&mut buf, &mut state, 1000),
                Ok(None),
                "cut {cut}"
            );
            assert!(state.is_idle());
            assert_eq!(buf, &input[..cut], "untouched");
        }
        let mut whole = input.clone();
        let mut state = MessageState::default();
        assert!(read_client_frame(&mut whole, &mut state, 1000)
            .unwrap()
            .is_some());
        assert!(!state.is_idle(), "a fragmented message is under way");
    }

    #[test]
    fn refuses_what_a_server_must_refuse() {
        let error = |input: &[u8]| frames(input, 1000).unwrap_err();
        let mut unmasked = Vec::new();
        write_frame(&mut unmasked, Opcode::Text, b"x", None);
        assert!(matches!(error(&unmasked), WsError::Protocol(_)), "unmasked");
        let mut reserved = masked(true, Opcode::Text, b"x");
        reserved[0] |= 0x40;
        assert!(matches!(error(&reserved), WsError::Protocol(_)), "rsv1");
        let mut opcode = masked(true, Opcode::Text, b"x");
        opcode[0] = 0x83;
        assert!(matches!(error(&opcode), WsError::Protocol(_)), "opcode 3");
        assert!(matches!(
            error(&masked(true, Opcode::Ping, &[0; 126])),
            WsError::Protocol(_)
        ));
        assert!(matches!(
            error(&masked(false, Opcode::Pong, b"")),
            WsError::Protocol(_)
        ));
        assert!(matches!(
            error(&masked(true, Opcode::Continuation, b"x")),
            WsError::Protocol(_)
        ));
        assert_eq!(
            error(&masked(true, Opcode::Text, b"\xff")),
            WsError::InvalidUtf8
        );
        let mut cut_code_point = masked(false, Opcode::Text, b"\xE2\x82");
        cut_code_point.extend(masked(true, Opcode::Continuation, b""));
        assert_eq!(error(&cut_code_point), WsError::InvalidUtf8);
        // Refused on the header alone: the payload is never waited for.
        let mut big = Vec::new();
        write_frame_header(&mut big, true, Opcode::Binary, 1001, Some(KEY));
        assert_eq!(error(&big), WsError::TooLarge);
        let huge = [0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0];
        assert!(matches!(error(&huge), WsError::Protocol(_)));
    }
}
