//! The message envelope: what `msggen` puts in every message body so that
//! `floodtest` can measure delivery latency and count lost messages without
//! any help from the server in between.
//!
//! ```text
//! [c1m <id> <generator> <seq> <sent_us> <len>|<payload>]
//! [c1m 42 3 17 1732243200123456 5|hello]
//! [c1e 42 9 5 1732243200123456 5|hello]
//! ```
//!
//! `[c1m ` is a message sent to subscriber `id`; `[c1e ` an event that
//! publisher `id` sent to its friends (`msggen --publish comet-events`), the same bytes for
//! every friend, numbered per (generator, publisher). A reader that knows
//! only `[c1m ` skips events as it skips any other text.
//!
//! Five unsigned decimal fields separated by one space, a `|`, exactly `len`
//! payload bytes and a closing `]`. ASCII only in the header; the length
//! prefix makes it self-delimiting, so the payload may hold any byte (the
//! batch endpoint forbids tab and newline, which `msggen` never writes).
//! Because it starts with a fixed magic it can be found anywhere in a byte
//! stream that a third-party server wraps in its own text. The full format is
//! in `docs/ENVELOPE.md`.
//!
//! Decoding never allocates: [`decode_envelope`] borrows the payload from the input.

use std::fmt;

/// The bytes a message envelope starts with.
const MAGIC: &[u8] = b"[c1m ";

/// The bytes an event envelope starts with (the same length).
const EVENT_MAGIC: &[u8] = b"[c1e ";

/// What an envelope carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EnvelopeKind {
    /// A message sent to subscriber `id` (`POST /send`): `[c1m `.
    Message,
    /// An event publisher `id` sent to its friends (`POST /publish`):
    /// `[c1e `. Every friend receives the same envelope.
    Event,
}

impl EnvelopeKind {
    fn magic(self) -> &'static [u8] {
        match self {
            EnvelopeKind::Message => MAGIC,
            EnvelopeKind::Event => EVENT_MAGIC,
        }
    }
}

/// A payload longer than this is rejected, so a corrupt length field cannot
/// make a reader hold on to an unbounded tail while waiting for the rest.
pub const MAX_ENVELOPE_PAYLOAD: usize = 1 << 20;

/// Longest decimal form of a u64.
const MAX_DIGITS: usize = 20;

/// Longest possible header: magic, five fields, four spaces and the `|`.
pub const MAX_ENVELOPE_HEADER: usize = MAGIC.len() + 5 * MAX_DIGITS + 5;

/// The fields that identify and time one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// The subscriber id the message was sent to; for an event, the
    /// publisher.
    pub id: u64,
    /// Which generator sent it; sequence numbers are per (generator, id).
    pub generator: u64,
    /// Sequence number of this message among those `generator` sent to `id`
    /// (for an event: among the events `generator` sent for publisher
    /// `id`), starting at 1; a jump means messages were lost.
    pub seq: u64,
    /// Send time, microseconds since the Unix epoch.
    pub sent_us: u64,
}

/// A decoded envelope, borrowing its payload from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Envelope<'a> {
    /// A message or an event.
    pub kind: EnvelopeKind,
    /// The header fields.
    pub header: Header,
    /// The payload bytes, borrowed from the decoded input.
    pub payload: &'a [u8],
}

/// Bytes that can never become a valid envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("envelope does not start with \"[c1m \" or \"[c1e \"")]
    /// The bytes do not start with the magic `[c1m ` (or `[c1e `).
    BadMagic,
    #[error("envelope field {0} is not an unsigned decimal")]
    /// This field is not an unsigned decimal.
    BadField(&'static str),
    #[error("envelope field {0} is longer than 20 digits or overflows u64")]
    /// This field has more than 20 digits or overflows u64.
    FieldOverflow(&'static str),
    #[error("envelope payload of {0} bytes is over the 1 MiB limit")]
    /// The payload length is over [`MAX_ENVELOPE_PAYLOAD`].
    PayloadTooLarge(u64),
    #[error("envelope payload is not followed by ']'")]
    /// No `]` after the payload.
    MissingTerminator,
}

const FIELDS: [&str; 5] = ["id", "generator", "seq", "sent_us", "len"];

/// Appends the message envelope for `header` and `payload` to `out`.
pub fn encode_envelope(header: &Header, payload: &[u8], out: &mut Vec<u8>) {
    encode_kind(EnvelopeKind::Message, header, payload, out);
}

/// Appends the event envelope for `header` (`id`: the publisher) and
/// `payload` to `out`. [`envelope_len`] is the same as for a message.
pub fn encode_event(header: &Header, payload: &[u8], out: &mut Vec<u8>) {
    encode_kind(EnvelopeKind::Event, header, payload, out);
}

fn encode_kind(kind: EnvelopeKind, header: &Header, payload: &[u8], out: &mut Vec<u8>) {
    use std::io::Write;
    out.reserve(MAX_ENVELOPE_HEADER + payload.len() + 1);
    out.extend_from_slice(kind.magic());
    // Writing to a Vec cannot fail.
    let _ = write!(
        out,
        "{} {} {} {} {}|",
        header.id,
        header.generator,
        header.seq,
        header.sent_us,
        payload.len()
    );
    out.extend_from_slice(payload);
    out.push(b']');
}

/// The encoded length of an envelope, without encoding it.
pub fn envelope_len(header: &Header, payload_len: usize) -> usize {
    fn digits(mut v: u64) -> usize {
        let mut n = 1;
        while v >= 10 {
            v /= 10;
            n += 1;
        }
        n
    }
    MAGIC.len()
        + digits(header.id)
        + digits(header.generator)
        + digits(header.seq)
        + digits(header.sent_us)
        + digits(payload_len as u64)
        + 5
        + payload_len
        + 1
}

/// Decodes the envelope at the start of `buf`.
///
/// Returns `Ok(Some((envelope, consumed)))` when a whole envelope is there,
/// `Ok(None)` when `buf` is a proper prefix of one (read more and call
/// again), and an error when the bytes can never become valid.
pub fn decode_envelope(buf: &[u8]) -> Result<Option<(Envelope<'_>, usize)>, EnvelopeError> {
    let magic_len = MAGIC.len().min(buf.len());
    let kind = if buf[..magic_len] == MAGIC[..magic_len] {
        EnvelopeKind::Message
    } else if buf[..magic_len] == EVENT_MAGIC[..magic_len] {
        EnvelopeKind::Event
    } else {
        return Err(EnvelopeError::BadMagic);
    };
    if buf.len() < MAGIC.len() {
        return Ok(None);
    }
    let mut pos = MAGIC.len();
    let mut values = [0u64; 5];
    for (i, name) in FIELDS.iter().enumerate() {
        let terminator = if i == FIELDS.len() - 1 { b'|' } else { b' ' };
        match parse_field(&buf[pos..], terminator, name)? {
            None => return Ok(None),
            Some((value, used)) => {
                values[i] = value;
                pos += used;
            }
        }
    }
    let [id, generator, seq, sent_us, len] = values;
    if len > MAX_ENVELOPE_PAYLOAD as u64 {
        return Err(EnvelopeError::PayloadTooLarge(len));
    }
    let len = len as usize;
    let end = pos + len;
    if buf.len() <= end {
        return Ok(None);
    }
    if buf[end] != b']' {
        return Err(EnvelopeError::MissingTerminator);
    }
    let envelope = Envelope {
        kind,
        header: Header {
            id,
            generator,
            seq,
            sent_us,
        },
        payload: &buf[pos..end],
    };
    Ok(Some((envelope, end + 1)))
}

/// Parses digits up to `terminator`; returns the value and the bytes used
/// including the terminator, or `None` if `buf` ends first.
fn parse_field(
    buf: &[u8],
    terminator: u8,
    name: &'static str,
) -> Result<Option<(u64, usize)>, EnvelopeError> {
    let mut value: u64 = 0;
    for (i, &b) in buf.iter().enumerate() {
        if b == terminator {
            if i == 0 {
                return Err(EnvelopeError::BadField(name));
            }
            return Ok(Some((value, i + 1)));
        }
        if !b.is_ascii_digit() {
            return Err(EnvelopeError::BadField(name));
        }
        if i >= MAX_DIGITS {
            return Err(EnvelopeError::FieldOverflow(name));
        }
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(b - b'0')))
            .ok_or(EnvelopeError::FieldOverflow(name))?;
    }
    if buf.len() > MAX_DIGITS {
        return Err(EnvelopeError::FieldOverflow(name));
    }
    Ok(None)
}

/// Finds every whole envelope in `buf`, calling `on_envelope` for each, and
/// returns how many bytes were consumed. The bytes after that (the start of
/// an envelope, or of the magic, cut off by the end of `buf`) must be kept
/// and put in front of the next bytes read. Bytes that are not envelopes are
/// skipped, so a server may wrap messages in text of its own.
pub fn scan_envelopes(buf: &[u8], mut on_envelope: impl FnMut(Envelope<'_>)) -> usize {
    let mut pos = 0;
    while let Some(offset) = buf[pos..].iter().position(|&b| b == b'[') {
        let start = pos + offset;
        match decode_envelope(&buf[start..]) {
            Ok(Some((envelope, used))) => {
                on_envelope(envelope);
                pos = start + used;
            }
            Ok(None) => return start,
            Err(_) => pos = start + 1,
        }
    }
    buf.len()
}

impl fmt::Display for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "id={} generator={} seq={} sent_us={}",
            self.id, self.generator, self.seq, self.sent_us
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn header() -> Header {
        Header {
            id: 42,
            generator: 3,
            seq: 17,
            sent_us: 1_732_243_200_123_456,
        }
    }

    fn encoded(h: &Header, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_envelope(h, payload, &mut out);
        out
    }

    #[test]
    fn encodes_the_documented_form() {
        assert_eq!(
            encoded(&header(), b"hello"),
            b"[c1m 42 3 17 1732243200123456 5|hello]"
        );
    }

    #[test]
    fn decodes_what_it_encodes() {
        let bytes = encoded(&header(), b"hello");
        let (env, used) = decode_envelope(&bytes).unwrap().unwrap();
        assert_eq!(env.header, header());
        assert_eq!(env.payload, b"hello");
        assert_eq!(used, bytes.len());
    }

    #[test]
    fn events_have_their_own_magic_and_the_same_fields() {
        let mut bytes = Vec::new();
        encode_event(&header(), b"hello", &mut bytes);
        assert_eq!(bytes, b"[c1e 42 3 17 1732243200123456 5|hello]");
        assert_eq!(envelope_len(&header(), 5), bytes.len());
        let (env, used) = decode_envelope(&bytes).unwrap().unwrap();
        assert_eq!(
            (env.kind, env.header, used),
            (EnvelopeKind::Event, header(), bytes.len())
        );
        for n in 0..bytes.len() {
            assert_eq!(
                decode_envelope(&bytes[..n]),
                Ok(None),
                "prefix of {n} bytes"
            );
        }
        let bytes = encoded(&header(), b"x");
        let (message, _) = decode_envelope(&bytes).unwrap().unwrap();
        assert_eq!(message.kind, EnvelopeKind::Message);
        assert_eq!(decode_envelope(b"[c1f "), Err(EnvelopeError::BadMagic));
    }

    #[test]
    fn every_proper_prefix_is_incomplete() {
        let bytes = encoded(&header(), b"payload with ] and [c1m inside");
        for n in 0..bytes.len() {
            assert_eq!(
                decode_envelope(&bytes[..n]),
                Ok(None),
                "prefix of {n} bytes"
            );
        }
    }

    #[test]
    fn rejects_what_can_never_be_valid() {
        assert_eq!(decode_envelope(b"[c1x "), Err(EnvelopeError::BadMagic));
        assert_eq!(
            decode_envelope(b"[c1m 4a"),
            Err(EnvelopeError::BadField("id"))
        );
        assert_eq!(
            decode_envelope(b"[c1m  "),
            Err(EnvelopeError::BadField("id"))
        );
        assert_eq!(
            decode_envelope(b"[c1m 1 2 3 4 5|hello!"),
            Err(EnvelopeError::MissingTerminator)
        );
        assert_eq!(
            decode_envelope(b"[c1m 1 2 3 4 99999999|"),
            Err(EnvelopeError::PayloadTooLarge(99_999_999))
        );
        assert_eq!(
            decode_envelope(b"[c1m 99999999999999999999 "),
            Err(EnvelopeError::FieldOverflow("id"))
        );
        assert_eq!(
            decode_envelope(b"[c1m 000000000000000000001"),
            Err(EnvelopeError::FieldOverflow("id"))
        );
    }

    #[test]
    fn encoded_len_matches_encode() {
        for (h, p) in [
            (header(), &b"hello"[..]),
            (
                Header {
                    id: 0,
                    generator: 0,
                    seq: 0,
                    sent_us: 0,
                },
                &b""[..],
            ),
            (
                Header {
                    id: u64::MAX,
                    generator: u64::MAX,
                    seq: 9,
                    sent_us: 10,
                },
                &[b'x'; 1234][..],
            ),
        ] {
            assert_eq!(envelope_len(&h, p.len()), encoded(&h, p).len());
        }
    }

    #[test]
    fn scan_finds_envelopes_in_wrapped_text_and_keeps_the_tail() {
        let mut stream = b"<p>Chunk for id 42: ".to_vec();
        encode_envelope(&header(), b"a", &mut stream);
        stream.extend_from_slice(b"</p>[not one] [c1m junk ");
        encode_envelope(
            &Header {
                seq: 18,
                ..header()
            },
            b"b",
            &mut stream,
        );
        stream.extend_from_slice(b"\r\n[c1m 42 3 1");
        let mut seqs = Vec::new();
        let used = scan_envelopes(&stream, |e| seqs.push(e.header.seq));
        assert_eq!(seqs, vec![17, 18]);
        assert_eq!(&stream[used..], b"[c1m 42 3 1");
    }

    #[test]
    fn scan_keeps_a_cut_magic() {
        assert_eq!(scan_envelopes(b"abc[c1", |_| panic!("no envelope here")), 3);
        assert_eq!(scan_envelopes(b"abc[", |_| panic!("no envelope here")), 3);
        assert_eq!(scan_envelopes(b"abc", |_| panic!("no envelope here")), 3);
    }

    fn any_header() -> impl Strategy<Value = Header> {
        (any::<u64>(), any::<u64>(), any::<u64>(), any::<u64>()).prop_map(
            |(id, generator, seq, sent_us)| Header {
                id,
                generator,
                seq,
                sent_us,
            },
        )
    }

    proptest! {
        #[test]
        fn round_trips(h in any_header(), payload in proptest::collection::vec(any::<u8>(), 0..300), event in any::<bool>()) {
            let mut bytes = Vec::new();
            let kind = if event { EnvelopeKind::Event } else { EnvelopeKind::Message };
            encode_kind(kind, &h, &payload, &mut bytes);
            let (env, used) = decode_envelope(&bytes).unwrap().unwrap();
            prop_assert_eq!(env.kind, kind);
            prop_assert_eq!(env.header, h);
            prop_assert_eq!(env.payload, &payload[..]);
            prop_assert_eq!(used, bytes.len());
        }

        #[test]
        fn prefixes_are_incomplete(h in any_header(), payload in proptest::collection::vec(any::<u8>(), 0..64)) {
            let bytes = encoded(&h, &payload);
            for n in 0..bytes.len() {
                prop_assert_eq!(decode_envelope(&bytes[..n]), Ok(None));
            }
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_envelope(&bytes);
            let used = scan_envelopes(&bytes, |_| {});
            prop_assert!(used <= bytes.len());
        }

        /// Whatever way a stream of wrapped envelopes is cut into reads,
        /// scanning with a carried tail finds the same envelopes in order.
        #[test]
        fn scan_with_carry_is_independent_of_read_boundaries(
            headers in proptest::collection::vec(any_header(), 1..8),
            cuts in proptest::collection::vec(0usize..400, 0..10),
        ) {
            let mut stream = Vec::new();
            for (i, h) in headers.iter().enumerate() {
                stream.extend_from_slice(b"<chunk>[");
                // Messages and events interleaved.
                if i % 2 == 0 {
                    encode_envelope(h, b"x]y", &mut stream);
                } else {
                    encode_event(h, b"x]y", &mut stream);
                }
                stream.extend_from_slice(b"\r\n");
            }
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (stream.len() + 1)).collect();
            cuts.push(stream.len());
            cuts.sort_unstable();
            let mut found = Vec::new();
            let mut carry: Vec<u8> = Vec::new();
            let mut last = 0;
            for cut in cuts {
                carry.extend_from_slice(&stream[last..cut]);
                last = cut;
                let used = scan_envelopes(&carry, |e| found.push(e.header));
                carry.drain(..used);
            }
            prop_assert_eq!(found, headers);
        }
    }
}
