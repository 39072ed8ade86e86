//! Parsing and routing a subscriber request: a pure function from bytes to a
//! [`Request`] or the status to refuse it with, so tests and the fuzz target
//! drive it without sockets.
//!
//! The shared codec (`c1m_http`) reads the head with the server's limits and
//! refuses what RFC 9112 says to refuse (no or two `Host`, ambiguous body
//! framing); this module adds the subscriber rules: the routes, `GET` or
//! `HEAD` only (`/ws` takes `GET` and the WebSocket handshake, checked by
//! `c1m_http::ws`), and no body at all. Nothing here allocates, but the
//! list of a request for several ids (`/sse/1,2,3`).
//!
//! Several ids: a stream may ask for up to `--max-ids-per-conn` ids,
//! comma-separated, each at most once (`/test/1,2,3`, `/ws/1,2,3`); more,
//! or a repeat, is refused with 400. A long-poll names one id (its `seq`
//! and `X-Seq` are one id's position). On an SSE stream of several ids,
//! `Last-Event-ID` is what the stream's events carry, `<id>:<seq>`: that
//! id is replayed from there, the others go on live.

use c1m_http::ws::{self, Accept};
use c1m_http::{parse_decimal, query_param, BodyFraming, HeaderSlots, Reject, Status, Version};

use crate::http::{parse_head, parse_id};

/// The ids a stream asked for: `first`, and for `/sse/1,2,3` the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ids {
    /// The id the connection is known by first (its heartbeats name it; on
    /// SSE, the one `Last-Event-ID` replays).
    pub first: u64,
    /// The others, in the order asked; empty (and unallocated) for one id.
    pub more: Box<[u64]>,
}

impl Ids {
    /// One id.
    pub fn one(id: u64) -> Self {
        Self {
            first: id,
            more: Box::default(),
        }
    }
}

/// Which stream a subscriber asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `GET /test/{ids}`: chunked HTML, one chunk per message (the seeds' transport).
    Test {
        /// The ids whose messages the stream gets.
        ids: Ids,
    },
    /// `GET /sse/{ids}`: EventSource.
    Sse {
        /// The ids whose messages the stream gets.
        ids: Ids,
        /// From the `Last-Event-ID` header: the sequence number of
        /// `ids.first` to replay after.
        last_event_id: Option<u64>,
    },
    /// `GET /poll/{id}?seq=N`: one long-poll answer with the messages after `seq`.
    Poll {
        /// The id (one: see the module doc).
        id: u64,
        /// From `?seq=`: answer with what came after it.
        seq: Option<u64>,
    },
    /// `GET /ws/{ids}` with the WebSocket handshake.
    Ws {
        /// The ids whose messages the stream gets.
        ids: Ids,
        /// The `Sec-WebSocket-Accept` value answering the client's key.
        accept: Accept,
    },
}

impl Route {
    /// The first (or only) id.
    pub fn id(&self) -> u64 {
        match self {
            Route::Test { ids } | Route::Sse { ids, .. } | Route::Ws { ids, .. } => ids.first,
            Route::Poll { id, .. } => *id,
        }
    }

    /// The ids besides the first.
    pub fn more_ids(&self) -> &[u64] {
        match self {
            Route::Test { ids } | Route::Sse { ids, .. } | Route::Ws { ids, .. } => &ids.more,
            Route::Poll { .. } => &[],
        }
    }
}

/// What a subscriber request may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimits {
    /// The largest id (`--max-id`).
    pub max_id: u64,
    /// The most ids one stream may ask for (`--max-ids-per-conn`).
    pub max_ids: usize,
}

/// A request the server will answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The transport and its ids.
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
#[derive(Debug, Clone, PartialEq, Eq)]
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
pub fn parse_request(buf: &[u8], limits: RequestLimits) -> Result<Parsed, Reject> {
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
        let request = Request {
            route: Route::Ws {
                ids: parse_ids(id_text, limits)?,
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
    let mut ids = parse_ids(id_text, limits)?;
    let route = match kind {
        Kind::Test => Route::Test { ids },
        Kind::Sse => {
            let last_event_id = match head.headers.get("last-event-id") {
                None => None,
                Some(value) if ids.more.is_empty() => {
                    Some(parse_decimal(value).ok_or(Reject::new(
                        Status::BadRequest,
                        "Last-Event-ID must be an unsigned integer",
                    ))?)
                }
                Some(value) => Some(replay_first(&mut ids, value)?),
            };
            Route::Sse { ids, last_event_id }
        }
        Kind::Poll if !ids.more.is_empty() => {
            return Err(Reject::new(
                Status::BadRequest,
                "a long-poll names one id: several ids need a stream, /test or /sse",
            ))
        }
        Kind::Poll => {
            let id = ids.first;
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

/// `7` or `7,8,9`: at most `max_ids` ids, each within `--max-id`, none
/// twice.
fn parse_ids(text: &str, limits: RequestLimits) -> Result<Ids, Reject> {
    let Some((first, rest)) = text.split_once(',') else {
        return Ok(Ids::one(parse_id(text, limits.max_id)?));
    };
    let mut more = Vec::new();
    for id in rest.split(',') {
        if more.len() + 1 >= limits.max_ids {
            return Err(Reject::new(
                Status::BadRequest,
                "more ids than --max-ids-per-conn in one request",
            ));
        }
        more.push(parse_id(id, limits.max_id)?);
    }
    let first = parse_id(first, limits.max_id)?;
    let mut sorted = more.clone();
    sorted.push(first);
    sorted.sort_unstable();
    if sorted.windows(2).any(|w| w[0] == w[1]) {
        return Err(Reject::new(
            Status::BadRequest,
            "an id is named twice: a stream gets each id's messages once",
        ));
    }
    Ok(Ids {
        first,
        more: more.into_boxed_slice(),
    })
}

/// `Last-Event-ID: <id>:<seq>` on a stream of several ids (what its events
/// carry): that id becomes the first, the one replayed after `seq`.
fn replay_first(ids: &mut Ids, value: &[u8]) -> Result<u64, Reject> {
    let form = Reject::new(
        Status::BadRequest,
        "on a stream of several ids, Last-Event-ID is <id>:<seq>, as its events' id: fields",
    );
    let colon = value.iter().position(|&b| b == b':').ok_or(form)?;
    let id = parse_decimal(&value[..colon]).ok_or(form)?;
    let seq = parse_decimal(&value[colon + 1..]).ok_or(form)?;
    if id != ids.first {
        let Some(at) = ids.more.iter().position(|&m| m == id) else {
            return Err(Reject::new(
                Status::BadRequest,
                "Last-Event-ID names an id the path does not",
            ));
        };
        std::mem::swap(&mut ids.first, &mut ids.more[at]);
    }
    Ok(seq)
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
        "no such path: use /test/{ids}, /sse/{ids}, /poll/{id}?seq=N or /ws/{ids}",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MAX_HEAD;

    const LIMITS: RequestLimits = RequestLimits {
        max_id: 1_000_000,
        max_ids: 4,
    };

    fn parse(s: &str) -> Result<Parsed, Reject> {
        parse_request(s.as_bytes(), LIMITS)
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
            Route::Test { ids: Ids::one(7) }
        );
        assert_eq!(
            route("GET /sse/8 HTTP/1.1\r\nHost: t\r\nlast-event-id: 12\r\n\r\n"),
            Route::Sse {
                ids: Ids::one(8),
                last_event_id: Some(12)
            }
        );
        assert_eq!(
            route("GET /sse/8 HTTP/1.1\r\nHost: t\r\n\r\n"),
            Route::Sse {
                ids: Ids::one(8),
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
            Route::Test { ids: Ids::one(7) }
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
        let Route::Ws { ids, accept } = route(&text) else {
            panic!("not a websocket route");
        };
        assert_eq!(
            (ids, accept.as_str()),
            (Ids::one(5), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        );
        let several = route(&text.replace("/ws/5", "/ws/5,6,7"));
        assert_eq!((several.id(), several.more_ids()), (5, &[6, 7][..]));
        assert_eq!(status(&text.replace("/ws/5", "/ws/5,5")), 400);
        assert_eq!(status("GET /ws/5 HTTP/1.1\r\nHost: t\r\n\r\n"), 426);
        assert_eq!(status(&text.replace("HTTP/1.1", "HTTP/1.0")), 400);
        assert_eq!(status(&text.replace("GET", "HEAD")), 405);
        assert_eq!(status(&text.replace("/ws/5", "/ws/x")), 400);
        let body = text.replace("\r\n\r\n", "\r\nContent-Length: 2\r\n\r\n");
        assert_eq!(status(&body), 400);
    }

    #[test]
    fn a_stream_may_name_several_ids_up_to_the_limit() {
        let ids = |first, more: &[u64]| Ids {
            first,
            more: more.into(),
        };
        assert_eq!(
            route("GET /test/3,1,2 HTTP/1.1\r\nHost: t\r\n\r\n"),
            Route::Test {
                ids: ids(3, &[1, 2])
            }
        );
        // Last-Event-ID names the id to replay, which becomes the first.
        assert_eq!(
            route("GET /sse/3,1,2 HTTP/1.1\r\nHost: t\r\nLast-Event-ID: 2:17\r\n\r\n"),
            Route::Sse {
                ids: ids(2, &[1, 3]),
                last_event_id: Some(17)
            }
        );
        for (path, why) in [
            ("/test/1,2,3,4,5", "--max-ids-per-conn"),
            ("/test/1,2,1", "named twice"),
            ("/test/1,,2", "unsigned integer"),
            ("/test/1,2,", "unsigned integer"),
            ("/test/1,1000001", "--max-id"),
            ("/poll/1,2", "long-poll names one id"),
        ] {
            let reject = parse(&format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n")).unwrap_err();
            assert_eq!(reject.status.code(), 400, "{path}");
            assert!(reject.reason.contains(why), "{path}: {}", reject.reason);
        }
        for value in ["17", "9:17", "2:x", "2"] {
            let text =
                format!("GET /sse/1,2 HTTP/1.1\r\nHost: t\r\nLast-Event-ID: {value}\r\n\r\n");
            assert_eq!(status(&text), 400, "{value}");
        }
        assert_eq!(
            route("GET /test/1,2,3,4 HTTP/1.1\r\nHost: t\r\n\r\n").more_ids(),
            [2, 3, 4]
        );
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
            Route::Test { ids: Ids::one(2) }
        );
        assert_eq!(
            route("GET /test/2 HTTP/1.0\r\n\r\n"),
            Route::Test { ids: Ids::one(2) }
        );
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
            let limits = RequestLimits {
                max_id: u64::MAX,
                max_ids: 8,
            };
            let _ = parse_request(&bytes, limits);
        }
    }
}
