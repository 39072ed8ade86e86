//! What a failure looked like: the first one of each class, in words.
//!
//! Failures are counted, never logged one by one (see [`crate::class`]);
//! but a count alone (`status=100`) does not say what the server said. So
//! each worker keeps the first failure of every class as a line of text:
//! for a refused status the status line and the start of the body the
//! server sent with it (a helpful 404 usually says what it wanted), for
//! broken framing the reason and the bytes, for a socket error the errno's
//! words and the address. The controller prints each class's first line
//! once. Non-200 answers are also counted by status code, so the summary
//! says `status_404=100`.
//!
//! Cost: per worker, a map of at most one short line per class and one
//! counter per status code seen; nothing per connection, and text is only
//! built for a class's first failure.

use crate::class::ErrorClass;
use crate::stream::StreamError;
use c1m_http::{parse_response, BodyDecoder, HeadLimits, HeaderSlots};
use std::collections::BTreeMap;

/// How much of a refused answer's body is shown.
const BODY_SHOWN: usize = 160;
/// How many received bytes a framing failure shows.
const BYTES_SHOWN: usize = 60;

/// A worker's (or the fleet's) first failure of each class, and the
/// non-200 answers by status code.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Failures {
    /// Class name to the first failure of that class, in words.
    pub(crate) first: BTreeMap<String, String>,
    /// Non-200 answers by status code.
    pub(crate) status_codes: BTreeMap<u16, u64>,
}

impl Failures {
    /// Whether `class` has its first failure already.
    pub(crate) fn has(&self, class: ErrorClass) -> bool {
        self.first.contains_key(class.name())
    }

    /// Keeps `detail` as the first failure of `class`, unless one is kept;
    /// `detail` is only built when it is kept.
    pub(crate) fn note(&mut self, class: ErrorClass, detail: impl FnOnce() -> String) {
        if !self.has(class) {
            self.first.insert(class.name().to_owned(), detail());
        }
    }

    /// Counts a non-200 answer.
    pub(crate) fn status(&mut self, code: u16) {
        *self.status_codes.entry(code).or_default() += 1;
    }

    /// Folds in another worker's: codes add, the first failure seen wins.
    pub(crate) fn merge(&mut self, o: &Failures) {
        for (class, detail) in &o.first {
            self.first
                .entry(class.clone())
                .or_insert_with(|| detail.clone());
        }
        for (code, n) in &o.status_codes {
            *self.status_codes.entry(*code).or_default() += n;
        }
    }

    /// The status counts as the summary keys them (`"404"`).
    pub(crate) fn codes_by_name(&self) -> BTreeMap<String, u64> {
        self.status_codes
            .iter()
            .map(|(code, n)| (code.to_string(), *n))
            .collect()
    }
}

/// The words for a stream that failed on `err` while reading `bytes` (the
/// read, or the head gathered so far).
pub(crate) fn describe(err: StreamError, bytes: &[u8]) -> String {
    match err {
        StreamError::Status(code) => {
            refused_answer(bytes).unwrap_or_else(|| format!("status {code}"))
        }
        StreamError::Protocol(why) | StreamError::Handshake(why) => {
            let shown = &bytes[..bytes.len().min(BYTES_SHOWN)];
            let more = if bytes.len() > BYTES_SHOWN { "..." } else { "" };
            format!("{why}; received \"{}{more}\"", shown.escape_ascii())
        }
    }
}

/// The words for a class whose failure carries nothing more to show.
pub(crate) fn plain(class: ErrorClass, connect_timeout: std::time::Duration) -> String {
    match class {
        ErrorClass::Timeout => format!("no response head within {connect_timeout:?}"),
        ErrorClass::ClosedByServer => "the server closed an open stream".to_owned(),
        other => other.name().to_owned(),
    }
}

/// `HTTP/1.1 404 Not Found; body "no route for /x"`: the status line and
/// the start of the body that came with it (de-chunked), if the head parses.
fn refused_answer(bytes: &[u8]) -> Option<String> {
    let mut slots = HeaderSlots::new();
    let limits = HeadLimits::new(bytes.len().max(1), 48);
    let head = parse_response(bytes, &limits, "GET", &mut slots).ok()??;
    let mut body = Vec::new();
    if let Ok(mut decoder) = BodyDecoder::new(head.body) {
        // What arrived with the head; a framing error only ends the sample.
        let _ = decoder.decode(&bytes[head.len..], |part| {
            let room = (BODY_SHOWN + 1).saturating_sub(body.len());
            body.extend_from_slice(&part[..part.len().min(room)]);
        });
    }
    let line = format!("{} {} {}", head.version, head.status, head.reason);
    let text = String::from_utf8_lossy(&body);
    let text = text.trim();
    if text.is_empty() {
        return Some(format!("{}; no body with it", line.trim_end()));
    }
    let cut: String = text.chars().take(BODY_SHOWN).collect();
    let more = if cut.len() < text.len() { "..." } else { "" };
    Some(format!(
        "{}; body \"{}{more}\"",
        line.trim_end(),
        cut.escape_debug()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_answer_shows_its_status_line_and_body() {
        let answer = b"HTTP/1.1 404 Not Found\r\nContent-Length: 40\r\n\r\nno route for /x; subscribers use /test/N";
        assert_eq!(
            describe(StreamError::Status(404), answer),
            "HTTP/1.1 404 Not Found; body \"no route for /x; subscribers use /test/N\""
        );
        let chunked =
            b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nfull\r\n";
        assert_eq!(
            describe(StreamError::Status(503), chunked),
            "HTTP/1.1 503 Service Unavailable; body \"full\""
        );
        let empty = b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(
            describe(StreamError::Status(401), empty),
            "HTTP/1.1 401 Unauthorized; no body with it"
        );
        let long = format!("HTTP/1.1 400 Bad Request\r\n\r\n{}", "x".repeat(500));
        let text = describe(StreamError::Status(400), long.as_bytes());
        assert!(
            text.ends_with(&format!("\"{}...\"", "x".repeat(BODY_SHOWN))),
            "{text}"
        );
    }

    #[test]
    fn broken_framing_shows_why_and_the_bytes() {
        let text = describe(
            StreamError::Protocol("bad chunk size line"),
            b"zz\r\nno\x00",
        );
        assert_eq!(text, "bad chunk size line; received \"zz\\r\\nno\\x00\"");
    }

    #[test]
    fn the_first_of_each_class_is_kept_and_codes_add() {
        let mut a = Failures::default();
        a.note(ErrorClass::Status, || "first".into());
        a.note(ErrorClass::Status, || panic!("not built once one is kept"));
        a.status(404);
        let mut b = Failures::default();
        b.note(ErrorClass::Status, || "second".into());
        b.note(ErrorClass::Refused, || "refused".into());
        b.status(404);
        b.status(503);
        a.merge(&b);
        assert_eq!(a.first["status"], "first");
        assert_eq!(a.first["refused"], "refused");
        assert_eq!(a.status_codes, [(404, 2), (503, 1)].into());
        assert_eq!(a.codes_by_name()["404"], 2);
    }
}
