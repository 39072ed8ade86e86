//! The header fields that decide where a message ends and whether the
//! connection lives on (RFC 9112 sections 6 and 9.3), read the same way for
//! requests and responses: `Content-Length`, `Transfer-Encoding`,
//! `Connection`. Each head parser applies its own rules on top (a request
//! is refused where a response is read until the close).

use crate::headers::{list, Headers, Version};

/// How the body of a message is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body bytes follow the head: no framing field, `Content-Length: 0`,
    /// a 1xx/204/304 answer, an answer to `HEAD`.
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// The chunked transfer coding, ended by its last chunk.
    Chunked,
    /// A response body that ends when the server closes (never a request).
    UntilClose,
}

impl BodyFraming {
    /// The framing a `Content-Length` value gives.
    pub(crate) fn of_length(length: u64) -> Self {
        if length == 0 {
            BodyFraming::Empty
        } else {
            BodyFraming::Length(length)
        }
    }
}

/// Parses `1*DIGIT` strictly: no sign, no space, no `+`, at most `u64`,
/// zero padding allowed. HTTP's `Content-Length`, and the one rule for
/// c1m's ids and sequence numbers: in URLs, batch lines and friends files
/// (`c1m_common` reads those with this function).
pub fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |value, &b| {
        if !b.is_ascii_digit() {
            return None;
        }
        value.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

/// Why the framing fields of a head cannot be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FramingFault {
    /// A `Content-Length` element that is not a decimal.
    InvalidLength,
    /// `Content-Length` values that differ (several fields, or a list).
    DifferingLengths,
    /// Both `Transfer-Encoding` and `Content-Length`: a smuggling shape.
    LengthAndCoding,
    /// `Transfer-Encoding` with no coding, or `chunked` applied twice.
    InvalidCoding,
}

/// The transfer codings of a message, as far as framing cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Codings {
    /// `chunked` alone.
    Chunked,
    /// `chunked` last, after other codings (`gzip, chunked`).
    ChunkedAfterOthers,
    /// The final coding is not `chunked`: the length cannot be known.
    NotChunkedLast,
}

/// What the framing fields say, before request or response rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Declared {
    /// Neither field.
    Nothing,
    Length(u64),
    Codings(Codings),
}

/// Reads `Content-Length` and `Transfer-Encoding`, refusing what RFC 9112
/// 6.3 calls unrecoverable or a smuggling attempt.
pub(crate) fn declared(headers: &Headers<'_>) -> Result<Declared, FramingFault> {
    let length = content_length(headers)?;
    let codings = transfer_codings(headers)?;
    match (length, codings) {
        (Some(_), Some(_)) => Err(FramingFault::LengthAndCoding),
        (Some(length), None) => Ok(Declared::Length(length)),
        (None, Some(codings)) => Ok(Declared::Codings(codings)),
        (None, None) => Ok(Declared::Nothing),
    }
}

/// The one `Content-Length` of the head: every element of every field must
/// be the same decimal (RFC 9110 8.6).
fn content_length(headers: &Headers<'_>) -> Result<Option<u64>, FramingFault> {
    let mut length = None;
    let mut fields = 0;
    for value in headers.get_all("content-length") {
        fields += 1;
        for element in list(value) {
            let n = parse_decimal(element).ok_or(FramingFault::InvalidLength)?;
            if length.is_some_and(|l| l != n) {
                return Err(FramingFault::DifferingLengths);
            }
            length = Some(n);
        }
    }
    // A field with no element at all (`Content-Length: `) is no length.
    if fields > 0 && length.is_none() {
        return Err(FramingFault::InvalidLength);
    }
    Ok(length)
}

/// The codings of every `Transfer-Encoding` field, in order (RFC 9112 6.1).
fn transfer_codings(headers: &Headers<'_>) -> Result<Option<Codings>, FramingFault> {
    let mut fields = 0usize;
    let mut elements = 0usize;
    let mut chunked = 0usize;
    let mut last_is_chunked = false;
    for value in headers.get_all("transfer-encoding") {
        fields += 1;
        for element in list(value) {
            // A coding's name ends at its parameters (`name;param=value`).
            let name = element.split(|&b| b == b';').next().unwrap_or(element);
            last_is_chunked = name.trim_ascii().eq_ignore_ascii_case(b"chunked");
            chunked += usize::from(last_is_chunked);
            elements += 1;
        }
    }
    if fields == 0 {
        return Ok(None);
    }
    if elements == 0 || chunked > 1 {
        return Err(FramingFault::InvalidCoding);
    }
    Ok(Some(match (last_is_chunked, elements) {
        (true, 1) => Codings::Chunked,
        (true, _) => Codings::ChunkedAfterOthers,
        (false, _) => Codings::NotChunkedLast,
    }))
}

/// Whether the connection stays open after this message (RFC 9112 9.3),
/// one rule for requests and responses: a `close` token in any
/// `Connection` field ends it; otherwise HTTP/1.1 persists and HTTP/1.0
/// persists only with a `keep-alive` token. Tokens are comma-separated,
/// trimmed and matched in any case.
pub(crate) fn keep_alive(version: Version, headers: &Headers<'_>) -> bool {
    let mut close = false;
    let mut keep = false;
    for token in headers.get_all("connection").flat_map(list) {
        close |= token.eq_ignore_ascii_case(b"close");
        keep |= token.eq_ignore_ascii_case(b"keep-alive");
    }
    !close && (version == Version::Http11 || keep)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `check` on the fields of `fields` (header lines, CRLF-ended).
    fn with_fields<T>(fields: &str, check: impl FnOnce(&Headers<'_>) -> T) -> T {
        let text = format!("HTTP/1.1 200 OK\r\n{fields}\r\n");
        let mut fields = [httparse::EMPTY_HEADER; 16];
        let mut response = httparse::Response::new(&mut fields);
        assert!(response.parse(text.as_bytes()).unwrap().is_complete());
        check(&Headers::new(response.headers))
    }

    fn framing(fields: &str) -> Result<Declared, FramingFault> {
        with_fields(fields, declared)
    }

    #[test]
    fn decimals_are_strict() {
        assert_eq!(parse_decimal(b"0"), Some(0));
        assert_eq!(parse_decimal(b"007"), Some(7));
        assert_eq!(parse_decimal(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_decimal(b"18446744073709551616"), None);
        assert_eq!(parse_decimal(b"+1"), None);
        assert_eq!(parse_decimal(b"-1"), None);
        assert_eq!(parse_decimal(b" 1"), None);
        assert_eq!(parse_decimal(b""), None);
        assert_eq!(parse_decimal(b"1a"), None);
        assert_eq!(parse_decimal(b"0x10"), None);
    }

    proptest::proptest! {
        /// Zero padding is no part of the value, however long (an id padded
        /// past 20 digits is the same id in a path and in a batch line).
        #[test]
        fn any_u64_with_any_padding_reads_back(id: u64, zeros in 0usize..40) {
            let text = format!("{}{id}", "0".repeat(zeros));
            proptest::prop_assert_eq!(parse_decimal(text.as_bytes()), Some(id));
        }

        #[test]
        fn digit_strings_agree_with_std(text in "[0-9]{1,30}") {
            let trimmed = text.trim_start_matches('0');
            let std = if trimmed.is_empty() { Some(0) } else { trimmed.parse::<u64>().ok() };
            proptest::prop_assert_eq!(parse_decimal(text.as_bytes()), std);
        }
    }

    #[test]
    fn content_length_values_must_agree() {
        use Declared::Length;
        assert_eq!(framing("Content-Length: 5\r\n"), Ok(Length(5)));
        assert_eq!(framing("Content-Length: 5, 5\r\n"), Ok(Length(5)));
        let same = "Content-Length: 5\r\ncontent-length: 5\r\n";
        assert_eq!(framing(same), Ok(Length(5)));
        let differ = "Content-Length: 5\r\nContent-Length: 6\r\n";
        assert_eq!(framing(differ), Err(FramingFault::DifferingLengths));
        let list = "Content-Length: 5, 6\r\n";
        assert_eq!(framing(list), Err(FramingFault::DifferingLengths));
        for bad in ["-5", "5a", "+5", "0x5", "", " , ", "99999999999999999999"] {
            let fields = format!("Content-Length: {bad}\r\n");
            assert_eq!(
                framing(&fields),
                Err(FramingFault::InvalidLength),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_final_coding_decides() {
        use Codings::*;
        let coding = |te: &str| framing(&format!("Transfer-Encoding: {te}\r\n"));
        assert_eq!(coding("chunked"), Ok(Declared::Codings(Chunked)));
        assert_eq!(coding("CHUNKED"), Ok(Declared::Codings(Chunked)));
        assert_eq!(
            coding("gzip, chunked"),
            Ok(Declared::Codings(ChunkedAfterOthers))
        );
        assert_eq!(
            coding("chunked, gzip"),
            Ok(Declared::Codings(NotChunkedLast))
        );
        assert_eq!(coding("gzip"), Ok(Declared::Codings(NotChunkedLast)));
        // Not a substring match: `xchunked` is another coding.
        assert_eq!(coding("xchunked"), Ok(Declared::Codings(NotChunkedLast)));
        assert_eq!(coding("chunked, chunked"), Err(FramingFault::InvalidCoding));
        assert_eq!(coding(" , "), Err(FramingFault::InvalidCoding));
        // Several fields are one list.
        let two = "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n";
        assert_eq!(framing(two), Ok(Declared::Codings(ChunkedAfterOthers)));
        assert_eq!(framing(""), Ok(Declared::Nothing));
    }

    #[test]
    fn a_length_beside_a_coding_is_refused_in_either_order() {
        let te_first = "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n";
        let cl_first = "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n";
        assert_eq!(framing(te_first), Err(FramingFault::LengthAndCoding));
        assert_eq!(framing(cl_first), Err(FramingFault::LengthAndCoding));
    }

    #[test]
    fn one_keep_alive_rule() {
        let keep = |version, fields: &str| with_fields(fields, |h| keep_alive(version, h));
        use Version::*;
        assert!(keep(Http11, ""));
        assert!(!keep(Http10, ""));
        assert!(!keep(Http11, "Connection: close\r\n"));
        assert!(!keep(Http11, "Connection:  Close \r\n"));
        assert!(!keep(Http11, "Connection: Upgrade, close\r\n"));
        assert!(!keep(
            Http11,
            "Connection: keep-alive\r\nConnection: close\r\n"
        ));
        assert!(keep(Http10, "Connection: Keep-Alive\r\n"));
        assert!(keep(Http10, "Connection: TE,  keep-alive \r\n"));
        assert!(!keep(Http10, "Connection: keep-alive, close\r\n"));
        // A token is matched whole, not as a substring.
        assert!(keep(Http11, "Connection: closed\r\n"));
    }
}
