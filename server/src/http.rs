//! The few pieces of HTTP/1.1 both listeners share: status codes and the
//! one-shot error answer (`Connection: close`, a one-line reason).

use std::io::Write;

/// A status the server answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    BadRequest,
    Unauthorized,
    NotFound,
    MethodNotAllowed,
    LengthRequired,
    PayloadTooLarge,
    HeadersTooLarge,
    ServiceUnavailable,
}

impl Status {
    pub fn code(self) -> u16 {
        match self {
            Status::Ok => 200,
            Status::BadRequest => 400,
            Status::Unauthorized => 401,
            Status::NotFound => 404,
            Status::MethodNotAllowed => 405,
            Status::LengthRequired => 411,
            Status::PayloadTooLarge => 413,
            Status::HeadersTooLarge => 431,
            Status::ServiceUnavailable => 503,
        }
    }

    pub fn reason_phrase(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::BadRequest => "Bad Request",
            Status::Unauthorized => "Unauthorized",
            Status::NotFound => "Not Found",
            Status::MethodNotAllowed => "Method Not Allowed",
            Status::LengthRequired => "Length Required",
            Status::PayloadTooLarge => "Payload Too Large",
            Status::HeadersTooLarge => "Request Header Fields Too Large",
            Status::ServiceUnavailable => "Service Unavailable",
        }
    }
}

/// A request the server refuses: the status and a one-line reason for the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reject {
    pub status: Status,
    pub reason: &'static str,
}

impl Reject {
    pub const fn new(status: Status, reason: &'static str) -> Self {
        Self { status, reason }
    }
}

/// Appends the full answer for a refused request, which closes the connection.
pub(crate) fn write_reject(reject: Reject, out: &mut Vec<u8>) {
    let allow = if reject.status == Status::MethodNotAllowed {
        "Allow: GET, HEAD\r\n"
    } else {
        ""
    };
    // Writing to a Vec cannot fail.
    let _ = write!(
        out,
        "HTTP/1.1 {} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n{allow}Connection: close\r\n\r\n{}\n",
        reject.status.code(),
        reject.status.reason_phrase(),
        reject.reason.len() + 1,
        reject.reason
    );
}

/// Parses an unsigned decimal with no sign, space or leading `+`.
pub(crate) fn parse_u64(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 20 {
        return None;
    }
    let mut value: u64 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(value)
}

/// The path and query of a request target. HTTP/1.1 servers must accept
/// the absolute form (`GET http://host:8000/test/1`, what proxies send) as
/// well as the usual origin form (`/test/1`); the authority is ignored.
pub(crate) fn origin_form(target: &str) -> &str {
    let scheme_end = ["http://", "https://"].iter().find_map(|scheme| {
        let head = target.get(..scheme.len())?;
        head.eq_ignore_ascii_case(scheme).then_some(scheme.len())
    });
    let Some(after_scheme) = scheme_end else {
        return target;
    };
    let rest = &target[after_scheme..];
    match rest.find(['/', '?']) {
        Some(at) if rest.as_bytes()[at] == b'/' => &rest[at..],
        // No path (`http://host`, `http://host?q`) means `/`.
        _ => "/",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_absolute_target_routes_like_its_path() {
        assert_eq!(origin_form("/test/1"), "/test/1");
        assert_eq!(origin_form("http://h:8000/test/1"), "/test/1");
        assert_eq!(origin_form("HTTPS://h/poll/2?seq=3"), "/poll/2?seq=3");
        assert_eq!(origin_form("http://h"), "/");
        assert_eq!(origin_form("http://h?x"), "/");
        assert_eq!(origin_form("http://"), "/");
        assert_eq!(origin_form("ftp://h/test/1"), "ftp://h/test/1");
        assert_eq!(origin_form("*"), "*");
    }

    #[test]
    fn reject_is_a_complete_response() {
        let mut out = Vec::new();
        write_reject(
            Reject::new(Status::MethodNotAllowed, "only GET and HEAD"),
            &mut out,
        );
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"));
        assert!(text.contains("Allow: GET, HEAD\r\n"));
        assert!(text.ends_with("\r\n\r\nonly GET and HEAD\n"));
        assert!(text.contains("Content-Length: 18\r\n"));
    }

    #[test]
    fn decimal_parsing_is_strict() {
        assert_eq!(parse_u64(b"0"), Some(0));
        assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64(b"18446744073709551616"), None);
        assert_eq!(parse_u64(b"+1"), None);
        assert_eq!(parse_u64(b""), None);
        assert_eq!(parse_u64(b"1a"), None);
    }
}
