//! Reading one response stream: the HTTP head and body through the shared
//! codec (`c1m_http`), then SSE events and envelopes in the body; or for a
//! WebSocket the `101` and its frames (`websocket`).
//!
//! A [`Receiver`] is what a connection keeps between reads: its [`Stage`]
//! (12 bytes, padded to 16: nothing until the head has arrived, then the codec's body
//! decoder (5 bytes: the framing phase and a chunk's remaining length) and
//! a byte of flags (the SSE line state, and whether body bytes have
//! arrived, for the time to first byte), or the WebSocket frame decoder
//! (12 bytes)), the envelope [`Gaps`] (16 bytes) and the optional [`Spill`]
//! (8 bytes): 40 bytes. The decoders walk their framing byte by byte in
//! their integers, so a chunk-size line or a frame header cut by a read
//! boundary needs no buffer; only a cut response head or envelope is copied
//! into the spill (and, over TLS, the session lives there). What is
//! counted:
//!
//! - `chunked`: one per chunk of the chunked transfer coding (the response
//!   must be chunked, else the stream is a `protocol` failure);
//! - `sse`: one per dispatched event (a blank line after at least one field
//!   line; `:` comment lines, such as heartbeats, are not events). Lines end
//!   at LF; a CR before it is ignored;
//! - `raw`: one per read that carried body bytes;
//! - a WebSocket (whatever `--mode`): one per message.
//!
//! Every mode de-chunks a chunked body and scans it for envelopes; a
//! WebSocket's message payloads are scanned the same way, across frames.

use c1m_http::ws::{check_upgrade_response, Bounds, FrameDecoder, HandshakeError};
use c1m_http::{parse_response, BodyDecoder, BodyFraming, HeadLimits, HeaderSlots};

use crate::messages::{release_if_idle, scan_body, Gaps, Spill};
use crate::stats::Tally;
use crate::target::ws_key;

/// What to count in the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Chunked transfer coding: count chunks (the seeds' `/test/{id}`).
    Chunked,
    /// Server-sent events: count events.
    Sse,
    /// Any body: count reads and bytes.
    Raw,
}

/// Why a stream was given up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StreamError {
    /// The response status was not 200 (101 for a WebSocket): the code.
    Status(u16),
    /// A `101` that fails the client's checks (RFC 6455 4.1): why.
    Handshake(&'static str),
    /// Not HTTP, a head over [`MAX_HEAD`], broken body framing, or frames
    /// that break RFC 6455: why, in a few words.
    Protocol(&'static str),
}

/// Why a stream asked for in `--mode chunked` is refused when the answer
/// is not chunked.
pub(crate) const NOT_CHUNKED: &str =
    "the response is not chunked (--mode chunked counts chunks; --mode raw or sse reads any body)";

/// What every stream of a unit is read as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Expect {
    pub(crate) mode: Mode,
    /// A WebSocket, and its subprotocol and size bounds.
    pub(crate) websocket: bool,
    pub(crate) subprotocol: Option<String>,
    pub(crate) bounds: Bounds,
}

/// A response head longer than this is a protocol failure.
pub(crate) const MAX_HEAD: usize = 16 * 1024;
const LIMITS: HeadLimits = HeadLimits::new(MAX_HEAD, 48);

// Bits of `Stage::Body::flags`.
const SSE_LINE_START: u8 = 1; // at the start of an SSE line
const SSE_COMMENT: u8 = 2; // the current SSE line starts with ':'
const SSE_PENDING: u8 = 4; // an SSE event has fields, awaiting its blank line
const BODY_SEEN: u8 = 8; // body bytes have arrived (time to first byte taken)

/// Where a stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Connecting or waiting for the head.
    Opening,
    /// An HTTP body, and its flags (the bits above).
    Body { decoder: BodyDecoder, flags: u8 },
    /// A WebSocket's `101` has come, no frame byte yet.
    Upgraded,
    /// WebSocket frames.
    Frames(FrameDecoder),
    /// The server closed the WebSocket (its Close frame came).
    Closed,
}

/// A connection's receive state between reads.
#[derive(Debug)]
pub(crate) struct Receiver {
    pub(crate) stage: Stage,
    pub(crate) gaps: Gaps,
    pub(crate) spill: Option<Box<Spill>>,
}

impl Default for Receiver {
    fn default() -> Self {
        Self {
            stage: Stage::Opening,
            gaps: Gaps::default(),
            spill: None,
        }
    }
}

impl Receiver {
    /// The `200` (or `101`) head has arrived: this is a held connection.
    pub(crate) fn is_open(&self) -> bool {
        self.stage != Stage::Opening
    }

    /// The server ended the stream (last chunk, the whole content length,
    /// a WebSocket Close).
    pub(crate) fn is_ended(&self) -> bool {
        match self.stage {
            Stage::Body { decoder, .. } => decoder.is_done(),
            Stage::Closed => true,
            Stage::Opening | Stage::Upgraded | Stage::Frames(_) => false,
        }
    }

    /// Body bytes have arrived (after the head): the first chunk, event,
    /// byte or frame of the stream.
    pub(crate) fn has_body(&self) -> bool {
        match self.stage {
            Stage::Body { flags, .. } => flags & BODY_SEEN != 0,
            Stage::Frames(_) | Stage::Closed => true,
            Stage::Opening | Stage::Upgraded => false,
        }
    }

    /// What a failed [`Receiver::feed`] of `data` was reading: the head
    /// gathered so far when one was cut across reads, else `data`.
    pub(crate) fn failed_bytes<'a>(&'a self, data: &'a [u8]) -> &'a [u8] {
        match &self.spill {
            Some(spill) if !spill.carry.is_empty() => &spill.carry,
            _ => data,
        }
    }

    /// Feeds the bytes of one read of the attempt (connection index, start
    /// time: they make a WebSocket's key again, to check the answer); what
    /// the stream must answer (a WebSocket's Pongs and Close) is appended
    /// to `replies`.
    pub(crate) fn feed(
        &mut self,
        mut data: &[u8],
        (expect, attempt): (&Expect, (u32, u64)),
        tally: &mut Tally,
        replies: &mut Vec<u8>,
    ) -> Result<(), StreamError> {
        if self.stage == Stage::Opening {
            match self.read_head(data, expect, attempt)? {
                None => return Ok(()),
                Some(body_start) => {
                    tally.counters.opened += 1;
                    data = &data[body_start..];
                }
            }
        }
        if data.is_empty() {
            return Ok(());
        }
        let mode = expect.mode;
        let Receiver { stage, gaps, spill } = self;
        if *stage == Stage::Upgraded {
            *stage = Stage::Frames(FrameDecoder::new());
        }
        let (decoder, flags) = match stage {
            Stage::Body { decoder, flags } => (decoder, flags),
            Stage::Frames(frames) => {
                let end =
                    crate::websocket::feed(frames, data, expect, (gaps, spill), tally, replies)?;
                if end {
                    *stage = Stage::Closed;
                }
                return Ok(());
            }
            // Nothing is read after a Close.
            Stage::Closed | Stage::Opening | Stage::Upgraded => return Ok(()),
        };
        let decoded = decoder
            .decode(data, |bytes| {
                tally.counters.bytes += bytes.len() as u64;
                *flags |= BODY_SEEN;
                if mode == Mode::Sse {
                    tally.counters.chunks += sse_events(flags, bytes);
                }
                scan_body(bytes, gaps, spill, tally);
            })
            .map_err(|e| StreamError::Protocol(e.reason()))?;
        match mode {
            Mode::Chunked => tally.counters.chunks += u64::from(decoded.chunks),
            Mode::Raw => tally.counters.chunks += 1,
            Mode::Sse => {}
        }
        Ok(())
    }

    /// Collects the head; returns where the body starts in `data` once the
    /// head is complete.
    fn read_head(
        &mut self,
        data: &[u8],
        expect: &Expect,
        attempt: (u32, u64),
    ) -> Result<Option<usize>, StreamError> {
        let carried = self.spill.as_ref().map_or(0, |s| s.carry.len());
        let head = match self.spill.as_mut() {
            Some(spill) if carried > 0 => {
                spill.carry.extend_from_slice(data);
                parse_head(&spill.carry, expect, attempt)?
            }
            _ => parse_head(data, expect, attempt)?,
        };
        let Some((head_len, framing)) = head else {
            if carried == 0 {
                self.spill.get_or_insert_with(Box::default).carry = data.to_vec();
            }
            return Ok(None);
        };
        if let Some(spill) = self.spill.as_mut() {
            spill.carry = Vec::new();
        }
        release_if_idle(&mut self.spill);
        self.stage = if expect.websocket {
            Stage::Upgraded
        } else {
            if expect.mode == Mode::Chunked && framing != BodyFraming::Chunked {
                return Err(StreamError::Protocol(NOT_CHUNKED));
            }
            Stage::Body {
                decoder: BodyDecoder::new(framing)
                    .map_err(|e| StreamError::Protocol(e.reason()))?,
                flags: SSE_LINE_START,
            }
        };
        Ok(Some(head_len - carried))
    }
}

/// Parses a response head to the `GET` floodtest sent: `None` while
/// incomplete, else its length and how the body is framed. A WebSocket's
/// `101` is checked against the key of the attempt.
fn parse_head(
    buf: &[u8],
    expect: &Expect,
    (index, started_us): (u32, u64),
) -> Result<Option<(usize, BodyFraming)>, StreamError> {
    let mut slots = HeaderSlots::new();
    let head = match parse_response(buf, &LIMITS, "GET", &mut slots) {
        Ok(None) => return Ok(None),
        Ok(Some(head)) => head,
        Err(e) => return Err(StreamError::Protocol(e.reason())),
    };
    if expect.websocket {
        let key = ws_key(index, started_us);
        return match check_upgrade_response(&head, &key, expect.subprotocol.as_deref()) {
            Ok(()) => Ok(Some((head.len, head.body))),
            Err(HandshakeError::Status(code)) => Err(StreamError::Status(code)),
            Err(e) => Err(StreamError::Handshake(e.reason())),
        };
    }
    if head.status != 200 {
        return Err(StreamError::Status(head.status));
    }
    Ok(Some((head.len, head.body)))
}

/// Counts the SSE events that `body` completes; `flags` carries the line
/// state across reads.
fn sse_events(flags: &mut u8, body: &[u8]) -> u64 {
    let mut events = 0;
    let mut f = *flags;
    for &b in body {
        match b {
            b'\n' => {
                if f & SSE_LINE_START != 0 {
                    if f & SSE_PENDING != 0 {
                        events += 1;
                    }
                    f &= !SSE_PENDING;
                } else if f & SSE_COMMENT == 0 {
                    f |= SSE_PENDING;
                }
                f = (f | SSE_LINE_START) & !SSE_COMMENT;
            }
            b'\r' => {}
            _ => {
                if f & SSE_LINE_START != 0 && b == b':' {
                    f |= SSE_COMMENT;
                }
                f &= !SSE_LINE_START;
            }
        }
    }
    *flags = f;
    events
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use c1m_common::{encode_envelope, Header};

    const CHUNKED_HEAD: &[u8] =
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n";

    fn chunk(out: &mut Vec<u8>, body: &[u8]) {
        out.extend_from_slice(format!("{:x}\r\n", body.len()).as_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(b"\r\n");
    }

    fn envelope(seq: u64) -> Vec<u8> {
        let mut out = Vec::new();
        let h = Header {
            id: 9,
            generator: 1,
            seq,
            sent_us: 10,
        };
        encode_envelope(&h, b"hello", &mut out);
        out
    }

    pub(crate) fn expect(mode: Mode, websocket: bool) -> Expect {
        Expect {
            mode,
            websocket,
            subprotocol: None,
            bounds: Bounds {
                frame: 1 << 20,
                message: 1 << 20,
            },
        }
    }

    /// Feeds `bytes` cut into `cut`-byte reads; returns the tally and state.
    fn feed(bytes: &[u8], mode: Mode, cut: usize) -> (Result<(), StreamError>, Tally, Receiver) {
        let mut tally = Tally::new();
        tally.now_us = 110;
        let mut r = Receiver::default();
        let mut replies = Vec::new();
        let expect = expect(mode, false);
        for piece in bytes.chunks(cut) {
            if let Err(e) = r.feed(piece, (&expect, (0, 0)), &mut tally, &mut replies) {
                return (Err(e), tally, r);
            }
        }
        assert!(replies.is_empty(), "an HTTP stream answers nothing");
        (Ok(()), tally, r)
    }

    #[test]
    fn chunked_stream_counts_chunks_and_envelopes_cut_anywhere() {
        let mut bytes = CHUNKED_HEAD.to_vec();
        chunk(&mut bytes, b"Welcome to Mochiweb, Id: 9\n");
        // One envelope split across two chunks, then two whole ones.
        let e1 = envelope(1);
        chunk(&mut bytes, &e1[..7]);
        chunk(&mut bytes, &e1[7..]);
        chunk(&mut bytes, &envelope(2));
        chunk(&mut bytes, &envelope(4));
        for cut in [1, 2, 5, 13, bytes.len()] {
            let (res, tally, r) = feed(&bytes, Mode::Chunked, cut);
            res.unwrap();
            let c = tally.counters;
            assert_eq!(
                (c.opened, c.chunks, c.messages, c.lost),
                (1, 5, 3, 1),
                "cut {cut}"
            );
            assert_eq!(tally.timings.latency.max(), 100);
            assert!(r.is_open() && !r.is_ended());
            assert!(
                r.spill.is_none(),
                "cut {cut}: a stream at rest holds no spill"
            );
        }
    }

    #[test]
    fn last_chunk_ends_the_stream() {
        // With or without a trailer after it.
        for last in [&b"0\r\n\r\n"[..], b"0\r\nX-Trailer: 1\r\n\r\n"] {
            let mut bytes = CHUNKED_HEAD.to_vec();
            chunk(&mut bytes, b"x");
            bytes.extend_from_slice(last);
            let (res, tally, r) = feed(&bytes, Mode::Chunked, 3);
            res.unwrap();
            assert!(r.is_ended());
            assert_eq!((tally.counters.chunks, tally.counters.bytes), (1, 1));
        }
    }

    #[test]
    fn sse_counts_events_not_comments() {
        let mut bytes = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n".to_vec();
        bytes.extend_from_slice(b": heartbeat\n\nid: 1\ndata: ");
        bytes.extend_from_slice(&envelope(1));
        bytes.extend_from_slice(b"\r\n\r\ndata: a\ndata: b\n\n:ping\n\n");
        for cut in [1, 4, bytes.len()] {
            let (res, tally, _) = feed(&bytes, Mode::Sse, cut);
            res.unwrap();
            assert_eq!(
                (tally.counters.chunks, tally.counters.messages),
                (2, 1),
                "cut {cut}"
            );
        }
    }

    #[test]
    fn sse_over_chunked_is_dechunked_first() {
        let mut bytes = CHUNKED_HEAD.to_vec();
        chunk(&mut bytes, b"data: one\n");
        chunk(&mut bytes, b"\ndata: two\n\n");
        let (res, tally, _) = feed(&bytes, Mode::Sse, 4);
        res.unwrap();
        assert_eq!(tally.counters.chunks, 2);
    }

    #[test]
    fn raw_counts_reads_and_bytes() {
        let mut bytes = b"HTTP/1.0 200 OK\r\n\r\n".to_vec();
        bytes.extend_from_slice(&envelope(1));
        let (res, tally, _) = feed(&bytes, Mode::Raw, 10);
        res.unwrap();
        let body = bytes.len() - 19;
        assert_eq!(tally.counters.bytes, body as u64);
        assert_eq!(tally.counters.messages, 1);
        // Every read but the first (all head) carried body bytes.
        assert_eq!(tally.counters.chunks, bytes.len().div_ceil(10) as u64 - 1);
    }

    /// The reason a protocol failure gives, or the error if it is another.
    fn protocol(bytes: &[u8], mode: Mode, cut: usize) -> Result<&'static str, StreamError> {
        match feed(bytes, mode, cut).0 {
            Err(StreamError::Protocol(why)) => Ok(why),
            other => panic!("expected a protocol failure, got {other:?}"),
        }
    }

    #[test]
    fn failures_are_classified_with_their_reason() {
        let status = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(
            feed(status, Mode::Chunked, 5).0,
            Err(StreamError::Status(404))
        );
        assert_eq!(
            protocol(b"garbage\r\n\r\n", Mode::Raw, 3),
            Ok("unreadable response head")
        );
        let not_chunked = b"HTTP/1.1 200 OK\r\n\r\nhello";
        assert_eq!(protocol(not_chunked, Mode::Chunked, 64), Ok(NOT_CHUNKED));
        let mut bad_frame = CHUNKED_HEAD.to_vec();
        bad_frame.extend_from_slice(b"zz\r\n");
        assert_eq!(
            protocol(&bad_frame, Mode::Chunked, 64),
            Ok("bad chunk size line")
        );
        let mut bad_end = CHUNKED_HEAD.to_vec();
        bad_end.extend_from_slice(b"1\r\nxy");
        assert_eq!(
            protocol(&bad_end, Mode::Raw, 64),
            Ok("chunk data not followed by crlf")
        );
        let mut endless = b"HTTP/1.1 200 OK\r\n".to_vec();
        while endless.len() <= MAX_HEAD {
            endless.extend_from_slice(b"X-Padding: 0123456789abcdef0123456789abcdef\r\n");
        }
        assert_eq!(
            protocol(&endless, Mode::Raw, 1000),
            Ok("response head over the size or header limit")
        );
    }

    #[test]
    fn framing_follows_rfc_9112_not_a_substring() {
        // A length beside a coding is how responses are split: refused, not
        // resolved in favour of the coding.
        let smuggled =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n";
        assert_eq!(
            protocol(smuggled, Mode::Raw, 64),
            Ok("both transfer-encoding and content-length")
        );
        // `chunked` not last: the body runs until the close, so it is not a
        // chunked stream.
        let not_last = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n";
        assert_eq!(protocol(not_last, Mode::Chunked, 64), Ok(NOT_CHUNKED));
    }

    #[test]
    fn record_is_small() {
        // The stage (a decoder: the codec's body decoder with its flags,
        // or the 12-byte frame decoder, its tag in a niche) 12, padded to
        // 16; the envelope gaps 16; the spill 8.
        assert_eq!(std::mem::size_of::<Stage>(), 12);
        assert!(
            std::mem::size_of::<Receiver>() <= 40,
            "{}",
            std::mem::size_of::<Receiver>()
        );
    }
}
