//! Close codes and the Close frame's payload (RFC 6455 5.5.1 and 7.4): a
//! 2-byte code and an optional UTF-8 reason, or nothing at all.

use super::error::WsError;
use super::frame::{write_frame, Opcode, MAX_CONTROL};
use super::utf8::Utf8;

/// A close status code (RFC 6455 7.4.1; IANA's registry for 1012-1014).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: done, as planned.
    pub const NORMAL: CloseCode = CloseCode(1000);
    /// 1001: the endpoint is going away (a server shutting down).
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    /// 1002: the peer broke the protocol.
    pub const PROTOCOL_ERROR: CloseCode = CloseCode(1002);
    /// 1003: a kind of data this endpoint does not accept.
    pub const UNSUPPORTED: CloseCode = CloseCode(1003);
    /// 1007: a text message (or reason) that is not UTF-8.
    pub const INVALID_DATA: CloseCode = CloseCode(1007);
    /// 1008: a policy was broken (a slow consumer, too much client data).
    pub const POLICY: CloseCode = CloseCode(1008);
    /// 1009: a frame or message too big to take.
    pub const TOO_BIG: CloseCode = CloseCode(1009);
    /// 1011: the server met an error.
    pub const INTERNAL: CloseCode = CloseCode(1011);

    /// A code an endpoint may send in a Close frame: 1000-1003, 1007-1014
    /// and the 3000-4999 ranges for libraries and applications. 1004-1006
    /// and 1015 are reserved (1005 and 1006 mean "none" and "gone" locally,
    /// never on the wire), and so is the rest below 5000.
    pub fn is_sendable(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

/// What a Close frame carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Close<'a> {
    /// `None` for an empty payload (status 1005, "no status received").
    pub code: Option<CloseCode>,
    /// The reason, possibly empty.
    pub reason: &'a str,
}

/// Reads a Close frame's payload: empty, or a sendable code and a UTF-8
/// reason. One byte, or a code that may not be sent, is a protocol error.
pub fn parse_close(payload: &[u8]) -> Result<Close<'_>, WsError> {
    match payload {
        [] => Ok(Close {
            code: None,
            reason: "",
        }),
        [_] => Err(WsError::Protocol("close payload of one byte")),
        [hi, lo, reason @ ..] => {
            let code = CloseCode(u16::from_be_bytes([*hi, *lo]));
            if !code.is_sendable() {
                return Err(WsError::Protocol("close code that may not be sent"));
            }
            if !Utf8::Start.feed(reason).is_some_and(Utf8::is_complete) {
                return Err(WsError::InvalidUtf8);
            }
            // Checked just above.
            let reason = std::str::from_utf8(reason).map_err(|_| WsError::InvalidUtf8)?;
            Ok(Close {
                code: Some(code),
                reason,
            })
        }
    }
}

/// Appends a Close frame with `code` and `reason` (cut to fit 125 bytes
/// at a character boundary), masked with `mask` if given.
pub fn write_close(out: &mut Vec<u8>, code: CloseCode, reason: &str, mask: Option<[u8; 4]>) {
    let mut room = MAX_CONTROL - 2;
    while room < reason.len() && !reason.is_char_boundary(room) {
        room -= 1;
    }
    let reason = &reason[..room.min(reason.len())];
    let mut payload = [0; MAX_CONTROL];
    payload[..2].copy_from_slice(&code.0.to_be_bytes());
    payload[2..2 + reason.len()].copy_from_slice(reason.as_bytes());
    write_frame(out, Opcode::Close, &payload[..2 + reason.len()], mask);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_codes_and_reasons() {
        let close = parse_close(b"\x03\xe8bye").unwrap();
        assert_eq!((close.code, close.reason), (Some(CloseCode::NORMAL), "bye"));
        assert_eq!(parse_close(b"").unwrap().code, None);
        assert_eq!(
            parse_close(b"\x0f\xa0").unwrap().code,
            Some(CloseCode(4000))
        );
        for bad in [
            &b"\x03"[..],
            b"\x03\xed",
            b"\x03\xee",
            b"\x03\xec",
            b"\x03\xf7",
            b"\x00\x00",
            b"\x0b\xb7",
            b"\x13\x88",
        ] {
            assert!(
                matches!(parse_close(bad), Err(WsError::Protocol(_))),
                "{bad:x?}"
            );
        }
        assert_eq!(parse_close(b"\x03\xe8\xff"), Err(WsError::InvalidUtf8));
    }

    #[test]
    fn writes_a_close_frame_within_125_bytes() {
        let mut out = Vec::new();
        write_close(&mut out, CloseCode::GOING_AWAY, "shutting down", None);
        assert_eq!(&out[..4], [0x88, 15, 0x03, 0xe9]);
        assert_eq!(&out[4..], b"shutting down");
        let mut long = Vec::new();
        write_close(&mut long, CloseCode::POLICY, &"é".repeat(100), None);
        assert_eq!(long[1], 124, "cut at a character boundary");
        let reason = parse_close(&long[2..]).unwrap().reason;
        assert_eq!(reason.chars().count(), 61);
    }
}
