//! WebSocket (RFC 6455), sans-I/O like the rest of the codec: the opening
//! handshake, frames and their headers, close codes, and two decoders for
//! the two sides' needs.
//!
//! - [`FrameDecoder`]: what a client keeps per connection to read a
//!   server's frames (unmasked), fed any split of its reads, with no
//!   buffer: 12 bytes, the payload handed over in place. floodtest keeps
//!   one per WebSocket stream.
//! - [`read_client_frame`]: what a server runs on a client's frames
//!   (masked): whole frames from the caller's buffer, bounded, unmasked in
//!   place; between frames a one-byte [`MessageState`].
//! - The handshake: [`read_upgrade`] and [`write_upgrade_response`] for a
//!   server, [`write_upgrade_request`] and [`check_upgrade_response`] for a
//!   client; the accept value is `sha1` and `base64`, both RustCrypto's and
//!   the `base64` crate's.
//! - Frames out: [`write_frame`], [`write_frame_header`] (a message framed
//!   around a payload the caller writes itself), [`write_close`].
//!
//! Every decoder refuses what RFC 6455 says to fail the connection for,
//! as a [`WsError`] whose [`WsError::close_code`] the endpoint sends
//! (1002 protocol error, 1007 bad UTF-8, 1009 too big).

mod bounded;
mod close;
mod error;
mod frame;
mod handshake;
mod incremental;
mod utf8;

pub use bounded::{read_client_frame, ClientFrame, MessageState};
pub use close::{parse_close, write_close, Close, CloseCode};
pub use error::WsError;
pub use frame::{
    apply_mask, write_frame, write_frame_header, Kind, Opcode, MAX_CONTROL, MAX_HEADER,
};
pub use handshake::{
    check_upgrade_response, is_upgrade, read_upgrade, write_upgrade_request,
    write_upgrade_response, Accept, HandshakeError, Key, Upgrade, VERSION,
};
pub use incremental::{Bounds, Event, FrameDecoder};
pub use utf8::Utf8;
