//! UTF-8 validation that can stop anywhere and go on: a text message may be
//! cut between reads and between frames, a code point with it, and a
//! decoder that keeps no buffer still has to refuse bytes that are not
//! UTF-8 (RFC 6455 8.1). The whole state is which bytes may come next, one
//! of nine (RFC 3629's table), so it costs a byte.

/// Where a UTF-8 sequence is (RFC 3629 section 4: the bytes each lead byte
/// allows next).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(u8)]
pub enum Utf8 {
    /// Between code points: any lead byte may come.
    #[default]
    Start,
    /// One continuation byte (80-BF) left.
    Tail1,
    /// Two continuation bytes left.
    Tail2,
    /// Three continuation bytes left.
    Tail3,
    /// After E0: A0-BF, then one more (no overlong forms).
    E0,
    /// After ED: 80-9F, then one more (no surrogates).
    Ed,
    /// After F0: 90-BF, then two more (no overlong forms).
    F0,
    /// After F4: 80-8F, then two more (nothing past U+10FFFF).
    F4,
}

impl Utf8 {
    /// Reads `bytes` on from this state: the state after them, or `None`
    /// at the first byte that cannot be UTF-8 here.
    pub fn feed(self, bytes: &[u8]) -> Option<Utf8> {
        let mut state = self;
        let mut rest = bytes;
        loop {
            if rest.is_empty() {
                return Some(state);
            }
            if state == Utf8::Start {
                // The common case, ASCII and whole code points, at std's speed.
                match std::str::from_utf8(rest) {
                    Ok(_) => return Some(Utf8::Start),
                    Err(e) if e.error_len().is_some() => return None,
                    // Cut inside the last code point: walk its bytes below.
                    Err(e) => rest = &rest[e.valid_up_to()..],
                }
            }
            state = step(state, rest[0])?;
            rest = &rest[1..];
        }
    }

    /// The bytes so far end on a code point boundary.
    pub fn is_complete(self) -> bool {
        self == Utf8::Start
    }
}

/// One byte of a multi-byte sequence, or a lead byte at `Start`.
fn step(state: Utf8, b: u8) -> Option<Utf8> {
    use Utf8::*;
    let tail = (0x80..=0xBF).contains(&b);
    Some(match state {
        Start => match b {
            0x00..=0x7F => Start,
            0xC2..=0xDF => Tail1,
            0xE0 => E0,
            0xED => Ed,
            0xE1..=0xEC | 0xEE..=0xEF => Tail2,
            0xF0 => F0,
            0xF1..=0xF3 => Tail3,
            0xF4 => F4,
            _ => return None,
        },
        Tail1 if tail => Start,
        Tail2 if tail => Tail1,
        Tail3 if tail => Tail2,
        E0 if (0xA0..=0xBF).contains(&b) => Tail1,
        Ed if (0x80..=0x9F).contains(&b) => Tail1,
        F0 if (0x90..=0xBF).contains(&b) => Tail2,
        F4 if (0x80..=0x8F).contains(&b) => Tail2,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Validates `bytes` cut at every point into two pieces.
    fn valid_cut_anywhere(bytes: &[u8]) -> bool {
        let whole = Utf8::Start.feed(bytes).is_some_and(Utf8::is_complete);
        for cut in 0..=bytes.len() {
            let split = Utf8::Start
                .feed(&bytes[..cut])
                .and_then(|s| s.feed(&bytes[cut..]))
                .is_some_and(Utf8::is_complete);
            assert_eq!(split, whole, "{bytes:x?} cut at {cut}");
        }
        assert_eq!(whole, std::str::from_utf8(bytes).is_ok(), "{bytes:x?}");
        whole
    }

    #[test]
    fn agrees_with_std_whatever_the_cut() {
        let text = "aé€😀 z\u{10FFFF}\u{7FF}\u{800}\u{FFFF}";
        assert!(valid_cut_anywhere(text.as_bytes()));
        for bad in [
            &b"\xC0\x80"[..],    // overlong NUL
            b"\xE0\x80\x80",     // overlong
            b"\xED\xA0\x80",     // a surrogate
            b"\xF4\x90\x80\x80", // past U+10FFFF
            b"\xF5\x80\x80\x80", // no such lead byte
            b"\x80",             // a lone continuation
            b"a\xCEb",           // a cut sequence with more after it
            b"\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5\xED\xA0\x80edited",
        ] {
            assert!(!valid_cut_anywhere(bad));
        }
    }

    #[test]
    fn an_unfinished_code_point_is_not_complete() {
        let state = Utf8::Start.feed("€".as_bytes().split_at(2).0).unwrap();
        assert!(!state.is_complete());
        assert_eq!(state.feed(&[0xAC]), Some(Utf8::Start));
        assert_eq!(Utf8::Start.feed(b""), Some(Utf8::Start));
        assert_eq!(std::mem::size_of::<Option<Utf8>>(), 1);
    }
}
