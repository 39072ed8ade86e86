//! The one HTTP/1.1 codec of the c1m tools, sans-I/O: bytes in, heads and
//! body bytes out, no sockets and no runtime, so the server's reactors,
//! floodtest's event loop, msggen's tokio client and the experiment
//! runner's blocking client all read HTTP the same way.
//!
//! - [`parse_request`]: a request head for both server listeners, with the
//!   caller's limits and what RFC 9112 tells a server to refuse (a missing
//!   or doubled `Host`, ambiguous body framing), as a [`Reject`]: a status
//!   and a one-line reason.
//! - [`parse_response`]: a response head with the body framing of RFC 9112
//!   6.3 (no body for `HEAD`, 1xx, 204, 304; `chunked` last wins; a
//!   `Content-Length` beside a coding, or two that differ, is an error).
//! - [`BodyDecoder`]: any body, incrementally, fed any split of the input;
//!   the chunked coding with extensions and trailers, in a 5-byte state.
//! - One keep-alive rule ([`RequestHead::keep_alive`],
//!   [`ResponseHead::keep_alive`]), header lookup by name ([`Headers`]).
//! - Writers: [`write_error`] (a refused request's whole answer),
//!   [`write_request_head`], [`write_chunk`], [`LAST_CHUNK`].
//! - [`ws`]: WebSocket (RFC 6455): the handshake, frames, close codes, an
//!   incremental decoder of a server's frames that keeps 12 bytes per
//!   connection and a bounded one of a client's.
//!
//! `httparse` reads the syntax underneath. Heads are parsed in place from
//! the caller's buffer: nothing here allocates, and nothing is kept between
//! calls but what the caller keeps (a [`BodyDecoder`]).
//!
//! A client reading one answer from what it has received so far:
//!
//! ```
//! use c1m_http::{parse_response, BodyDecoder, HeadLimits, HeaderSlots};
//!
//! const LIMITS: HeadLimits = HeadLimits::new(16 * 1024, 48);
//! let received = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
//! // `None` would mean: read more and parse again.
//! let mut slots = HeaderSlots::new();
//! let head = parse_response(received, &LIMITS, "GET", &mut slots)?.expect("a whole head");
//! assert_eq!(head.status, 200);
//! let mut decoder = BodyDecoder::new(head.body)?;
//! let mut body = Vec::new();
//! let decoded = decoder.decode(&received[head.len..], |bytes| body.extend_from_slice(bytes))?;
//! assert!(decoder.is_done() && head.reusable());
//! assert_eq!((body.as_slice(), decoded.chunks), (&b"hello"[..], 1));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]

mod body;
mod framing;
mod headers;
mod request;
mod response;
mod status;
mod target;
mod write;
pub mod ws;

pub use body::{BodyDecoder, BodyError, Decoded};
pub use framing::{parse_decimal, BodyFraming};
pub use headers::{HeadLimits, HeaderSlots, Headers, Version, MAX_HEADERS};
pub use request::{parse_request, RequestHead};
pub use response::{parse_response, ResponseError, ResponseHead};
pub use status::{write_error, Reject, Status};
pub use target::{origin_form, query_param};
pub use write::{write_chunk, write_request_head, LAST_CHUNK};
