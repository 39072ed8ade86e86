//! Status codes, their reason phrases, and the one-shot error answer: a
//! refused request gets a complete response with a one-line plain-text
//! reason and `Connection: close`, so nothing the client sent after it can
//! be taken for a request.

use std::io::Write;

/// A status code a c1m server answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// 100: the client may send the body it announced.
    Continue,
    /// 200.
    Ok,
    /// 400: malformed, ambiguous or forbidden by RFC 9112.
    BadRequest,
    /// 401: a missing or wrong credential.
    Unauthorized,
    /// 404: no such path.
    NotFound,
    /// 405: the path exists but takes other methods (answered with `Allow`).
    MethodNotAllowed,
    /// 411: a body the server will only take with a `Content-Length`.
    LengthRequired,
    /// 413: a body over the server's limit.
    PayloadTooLarge,
    /// 426: a WebSocket path asked for without the handshake, or with a
    /// version other than 13 (answered with `Sec-WebSocket-Version: 13`).
    UpgradeRequired,
    /// 431: a head over the caller's size or field-count limit.
    HeadersTooLarge,
    /// 501: a transfer coding the server does not decode.
    NotImplemented,
    /// 503: over a connection limit.
    ServiceUnavailable,
}

impl Status {
    /// The three-digit code.
    pub fn code(self) -> u16 {
        match self {
            Status::Continue => 100,
            Status::Ok => 200,
            Status::BadRequest => 400,
            Status::Unauthorized => 401,
            Status::NotFound => 404,
            Status::MethodNotAllowed => 405,
            Status::LengthRequired => 411,
            Status::PayloadTooLarge => 413,
            Status::UpgradeRequired => 426,
            Status::HeadersTooLarge => 431,
            Status::NotImplemented => 501,
            Status::ServiceUnavailable => 503,
        }
    }

    /// The reason phrase of the status line.
    pub fn reason_phrase(self) -> &'static str {
        match self {
            Status::Continue => "Continue",
            Status::Ok => "OK",
            Status::BadRequest => "Bad Request",
            Status::Unauthorized => "Unauthorized",
            Status::NotFound => "Not Found",
            Status::MethodNotAllowed => "Method Not Allowed",
            Status::LengthRequired => "Length Required",
            Status::PayloadTooLarge => "Payload Too Large",
            Status::UpgradeRequired => "Upgrade Required",
            Status::HeadersTooLarge => "Request Header Fields Too Large",
            Status::NotImplemented => "Not Implemented",
            Status::ServiceUnavailable => "Service Unavailable",
        }
    }
}

/// A request refused: the status, a one-line reason for the body, and for
/// a 405 the methods the path takes (the `Allow` field RFC 9110 15.5.6
/// requires).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reject {
    /// The status of the answer.
    pub status: Status,
    /// Lowercase, one line, no trailing period.
    pub reason: &'static str,
    /// The `Allow` value, such as `GET, HEAD`.
    pub allow: Option<&'static str>,
}

impl Reject {
    /// A refusal without `Allow`.
    pub const fn new(status: Status, reason: &'static str) -> Self {
        Self {
            status,
            reason,
            allow: None,
        }
    }

    /// A 405 naming the methods the path takes.
    pub const fn method_not_allowed(allow: &'static str, reason: &'static str) -> Self {
        Self {
            status: Status::MethodNotAllowed,
            reason,
            allow: Some(allow),
        }
    }
}

/// Appends the complete answer to a refused request. The connection is to
/// be closed once it is out (`Connection: close` says so).
pub fn write_error(reject: &Reject, out: &mut Vec<u8>) {
    let status = reject.status;
    // Writing to a Vec cannot fail.
    let _ = write!(
        out,
        "HTTP/1.1 {} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n",
        status.code(),
        status.reason_phrase(),
        reject.reason.len() + 1,
    );
    if let Some(allow) = reject.allow {
        let _ = write!(out, "Allow: {allow}\r\n");
    }
    if status == Status::UpgradeRequired {
        // RFC 6455 4.4: the versions the server speaks, so a client can retry.
        out.extend_from_slice(b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n");
    }
    let _ = writeln!(out, "Connection: close\r\n\r\n{}", reject.reason);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(reject: Reject) -> String {
        let mut out = Vec::new();
        write_error(&reject, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn an_error_answer_is_complete_and_closes() {
        let text = answer(Reject::method_not_allowed("GET, HEAD", "only GET and HEAD"));
        assert_eq!(
            text,
            "HTTP/1.1 405 Method Not Allowed\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Length: 18\r\nAllow: GET, HEAD\r\nConnection: close\r\n\r\nonly GET and HEAD\n"
        );
        let text = answer(Reject::new(Status::BadRequest, "bad"));
        assert!(text.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{text}");
        assert!(!text.contains("Allow"), "{text}");
        assert!(text.ends_with("Content-Length: 4\r\nConnection: close\r\n\r\nbad\n"));
    }

    #[test]
    fn every_status_has_its_code_and_phrase() {
        use Status::*;
        let table = [
            (Continue, 100, "Continue"),
            (Ok, 200, "OK"),
            (BadRequest, 400, "Bad Request"),
            (Unauthorized, 401, "Unauthorized"),
            (NotFound, 404, "Not Found"),
            (MethodNotAllowed, 405, "Method Not Allowed"),
            (LengthRequired, 411, "Length Required"),
            (PayloadTooLarge, 413, "Payload Too Large"),
            (HeadersTooLarge, 431, "Request Header Fields Too Large"),
            (NotImplemented, 501, "Not Implemented"),
            (ServiceUnavailable, 503, "Service Unavailable"),
        ];
        for (status, code, phrase) in table {
            assert_eq!((status.code(), status.reason_phrase()), (code, phrase));
        }
    }
}
