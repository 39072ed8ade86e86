//! Decoding a message body incrementally, whatever its framing: fed the
//! bytes of each read in turn, cut anywhere, it hands the body bytes to the
//! caller in place and says where the body ended, so a keep-alive client
//! reads the next response from the bytes after it.
//!
//! The chunked coding (RFC 9112 7.1) is walked byte by byte through a small
//! state machine: a chunk-size line, extensions included, cut by a read
//! boundary is carried in the integers of the state, not in a buffer. The
//! trailer section after the last chunk is read and skipped.
//!
//! The whole state is 5 bytes (a `u32` and the phase, packed), so a client
//! holding a million streams keeps one per connection for 5 MB, and a
//! caller can keep a flag byte and an `Option` beside it within 8 (what
//! floodtest's 32-byte receiver does). The cost of that size: a chunk or a
//! `Content-Length` body over 4 GiB - 1 is refused. Bare LF is accepted as
//! a line end (RFC 9112 2.2), as most clients do.

use std::fmt;

use crate::framing::BodyFraming;

/// Where the decoder is in the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Phase {
    /// A `Content-Length` body: `remaining` bytes left.
    Length,
    /// Everything until the close is body.
    UntilClose,
    /// At the start of a chunk-size line: a hex digit must come.
    SizeStart,
    /// In the size's digits; `remaining` is the size so far.
    Size,
    /// Whitespace after the size, before `;` or the line end.
    SizeSpace,
    /// In a chunk extension (`;name=value`), skipped to the LF.
    Extension,
    /// A CR ended the size line: its LF must come.
    SizeLf,
    /// In a chunk's data: `remaining` bytes left.
    Data,
    /// After a chunk's data: its CRLF must come.
    DataCr,
    DataLf,
    /// At the start of a trailer line (after the last chunk).
    TrailerStart,
    /// In a trailer field line, skipped to the LF.
    Trailer,
    /// A CR at the start of a trailer line: the LF that ends the body.
    TrailerEndLf,
    /// The body is complete.
    Done,
}

/// Why a body cannot be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    /// A chunk-size line that is not hex digits and an optional extension.
    BadChunkSize,
    /// A chunk's data not followed by its CRLF.
    BadChunkEnd,
    /// A malformed line end in the trailer section.
    BadTrailer,
    /// A chunk, or a `Content-Length` body, over 4 GiB - 1.
    TooLarge,
    /// The connection ended before the body did.
    CutShort,
}

impl BodyError {
    /// A one-line description, lowercase.
    pub fn reason(self) -> &'static str {
        match self {
            BodyError::BadChunkSize => "bad chunk size line",
            BodyError::BadChunkEnd => "chunk data not followed by crlf",
            BodyError::BadTrailer => "bad line end in the chunked trailer",
            BodyError::TooLarge => "chunk or body over 4 GiB",
            BodyError::CutShort => "the connection closed before the body ended",
        }
    }
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for BodyError {}

/// What one call to [`BodyDecoder::decode`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoded {
    /// Input bytes that belong to this body; fewer than given only once the
    /// body is complete (the rest is the next message).
    pub used: usize,
    /// Chunks of the chunked coding whose size line ended in this input
    /// (the zero-size last chunk not counted).
    pub chunks: u32,
}

/// The state of one body being read (5 bytes; see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C, packed)]
pub struct BodyDecoder {
    /// Bytes left of the body or chunk, or the chunk size read so far.
    remaining: u32,
    phase: Phase,
}

impl BodyDecoder {
    /// A decoder for a body framed as `framing` says (from a parsed head).
    pub fn new(framing: BodyFraming) -> Result<Self, BodyError> {
        let (phase, remaining) = match framing {
            BodyFraming::Empty => (Phase::Done, 0),
            BodyFraming::Length(n) => {
                let n = u32::try_from(n).map_err(|_| BodyError::TooLarge)?;
                (Phase::Length, n)
            }
            BodyFraming::Chunked => (Phase::SizeStart, 0),
            BodyFraming::UntilClose => (Phase::UntilClose, 0),
        };
        Ok(Self { remaining, phase })
    }

    /// The body is complete: whatever follows is not part of it.
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// The connection has closed: `Ok` if that ends the body well (it is
    /// complete, or runs until the close).
    pub fn finish(&self) -> Result<(), BodyError> {
        match self.phase {
            Phase::Done | Phase::UntilClose => Ok(()),
            _ => Err(BodyError::CutShort),
        }
    }

    /// Decodes the next bytes of the message, calling `body` with each run
    /// of body bytes (de-chunked, in order, borrowed from `input`). After an
    /// error the decoder must not be fed again.
    pub fn decode(
        &mut self,
        input: &[u8],
        mut body: impl FnMut(&[u8]),
    ) -> Result<Decoded, BodyError> {
        // Fields of a packed struct are copied out, worked on, written back.
        let (mut phase, mut remaining) = (self.phase, self.remaining);
        let mut chunks = 0;
        let mut at = 0;
        while at < input.len() {
            match phase {
                Phase::Done => break,
                Phase::UntilClose => {
                    body(&input[at..]);
                    at = input.len();
                }
                Phase::Length | Phase::Data => {
                    let n = (input.len() - at).min(remaining as usize);
                    body(&input[at..at + n]);
                    // n <= remaining, a u32.
                    remaining -= n as u32;
                    at += n;
                    if remaining == 0 {
                        phase = if phase == Phase::Length {
                            Phase::Done
                        } else {
                            Phase::DataCr
                        };
                    }
                }
                _ => {
                    phase = framing_byte(phase, &mut remaining, input[at])?;
                    chunks += u32::from(phase == Phase::Data);
                    at += 1;
                }
            }
        }
        self.phase = phase;
        self.remaining = remaining;
        Ok(Decoded { used: at, chunks })
    }
}

/// One byte of the chunked framing (a size line, a data end, a trailer):
/// the next phase.
fn framing_byte(phase: Phase, remaining: &mut u32, b: u8) -> Result<Phase, BodyError> {
    if let (Phase::SizeStart | Phase::Size, Some(digit)) = (phase, (b as char).to_digit(16)) {
        // At `SizeStart` the count is 0: the previous chunk's data used it up.
        *remaining = remaining
            .checked_mul(16)
            .and_then(|size| size.checked_add(digit))
            .ok_or(BodyError::TooLarge)?;
        return Ok(Phase::Size);
    }
    let next = match (phase, b) {
        (Phase::SizeStart, _) => return Err(BodyError::BadChunkSize),
        (Phase::Size | Phase::SizeSpace, b' ' | b'\t') => Phase::SizeSpace,
        (Phase::Size | Phase::SizeSpace, b';') => Phase::Extension,
        (Phase::Size | Phase::SizeSpace, b'\r') => Phase::SizeLf,
        (Phase::Size | Phase::SizeSpace | Phase::Extension | Phase::SizeLf, b'\n') => {
            if *remaining == 0 {
                Phase::TrailerStart
            } else {
                Phase::Data
            }
        }
        (Phase::Extension, _) => Phase::Extension,
        (Phase::Size | Phase::SizeSpace | Phase::SizeLf, _) => return Err(BodyError::BadChunkSize),
        (Phase::DataCr, b'\r') => Phase::DataLf,
        (Phase::DataCr | Phase::DataLf, b'\n') => Phase::SizeStart,
        (Phase::DataCr | Phase::DataLf, _) => return Err(BodyError::BadChunkEnd),
        (Phase::TrailerStart, b'\r') => Phase::TrailerEndLf,
        (Phase::TrailerStart | Phase::TrailerEndLf, b'\n') => Phase::Done,
        (Phase::Trailer, b'\n') => Phase::TrailerStart,
        (Phase::TrailerStart | Phase::Trailer, _) => Phase::Trailer,
        (Phase::TrailerEndLf, _) => return Err(BodyError::BadTrailer),
        // Bulk phases never reach here: `decode` handles them.
        (Phase::Length | Phase::UntilClose | Phase::Data | Phase::Done, _) => phase,
    };
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `input` cut into `cut`-byte reads: the body, the chunk
    /// count, and the bytes left after the body.
    fn decode_cut(
        framing: BodyFraming,
        input: &[u8],
        cut: usize,
    ) -> Result<(Vec<u8>, u32, usize), BodyError> {
        let mut decoder = BodyDecoder::new(framing)?;
        let (mut body, mut chunks, mut used) = (Vec::new(), 0, 0);
        for piece in input.chunks(cut.max(1)) {
            let got = decoder.decode(piece, |b| body.extend_from_slice(b))?;
            chunks += got.chunks;
            used += got.used;
            if decoder.is_done() {
                break;
            }
        }
        decoder.finish()?;
        Ok((body, chunks, input.len() - used))
    }

    fn chunked(input: &[u8]) -> Result<(Vec<u8>, u32, usize), BodyError> {
        decode_cut(BodyFraming::Chunked, input, input.len())
    }

    #[test]
    fn the_state_is_five_bytes() {
        assert_eq!(std::mem::size_of::<BodyDecoder>(), 5);
        // An `Option` and a flag byte beside it still fit in 8.
        assert_eq!(std::mem::size_of::<Option<BodyDecoder>>(), 5);
    }

    #[test]
    fn decodes_chunks_cut_anywhere() {
        let input = b"5\r\nhello\r\n1;name=\"v;x\"\r\n \r\nA\r\n0123456789\r\n0\r\n\r\nHTTP/1.1";
        for cut in 1..input.len() {
            let (body, chunks, rest) = decode_cut(BodyFraming::Chunked, input, cut).unwrap();
            assert_eq!(body, b"hello 0123456789", "cut {cut}");
            assert_eq!(chunks, 3, "cut {cut}");
            assert_eq!(&input[input.len() - rest..], b"HTTP/1.1", "cut {cut}");
        }
    }

    #[test]
    fn skips_the_trailer_section() {
        let input = b"3\r\nabc\r\n0\r\nExpires: never\r\nX-Sum: 1\r\n\r\nnext";
        let (body, _, rest) = chunked(input).unwrap();
        assert_eq!((body.as_slice(), rest), (&b"abc"[..], 4));
        // Bare LF line ends, upper-case hex, whitespace before the line end.
        let (body, chunks, rest) = chunked(b"B \nhello world\n0\n\n").unwrap();
        assert_eq!((body.as_slice(), chunks, rest), (&b"hello world"[..], 1, 0));
    }

    #[test]
    fn every_prefix_of_a_chunked_body_needs_more() {
        let input = b"4\r\nwiki\r\n6;x=1\r\npedia \r\n0\r\nT: v\r\n\r\n";
        for cut in 0..input.len() {
            let mut decoder = BodyDecoder::new(BodyFraming::Chunked).unwrap();
            let got = decoder.decode(&input[..cut], |_| {}).unwrap();
            assert_eq!(got.used, cut);
            assert!(!decoder.is_done(), "done at {cut}");
            assert_eq!(decoder.finish(), Err(BodyError::CutShort), "cut {cut}");
        }
        assert_eq!(chunked(input).unwrap().0, b"wikipedia ");
    }

    #[test]
    fn refuses_malformed_framing() {
        let cases: [(&[u8], BodyError); 9] = [
            (b"zz\r\n", BodyError::BadChunkSize),
            (b"\r\n", BodyError::BadChunkSize),
            (b";ext\r\n", BodyError::BadChunkSize),
            (b"-1\r\n", BodyError::BadChunkSize),
            (b"1 2\r\n", BodyError::BadChunkSize),
            (b"1\rx", BodyError::BadChunkSize),
            (b"1\r\nxy", BodyError::BadChunkEnd),
            (b"1\r\nx\rz", BodyError::BadChunkEnd),
            (b"0\r\n\rx", BodyError::BadTrailer),
        ];
        for (input, error) in cases {
            assert_eq!(
                chunked(input),
                Err(error),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn refuses_sizes_that_overflow() {
        assert_eq!(chunked(b"100000000\r\n"), Err(BodyError::TooLarge));
        let (_, chunks, _) = decode_cut(
            BodyFraming::Chunked,
            b"0000000000000001\r\nx\r\n0\r\n\r\n",
            3,
        )
        .unwrap();
        assert_eq!(chunks, 1);
        let mut decoder = BodyDecoder::new(BodyFraming::Chunked).unwrap();
        decoder.decode(b"ffffffff\r\n", |_| {}).unwrap();
        assert_eq!(decoder.decode(b"", |_| {}).map(|d| d.used), Ok(0));
        assert_eq!(
            BodyDecoder::new(BodyFraming::Length(1 << 32)),
            Err(BodyError::TooLarge)
        );
    }

    #[test]
    fn length_and_until_close_bodies() {
        let (body, chunks, rest) = decode_cut(BodyFraming::Length(5), b"hello!!", 2).unwrap();
        assert_eq!((body.as_slice(), chunks, rest), (&b"hello"[..], 0, 2));
        let mut short = BodyDecoder::new(BodyFraming::Length(5)).unwrap();
        short.decode(b"hel", |_| {}).unwrap();
        assert_eq!(short.finish(), Err(BodyError::CutShort));
        let (body, _, rest) = decode_cut(BodyFraming::UntilClose, b"all of it", 4).unwrap();
        assert_eq!((body.as_slice(), rest), (&b"all of it"[..], 0));
        let empty = BodyDecoder::new(BodyFraming::Empty).unwrap();
        assert!(empty.is_done());
        assert_eq!(
            BodyError::CutShort.to_string(),
            "the connection closed before the body ended"
        );
    }
}
