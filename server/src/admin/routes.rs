//! Parsing an admin request head: a pure function, driven by the tests and
//! the fuzz target without sockets. The head goes through the same codec
//! and limits as a subscriber's (`crate::http::parse_head`); this module
//! adds the admin rules: bodies by `Content-Length` only, the bearer token,
//! the routes. (The `POST /send` and `POST /publish` bodies are parsed by
//! `c1m_common::parse_batch`, the format's one owner.)

use c1m_http::{BodyFraming, HeaderSlots, Reject, Status, Version};

use crate::http::{parse_head, parse_id};

/// What an admin request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminRoute {
    /// `POST /send/{id}`: the body is one message.
    SendOne(u64),
    /// `POST /send`: the body is `id<TAB>message` lines.
    SendBatch,
    /// `POST /publish/{id}`: the body is one event for the id's online friends.
    PublishOne(u64),
    /// `POST /publish`: the body is `publisher<TAB>event` lines.
    PublishBatch,
    /// `POST /fanout`: a group's front to a worker, events for the
    /// worker's ids (`c1m_common::parse_fanout`). Answered by workers only
    /// (their admin is an abstract Unix socket only the front reaches); a
    /// public listener answers 404.
    Fanout,
    /// `POST /send-each`: a group's front to a worker, a `/send` body of
    /// lines the front checked, from one or several of its callers,
    /// answered per line (`c1m_common::SendEachAnswer`). Workers only, as
    /// `/fanout`.
    SendEach,
    /// `POST /broadcast`: the body is one message for every connection.
    Broadcast,
    /// `GET /presence`: a stream of `online <id>` / `offline <id>` lines.
    Presence,
    /// `GET /check/{id}`: how many connections the id has.
    Check(u64),
    /// `GET /stats`: JSON counters.
    Stats,
    /// `GET /metrics`: Prometheus text.
    Metrics,
}

impl AdminRoute {
    /// Whether the request publishes to subscribers (and so waits while the
    /// reactors are behind).
    pub(crate) fn publishes(self) -> bool {
        matches!(
            self,
            AdminRoute::SendOne(_)
                | AdminRoute::SendBatch
                | AdminRoute::PublishOne(_)
                | AdminRoute::PublishBatch
                | AdminRoute::Fanout
                | AdminRoute::SendEach
                | AdminRoute::Broadcast
        )
    }

    /// Whether it is a group's internal request (front to worker).
    pub(crate) fn internal(self) -> bool {
        matches!(self, AdminRoute::Fanout | AdminRoute::SendEach)
    }
}

/// A parsed admin request head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdminHead {
    /// The route, or why the request is refused (answered at once, without
    /// reading the body, and the connection closed).
    pub route: Result<AdminRoute, Reject>,
    pub content_length: usize,
    pub keep_alive: bool,
    /// An HTTP/1.1 request (a 1.0 client gets a close-delimited stream).
    pub http11: bool,
    /// `Expect: 100-continue`: the client waits for a `100 Continue` before
    /// sending the body (curl does for bodies over 1 MB).
    pub expect_continue: bool,
    /// Length of the head in bytes.
    pub len: usize,
}

/// Parses the admin request head at the start of `buf`: `Ok(None)` while
/// incomplete; an error when the connection must be answered and closed.
pub fn parse_admin_head(
    buf: &[u8],
    token: Option<&str>,
    max_id: u64,
) -> Result<Option<AdminHead>, Reject> {
    let mut slots = HeaderSlots::new();
    let Some(head) = parse_head(buf, &mut slots)? else {
        return Ok(None);
    };
    let content_length = match head.body {
        BodyFraming::Empty => 0,
        // Past usize is past --max-body: refused with 413 by the caller.
        BodyFraming::Length(n) => usize::try_from(n).unwrap_or(usize::MAX),
        BodyFraming::Chunked | BodyFraming::UntilClose => {
            return Err(Reject::new(
                Status::LengthRequired,
                "send the body with Content-Length, not chunked",
            ))
        }
    };
    let authorized = match token {
        None => true,
        Some(token) => head
            .headers
            .get("authorization")
            .and_then(bearer)
            .is_some_and(|v| token_matches(v, token.as_bytes())),
    };
    let route = if authorized {
        route(head.method, head.path, max_id)
    } else {
        Err(Reject::new(
            Status::Unauthorized,
            "missing or wrong bearer token",
        ))
    };
    Ok(Some(AdminHead {
        route,
        content_length,
        keep_alive: head.keep_alive,
        http11: head.version == Version::Http11,
        expect_continue: head.expect_continue,
        len: head.len,
    }))
}

/// Whether `given` is the token, in time that does not depend on where
/// they first differ (so the token cannot be guessed byte by byte from the
/// answer's timing); only the length shows, which a token of good entropy
/// does not need to hide.
fn token_matches(given: &[u8], token: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    bool::from(given.ct_eq(token))
}

/// The token of an `Authorization: Bearer <token>` value. The scheme is
/// case-insensitive (RFC 9110 11.1: `bearer`, `BEARER`).
pub(crate) fn bearer(value: &[u8]) -> Option<&[u8]> {
    let value = value.trim_ascii();
    let space = value.iter().position(|&b| b == b' ')?;
    let (scheme, token) = value.split_at(space);
    scheme
        .eq_ignore_ascii_case(b"bearer")
        .then(|| token.trim_ascii())
}

fn route(method: &str, path: &str, max_id: u64) -> Result<AdminRoute, Reject> {
    let id = |text: &str| parse_id(text, max_id);
    let (wanted, route) = if path == "/send" {
        ("POST", AdminRoute::SendBatch)
    } else if let Some(rest) = path.strip_prefix("/send/") {
        ("POST", AdminRoute::SendOne(id(rest)?))
    } else if path == "/publish" {
        ("POST", AdminRoute::PublishBatch)
    } else if let Some(rest) = path.strip_prefix("/publish/") {
        ("POST", AdminRoute::PublishOne(id(rest)?))
    } else if path == "/fanout" {
        ("POST", AdminRoute::Fanout)
    } else if path == "/send-each" {
        ("POST", AdminRoute::SendEach)
    } else if path == "/broadcast" {
        ("POST", AdminRoute::Broadcast)
    } else if path == "/presence" {
        ("GET", AdminRoute::Presence)
    } else if let Some(rest) = path.strip_prefix("/check/") {
        ("GET", AdminRoute::Check(id(rest)?))
    } else if path == "/stats" {
        ("GET", AdminRoute::Stats)
    } else if path == "/metrics" {
        ("GET", AdminRoute::Metrics)
    } else {
        return Err(Reject::new(
            Status::NotFound,
            "no such path: use POST /send, /send/{id}, /publish, /publish/{id}, /broadcast, \
             GET /check/{id}, /presence, /stats or /metrics",
        ));
    };
    if method != wanted {
        // Each path takes one method, and the 405 names it (RFC 9110 15.5.6).
        return Err(Reject::method_not_allowed(
            wanted,
            "wrong method for this path",
        ));
    }
    Ok(route)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(s: &str, token: Option<&str>) -> Result<Option<AdminHead>, Reject> {
        parse_admin_head(s.as_bytes(), token, 1000)
    }

    fn route_of(s: &str) -> Result<AdminRoute, Reject> {
        head(s, None).unwrap().unwrap().route
    }

    #[test]
    fn routes_admin_requests() {
        assert_eq!(
            route_of("POST /send HTTP/1.1\r\nHost: t\r\n\r\n"),
            Ok(AdminRoute::SendBatch)
        );
        assert_eq!(
            route_of("POST /send/12 HTTP/1.1\r\nHost: t\r\n\r\n"),
            Ok(AdminRoute::SendOne(12))
        );
        assert_eq!(
            route_of("GET /check/3 HTTP/1.1\r\nHost: t\r\n\r\n"),
            Ok(AdminRoute::Check(3))
        );
        for (request, route) in [
            ("POST /publish/7", AdminRoute::PublishOne(7)),
            ("POST /publish", AdminRoute::PublishBatch),
            ("POST /fanout", AdminRoute::Fanout),
            ("POST /send-each", AdminRoute::SendEach),
            ("POST /broadcast", AdminRoute::Broadcast),
            ("GET /presence", AdminRoute::Presence),
        ] {
            let text = format!("{request} HTTP/1.1\r\nHost: t\r\n\r\n");
            assert_eq!(route_of(&text), Ok(route), "{request}");
        }
        let wrong = route_of("GET /publish/7 HTTP/1.1\r\nHost: t\r\n\r\n").unwrap_err();
        assert_eq!(wrong.allow, Some("POST"));
        assert_eq!(
            route_of("GET /stats HTTP/1.1\r\nHost: t\r\n\r\n"),
            Ok(AdminRoute::Stats)
        );
        assert_eq!(
            route_of("GET http://127.0.0.1:8001/stats?x HTTP/1.1\r\nHost: t\r\n\r\n"),
            Ok(AdminRoute::Stats)
        );
        assert_eq!(
            route_of("GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n"),
            Ok(AdminRoute::Metrics)
        );
        let wrong = route_of("GET /send HTTP/1.1\r\nHost: t\r\n\r\n").unwrap_err();
        assert_eq!(
            (wrong.status, wrong.allow),
            (Status::MethodNotAllowed, Some("POST"))
        );
        let wrong = route_of("HEAD /stats HTTP/1.1\r\nHost: t\r\n\r\n").unwrap_err();
        assert_eq!(wrong.allow, Some("GET"));
        assert_eq!(
            route_of("GET /nope HTTP/1.1\r\nHost: t\r\n\r\n")
                .unwrap_err()
                .status,
            Status::NotFound
        );
        assert_eq!(
            route_of("POST /send/1001 HTTP/1.1\r\nHost: t\r\n\r\n")
                .unwrap_err()
                .status,
            Status::BadRequest
        );
    }

    #[test]
    fn token_matches_only_the_whole_token() {
        assert!(token_matches(b"s3cret", b"s3cret"));
        for wrong in [&b"s3creT"[..], b"s3cre", b"s3crets", b"", b"x3cret"] {
            assert!(!token_matches(wrong, b"s3cret"), "{wrong:?}");
        }
    }

    #[test]
    fn reads_length_keep_alive_and_token() {
        let h = head(
            "POST /send HTTP/1.1\r\nHost: t\r\nContent-Length: 12\r\n\r\n",
            None,
        )
        .unwrap()
        .unwrap();
        assert_eq!((h.content_length, h.keep_alive), (12, true));
        let h = head("GET /stats HTTP/1.0\r\n\r\n", None).unwrap().unwrap();
        assert!(!h.keep_alive);
        let h = head(
            "GET /stats HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
            None,
        )
        .unwrap()
        .unwrap();
        assert!(!h.keep_alive);
        let denied = head("GET /stats HTTP/1.1\r\nHost: t\r\n\r\n", Some("s3cret"))
            .unwrap()
            .unwrap();
        assert_eq!(denied.route.unwrap_err().status, Status::Unauthorized);
        let allowed = head(
            "GET /stats HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer s3cret\r\n\r\n",
            Some("s3cret"),
        );
        assert_eq!(allowed.unwrap().unwrap().route, Ok(AdminRoute::Stats));
        assert_eq!(
            head("POST /send HTTP/1.1\r\nHost: t\r\nContent-Le", None),
            Ok(None)
        );
        let chunked = head(
            "POST /send HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n",
            None,
        );
        assert_eq!(chunked.unwrap_err().status, Status::LengthRequired);
        let expect =
            "POST /send HTTP/1.1\r\nHost: t\r\nExpect: 100-Continue\r\nContent-Length: 5\r\n\r\n";
        assert!(head(expect, None).unwrap().unwrap().expect_continue);
        let twice =
            "POST /send HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 5\r\n\r\n";
        assert_eq!(head(twice, None).unwrap_err().status, Status::BadRequest);
        let same =
            "POST /send HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n";
        assert_eq!(head(same, None).unwrap().unwrap().content_length, 5);
    }

    #[test]
    fn bodies_come_by_content_length_only() {
        let status = |coding: &str| {
            let text =
                format!("POST /send HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: {coding}\r\n\r\n");
            head(&text, None).unwrap_err().status
        };
        assert_eq!(status("chunked"), Status::LengthRequired);
        assert_eq!(status("gzip"), Status::BadRequest);
        assert_eq!(status("gzip, chunked"), Status::NotImplemented);
        let both = "POST /send HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(head(both, None).unwrap_err().status, Status::BadRequest);
        let hostless = head("GET /stats HTTP/1.1\r\n\r\n", None);
        assert_eq!(hostless.unwrap_err().status, Status::BadRequest);
    }
}
