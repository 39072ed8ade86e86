//! Why a WebSocket connection must be failed, and the close code that says
//! so (RFC 6455 7.4.1): every decoder of the module reports one of these,
//! and the endpoint sends the code in its Close frame before it closes.

use std::fmt;

use super::close::CloseCode;

/// A peer broke RFC 6455: the connection is to be failed with
/// [`WsError::close_code`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WsError {
    /// Framing the RFC forbids (reserved bits or opcodes, a control frame
    /// that is fragmented or over 125 bytes, a mask where there must be
    /// none or none where there must be one, a continuation out of place,
    /// a bad close payload): 1002.
    Protocol(&'static str),
    /// A text message or a close reason that is not UTF-8: 1007.
    InvalidUtf8,
    /// A frame or message over the endpoint's bound: 1009.
    TooLarge,
}

impl WsError {
    /// The code of the Close frame that fails the connection.
    pub fn close_code(self) -> CloseCode {
        match self {
            WsError::Protocol(_) => CloseCode::PROTOCOL_ERROR,
            WsError::InvalidUtf8 => CloseCode::INVALID_DATA,
            WsError::TooLarge => CloseCode::TOO_BIG,
        }
    }

    /// A one-line description, lowercase (also the Close frame's reason).
    pub fn reason(self) -> &'static str {
        match self {
            WsError::Protocol(why) => why,
            WsError::InvalidUtf8 => "text that is not utf-8",
            WsError::TooLarge => "frame or message over the size bound",
        }
    }
}

impl fmt::Display for WsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for WsError {}
