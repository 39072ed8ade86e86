//! Parsing a response head, for every c1m client, with the body framing of
//! RFC 9112 6.3 in its order:
//!
//! 1. an answer to `HEAD`, and every 1xx, 204 and 304, has no body;
//! 2. `Transfer-Encoding` beside `Content-Length` is an error (the RFC lets
//!    the coding win but says it "ought to be handled as an error": it is
//!    how responses are split);
//! 3. `chunked` as the final coding: chunked; another final coding: the
//!    body runs until the close;
//! 4. a `Content-Length` that is not a decimal, or values that differ, is
//!    an error; otherwise it is the length;
//! 5. no framing field: until the close.
//!
//! A coding in an HTTP/1.0 response marks its framing as faulty (6.1): it
//! is still read, and the connection is not kept alive.

use std::fmt;

use crate::framing::{self, BodyFraming, Codings, Declared, FramingFault};
use crate::headers::{HeadLimits, HeaderSlots, Headers, Version};

/// A complete response head.
#[derive(Debug, Clone, Copy)]
pub struct ResponseHead<'a> {
    /// The protocol version of the status line.
    pub version: Version,
    /// The status code.
    pub status: u16,
    /// The reason phrase, possibly empty.
    pub reason: &'a str,
    /// How the body that follows the head is delimited.
    pub body: BodyFraming,
    /// What `Connection` and the version say (the crate's one keep-alive
    /// rule); see [`ResponseHead::reusable`] for whether the connection can
    /// carry another request.
    pub keep_alive: bool,
    /// The length of the head in bytes, blank line included.
    pub len: usize,
    /// Every field, for lookups by name (`Retry-After`, `Content-Type`).
    pub headers: Headers<'a>,
}

impl ResponseHead<'_> {
    /// The connection can carry the next request once this body is read: it
    /// is kept alive and the body does not run until the close.
    pub fn reusable(&self) -> bool {
        self.keep_alive && self.body != BodyFraming::UntilClose
    }
}

/// Why a response head cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseError {
    /// Not an HTTP/1.x status line and fields.
    Malformed,
    /// Over the caller's head size or field-count limit.
    TooLarge,
    /// A `Content-Length` that is not a decimal.
    InvalidLength,
    /// `Content-Length` values that differ.
    DifferingLengths,
    /// Both `Transfer-Encoding` and `Content-Length`.
    LengthAndCoding,
    /// `Transfer-Encoding` with no coding, or `chunked` twice.
    InvalidCoding,
}

impl ResponseError {
    /// A one-line description, lowercase.
    pub fn reason(self) -> &'static str {
        match self {
            ResponseError::Malformed => "unreadable response head",
            ResponseError::TooLarge => "response head over the size or header limit",
            ResponseError::InvalidLength => "invalid content-length",
            ResponseError::DifferingLengths => "content-length given twice with different values",
            ResponseError::LengthAndCoding => "both transfer-encoding and content-length",
            ResponseError::InvalidCoding => "malformed transfer-encoding",
        }
    }
}

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for ResponseError {}

impl From<FramingFault> for ResponseError {
    fn from(fault: FramingFault) -> Self {
        match fault {
            FramingFault::InvalidLength => ResponseError::InvalidLength,
            FramingFault::DifferingLengths => ResponseError::DifferingLengths,
            FramingFault::LengthAndCoding => ResponseError::LengthAndCoding,
            FramingFault::InvalidCoding => ResponseError::InvalidCoding,
        }
    }
}

/// Parses the response head at the start of `buf`, its fields into
/// `slots`, the answer to a request with `method` (whether it was `HEAD`
/// changes the framing): `Ok(None)`
/// while incomplete and within `limits`.
pub fn parse_response<'a>(
    buf: &'a [u8],
    limits: &HeadLimits,
    method: &str,
    slots: &'a mut HeaderSlots<'a>,
) -> Result<Option<ResponseHead<'a>>, ResponseError> {
    let mut response = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut response,
        buf,
        slots.limited(limits),
    );
    let len = match parsed {
        Ok(httparse::Status::Complete(len)) if len <= limits.max_len() => len,
        Ok(httparse::Status::Complete(_)) | Err(httparse::Error::TooManyHeaders) => {
            return Err(ResponseError::TooLarge)
        }
        Ok(httparse::Status::Partial) if buf.len() > limits.max_len() => {
            return Err(ResponseError::TooLarge)
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(ResponseError::Malformed),
    };
    let (Some(status), reason, version) = (
        response.code,
        response.reason.unwrap_or(""),
        Version::from_minor(response.version),
    ) else {
        return Err(ResponseError::Malformed);
    };
    let headers = Headers::new(response.headers);
    let bodiless = method.eq_ignore_ascii_case("HEAD")
        || (100..200).contains(&status)
        || status == 204
        || status == 304;
    let mut keep_alive = framing::keep_alive(version, &headers);
    let body = if bodiless {
        BodyFraming::Empty
    } else {
        let declared = framing::declared(&headers)?;
        if matches!(declared, Declared::Codings(_)) && version == Version::Http10 {
            keep_alive = false;
        }
        match declared {
            Declared::Codings(Codings::Chunked | Codings::ChunkedAfterOthers) => {
                BodyFraming::Chunked
            }
            Declared::Codings(Codings::NotChunkedLast) | Declared::Nothing => {
                BodyFraming::UntilClose
            }
            Declared::Length(n) => BodyFraming::of_length(n),
        }
    };
    Ok(Some(ResponseHead {
        version,
        status,
        reason,
        body,
        keep_alive,
        len,
        headers,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: HeadLimits = HeadLimits::new(1024, 8);

    /// Parses `text` into leaked slots, so a test can keep the head.
    fn head<'a>(text: &'a str, method: &str) -> ResponseHead<'a> {
        let slots = Box::leak(Box::new(HeaderSlots::new()));
        match parse_response(text.as_bytes(), &LIMITS, method, slots) {
            Ok(Some(head)) => head,
            other => panic!("{text:?}: {other:?}"),
        }
    }

    fn framing(text: &str) -> Result<BodyFraming, ResponseError> {
        parse_response(text.as_bytes(), &LIMITS, "GET", &mut HeaderSlots::new())
            .map(|h| h.unwrap().body)
    }

    #[test]
    fn reads_the_status_line() {
        let text =
            "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 3\r\nContent-Length: 2\r\n\r\nhi";
        let h = head(text, "POST");
        assert_eq!(
            (h.version, h.status, h.reason, h.len),
            (Version::Http11, 503, "Service Unavailable", text.len() - 2)
        );
        assert_eq!(h.headers.get_str("retry-after"), Some("3"));
        assert!(h.keep_alive && h.reusable());
        let h = head("HTTP/1.0 200\r\n\r\n", "GET");
        assert_eq!(
            (h.version, h.reason, h.body),
            (Version::Http10, "", BodyFraming::UntilClose)
        );
        assert!(!h.keep_alive && !h.reusable());
    }

    #[test]
    fn frames_bodies_as_rfc_9112_says() {
        use BodyFraming::*;
        assert_eq!(
            framing("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"),
            Ok(Length(5))
        );
        assert_eq!(
            framing("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
            Ok(Empty)
        );
        assert_eq!(
            framing("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Ok(Chunked)
        );
        let gzip_chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n";
        assert_eq!(framing(gzip_chunked), Ok(Chunked));
        let chunked_gzip = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n";
        assert_eq!(framing(chunked_gzip), Ok(UntilClose));
        assert_eq!(framing("HTTP/1.1 200 OK\r\n\r\n"), Ok(UntilClose));
        let keep = head("HTTP/1.1 200 OK\r\n\r\n", "GET");
        assert!(keep.keep_alive && !keep.reusable());
        for status in ["100 Continue", "204 No Content", "304 Not Modified"] {
            let text = format!("HTTP/1.1 {status}\r\nContent-Length: 9\r\n\r\n");
            assert_eq!(framing(&text), Ok(Empty), "{status}");
        }
        let to_head = head(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            "HEAD",
        );
        assert_eq!(to_head.body, Empty);
        let old = head(
            "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET",
        );
        assert_eq!((old.body, old.keep_alive), (Chunked, false));
    }

    #[test]
    fn refuses_what_cannot_be_framed() {
        use ResponseError::*;
        let te_then_cl =
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n";
        assert_eq!(framing(te_then_cl), Err(LengthAndCoding));
        let differ = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n";
        assert_eq!(framing(differ), Err(DifferingLengths));
        assert_eq!(
            framing("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"),
            Err(InvalidLength)
        );
        let twice = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n";
        assert_eq!(framing(twice), Err(InvalidCoding));
        assert_eq!(framing("SMTP ready\r\n\r\n"), Err(Malformed));
        let many: String = (0..9).map(|i| format!("H{i}: v\r\n")).collect();
        assert_eq!(
            framing(&format!("HTTP/1.1 200 OK\r\n{many}\r\n")),
            Err(TooLarge)
        );
        let endless = "a".repeat(LIMITS.max_len() + 1);
        assert_eq!(
            parse_response(endless.as_bytes(), &LIMITS, "GET", &mut HeaderSlots::new())
                .unwrap_err(),
            Malformed
        );
        let long = format!("HTTP/1.1 200 OK\r\nX: {}", "a".repeat(LIMITS.max_len()));
        assert_eq!(
            parse_response(long.as_bytes(), &LIMITS, "GET", &mut HeaderSlots::new()).unwrap_err(),
            TooLarge
        );
        assert_eq!(
            TooLarge.to_string(),
            "response head over the size or header limit"
        );
    }

    #[test]
    fn every_prefix_of_a_response_needs_more() {
        let full =
            "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n";
        for cut in 0..full.len() {
            let mut slots = HeaderSlots::new();
            let got = parse_response(&full.as_bytes()[..cut], &LIMITS, "GET", &mut slots);
            assert!(matches!(got, Ok(None)), "cut at {cut}: {got:?}");
        }
        assert_eq!(head(full, "GET").len, full.len());
    }
}
