//! The frame format of RFC 6455 5.2: opcodes, the header every frame starts
//! with, masking, and writing frames. The checks on a header's first two
//! bytes live here once, for both decoders (the incremental one a client
//! keeps per connection and the bounded one a server runs on whole
//! frames).
//!
//! ```text
//!  byte 0: FIN | RSV1-3 | opcode (4 bits)
//!  byte 1: MASK | length (7 bits: 0-125, or 126 = 16-bit length follows,
//!          127 = 64-bit length follows)
//!  then the extended length (big-endian), the 4-byte masking key if MASK,
//!  then the payload
//! ```

use super::error::WsError;
use super::utf8::Utf8;

/// The most a control frame's payload may hold (RFC 6455 5.5).
pub const MAX_CONTROL: usize = 125;

/// The longest frame header: 2 bytes, an 8-byte length, a 4-byte mask.
pub const MAX_HEADER: usize = 14;

/// What a frame is (RFC 6455 5.2; the reserved opcodes are refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Opcode {
    /// The next fragment of the message under way.
    Continuation = 0,
    /// The first frame of a text message (UTF-8).
    Text = 1,
    /// The first frame of a binary message.
    Binary = 2,
    /// Starts or answers the closing handshake.
    Close = 8,
    /// Asks for a Pong with the same payload.
    Ping = 9,
    /// Answers a Ping (or is sent unasked, as a heartbeat).
    Pong = 10,
}

impl Opcode {
    pub(crate) fn from_bits(bits: u8) -> Option<Opcode> {
        Some(match bits {
            0 => Opcode::Continuation,
            1 => Opcode::Text,
            2 => Opcode::Binary,
            8 => Opcode::Close,
            9 => Opcode::Ping,
            10 => Opcode::Pong,
            _ => return None,
        })
    }

    /// Close, Ping and Pong: at most [`MAX_CONTROL`] bytes, never
    /// fragmented, allowed between the fragments of a message.
    pub fn is_control(self) -> bool {
        (self as u8) & 0x8 != 0
    }
}

/// Whether a data message is text or binary; kept while its fragments come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// Text: its payload must be UTF-8, checked as it comes.
    Text,
    /// Binary: any bytes.
    Binary,
}

/// The data message under way; a text message's UTF-8 state rides in it,
/// so the two take one byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Message {
    Binary,
    Text(Utf8),
}

impl Message {
    /// The message a Text or Binary frame starts.
    pub(crate) fn start(opcode: Opcode) -> Option<Message> {
        match opcode {
            Opcode::Text => Some(Message::Text(Utf8::Start)),
            Opcode::Binary => Some(Message::Binary),
            _ => None,
        }
    }

    pub(crate) fn kind(self) -> Kind {
        match self {
            Message::Binary => Kind::Binary,
            Message::Text(_) => Kind::Text,
        }
    }

    /// Checks the next payload bytes of the message.
    pub(crate) fn feed(&mut self, bytes: &[u8]) -> Result<(), WsError> {
        if let Message::Text(utf8) = self {
            *utf8 = utf8.feed(bytes).ok_or(WsError::InvalidUtf8)?;
        }
        Ok(())
    }

    /// The message's last frame has ended: its text must be whole.
    pub(crate) fn finish(self) -> Result<Kind, WsError> {
        match self {
            Message::Text(utf8) if !utf8.is_complete() => Err(WsError::InvalidUtf8),
            message => Ok(message.kind()),
        }
    }
}

/// What the first header byte says: the opcode and FIN.
pub(crate) fn first_byte(b: u8, message: Option<Kind>) -> Result<(Opcode, bool), WsError> {
    if b & 0x70 != 0 {
        return Err(WsError::Protocol("reserved bits set without an extension"));
    }
    let opcode = Opcode::from_bits(b & 0x0F).ok_or(WsError::Protocol("reserved opcode"))?;
    let fin = b & 0x80 != 0;
    match opcode {
        op if op.is_control() && !fin => Err(WsError::Protocol("fragmented control frame")),
        Opcode::Continuation if message.is_none() => {
            Err(WsError::Protocol("continuation frame without a message"))
        }
        Opcode::Text | Opcode::Binary if message.is_some() => Err(WsError::Protocol(
            "new message before the fragmented one ended",
        )),
        _ => Ok((opcode, fin)),
    }
}

/// What the second header byte says: the 7-bit length (126 and 127 mean
/// an extended length follows). `masked` is what this side must receive:
/// a server's frames unmasked, a client's masked (RFC 6455 5.1).
pub(crate) fn second_byte(b: u8, opcode: Opcode, masked: bool) -> Result<u8, WsError> {
    if (b & 0x80 != 0) != masked {
        return Err(WsError::Protocol(if masked {
            "unmasked frame from a client"
        } else {
            "masked frame from a server"
        }));
    }
    let len = b & 0x7F;
    if opcode.is_control() && usize::from(len) > MAX_CONTROL {
        return Err(WsError::Protocol("control frame over 125 bytes"));
    }
    Ok(len)
}

/// Bytes of extended length after a 7-bit length of 126 or 127.
pub(crate) fn extended_len_bytes(len7: u8) -> usize {
    match len7 {
        126 => 2,
        127 => 8,
        _ => 0,
    }
}

/// Appends a frame header: FIN, the opcode, the length in its shortest
/// form, and the masking key if given (a client's frames must have one).
pub fn write_frame_header(
    out: &mut Vec<u8>,
    fin: bool,
    opcode: Opcode,
    len: usize,
    mask: Option<[u8; 4]>,
) {
    out.push(u8::from(fin) << 7 | opcode as u8);
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    match len {
        0..=125 => out.push(mask_bit | len as u8),
        126..=0xFFFF => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    if let Some(key) = mask {
        out.extend_from_slice(&key);
    }
}

/// Appends a whole frame (FIN set) carrying `payload`, masked with `mask`
/// if given.
pub fn write_frame(out: &mut Vec<u8>, opcode: Opcode, payload: &[u8], mask: Option<[u8; 4]>) {
    write_frame_header(out, true, opcode, payload.len(), mask);
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(key) = mask {
        apply_mask(&mut out[start..], key, 0);
    }
}

/// XORs `bytes` with the masking key, `offset` bytes into the payload
/// (masking and unmasking are the same operation, RFC 6455 5.3).
pub fn apply_mask(bytes: &mut [u8], key: [u8; 4], offset: usize) {
    for (i, b) in bytes.iter_mut().enumerate() {
        *b ^= key[(offset + i) % 4];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(fin: bool, opcode: Opcode, len: usize, mask: Option<[u8; 4]>) -> Vec<u8> {
        let mut out = Vec::new();
        write_frame_header(&mut out, fin, opcode, len, mask);
        out
    }

    #[test]
    fn lengths_take_their_shortest_form() {
        assert_eq!(header(true, Opcode::Text, 5, None), [0x81, 5]);
        assert_eq!(header(false, Opcode::Binary, 125, None), [0x02, 125]);
        assert_eq!(header(true, Opcode::Text, 126, None), [0x81, 126, 0, 126]);
        assert_eq!(
            header(true, Opcode::Text, 0x10000, None),
            [0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0]
        );
        let masked = header(true, Opcode::Ping, 0, Some([1, 2, 3, 4]));
        assert_eq!(masked, [0x89, 0x80, 1, 2, 3, 4]);
        assert!(header(true, Opcode::Text, usize::MAX, Some([0; 4])).len() <= MAX_HEADER);
    }

    #[test]
    fn masking_twice_gives_the_payload_back() {
        // RFC 6455 5.7: a masked "Hello" from a client.
        let mut frame = Vec::new();
        write_frame(
            &mut frame,
            Opcode::Text,
            b"Hello",
            Some([0x37, 0xfa, 0x21, 0x3d]),
        );
        assert_eq!(
            frame,
            [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]
        );
        let mut payload = frame[6..].to_vec();
        apply_mask(&mut payload[..2], [0x37, 0xfa, 0x21, 0x3d], 0);
        apply_mask(&mut payload[2..], [0x37, 0xfa, 0x21, 0x3d], 2);
        assert_eq!(payload, b"Hello");
    }

    #[test]
    fn the_first_two_bytes_are_checked() {
        let text = Some(Kind::Text);
        assert_eq!(first_byte(0x81, None), Ok((Opcode::Text, true)));
        assert_eq!(first_byte(0x00, text), Ok((Opcode::Continuation, false)));
        assert_eq!(first_byte(0x89, text), Ok((Opcode::Ping, true)));
        for (b, message) in [
            (0xC1, None),
            (0x83, None),
            (0x8B, None),
            (0x09, None),
            (0x80, None),
            (0x01, text),
        ] {
            assert!(
                matches!(first_byte(b, message), Err(WsError::Protocol(_))),
                "{b:x}"
            );
        }
        assert_eq!(second_byte(0x85, Opcode::Text, true), Ok(5));
        assert!(second_byte(0x05, Opcode::Text, true).is_err());
        assert!(second_byte(0x85, Opcode::Text, false).is_err());
        assert_eq!(second_byte(126, Opcode::Binary, false), Ok(126));
        assert!(second_byte(126, Opcode::Ping, false).is_err());
        assert_eq!(
            (
                extended_len_bytes(126),
                extended_len_bytes(127),
                extended_len_bytes(9)
            ),
            (2, 8, 0)
        );
    }
}
