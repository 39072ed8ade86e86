//! The read path: what a subscriber's client sends, read until the socket
//! would block or ends, and handed on by the connection's phase.
//!
//! Readiness is edge-triggered: an event not read to its end is not
//! reported again. A client that sends its request and at once shuts down
//! its side (as `nc -N` does) often delivers both in one event, so a read
//! path that stopped after the request head would never see the end and
//! would hold the connection, logged in, for ever. Every phase therefore
//! reads on until `WouldBlock` or the end:
//!
//! - reading a head: bytes go to the request parser; a complete request is
//!   served (`requests`), what follows it is kept as the input of the next
//!   one, and reading goes on in the request's new phase;
//! - a stream: bytes go to its transport's decoder ([`Reactor::decode`]);
//! - a long-poll waiting or being answered: bytes are kept as the requests
//!   pipelined behind it (RFC 9112 9.3.2: answered in order), served once
//!   its answer is out;
//! - closing: bytes are counted as stray.
//!
//! Unconsumed input is at most [`MAX_INPUT`]; past that the rest stays in
//! the kernel until the requests before it are served (the connection is
//! read again when it waits for its next request: `Reactor::resume`).
//! The end of input (a close or a half-close) logs the connection out and
//! closes it.

use std::io;

use super::conn::{Phase, MAX_STRAY};
use super::link::is_tls_error;
use super::{handoff, Close, Reactor};
use crate::config::{Config, MAX_HEAD};
use crate::request::{parse_request, Parsed, Request, Route};
use crate::transport::Kind;
use c1m_http::{write_error, Reject, Status};

/// Input a connection may hold unconsumed: two request heads' worth.
pub(super) const MAX_INPUT: usize = 2 * MAX_HEAD;

impl Reactor {
    pub(super) fn on_readable(&mut self, key: usize) {
        loop {
            let Some(conn) = self.conns.get(key) else {
                return;
            };
            let phase = conn.phase;
            // A request already received is served before more is read.
            if phase == Phase::Head && !conn.input().is_empty() {
                match self.serve_input(key) {
                    Some(true) => continue,
                    Some(false) => return,
                    None => {}
                }
            }
            let conn = &self.conns[key];
            let room = match phase {
                Phase::Head | Phase::PollWait { .. } | Phase::Answered => {
                    MAX_INPUT - conn.input().len()
                }
                Phase::Stream(..) | Phase::Closing => self.scratch.len(),
            };
            if room == 0 {
                // Requests enough are waiting; the rest stays in the kernel.
                return;
            }
            let room = room.min(self.scratch.len());
            let conn = &mut self.conns[key];
            let n = match conn.read(&mut self.scratch[..room]) {
                Ok(0) => return self.close(key, Close::Gone),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // A TLS handshake the socket did not take at once.
                    if conn.unsent() {
                        self.want_writable(key);
                    }
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.local.tls_failures += u64::from(is_tls_error(&e));
                    return self.close(key, Close::Gone);
                }
            };
            let read_on = match phase {
                Phase::Head => self.on_head_bytes(key, n),
                Phase::Stream(kind, _) => self.decode(key, kind, n),
                Phase::PollWait { .. } | Phase::Answered => {
                    self.conns[key].push_input(&self.scratch[..n]);
                    true
                }
                Phase::Closing => self.count_stray(key, n),
            };
            if !read_on {
                return;
            }
        }
    }

    /// `self.scratch[..n]` arrived while a head is read; returns whether to
    /// read on. A head that came whole in one read is parsed in the scratch
    /// buffer, without a copy; only a partial head or what follows a
    /// complete one is kept.
    fn on_head_bytes(&mut self, key: usize, n: usize) -> bool {
        let conn = &mut self.conns[key];
        let received = &self.scratch[..n];
        if !conn.input().is_empty() {
            // Parsed at the top of the read loop.
            conn.push_input(received);
            return true;
        }
        match parse_request(received, self.shared.config.request_limits()) {
            Ok(Parsed::Incomplete) => {
                conn.push_input(received);
                true
            }
            Ok(Parsed::Complete { request, len }) => {
                if let Some(owner) =
                    handoff::owner_elsewhere(self.shared.config.membership, &request)
                {
                    let sent = received.to_vec();
                    self.hand_off(key, owner, sent);
                    return false;
                }
                let origin = cors_origin(&self.shared.config, &request, &received[..len]);
                conn.push_input(&received[len..]);
                self.start_and_read_on(key, request, origin.as_deref())
            }
            Err(reject) => {
                let page = dashboard_page(&self.shared.config, &reject, received);
                self.refuse(key, reject, page);
                true
            }
        }
    }

    /// Serves the request at the front of the connection's input: `None`
    /// while it is incomplete, otherwise whether to read on.
    fn serve_input(&mut self, key: usize) -> Option<bool> {
        let conn = &mut self.conns[key];
        match parse_request(conn.input(), self.shared.config.request_limits()) {
            Ok(Parsed::Incomplete) => None,
            Ok(Parsed::Complete { request, len }) => {
                if let Some(owner) =
                    handoff::owner_elsewhere(self.shared.config.membership, &request)
                {
                    let sent = conn.input().to_vec();
                    self.hand_off(key, owner, sent);
                    return Some(false);
                }
                let origin = cors_origin(&self.shared.config, &request, &conn.input()[..len]);
                conn.consume_input(len);
                Some(self.start_and_read_on(key, request, origin.as_deref()))
            }
            Err(reject) => {
                let page = dashboard_page(&self.shared.config, &reject, conn.input());
                self.refuse(key, reject, page);
                Some(true)
            }
        }
    }

    /// Serves `request`; returns whether to read on in the connection's new
    /// phase (the end of input may have come with the request). Not when it
    /// is back to reading a head (a keep-alive answer went out at once): it
    /// is then queued to be resumed (`next_request`), so one client's
    /// pipelined requests are served one per loop pass, between everyone
    /// else's events.
    fn start_and_read_on(&mut self, key: usize, request: Request, origin: Option<&str>) -> bool {
        self.start(key, request, origin);
        self.conns.get(key).is_some_and(|c| c.phase != Phase::Head)
    }

    /// Answers a request that cannot be served, and closes; or, for the
    /// dashboard's page on a public subscriber port, answers with `page`.
    fn refuse(&mut self, key: usize, reject: Reject, page: Option<Vec<u8>>) {
        self.conns[key].clear_input();
        if let Some(page) = page {
            return self.answer_and_close(key, |out| out.extend_from_slice(&page));
        }
        self.local.bad_requests += 1;
        self.answer_and_close(key, |out| write_error(&reject, out));
    }

    /// Client bytes on a stream, handed to its transport's decoder; returns
    /// whether to read on. `/test` and `/sse` take nothing from their
    /// clients after the request, so theirs counts the bytes and drops them
    /// (past [`MAX_STRAY`] over the connection's life it closes it). A
    /// transport whose clients send frames (WebSocket) decodes them here.
    fn decode(&mut self, key: usize, kind: Kind, n: usize) -> bool {
        match kind {
            Kind::Ws => self.on_ws_bytes(key, n),
            // (A long-poll is never a stream; its client's bytes are requests.)
            Kind::Test | Kind::Sse | Kind::Poll => self.count_stray(key, n),
        }
    }

    /// Counts `n` bytes nobody asked for; closes the connection past
    /// [`MAX_STRAY`]. Returns whether to read on.
    pub(super) fn count_stray(&mut self, key: usize, n: usize) -> bool {
        let conn = &mut self.conns[key];
        let n = u16::try_from(n).unwrap_or(u16::MAX);
        conn.stray = conn.stray.saturating_add(n);
        if conn.stray > MAX_STRAY {
            self.close(key, Close::Stray);
            return false;
        }
        true
    }
}

/// The origin an `/sse` answer allows (the dashboard's page), if any.
fn cors_origin(config: &Config, request: &Request, head: &[u8]) -> Option<String> {
    let sse = matches!(request.route, Route::Sse { .. }) && config.dashboard.is_some();
    sse.then(|| crate::dashboard::sse_origin(config, head))
        .flatten()
}

/// The dashboard's page or asset for a path the subscriber routes do not
/// know, with `--dashboard public`.
fn dashboard_page(config: &Config, reject: &Reject, head: &[u8]) -> Option<Vec<u8>> {
    let unknown = reject.status == Status::NotFound && config.dashboard.is_some();
    unknown
        .then(|| crate::dashboard::public_page(config, head))
        .flatten()
}
