//! Parsing a request head, for every c1m listener: `httparse` reads the
//! syntax; this module adds the caller's limits and what RFC 9112 tells a
//! server to refuse, so both listeners refuse the same shapes with the same
//! status:
//!
//! - a head over the size limit or with too many fields: 431;
//! - an HTTP/1.1 request without `Host`, or any request with two (3.2): 400;
//! - `Transfer-Encoding` beside `Content-Length` (6.3: a smuggling shape),
//!   a final coding other than `chunked`, `chunked` twice, or any coding in
//!   an HTTP/1.0 request (6.1): 400; codings before `chunked`: 501;
//! - a `Content-Length` that is not a decimal, or values that differ: 400.
//!
//! What a request may carry beyond that (a body at all, chunked or not) is
//! the listener's rule. Nothing here allocates.

use crate::framing::{self, BodyFraming, Codings, Declared, FramingFault};
use crate::headers::{HeadLimits, HeaderSlots, Headers, Version};
use crate::status::{Reject, Status};
use crate::target;

/// A complete, well-framed request head.
#[derive(Debug, Clone, Copy)]
pub struct RequestHead<'a> {
    /// As sent (`GET`, `POST`, ...); methods are case-sensitive.
    pub method: &'a str,
    /// The request target as sent.
    pub target: &'a str,
    /// The path of the target, absolute form reduced to origin form.
    pub path: &'a str,
    /// The query of the target (after `?`), if it has one.
    pub query: Option<&'a str>,
    /// The protocol version.
    pub version: Version,
    /// The client may send another request after the answer (see
    /// the crate's one keep-alive rule).
    pub keep_alive: bool,
    /// How the body that follows the head is delimited: never `UntilClose`.
    pub body: BodyFraming,
    /// `Expect: 100-continue`: the client waits for `100 Continue` before
    /// it sends the body (curl does for bodies over 1 MB).
    pub expect_continue: bool,
    /// The length of the head in bytes, blank line included.
    pub len: usize,
    /// Every field, for lookups by name (`Authorization`, `Last-Event-ID`).
    pub headers: Headers<'a>,
}

const MALFORMED: Reject = Reject::new(Status::BadRequest, "malformed request line or header");
const TOO_LARGE: Reject = Reject::new(
    Status::HeadersTooLarge,
    "request head is over the size limit or has too many header fields",
);

/// Parses the request head at the start of `buf`, its fields into `slots`:
/// `Ok(None)` while it is incomplete and within `limits`; a [`Reject`] when the request must be
/// answered with an error and the connection closed.
pub fn parse_request<'a>(
    buf: &'a [u8],
    limits: &HeadLimits,
    slots: &'a mut HeaderSlots<'a>,
) -> Result<Option<RequestHead<'a>>, Reject> {
    let mut request = httparse::Request::new(&mut []);
    let len = match request.parse_with_uninit_headers(buf, slots.limited(limits)) {
        Ok(httparse::Status::Complete(len)) if len <= limits.max_len() => len,
        Ok(httparse::Status::Complete(_)) | Err(httparse::Error::TooManyHeaders) => {
            return Err(TOO_LARGE)
        }
        Ok(httparse::Status::Partial) if buf.len() > limits.max_len() => return Err(TOO_LARGE),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(MALFORMED),
    };
    let (Some(method), Some(target), version) = (
        request.method,
        request.path,
        Version::from_minor(request.version),
    ) else {
        return Err(MALFORMED);
    };
    let headers = Headers::new(request.headers);
    check_host(&headers, version)?;
    let body = body_framing(&headers, version)?;
    let (path, query) = target::path_and_query(target::origin_form(target));
    let expect_continue = headers
        .get_all("expect")
        .any(|v| v.eq_ignore_ascii_case(b"100-continue"));
    Ok(Some(RequestHead {
        method,
        target,
        path,
        query,
        version,
        keep_alive: framing::keep_alive(version, &headers),
        body,
        expect_continue,
        len,
        headers,
    }))
}

/// RFC 9112 3.2: exactly one `Host` in HTTP/1.1, at most one in HTTP/1.0,
/// and a value that can be a `uri-host [":" port]`.
fn check_host(headers: &Headers<'_>, version: Version) -> Result<(), Reject> {
    let mut hosts = headers.get_all("host");
    match (hosts.next(), hosts.next()) {
        (None, _) if version == Version::Http11 => Err(Reject::new(
            Status::BadRequest,
            "an HTTP/1.1 request needs a Host header",
        )),
        (Some(_), Some(_)) => Err(Reject::new(Status::BadRequest, "more than one Host header")),
        (Some(host), None) if !host.iter().all(|&b| is_host_byte(b)) => Err(Reject::new(
            Status::BadRequest,
            "the Host header is not a host[:port]",
        )),
        _ => Ok(()),
    }
}

/// The bytes of a `uri-host [":" port]` (RFC 3986: unreserved, sub-delims,
/// percent-encoding, and the brackets and colons of an IPv6 literal).
fn is_host_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=%:[]".contains(&b)
}

/// How the request's body is delimited, or why it cannot be known.
fn body_framing(headers: &Headers<'_>, version: Version) -> Result<BodyFraming, Reject> {
    let bad = |reason| Err(Reject::new(Status::BadRequest, reason));
    match framing::declared(headers) {
        Ok(Declared::Nothing) => Ok(BodyFraming::Empty),
        Ok(Declared::Length(n)) => Ok(BodyFraming::of_length(n)),
        Ok(Declared::Codings(_)) if version == Version::Http10 => {
            bad("an HTTP/1.0 request cannot use Transfer-Encoding")
        }
        Ok(Declared::Codings(Codings::Chunked)) => Ok(BodyFraming::Chunked),
        Ok(Declared::Codings(Codings::ChunkedAfterOthers)) => Err(Reject::new(
            Status::NotImplemented,
            "only the chunked transfer coding is supported",
        )),
        Ok(Declared::Codings(Codings::NotChunkedLast)) => {
            bad("chunked must be the final transfer coding of a request")
        }
        Err(FramingFault::InvalidLength) => bad("Content-Length must be an unsigned integer"),
        Err(FramingFault::DifferingLengths) => {
            bad("Content-Length given twice with different values")
        }
        Err(FramingFault::LengthAndCoding) => {
            bad("a request cannot have both Transfer-Encoding and Content-Length")
        }
        Err(FramingFault::InvalidCoding) => bad("malformed Transfer-Encoding"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: HeadLimits = HeadLimits::new(1024, 8);

    /// Parses `text` into leaked slots, so a test can keep the head.
    fn head(text: &str) -> RequestHead<'_> {
        let slots = Box::leak(Box::new(HeaderSlots::new()));
        match parse_request(text.as_bytes(), &LIMITS, slots) {
            Ok(Some(head)) => head,
            other => panic!("{text:?}: {other:?}"),
        }
    }

    fn refused(text: &str) -> (u16, &'static str) {
        match parse_request(text.as_bytes(), &LIMITS, &mut HeaderSlots::new()) {
            Err(reject) => (reject.status.code(), reject.reason),
            other => panic!("{text:?} was not refused: {other:?}"),
        }
    }

    #[test]
    fn reads_the_request_line_and_fields() {
        let text = "GET http://h:1/poll/9?seq=3 HTTP/1.1\r\nHost: h:1\r\nLast-Event-ID: 4\r\n\r\n";
        let h = head(text);
        assert_eq!(
            (h.method, h.target, h.path, h.query),
            ("GET", "http://h:1/poll/9?seq=3", "/poll/9", Some("seq=3"))
        );
        assert_eq!((h.version, h.len), (Version::Http11, text.len()));
        assert!(h.keep_alive && !h.expect_continue);
        assert_eq!(h.body, BodyFraming::Empty);
        assert_eq!(h.headers.get("last-event-id"), Some(&b"4"[..]));
        let h = head("GET /stats HTTP/1.0\r\n\r\n");
        assert_eq!(
            (h.version, h.keep_alive, h.query),
            (Version::Http10, false, None)
        );
        let h = head("GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        assert!(h.keep_alive);
    }

    #[test]
    fn reads_the_body_framing() {
        let h = head("POST /send HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n\r\n");
        assert_eq!(h.body, BodyFraming::Length(12));
        let h = head("POST /send HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(h.body, BodyFraming::Empty);
        let h = head("POST /send HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!(h.body, BodyFraming::Chunked);
        let h = head(
            "POST /s HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n",
        );
        assert!(h.expect_continue);
    }

    #[test]
    fn host_is_required_once() {
        assert_eq!(refused("GET / HTTP/1.1\r\n\r\n").0, 400);
        assert_eq!(
            refused("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n").0,
            400
        );
        assert_eq!(
            refused("GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n").0,
            400
        );
        assert_eq!(refused("GET / HTTP/1.1\r\nHost: a b\r\n\r\n").0, 400);
        assert_eq!(refused("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n").0, 400);
        // HTTP/1.0 may leave it out; an empty value is allowed (RFC 9112 3.2).
        head("GET / HTTP/1.0\r\n\r\n");
        head("GET / HTTP/1.1\r\nHost:\r\n\r\n");
        head("GET / HTTP/1.1\r\nHost: [::1]:8000\r\n\r\n");
    }

    #[test]
    fn refuses_ambiguous_framing() {
        let cases = [
            ("Content-Length: 1\r\nTransfer-Encoding: chunked\r\n", 400),
            ("Transfer-Encoding: chunked\r\nContent-Length: 1\r\n", 400),
            ("Content-Length: 1\r\nContent-Length: 2\r\n", 400),
            ("Content-Length: 1, 2\r\n", 400),
            ("Content-Length: -1\r\n", 400),
            ("Content-Length: 1x\r\n", 400),
            ("Transfer-Encoding: gzip\r\n", 400),
            ("Transfer-Encoding: chunked, gzip\r\n", 400),
            (
                "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
                400,
            ),
            ("Transfer-Encoding: gzip, chunked\r\n", 501),
        ];
        for (fields, status) in cases {
            let text = format!("POST / HTTP/1.1\r\nHost: a\r\n{fields}\r\n");
            assert_eq!(refused(&text).0, status, "{fields:?}");
        }
        let old = "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(refused(old).0, 400);
    }

    #[test]
    fn refuses_over_the_limits_with_431() {
        let long = format!(
            "GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n",
            "a".repeat(1024)
        );
        assert_eq!(refused(&long).0, 431);
        // Incomplete and already over the limit: refused without waiting.
        assert_eq!(refused(&long[..1030]).0, 431);
        let many: String = (0..9).map(|i| format!("H{i}: v\r\n")).collect();
        assert_eq!(refused(&format!("GET / HTTP/1.1\r\n{many}\r\n")).0, 431);
        assert_eq!(refused("GARBAGE\r\n\r\n").0, 400);
        assert_eq!(refused("GET / HTTP/2.0\r\n\r\n").0, 400);
    }

    #[test]
    fn every_prefix_of_a_request_needs_more() {
        let full = "POST /send?x=1 HTTP/1.1\r\nHost: example\r\nContent-Length: 3\r\n\r\n";
        for cut in 0..full.len() {
            let mut slots = HeaderSlots::new();
            let got = parse_request(&full.as_bytes()[..cut], &LIMITS, &mut slots);
            assert!(matches!(got, Ok(None)), "cut at {cut}: {got:?}");
        }
        assert_eq!(head(full).len, full.len());
    }
}
