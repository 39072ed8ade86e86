//! A WebSocket stream's frames, after its `101`: the payloads of messages
//! scanned for envelopes like an HTTP body (across frames and reads, with
//! no buffer: the codec's [`FrameDecoder`] hands them over in place), a
//! Ping answered with a Pong, a Close answered with a Close that echoes its
//! code (counted by code), and anything that breaks RFC 6455 answered with
//! the Close its error names. Every frame floodtest sends is masked.
//!
//! Cost at rest: the 12-byte decoder in the receiver's stage, nothing
//! else. A control frame cut by a read (rare: at most 125 bytes) waits in
//! the spill until its end comes.

use c1m_http::ws::{
    parse_close, write_close, write_frame, CloseCode, Event, FrameDecoder, Opcode, MAX_CONTROL,
};

use crate::messages::{release_if_idle, scan_body, Gaps, Spill};
use crate::stats::Tally;
use crate::stream::{Expect, StreamError};

/// The close codes counted by name; others are `other`, a Close without
/// a code is `none`.
pub(crate) const CLOSE_CODES: [u16; 8] = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1011];

/// Counts of the Close frames servers sent, by [`close_bucket`].
pub(crate) type CloseCounts = [u64; CLOSE_CODES.len() + 2];

/// Where a close code is counted.
pub(crate) fn close_bucket(code: Option<CloseCode>) -> usize {
    match code {
        None => CLOSE_CODES.len() + 1,
        Some(code) => CLOSE_CODES
            .iter()
            .position(|&c| c == code.0)
            .unwrap_or(CLOSE_CODES.len()),
    }
}

/// The name of a bucket, for the summary.
pub(crate) fn close_bucket_name(bucket: usize) -> String {
    match CLOSE_CODES.get(bucket) {
        Some(code) => code.to_string(),
        None if bucket == CLOSE_CODES.len() => "other".into(),
        None => "none".into(),
    }
}

/// A masking key for the frames floodtest sends: it must vary (RFC 6455
/// 5.3), not be secret, since no proxy between a load tool and its target
/// is attacked through it.
fn mask_key(now_us: u64) -> [u8; 4] {
    ((now_us.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as u32).to_le_bytes()
}

/// A control frame's payload gathered from its pieces.
struct Control {
    bytes: [u8; MAX_CONTROL],
    len: usize,
}

impl Control {
    fn push(&mut self, piece: &[u8]) {
        // The decoder lets no control frame past 125 bytes.
        let n = piece.len().min(MAX_CONTROL - self.len);
        self.bytes[self.len..self.len + n].copy_from_slice(&piece[..n]);
        self.len += n;
    }
}

/// Feeds the frames of one read; returns whether the server closed the
/// stream. The frames to send back are appended to `replies`.
pub(crate) fn feed(
    frames: &mut FrameDecoder,
    data: &[u8],
    expect: &Expect,
    (gaps, spill): (&mut Gaps, &mut Option<Box<Spill>>),
    tally: &mut Tally,
    replies: &mut Vec<u8>,
) -> Result<bool, StreamError> {
    let mut control = Control {
        bytes: [0; MAX_CONTROL],
        len: 0,
    };
    if let Some(cut) = spill.as_mut().map(|s| std::mem::take(&mut s.control)) {
        control.push(&cut);
    }
    let mask = Some(mask_key(tally.now_us));
    let mut closed = None;
    let decoded = frames.decode(data, &expect.bounds, |event| {
        if closed.is_some() {
            // Nothing after a Close is read (RFC 6455 5.5.1).
            return;
        }
        match event {
            Event::Data(bytes) => {
                tally.counters.bytes += bytes.len() as u64;
                scan_body(bytes, gaps, spill, tally);
            }
            Event::MessageEnd(_) => tally.counters.chunks += 1,
            Event::Control(_, piece) => control.push(piece),
            Event::ControlEnd(opcode) => {
                let payload = &control.bytes[..control.len];
                match opcode {
                    Opcode::Ping => write_frame(replies, Opcode::Pong, payload, mask),
                    Opcode::Close => closed = Some(parse_close(payload).map(|c| c.code)),
                    _ => {}
                }
                control.len = 0;
            }
        }
    });
    let result = match (closed, decoded) {
        (Some(Ok(code)), _) => {
            tally.counters.closes[close_bucket(code)] += 1;
            write_close(replies, code.unwrap_or(CloseCode::NORMAL), "", mask);
            Ok(true)
        }
        (Some(Err(e)), _) | (None, Err(e)) => {
            write_close(replies, e.close_code(), e.reason(), mask);
            Err(StreamError::Protocol(e.reason()))
        }
        (None, Ok(())) => {
            if control.len > 0 {
                let cut = control.bytes[..control.len].to_vec();
                spill.get_or_insert_with(Box::default).control = cut;
            }
            Ok(false)
        }
    };
    release_if_idle(spill);
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::{tests::expect, Mode, Receiver};
    use c1m_common::{encode_envelope, Header};
    use c1m_http::ws::{write_frame_header, Bounds, Key};

    /// A `101` to connection 3's first attempt (started at 0).
    fn upgrade() -> Vec<u8> {
        let accept = crate::target::ws_key(3, 0).accept();
        let mut out = Vec::new();
        c1m_http::ws::write_upgrade_response(&mut out, &accept, None);
        out
    }

    fn envelope(seq: u64) -> Vec<u8> {
        let mut out = Vec::new();
        let h = Header {
            id: 3,
            generator: 1,
            seq,
            sent_us: 10,
        };
        encode_envelope(&h, b"hi", &mut out);
        out
    }

    /// Feeds `bytes` in `cut`-byte reads: the result, tally, replies.
    fn run(bytes: &[u8], cut: usize) -> (Result<(), StreamError>, Tally, Vec<u8>, Receiver) {
        let mut tally = Tally::new();
        tally.now_us = 110;
        let (mut r, mut replies) = (Receiver::default(), Vec::new());
        let expect = expect(Mode::Chunked, true);
        for piece in bytes.chunks(cut) {
            if let Err(e) = r.feed(piece, (&expect, (3, 0)), &mut tally, &mut replies) {
                return (Err(e), tally, replies, r);
            }
        }
        (Ok(()), tally, replies, r)
    }

    /// The frames floodtest sent back: (opcode byte, unmasked payload).
    fn sent(replies: &[u8]) -> Vec<(u8, Vec<u8>)> {
        let mut got = Vec::new();
        let mut at = 0;
        while at < replies.len() {
            let len = usize::from(replies[at + 1] & 0x7F);
            assert!(replies[at + 1] & 0x80 != 0, "a client's frames are masked");
            let key = [
                replies[at + 2],
                replies[at + 3],
                replies[at + 4],
                replies[at + 5],
            ];
            let mut payload = replies[at + 6..at + 6 + len].to_vec();
            c1m_http::ws::apply_mask(&mut payload, key, 0);
            got.push((replies[at], payload));
            at += 6 + len;
        }
        got
    }

    #[test]
    fn messages_across_fragments_pings_and_the_close_cut_anywhere() {
        let mut bytes = upgrade();
        let e1 = envelope(1);
        write_frame_header(&mut bytes, false, Opcode::Text, 7, None);
        bytes.extend_from_slice(&e1[..7]);
        write_frame(&mut bytes, Opcode::Ping, b"hello?", None);
        write_frame_header(&mut bytes, true, Opcode::Continuation, e1.len() - 7, None);
        bytes.extend_from_slice(&e1[7..]);
        write_frame(&mut bytes, Opcode::Binary, &envelope(3), None);
        write_frame(&mut bytes, Opcode::Close, &1001u16.to_be_bytes(), None);
        write_frame(&mut bytes, Opcode::Text, b"after the close", None);
        for cut in 1..bytes.len() {
            let (result, tally, replies, r) = run(&bytes, cut);
            result.unwrap();
            let c = tally.counters;
            assert_eq!(
                (c.opened, c.chunks, c.messages, c.lost),
                (1, 2, 2, 1),
                "cut {cut}"
            );
            assert_eq!(c.closes[close_bucket(Some(CloseCode(1001)))], 1);
            assert!(r.is_ended(), "cut {cut}");
            let sent = sent(&replies);
            assert_eq!(sent[0], (0x8A, b"hello?".to_vec()), "a pong, cut {cut}");
            assert_eq!(sent[1], (0x88, 1001u16.to_be_bytes().to_vec()), "the echo");
            assert!(r.spill.is_none(), "nothing kept at rest, cut {cut}");
        }
    }

    #[test]
    fn a_bad_handshake_or_bad_frames_are_refused() {
        let refused = "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(run(refused.as_bytes(), 9).0, Err(StreamError::Status(403)));
        let mut wrong_key = Vec::new();
        let other = Key::from_nonce([7; 16]).accept();
        c1m_http::ws::write_upgrade_response(&mut wrong_key, &other, None);
        assert_eq!(
            run(&wrong_key, 9).0,
            Err(StreamError::Handshake(
                "sec-websocket-accept is not the value of the key sent"
            ))
        );
        let mut masked = upgrade();
        write_frame(&mut masked, Opcode::Text, b"x", Some([1; 4]));
        let (result, _, replies, _) = run(&masked, 5);
        assert!(
            matches!(result, Err(StreamError::Protocol(why)) if why.contains("mask")),
            "{result:?}"
        );
        assert_eq!(&sent(&replies)[0].1[..2], &1002u16.to_be_bytes());
        let mut bad_text = upgrade();
        write_frame(&mut bad_text, Opcode::Text, b"\xff", None);
        let (_, _, replies, _) = run(&bad_text, 100);
        assert_eq!(&sent(&replies)[0].1[..2], &1007u16.to_be_bytes());
        let mut big = upgrade();
        write_frame_header(&mut big, true, Opcode::Binary, (1 << 20) + 1, None);
        let (_, _, replies, _) = run(&big, 100);
        assert_eq!(&sent(&replies)[0].1[..2], &1009u16.to_be_bytes());
        let _ = Bounds {
            frame: 0,
            message: 0,
        };
    }

    #[test]
    fn close_codes_have_buckets() {
        assert_eq!(
            close_bucket_name(close_bucket(Some(CloseCode(1008)))),
            "1008"
        );
        assert_eq!(
            close_bucket_name(close_bucket(Some(CloseCode(4000)))),
            "other"
        );
        assert_eq!(close_bucket_name(close_bucket(None)), "none");
    }
}
