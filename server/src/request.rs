//! Parsing and routing a subscriber request: a pure function from bytes to a
//! [`Request`] or the status to refuse it with, so tests and the fuzz target
//! drive it without sockets.
//!
//! The shared codec (`c1m_http`) reads the head with the server's limits and
//! refuses what RFC 9112 says to refuse (no or two `Host`, ambiguous body
//! framing); this module adds the subscriber rules: the routes, `GET` or
//! `HEAD` only (`/ws` takes `GET` and the WebSocket handshake, checked by
//! `c1m_http::ws`), and no body at all. Nothing here allocates.

use c1m_http::ws::{self, Accept};
use c1m_http::{parse_decimal, query_param, BodyFraming, HeaderSlots, Reject, Status, Version};

use crate::http::{parse_head, parse_id};

/// Which stream a subscriber asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `GET /test/{id}`: chunked HTML, one chunk per message (the seeds' transport).
    Test { id: u64 },
    /// `GET /sse/{id}`: EventSource; `last_event_id` from the `Last-Event-ID` header.
    Sse { id: u64, last_event_id: Option<u64> },
    /// `GET /poll/{id}?seq=N`: one long-poll answer with the messages after `seq`.
    Poll { id: u64, seq: Option<u64> },
    /// `GET /ws/{id}` with the WebSocket handshake; `accept` answers its key.
    Ws { id: u64, accept: Accept },
}

impl Route {
    pub fn id(self) -> u64 {
        match self {
            Route::Test { id }
            | Route::Sse { id, .. }
            | Route::Poll { id, .. }
            | Route::Ws { id, .. } => id,
        }
    }
}

/// A request the server will answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    pub route: Route,
    /// `HEAD`: answer the head only, then close.
    pub head_only: bool,
    /// The client may send another request on this connection after the
    /// answer (HTTP/1.1 without `Connection: close`, or 1.0 with
    /// `keep-alive`). Only a long-poll answer ends while the connection
    /// lives on.
    pub keep_alive: bool,
    /// An HTTP/1.1 request (1.0 clients get close-delimited streams, not
    /// chunked ones).
    pub http11: bool,
}

/// The outcome of looking at the bytes received so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// The head is not complete yet (and still within limits).
    Incomplete,
    /// A complete head.
    Complete {
        /// What the head asks for.
        request: Request,
        /// The head's length in bytes; what follows is the body or stray.
        len: usize,
    },
}

/// Parses and routes the request at the start of `buf`.
pub fn parse_request(buf: &[u8], max_id: u64) -> Result<Parsed, Reject> {
    let mut slots = HeaderSlots::new();
    let Some(head) = parse_head(buf, &mut slots)? else {
        return Ok(Parsed::Incomplete);
    };
    let (kind, id_text) = route_prefix(head.path)?;
    if let Kind::Ws = kind {
        // 405 for HEAD and the rest, 426 without the handshake, 400 for a
        // bad one: checked before the id, as a client's upgrade fails first.
        let upgrade = ws::read_upgrade(&head)?;
        if head.body != BodyFraming::Empty {
            return Err(Reject::new(
                Status::BadRequest,
                "a subscriber request cannot have a body",
            ));
        }
        let id = parse_id(id_text, max_id)?;
        let request = Request {
            route: Route::Ws {
                id,
                accept: upgrade.accept,
            },
            head_only: false,
            keep_alive: false,
            http11: true,
        };
        return Ok(Parsed::Complete {
            request,
            len: head.len,
        });
    }
    let head_only = match head.method {
        "GET" => false,
        "HEAD" => true,
        _ => {
            return Err(Reject::method_not_allowed(
                "GET, HEAD",
                "subscriber paths take GET or HEAD",
            ))
        }
    };
    // A body would be read as the next request (a CL.0 desync): refused,
    // and the refusal closes the connection.
    if head.body != BodyFraming::Empty {
        return Err(Reject::new(
            Status::BadRequest,
            "a subscriber request cannot have a body",
        ));
    }
    let id = parse_id(id_text, max_id)?;
    let route = match kind {
        Kind::Test => Route::Test { id },
        Kind::Sse => {
            let last_event_id = head
                .headers
                .get("last-event-id")
                .map(|v| {
                    parse_decimal(v).ok_or(Reject::new(
                        Status::BadRequest,
                        "Last-Event-ID must be an unsigned integer",
                    ))
                })
                .transpose()?;
            Route::Sse { id, last_event_id }
        }
        Kind::Poll => {
            let seq = query_param(head.query.unwrap_or(""), "seq")
                .map(|v| {
                    parse_decimal(v.as_bytes()).ok_or(Reject::new(
                        Status::BadRequest,
                        "seq must be an unsigned integer",
                    ))
                })
                .transpose()?;
            Route::Poll { id, seq }
        }
        Kind::Ws => unreachable!("routed above"),
    };
    Ok(Parsed::Complete {
        request: Request {
            route,
            head_only,
            keep_alive: head.keep_alive,
            http11: head.version == Version::Http11,
        },
        len: head.len,
    })
}

enum Kind {
    Test,
    Sse,
    Poll,
    Ws,
}

/// Splits `/test/42` into the transport and the id text, or 404.
fn route_prefix(path: &str) -> Result<(Kind, &str), Reject> {
    for (prefix, kind) in [
        ("/test/", Kind::Test),
        ("/sse/", Kind::Sse),
        ("/poll/", Kind::Poll),
        ("/ws/", Kind::Ws),
    ] {
        if let Some(rest) = path.strip_prefix(prefix) {
            return Ok((kind, rest));
        }
    }
    Err(Reject::new(
        Status::NotFound,
        "no such path: use /test/{id}, /sse/{id}, /poll/{id}?seq=N or /ws/{id}",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MAX_HEAD;

    fn parse(s: &str) -> Result<Parsed, Reject> {
        parse_request(s.as_bytes(), 1_000_000)
    }

    fn route(s: &str) -> Route {
        match parse(s).unwrap() {
            Parsed::Complete { request, len } => {
                assert_eq!(len, s.len());
                request.route
            }
            Parsed::Incomplete => panic!("incomplete: {s:?}"),
        }
    }

    fn status(s: &str) -> u16 {
        parse(s).unwrap_err().status.code()
    }

    #[test]
    fn routes_the_three_transports() {
        assert_eq!(
            route("GET /test/7 HTTP/1.1\r\nHost: x\r\n\r\n"),
            Route::Test { id: 7 }
        );
        assert_eq!(
            route("GET /sse/8 HTTP/1.1\r\nHost: t\r\nlast-event-id: 12\r\n\r\n"),
            Route::Sse {
                id: 8,
                last_event_id: Some(12)
            }
        );
        assert_eq!(
            route("GET /sse/8 HTTP/1.1\r\nHost: t\r\n\r\n"),
            Route::Sse {
                id: 8,
                last_event_id: None
            }
        );
        assert_eq!(
            route("GET /poll/9?cb=x&seq=3 HTTP/1.1\r\nHost: t\r\n\r\n"),
            Route::Poll {
                id: 9,
                seq: Some(3)
            }
        );
        assert_eq!(
            route("GET http://127.0.0.1:8000/test/7 HTTP/1.1\r\nHost: t\r\n\r\n"),
            Route::Test { id: 7 }
        );
        assert_eq!(
            route("GET /poll/9 HTTP/1.0\r\n\r\n"),
            Route::Poll { id: 9, seq: None }
        );
        let keep = |s: &str| match parse(s).unwrap() {
            Parsed::Complete { request, .. } => request.keep_alive,
            Parsed::Incomplete => panic!("incomplete"),
        };
        assert!(keep("GET /poll/1 HTTP/1.1\r\nHost: t\r\n\r\n"));
        assert!(!keep(
            "GET /poll/1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        ));
        assert!(!keep("GET /poll/1 HTTP/1.0\r\n\r\n"));
        assert!(keep(
            "GET /poll/1 HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"
        ));
        let head = parse("HEAD /test/1 HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        assert!(matches!(
            head,
            Parsed::Complete {
                request: Request {
                    head_only: true,
                    ..
                },
                ..
            }
        ));
    }

    const UPGRADE: &str = "Upgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";

    #[test]
    fn routes_a_websocket_handshake() {
        let text = format!("GET /ws/5 HTTP/1.1\r\nHost: t\r\n{UPGRADE}\r\n");
        let Route::Ws { id, accept } = route(&text) else {
            panic!("not a websocket route");
        };
        assert_eq!((id, accept.as_str()), (5, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
        assert_eq!(status("GET /ws/5 HTTP/1.1\r\nHost: t\r\n\r\n"), 426);
        assert_eq!(status(&text.replace("HTTP/1.1", "HTTP/1.0")), 400);
        assert_eq!(status(&text.replace("GET", "HEAD")), 405);
        assert_eq!(status(&text.replace("/ws/5", "/ws/x")), 400);
        let body = text.replace("\r\n\r\n", "\r\nContent-Length: 2\r\n\r\n");
        assert_eq!(status(&body), 400);
    }

    #[test]
    fn every_prefix_of_a_request_is_incomplete() {
        let full = "GET /sse/8 HTTP/1.1\r\nHost: example\r\nLast-Event-ID: 3\r\n\r\n";
        for cut in 0..full.len() {
            assert_eq!(parse(&full[..cut]), Ok(Parsed::Incomplete), "cut at {cut}");
        }
    }

    #[test]
    fn refuses_bad_input_with_the_right_status() {
        assert_eq!(status("GET /test/abc HTTP/1.1\r\nHost: t\r\n\r\n"), 400);
        assert_eq!(status("GET /test/ HTTP/1.1\r\nHost: t\r\n\r\n"), 400);
        assert_eq!(status("GET /test/1000001 HTTP/1.1\r\nHost: t\r\n\r\n"), 400);
        assert_eq!(
            status("GET /test/99999999999999999999999 HTTP/1.1\r\nHost: t\r\n\r\n"),
            400
        );
        assert_eq!(status("GET /poll/1?seq=x HTTP/1.1\r\nHost: t\r\n\r\n"), 400);
        assert_eq!(
            status("GET /sse/1 HTTP/1.1\r\nHost: t\r\nLast-Event-ID: -1\r\n\r\n"),
            400
        );
        assert_eq!(status("GARBAGE\r\n\r\n"), 400);
        assert_eq!(status("GET /nope HTTP/1.1\r\nHost: t\r\n\r\n"), 404);
        assert_eq!(status("POST /test/1 HTTP/1.1\r\nHost: t\r\n\r\n"), 405);
        let big = format!(
            "GET /test/1 HTTP/1.1\r\nHost: t\r\nX: {}\r\n",
            "a".repeat(MAX_HEAD)
        );
        assert_eq!(status(&big), 431);
        let many: String = (0..40).map(|i| format!("H{i}: v\r\n")).collect();
        assert_eq!(
            status(&format!("GET /test/1 HTTP/1.1\r\nHost: t\r\n{many}\r\n")),
            431
        );
    }

    #[test]
    fn a_subscriber_request_has_one_host_and_no_body() {
        for request in [
            "GET /test/1 HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\n",
            "GET /test/1 HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET /test/1 HTTP/1.1\r\nHost: t\r\nContent-Length: 1x\r\n\r\n",
            "GET /test/1 HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "GET /test/1 HTTP/1.1\r\n\r\n",
            "GET /test/1 HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        ] {
            assert_eq!(status(request), 400, "{request:?}");
        }
        assert_eq!(
            route("GET /test/2 HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n"),
            Route::Test { id: 2 }
        );
        assert_eq!(route("GET /test/2 HTTP/1.0\r\n\r\n"), Route::Test { id: 2 });
        let refused = parse("PUT /sse/1 HTTP/1.1\r\nHost: t\r\n\r\n").unwrap_err();
        assert_eq!(refused.allow, Some("GET, HEAD"));
    }

    #[test]
    fn never_panics_on_arbitrary_bytes() {
        let mut seed = 0x1234_5678_u64;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 64) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|i| (seed >> (i % 8 * 8)) as u8 ^ i as u8)
                .collect();
            let _ = parse_request(&bytes, u64::MAX);
        }
    }
}
