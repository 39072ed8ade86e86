//! The one preamble of both listeners: a request head read by the shared
//! codec (`c1m_http`) with the server's limits (8 KiB, 32 fields), and the
//! rule for the ids in their paths. The codec refuses what RFC 9112 says to
//! refuse; the listeners add their routes and body rules on top.

use c1m_http::{parse_decimal, HeadLimits, HeaderSlots, Reject, RequestHead, Status};

use crate::config::MAX_HEAD;

/// Header fields read per request; a request with more gets 431.
const MAX_HEADERS: usize = 32;

const LIMITS: HeadLimits = HeadLimits::new(MAX_HEAD, MAX_HEADERS);

/// The codec's 431, with the server's figures in the reason.
const TOO_LARGE: Reject = Reject::new(
    Status::HeadersTooLarge,
    "request head is over 8 KiB or has over 32 headers",
);

/// Parses the request head at the start of `buf`: `Ok(None)` while it is
/// incomplete; a [`Reject`] when the connection must be answered and
/// closed.
pub(crate) fn parse_head<'a>(
    buf: &'a [u8],
    slots: &'a mut HeaderSlots<'a>,
) -> Result<Option<RequestHead<'a>>, Reject> {
    c1m_http::parse_request(buf, &LIMITS, slots).map_err(|reject| {
        if reject.status == Status::HeadersTooLarge {
            TOO_LARGE
        } else {
            reject
        }
    })
}

/// An id in a path: the codec's decimal (the rule of batch lines and
/// friends files too), no larger than `--max-id`.
pub(crate) fn parse_id(text: &str, max_id: u64) -> Result<u64, Reject> {
    parse_decimal(text.as_bytes())
        .filter(|&id| id <= max_id)
        .ok_or(Reject::new(
            Status::BadRequest,
            "id must be an unsigned integer no larger than --max-id",
        ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_large_names_the_limits() {
        let many: String = (0..33).map(|i| format!("H{i}: v\r\n")).collect();
        let head = format!("GET / HTTP/1.1\r\n{many}\r\n");
        let reject = parse_head(head.as_bytes(), &mut HeaderSlots::new()).unwrap_err();
        assert_eq!(reject, TOO_LARGE);
        let malformed = parse_head(b"\x00\r\n\r\n", &mut HeaderSlots::new()).unwrap_err();
        assert_eq!(malformed.status, Status::BadRequest);
        assert!(matches!(
            parse_head(b"GET / HT", &mut HeaderSlots::new()),
            Ok(None)
        ));
    }

    #[test]
    fn ids_are_strict_decimals_within_max_id() {
        assert_eq!(parse_id("0", 10), Ok(0));
        assert_eq!(parse_id("10", 10), Ok(10));
        for bad in ["11", "", "+1", "1a", "99999999999999999999999"] {
            assert_eq!(
                parse_id(bad, 10).unwrap_err().status,
                Status::BadRequest,
                "{bad}"
            );
        }
    }
}
