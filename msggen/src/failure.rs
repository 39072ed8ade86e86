//! Why an attempt failed: its class (what the summary counts), the HTTP
//! status when there was one, what the peer said, and how long it asked us
//! to wait.
//!
//! At 16,666 msg/s a failing target fails thousands of attempts a second,
//! so failures are counted by class and status code, never logged one by
//! one; the first of each run is kept whole (its status and the start of
//! its body) to tell the user what went wrong, with a hint.

use std::io;
use std::time::Duration;

/// Why an attempt or a message failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum FailureClass {
    /// Nothing listens on the target (ECONNREFUSED).
    Refused,
    /// The connection was reset or broke (ECONNRESET, EPIPE, ECONNABORTED).
    Reset,
    /// The target closed the connection before answering.
    Closed,
    /// No connection or answer within --timeout.
    Timeout,
    /// The target answered 5xx.
    Status5xx,
    /// The target answered 429 Too Many Requests or 408 Request Timeout:
    /// it asks to be tried again later, so it is retried like a 5xx.
    Throttled,
    /// The target answered 4xx other than 408/429 (not retried: the same
    /// batch would fail again).
    Status4xx,
    /// The target answered with a status that is neither 2xx, 4xx nor 5xx.
    StatusOther,
    /// The target took the batch but refused some of its lines (its answer
    /// said `"rejected": N`); not retried, the same lines would be refused.
    Rejected,
    /// A 2xx answer (or a Redis reply) whose body says the publish failed,
    /// such as Centrifugo's `{"error":{...}}`; not retried.
    ApiError,
    /// The answer was not HTTP/1.x the codec could read, or was framed
    /// ambiguously (RFC 9112 6.3).
    BadResponse,
    /// This process is out of file descriptors (EMFILE/ENFILE).
    NoDescriptors,
    /// No local address or port to connect from (EADDRNOTAVAIL).
    NoAddress,
    /// Another I/O error.
    Io,
    /// Not sent at all: the target did not keep up and the sender's queue
    /// was full (msggen holds at most ~2 s of messages per sender).
    Backlog,
}

impl FailureClass {
    pub(crate) const ALL: [FailureClass; 15] = [
        FailureClass::Refused,
        FailureClass::Reset,
        FailureClass::Closed,
        FailureClass::Timeout,
        FailureClass::Status5xx,
        FailureClass::Throttled,
        FailureClass::Status4xx,
        FailureClass::StatusOther,
        FailureClass::Rejected,
        FailureClass::ApiError,
        FailureClass::BadResponse,
        FailureClass::NoDescriptors,
        FailureClass::NoAddress,
        FailureClass::Io,
        FailureClass::Backlog,
    ];

    /// The name in summaries and JSON.
    pub(crate) fn name(self) -> &'static str {
        match self {
            FailureClass::Refused => "refused",
            FailureClass::Reset => "reset",
            FailureClass::Closed => "closed",
            FailureClass::Timeout => "timeout",
            FailureClass::Status5xx => "status_5xx",
            FailureClass::Throttled => "throttled",
            FailureClass::Status4xx => "status_4xx",
            FailureClass::StatusOther => "status_other",
            FailureClass::Rejected => "rejected",
            FailureClass::ApiError => "api_error",
            FailureClass::BadResponse => "bad_response",
            FailureClass::NoDescriptors => "no_descriptors",
            FailureClass::NoAddress => "no_address",
            FailureClass::Io => "io",
            FailureClass::Backlog => "backlog",
        }
    }

    /// Whether retrying the same batch may succeed.
    pub(crate) fn retryable(self) -> bool {
        !matches!(
            self,
            FailureClass::Status4xx
                | FailureClass::StatusOther
                | FailureClass::Rejected
                | FailureClass::ApiError
                | FailureClass::Backlog
        )
    }

    /// Whether the request may have reached the server although the
    /// attempt failed: the connection broke, closed or went silent after
    /// the write, so the answer, not the request, may be what was lost.
    /// (A connect that times out counts too: msggen cannot tell it apart.)
    pub(crate) fn may_have_arrived(self) -> bool {
        matches!(
            self,
            FailureClass::Reset
                | FailureClass::Closed
                | FailureClass::Timeout
                | FailureClass::BadResponse
        )
    }

    /// The class of an I/O error.
    pub(crate) fn of_io(err: &io::Error) -> Self {
        if c1m_common::is_exhaustion(err).is_some() {
            return FailureClass::NoDescriptors;
        }
        match err.kind() {
            io::ErrorKind::ConnectionRefused => FailureClass::Refused,
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => FailureClass::Reset,
            io::ErrorKind::UnexpectedEof => FailureClass::Closed,
            io::ErrorKind::TimedOut => FailureClass::Timeout,
            io::ErrorKind::AddrNotAvailable => FailureClass::NoAddress,
            _ => FailureClass::Io,
        }
    }

    /// The class of a non-2xx HTTP status.
    pub(crate) fn of_status(status: u16) -> Self {
        match status {
            408 | 429 => FailureClass::Throttled,
            400..=499 => FailureClass::Status4xx,
            500..=599 => FailureClass::Status5xx,
            _ => FailureClass::StatusOther,
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// Most bytes of an error answer's body kept to show the user.
pub(crate) const DETAIL_LEN: usize = 200;

/// One failed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub(crate) class: FailureClass,
    /// The HTTP status, when the target answered with one.
    pub(crate) status: Option<u16>,
    /// What went wrong in the peer's words: the start of an error answer's
    /// body (printable, at most [`DETAIL_LEN`] bytes), or the I/O error.
    pub(crate) detail: String,
    /// The answer's `Retry-After` (delta-seconds), honoured before the
    /// retry.
    pub(crate) retry_after: Option<Duration>,
}

impl Failure {
    pub(crate) fn new(class: FailureClass, detail: impl Into<String>) -> Self {
        Self {
            class,
            status: None,
            detail: detail.into(),
            retry_after: None,
        }
    }

    /// A non-2xx answer with `body`, of which the start is kept.
    pub(crate) fn status(status: u16, body: &[u8], retry_after: Option<Duration>) -> Self {
        Self {
            class: FailureClass::of_status(status),
            status: Some(status),
            detail: printable_start(body),
            retry_after,
        }
    }

    /// An answer that says the publish failed although its status (if it
    /// has one) is 2xx: the body says why.
    pub(crate) fn api_error(body: &[u8]) -> Self {
        Self::new(FailureClass::ApiError, printable_start(body))
    }
}

impl From<io::Error> for Failure {
    fn from(err: io::Error) -> Self {
        Failure::new(FailureClass::of_io(&err), err.to_string())
    }
}

/// The first [`DETAIL_LEN`] bytes of `body` on one line: control bytes
/// become spaces, so a hostile answer cannot draw on the user's terminal.
pub(crate) fn printable_start(body: &[u8]) -> String {
    let start = &body[..body.len().min(DETAIL_LEN)];
    let text: String = String::from_utf8_lossy(start)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let text = text.trim().to_owned();
    if body.len() > DETAIL_LEN {
        format!("{text}...")
    } else {
        text
    }
}

/// `Retry-After` as delta-seconds (RFC 9110 10.2.3), capped at
/// [`MAX_RETRY_AFTER`]; the HTTP-date form is not read (the usual backoff
/// applies then).
pub(crate) fn parse_retry_after(value: &[u8]) -> Option<Duration> {
    let text = std::str::from_utf8(value).ok()?.trim();
    let secs: u64 = text.parse().ok()?;
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

/// The longest `Retry-After` honoured: a server asking for an hour would
/// otherwise hold the run past its end.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_io_errors_and_statuses() {
        let of = |kind| FailureClass::of_io(&io::Error::from(kind));
        assert_eq!(of(io::ErrorKind::ConnectionRefused), FailureClass::Refused);
        assert_eq!(of(io::ErrorKind::ConnectionReset), FailureClass::Reset);
        assert_eq!(of(io::ErrorKind::UnexpectedEof), FailureClass::Closed);
        let emfile = io::Error::from_raw_os_error(24); // EMFILE on Linux
        assert_eq!(FailureClass::of_io(&emfile), FailureClass::NoDescriptors);
        assert_eq!(FailureClass::of_status(503), FailureClass::Status5xx);
        assert_eq!(FailureClass::of_status(413), FailureClass::Status4xx);
        assert!(!FailureClass::Status4xx.retryable());
        assert!(!FailureClass::ApiError.retryable());
        assert_eq!(FailureClass::of_status(429), FailureClass::Throttled);
        assert_eq!(FailureClass::of_status(408), FailureClass::Throttled);
        assert!(FailureClass::Throttled.retryable());
        assert!(FailureClass::Status5xx.retryable());
    }

    #[test]
    fn names_are_unique_and_in_index_order() {
        for (i, c) in FailureClass::ALL.iter().enumerate() {
            assert_eq!(c.index(), i);
        }
        let mut names: Vec<_> = FailureClass::ALL.iter().map(|c| c.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), FailureClass::ALL.len());
    }

    #[test]
    fn keeps_a_printable_start_of_the_body() {
        let f = Failure::status(404, b"no route\r\n\x1b[31mred", None);
        assert_eq!((f.class, f.status), (FailureClass::Status4xx, Some(404)));
        assert_eq!(f.detail, "no route   [31mred");
        let long = vec![b'x'; 500];
        assert_eq!(printable_start(&long).len(), DETAIL_LEN + 3);
    }

    #[test]
    fn reads_retry_after_seconds_capped() {
        assert_eq!(parse_retry_after(b" 3 "), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(b"86400"), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after(b"Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after(b"-1"), None);
    }
}
