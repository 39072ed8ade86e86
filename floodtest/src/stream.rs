//! Reading one response stream: the HTTP head, chunked framing, SSE events.
//!
//! A [`Receiver`] is what a connection keeps between reads: the framing
//! phase and a chunk's remaining length as small integers (8 bytes), the
//! envelope [`Gaps`] (16 bytes) and the optional [`Spill`] (8 bytes). Framing
//! is decoded byte by byte into those integers, so a chunk-size line cut by
//! a read boundary needs no buffer; only a cut response head or envelope is
//! copied into the spill. What is counted:
//!
//! - `chunked`: one per chunk of the chunked transfer coding (the response
//!   must be chunked, else the stream is a `protocol` failure);
//! - `sse`: one per dispatched event (a blank line after at least one field
//!   line; `:` comment lines, such as heartbeats, are not events). Lines end
//!   at LF; a CR before it is ignored;
//! - `raw`: one per read that carried body bytes.
//!
//! Every mode de-chunks a chunked body and scans it for envelopes.

use crate::messages::{release_if_idle, scan_body, Gaps, Spill};
use crate::stats::Tally;

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
    /// The response status was not 200.
    Status,
    /// Not HTTP, a head over [`MAX_HEAD`], or broken chunked framing.
    Protocol,
}

/// A response head longer than this is a protocol failure.
pub(crate) const MAX_HEAD: usize = 16 * 1024;
const MAX_HEADERS: usize = 48;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Phase {
    Head,
    /// No length: the body runs until the server closes.
    UntilClose,
    /// `Content-Length`: `remaining` bytes are left.
    Length,
    ChunkSize,
    ChunkExt,
    ChunkSizeLf,
    ChunkData,
    ChunkDataCr,
    ChunkDataLf,
    /// The body is complete (last chunk, or content length reached).
    Ended,
}

// Bits of `Receiver::flags`.
const SIZE_DIGITS: u8 = 1; // the chunk-size line has a digit
const SSE_LINE_START: u8 = 2; // at the start of an SSE line
const SSE_COMMENT: u8 = 4; // the current SSE line starts with ':'
const SSE_PENDING: u8 = 8; // an SSE event has fields, awaiting its blank line

/// A connection's receive state between reads.
#[derive(Debug)]
pub(crate) struct Receiver {
    phase: Phase,
    flags: u8,
    /// Bytes left in the current chunk, or of a `Content-Length` body.
    remaining: u32,
    pub(crate) gaps: Gaps,
    pub(crate) spill: Option<Box<Spill>>,
}

impl Default for Receiver {
    fn default() -> Self {
        Self {
            phase: Phase::Head,
            flags: SSE_LINE_START,
            remaining: 0,
            gaps: Gaps::default(),
            spill: None,
        }
    }
}

impl Receiver {
    /// The `200` head has arrived: this is a held connection.
    pub(crate) fn is_open(&self) -> bool {
        self.phase != Phase::Head
    }

    /// The server ended the body (last chunk, or the whole content length).
    pub(crate) fn is_ended(&self) -> bool {
        self.phase == Phase::Ended
    }

    /// Feeds the bytes of one read.
    pub(crate) fn feed(
        &mut self,
        mut data: &[u8],
        mode: Mode,
        tally: &mut Tally,
    ) -> Result<(), StreamError> {
        if self.phase == Phase::Head {
            match self.read_head(data, mode)? {
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
        match self.phase {
            Phase::UntilClose => self.body(data, mode, tally),
            Phase::Length => {
                let n = data.len().min(self.remaining as usize);
                self.remaining -= n as u32;
                self.body(&data[..n], mode, tally);
                if self.remaining == 0 {
                    self.phase = Phase::Ended;
                }
            }
            Phase::Ended => {}
            _ => self.dechunk(data, mode, tally)?,
        }
        if mode == Mode::Raw {
            tally.counters.chunks += 1;
        }
        Ok(())
    }

    /// Collects the head; returns where the body starts in `data` once the
    /// head is complete.
    fn read_head(&mut self, data: &[u8], mode: Mode) -> Result<Option<usize>, StreamError> {
        let carried = self.spill.as_ref().map_or(0, |s| s.carry.len());
        let parsed = if carried == 0 {
            parse_head(data)?
        } else {
            let spill = self
                .spill
                .as_mut()
                .expect("carried bytes live in the spill");
            spill.carry.extend_from_slice(data);
            parse_head(&spill.carry)?
        };
        let Some((head_len, framing)) = parsed else {
            if carried + data.len() > MAX_HEAD {
                return Err(StreamError::Protocol);
            }
            if carried == 0 {
                self.spill.get_or_insert_with(Box::default).carry = data.to_vec();
            }
            return Ok(None);
        };
        if let Some(spill) = self.spill.as_mut() {
            spill.carry = Vec::new();
        }
        release_if_idle(&mut self.spill);
        self.phase = match framing {
            Framing::Chunked => Phase::ChunkSize,
            _ if mode == Mode::Chunked => return Err(StreamError::Protocol),
            Framing::Length(n) => {
                self.remaining = n.min(u64::from(u32::MAX)) as u32;
                if self.remaining == 0 {
                    Phase::Ended
                } else {
                    Phase::Length
                }
            }
            Framing::UntilClose => Phase::UntilClose,
        };
        Ok(Some(head_len - carried))
    }

    /// Walks the chunked framing, handing chunk data to [`Self::body`].
    fn dechunk(&mut self, data: &[u8], mode: Mode, tally: &mut Tally) -> Result<(), StreamError> {
        let mut i = 0;
        while i < data.len() {
            let b = data[i];
            match self.phase {
                Phase::ChunkSize => match b {
                    b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                        let digit = (b as char).to_digit(16).expect("matched a hex digit");
                        self.remaining = self
                            .remaining
                            .checked_mul(16)
                            .and_then(|v| v.checked_add(digit))
                            .ok_or(StreamError::Protocol)?;
                        self.flags |= SIZE_DIGITS;
                    }
                    b';' | b' ' | b'\t' => self.phase = Phase::ChunkExt,
                    b'\r' => self.phase = Phase::ChunkSizeLf,
                    b'\n' => self.end_size_line(mode, tally)?,
                    _ => return Err(StreamError::Protocol),
                },
                Phase::ChunkExt => {
                    if b == b'\n' {
                        self.end_size_line(mode, tally)?;
                    }
                }
                Phase::ChunkSizeLf => match b {
                    b'\n' => self.end_size_line(mode, tally)?,
                    _ => return Err(StreamError::Protocol),
                },
                Phase::ChunkData => {
                    let n = (data.len() - i).min(self.remaining as usize);
                    self.body(&data[i..i + n], mode, tally);
                    self.remaining -= n as u32;
                    if self.remaining == 0 {
                        self.phase = Phase::ChunkDataCr;
                    }
                    i += n;
                    continue;
                }
                Phase::ChunkDataCr => match b {
                    b'\r' => self.phase = Phase::ChunkDataLf,
                    b'\n' => self.phase = Phase::ChunkSize,
                    _ => return Err(StreamError::Protocol),
                },
                Phase::ChunkDataLf => match b {
                    b'\n' => self.phase = Phase::ChunkSize,
                    _ => return Err(StreamError::Protocol),
                },
                // The last chunk: trailers and anything after are ignored.
                _ => return Ok(()),
            }
            i += 1;
        }
        Ok(())
    }

    fn end_size_line(&mut self, mode: Mode, tally: &mut Tally) -> Result<(), StreamError> {
        if self.flags & SIZE_DIGITS == 0 {
            return Err(StreamError::Protocol);
        }
        self.flags &= !SIZE_DIGITS;
        if self.remaining == 0 {
            self.phase = Phase::Ended;
        } else {
            self.phase = Phase::ChunkData;
            if mode == Mode::Chunked {
                tally.counters.chunks += 1;
            }
        }
        Ok(())
    }

    /// Body bytes, de-chunked: count, find SSE events and envelopes.
    fn body(&mut self, body: &[u8], mode: Mode, tally: &mut Tally) {
        tally.counters.bytes += body.len() as u64;
        if mode == Mode::Sse {
            tally.counters.chunks += self.sse_events(body);
        }
        scan_body(body, &mut self.gaps, &mut self.spill, tally);
    }

    /// Counts the SSE events that `body` completes.
    fn sse_events(&mut self, body: &[u8]) -> u64 {
        let mut events = 0;
        let mut f = self.flags;
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
        self.flags = f;
        events
    }
}

enum Framing {
    Chunked,
    Length(u64),
    UntilClose,
}

/// Parses a response head: `None` while incomplete, else its length and how
/// the body is framed.
fn parse_head(buf: &[u8]) -> Result<Option<(usize, Framing)>, StreamError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(StreamError::Protocol),
    };
    if response.code != Some(200) {
        return Err(StreamError::Status);
    }
    let mut framing = Framing::UntilClose;
    for h in response.headers.iter() {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            let value = String::from_utf8_lossy(h.value).to_ascii_lowercase();
            if value.contains("chunked") {
                framing = Framing::Chunked;
            }
        } else if h.name.eq_ignore_ascii_case("content-length")
            && !matches!(framing, Framing::Chunked)
        {
            let n = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .ok_or(StreamError::Protocol)?;
            framing = Framing::Length(n);
        }
    }
    Ok(Some((len, framing)))
}

#[cfg(test)]
mod tests {
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

    /// Feeds `bytes` cut into `cut`-byte reads; returns the tally and state.
    fn feed(bytes: &[u8], mode: Mode, cut: usize) -> (Result<(), StreamError>, Tally, Receiver) {
        let mut tally = Tally::new();
        tally.now_us = 110;
        let mut r = Receiver::default();
        for piece in bytes.chunks(cut) {
            if let Err(e) = r.feed(piece, mode, &mut tally) {
                return (Err(e), tally, r);
            }
        }
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
            assert_eq!(tally.latency.max(), 100);
            assert!(r.is_open() && !r.is_ended());
            assert!(
                r.spill.is_none(),
                "cut {cut}: a stream at rest holds no spill"
            );
        }
    }

    #[test]
    fn last_chunk_ends_the_stream() {
        let mut bytes = CHUNKED_HEAD.to_vec();
        chunk(&mut bytes, b"x");
        bytes.extend_from_slice(b"0\r\n\r\n");
        let (res, tally, r) = feed(&bytes, Mode::Chunked, 3);
        res.unwrap();
        assert!(r.is_ended());
        assert_eq!(tally.counters.bytes, 1);
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

    #[test]
    fn failures_are_classified() {
        let status = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(feed(status, Mode::Chunked, 5).0, Err(StreamError::Status));
        assert_eq!(
            feed(b"garbage\r\n\r\n", Mode::Raw, 3).0,
            Err(StreamError::Protocol)
        );
        let not_chunked = b"HTTP/1.1 200 OK\r\n\r\nhello";
        assert_eq!(
            feed(not_chunked, Mode::Chunked, 64).0,
            Err(StreamError::Protocol)
        );
        let mut bad_frame = CHUNKED_HEAD.to_vec();
        bad_frame.extend_from_slice(b"zz\r\n");
        assert_eq!(
            feed(&bad_frame, Mode::Chunked, 64).0,
            Err(StreamError::Protocol)
        );
        let mut bad_end = CHUNKED_HEAD.to_vec();
        bad_end.extend_from_slice(b"1\r\nxy");
        assert_eq!(feed(&bad_end, Mode::Raw, 64).0, Err(StreamError::Protocol));
        let endless = vec![b'a'; MAX_HEAD + 10];
        assert_eq!(
            feed(&endless, Mode::Raw, 1000).0,
            Err(StreamError::Protocol)
        );
    }

    #[test]
    fn record_is_small() {
        assert!(
            std::mem::size_of::<Receiver>() <= 40,
            "{}",
            std::mem::size_of::<Receiver>()
        );
    }
}
