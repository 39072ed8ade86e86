//! The decoder a client keeps per connection: a server's frames fed as
//! they are read, cut anywhere, with no buffer. Like the chunked body
//! decoder it walks the header byte by byte in its integers and hands the
//! payload to the caller in place, so what a connection keeps between
//! reads is 12 bytes and nothing on the heap; a client holding a million
//! WebSocket streams keeps 12 MB of decoders.
//!
//! It checks what RFC 6455 asks of a client: no mask on a server's frames,
//! no reserved bits or opcodes, control frames whole and at most 125
//! bytes, continuations only inside a message, text that is UTF-8 (checked
//! as it comes, across reads and fragments), and the caller's bounds on a
//! frame and a message (up to 4 GiB - 1, the cost of a 4-byte count).
//!
//! Control frames are handed over in pieces like the rest; the caller
//! collects the few bytes of a Ping it must echo or of a Close it reads
//! ([`super::parse_close`]), which are rarely cut.

use super::error::WsError;
use super::frame::{extended_len_bytes, first_byte, second_byte, Kind, Message, Opcode};

/// The caller's bounds on what it takes (a frame and a message, each at
/// most 4 GiB - 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// The largest frame payload.
    pub frame: u32,
    /// The largest message, all its fragments together.
    pub message: u32,
}

/// What [`FrameDecoder::decode`] hands the caller, in stream order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// Payload bytes of the current data message (a piece of a frame;
    /// a message's pieces may span frames and reads).
    Data(&'a [u8]),
    /// The current data message is complete; its kind.
    MessageEnd(Kind),
    /// Payload bytes of a control frame (at most 125 in all).
    Control(Opcode, &'a [u8]),
    /// The control frame is complete.
    ControlEnd(Opcode),
}

/// Where the decoder is in a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Phase {
    /// At a frame's first byte.
    Start,
    /// At the second byte (mask bit, 7-bit length).
    Length,
    /// In the extended length; `left` bytes of it to come.
    Extended { left: u8 },
    /// In the payload: `remaining` bytes of it to come.
    Payload,
}

/// The state of one connection's incoming frames (12 bytes; see the
/// module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameDecoder {
    /// Payload bytes left in the frame, or its extended length so far.
    remaining: u32,
    /// Bytes of the current message so far, for [`Bounds::message`].
    message_len: u32,
    phase: Phase,
    /// The current frame's first header byte (opcode and FIN), checked.
    head: u8,
    /// The data message under way, if any (it may be fragmented).
    message: Option<Message>,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameDecoder {
    /// At the start of a stream of frames.
    pub const fn new() -> Self {
        Self {
            remaining: 0,
            message_len: 0,
            phase: Phase::Start,
            head: 0x80,
            message: None,
        }
    }

    fn opcode(&self) -> Opcode {
        Opcode::from_bits(self.head & 0x0F).unwrap_or(Opcode::Continuation)
    }

    /// Between frames and outside any message: a stream cut here lost nothing.
    pub fn is_idle(&self) -> bool {
        self.phase == Phase::Start && self.message.is_none()
    }

    /// Decodes the next bytes from the server, calling `on` with what they
    /// carry. After an error the decoder must not be fed again: the
    /// connection is to be failed with the error's close code.
    pub fn decode(
        &mut self,
        input: &[u8],
        bounds: &Bounds,
        mut on: impl FnMut(Event<'_>),
    ) -> Result<(), WsError> {
        let mut at = 0;
        while at < input.len() {
            if self.phase == Phase::Payload {
                let n = (input.len() - at).min(self.remaining as usize);
                let bytes = &input[at..at + n];
                let opcode = self.opcode();
                if opcode.is_control() {
                    on(Event::Control(opcode, bytes));
                } else {
                    if let Some(message) = &mut self.message {
                        message.feed(bytes)?;
                    }
                    on(Event::Data(bytes));
                }
                // n <= remaining, a u32.
                self.remaining -= n as u32;
                at += n;
                if self.remaining == 0 {
                    self.end_frame(&mut on)?;
                }
                continue;
            }
            let b = input[at];
            at += 1;
            match self.phase {
                Phase::Start => {
                    first_byte(b, self.message.map(Message::kind))?;
                    self.head = b;
                    self.phase = Phase::Length;
                }
                Phase::Length => {
                    let len7 = second_byte(b, self.opcode(), false)?;
                    self.remaining = u32::from(len7);
                    match extended_len_bytes(len7) {
                        0 => self.begin_payload(bounds, &mut on)?,
                        left => {
                            self.remaining = 0;
                            self.phase = Phase::Extended { left: left as u8 };
                        }
                    }
                }
                Phase::Extended { left } => {
                    if left == 8 && b & 0x80 != 0 {
                        return Err(WsError::Protocol("64-bit length with its top bit set"));
                    }
                    self.remaining = self
                        .remaining
                        .checked_mul(256)
                        .map(|r| r | u32::from(b))
                        .ok_or(WsError::TooLarge)?;
                    if left == 1 {
                        self.begin_payload(bounds, &mut on)?;
                    } else {
                        self.phase = Phase::Extended { left: left - 1 };
                    }
                }
                Phase::Payload => unreachable!("handled above"),
            }
        }
        Ok(())
    }

    /// The header is read: checks the frame against the bounds and starts
    /// its payload (or ends it at once if it is empty).
    fn begin_payload(
        &mut self,
        bounds: &Bounds,
        on: &mut impl FnMut(Event<'_>),
    ) -> Result<(), WsError> {
        if self.remaining > bounds.frame {
            return Err(WsError::TooLarge);
        }
        let opcode = self.opcode();
        if let Some(message) = Message::start(opcode) {
            self.message = Some(message);
            self.message_len = 0;
        }
        if !opcode.is_control() {
            self.message_len = self
                .message_len
                .checked_add(self.remaining)
                .filter(|&len| len <= bounds.message)
                .ok_or(WsError::TooLarge)?;
        }
        self.phase = Phase::Payload;
        if self.remaining == 0 {
            self.end_frame(on)?;
        }
        Ok(())
    }

    fn end_frame(&mut self, on: &mut impl FnMut(Event<'_>)) -> Result<(), WsError> {
        self.phase = Phase::Start;
        let opcode = self.opcode();
        let fin = self.head & 0x80 != 0;
        if opcode.is_control() {
            on(Event::ControlEnd(opcode));
        } else if fin {
            let message = self.message.take().unwrap_or(Message::Binary);
            on(Event::MessageEnd(message.finish()?));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::{write_frame, write_frame_header};

    const BOUNDS: Bounds = Bounds {
        frame: 1 << 20,
        message: 1 << 21,
    };

    /// What decoding `input` cut into `cut`-byte reads gives, as text.
    fn decode_cut(input: &[u8], cut: usize) -> Result<Vec<String>, WsError> {
        let mut decoder = FrameDecoder::new();
        let mut seen = Vec::new();
        let (mut data, mut control) = (Vec::new(), Vec::new());
        for piece in input.chunks(cut.max(1)) {
            decoder.decode(piece, &BOUNDS, |event| match event {
                Event::Data(b) => data.extend_from_slice(b),
                Event::MessageEnd(kind) => {
                    seen.push(format!("{kind:?} {}", String::from_utf8_lossy(&data)));
                    data.clear();
                }
                Event::Control(_, b) => control.extend_from_slice(b),
                Event::ControlEnd(op) => {
                    seen.push(format!("{op:?} {}", String::from_utf8_lossy(&control)));
                    control.clear();
                }
            })?;
        }
        assert!(decoder.is_idle());
        Ok(seen)
    }

    fn frame(out: &mut Vec<u8>, fin: bool, opcode: Opcode, payload: &[u8]) {
        write_frame_header(out, fin, opcode, payload.len(), None);
        out.extend_from_slice(payload);
    }

    #[test]
    fn the_state_is_twelve_bytes() {
        assert_eq!(std::mem::size_of::<FrameDecoder>(), 12);
    }

    #[test]
    fn decodes_messages_fragments_and_control_frames_cut_anywhere() {
        let mut input = Vec::new();
        write_frame(&mut input, Opcode::Text, "héllo".as_bytes(), None);
        // A fragmented text message with a Ping between its fragments, and
        // a code point cut between two fragments.
        let euro = "€".as_bytes();
        frame(&mut input, false, Opcode::Text, &[b'a', euro[0]]);
        frame(&mut input, true, Opcode::Ping, b"are you there");
        frame(&mut input, false, Opcode::Continuation, &euro[1..]);
        frame(&mut input, true, Opcode::Continuation, b"z");
        write_frame(&mut input, Opcode::Binary, &[0xff; 300], None);
        write_frame(&mut input, Opcode::Binary, b"", None);
        write_frame(&mut input, Opcode::Close, b"\x03\xe8", None);
        let want = [
            "Text héllo".to_string(),
            "Ping are you there".into(),
            "Text a€z".into(),
            format!("Binary {}", String::from_utf8_lossy(&[0xff; 300])),
            "Binary ".into(),
            "Close \u{3}\u{fffd}".into(),
        ];
        for cut in 1..=input.len() {
            assert_eq!(decode_cut(&input, cut).unwrap(), want, "cut {cut}");
        }
    }

    #[test]
    fn every_prefix_of_a_frame_is_not_yet_a_message() {
        let mut input = Vec::new();
        write_frame(&mut input, Opcode::Text, &[b'x'; 70_000], None);
        for cut in [0, 1, 2, 5, 9, 10, 100, input.len() - 1] {
            let mut decoder = FrameDecoder::new();
            let mut ended = false;
            decoder
                .decode(&input[..cut], &BOUNDS, |e| {
                    ended |= matches!(e, Event::MessageEnd(_))
                })
                .unwrap();
            assert!(!ended && (cut == 0 || !decoder.is_idle()), "cut {cut}");
        }
    }

    #[test]
    fn refuses_what_a_client_must_refuse() {
        let refused = |bytes: &[u8]| decode_cut(bytes, bytes.len()).unwrap_err();
        let protocol = |bytes: &[u8]| matches!(refused(bytes), WsError::Protocol(_));
        assert!(
            protocol(&[0x81, 0x81, 0, 0, 0, 0, b'x']),
            "masked from a server"
        );
        assert!(protocol(&[0xC1, 0x00]), "reserved bit");
        assert!(protocol(&[0x83, 0x00]), "reserved opcode");
        assert!(protocol(&[0x09, 0x00]), "fragmented ping");
        assert!(protocol(&[0x89, 126, 0, 126]), "ping over 125 bytes");
        assert!(protocol(&[0x80, 0x00]), "continuation without a message");
        assert!(
            protocol(&[0x01, 0x00, 0x81, 0x00]),
            "a new message inside one"
        );
        assert!(
            protocol(&[0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 1]),
            "64-bit top bit"
        );
        assert_eq!(refused(&[0x81, 0x02, 0xC3, 0x28]), WsError::InvalidUtf8);
        assert_eq!(
            refused(&[0x81, 0x01, 0xE2]),
            WsError::InvalidUtf8,
            "cut at the end"
        );
        assert_eq!(
            refused(&[0x82, 127, 0, 0, 0, 1, 0, 0, 0, 0]),
            WsError::TooLarge
        );
        let mut over = Vec::new();
        write_frame_header(&mut over, true, Opcode::Binary, (1 << 20) + 1, None);
        assert_eq!(refused(&over), WsError::TooLarge, "over the frame bound");
        let mut long = Vec::new();
        frame(&mut long, false, Opcode::Binary, &[0; 1 << 20]);
        frame(&mut long, false, Opcode::Continuation, &[0; 1 << 20]);
        write_frame_header(&mut long, true, Opcode::Continuation, 1, None);
        assert_eq!(refused(&long), WsError::TooLarge, "over the message bound");
    }
}
