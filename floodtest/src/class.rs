//! Why a connection ended badly, as a small closed set of classes.
//!
//! At a million connections an error is a count, never a log line: every
//! failure lands in one of these classes and the reports show the counts.
//! A connection ends at most once, so the classes add up to the failures.

use std::io;

/// The ways a connection attempt or an open stream can fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum ErrorClass {
    /// ECONNREFUSED: nothing listens on the destination.
    Refused,
    /// ECONNRESET / EPIPE / ECONNABORTED: the peer reset the connection.
    Reset,
    /// No response head within `--connect-timeout` (or ETIMEDOUT).
    Timeout,
    /// EADDRNOTAVAIL at `connect()`: no free source port for the 4-tuple.
    AddrUnavailable,
    /// EADDRINUSE: the chosen source pair is taken.
    AddrInUse,
    /// EADDRNOTAVAIL at `bind()`: the source address is not on this host.
    NotLocal,
    /// EMFILE / ENFILE: out of file descriptors.
    FdExhausted,
    /// The response status was not 200 (101 for a WebSocket): the server
    /// refused the stream or the upgrade.
    Status,
    /// A WebSocket `101` that fails the client's checks (a wrong
    /// `Sec-WebSocket-Accept`, no `Upgrade`, an extension or subprotocol
    /// not asked for).
    Handshake,
    /// The TLS handshake failed (an untrusted certificate, no common
    /// cipher or ALPN) or a TLS record was bad.
    Tls,
    /// Bytes that are not HTTP/1.1, break the chunked framing, or break
    /// RFC 6455 (answered with the Close its error names).
    Protocol,
    /// The server closed an open stream (EOF or the last chunk).
    ClosedByServer,
    /// Anything else (unreachable network, ...).
    Other,
}

impl ErrorClass {
    /// Every class, in report order; indexes [`ErrorClass::index`].
    pub(crate) const ALL: [ErrorClass; 13] = [
        ErrorClass::Refused,
        ErrorClass::Reset,
        ErrorClass::Timeout,
        ErrorClass::AddrUnavailable,
        ErrorClass::AddrInUse,
        ErrorClass::NotLocal,
        ErrorClass::FdExhausted,
        ErrorClass::Status,
        ErrorClass::Handshake,
        ErrorClass::Tls,
        ErrorClass::Protocol,
        ErrorClass::ClosedByServer,
        ErrorClass::Other,
    ];

    /// Position in [`ErrorClass::ALL`], for counter arrays.
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// The name used in reports and the JSON summary.
    pub(crate) fn name(self) -> &'static str {
        match self {
            ErrorClass::Refused => "refused",
            ErrorClass::Reset => "reset",
            ErrorClass::Timeout => "timeout",
            ErrorClass::AddrUnavailable => "addr_unavailable",
            ErrorClass::AddrInUse => "addr_in_use",
            ErrorClass::NotLocal => "addr_not_local",
            ErrorClass::FdExhausted => "fd_exhausted",
            ErrorClass::Status => "status",
            ErrorClass::Handshake => "handshake",
            ErrorClass::Tls => "tls",
            ErrorClass::Protocol => "protocol",
            ErrorClass::ClosedByServer => "closed_by_server",
            ErrorClass::Other => "other",
        }
    }

    /// The class of a stream the parser gave up on.
    pub(crate) fn of_stream(err: crate::stream::StreamError) -> ErrorClass {
        match err {
            crate::stream::StreamError::Status(_) => ErrorClass::Status,
            crate::stream::StreamError::Handshake(_) => ErrorClass::Handshake,
            crate::stream::StreamError::Protocol(_) => ErrorClass::Protocol,
        }
    }

    /// The class of an I/O error from socket, bind, connect, read or write.
    pub(crate) fn of(err: &io::Error) -> ErrorClass {
        if c1m_common::is_exhaustion(err).is_some() {
            return ErrorClass::FdExhausted;
        }
        if crate::tls::is_tls_error(err) {
            return ErrorClass::Tls;
        }
        match err.raw_os_error() {
            Some(libc::ECONNREFUSED) => ErrorClass::Refused,
            Some(libc::ECONNRESET | libc::EPIPE | libc::ECONNABORTED) => ErrorClass::Reset,
            Some(libc::ETIMEDOUT) => ErrorClass::Timeout,
            Some(libc::EADDRNOTAVAIL) => ErrorClass::AddrUnavailable,
            Some(libc::EADDRINUSE) => ErrorClass::AddrInUse,
            _ => ErrorClass::Other,
        }
    }
}

/// Failure counts indexed by [`ErrorClass::index`].
pub(crate) type ClassCounts = [u64; ErrorClass::ALL.len()];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_errnos() {
        let of = |e| ErrorClass::of(&io::Error::from_raw_os_error(e));
        assert_eq!(of(libc::ECONNREFUSED), ErrorClass::Refused);
        assert_eq!(of(libc::ECONNRESET), ErrorClass::Reset);
        assert_eq!(of(libc::EPIPE), ErrorClass::Reset);
        assert_eq!(of(libc::EADDRNOTAVAIL), ErrorClass::AddrUnavailable);
        assert_eq!(of(libc::EADDRINUSE), ErrorClass::AddrInUse);
        assert_eq!(of(libc::EMFILE), ErrorClass::FdExhausted);
        assert_eq!(of(libc::ENFILE), ErrorClass::FdExhausted);
        assert_eq!(of(libc::ENETUNREACH), ErrorClass::Other);
    }

    #[test]
    fn index_matches_order() {
        for (i, c) in ErrorClass::ALL.iter().enumerate() {
            assert_eq!(c.index(), i);
        }
    }
}
