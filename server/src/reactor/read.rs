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
//!   served (`requests`) and reading goes on in its new phase;
//! - a stream: bytes go to its transport's decoder ([`Reactor::decode`]);
//! - anything else: bytes are counted as stray.
//!
//! The end of input (a close or a half-close) logs the connection out and
//! closes it.

use std::io;

use super::conn::{Phase, MAX_STRAY};
use super::{Close, Reactor};
use crate::http::{write_reject, Reject};
use crate::request::{parse_request, Parsed};
use crate::transport::Kind;

impl Reactor {
    pub(super) fn on_readable(&mut self, key: usize) {
        loop {
            let Some(conn) = self.conns.get(key) else {
                return;
            };
            let phase = conn.phase;
            let n = match conn.link.read(&mut self.scratch) {
                Ok(0) => return self.close(key, Close::Gone),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return self.close(key, Close::Gone),
            };
            let read_on = match phase {
                Phase::Head => self.on_head_bytes(key, n),
                Phase::Stream(kind, _) => self.decode(key, kind, n),
                Phase::PollWait { .. } | Phase::Answered | Phase::Closing => {
                    self.count_stray(key, n)
                }
            };
            if !read_on {
                return;
            }
        }
    }

    /// `self.scratch[..n]` arrived while a head is read; returns whether to
    /// read on.
    fn on_head_bytes(&mut self, key: usize, n: usize) -> bool {
        let max_id = self.shared.config.max_id;
        let conn = &mut self.conns[key];
        let received = &self.scratch[..n];
        let partial = !conn.input().is_empty();
        let parsed = if partial {
            // Bounded: parse_request refuses heads over MAX_HEAD.
            conn.push_input(received);
            parse_request(conn.input(), max_id)
        } else {
            parse_request(received, max_id)
        };
        match parsed {
            Ok(Parsed::Incomplete) => {
                if !partial {
                    conn.push_input(received);
                }
                true
            }
            Ok(Parsed::Complete { request, .. }) => {
                // Pipelined bytes after the head are not requests we serve.
                conn.clear_input();
                self.start(key, request);
                // Read on in the new phase: the end of input may be here too.
                self.conns.contains(key)
            }
            Err(reject) => {
                self.refuse(key, reject);
                true
            }
        }
    }

    /// Answers a request that cannot be served, and closes.
    fn refuse(&mut self, key: usize, reject: Reject) {
        self.conns[key].clear_input();
        self.local.bad_requests += 1;
        self.answer_and_close(key, |out| write_reject(reject, out));
    }

    /// Client bytes on a stream, handed to its transport's decoder; returns
    /// whether to read on. `/test` and `/sse` take nothing from their
    /// clients after the request, so theirs counts the bytes and drops them
    /// (past [`MAX_STRAY`] over the connection's life it closes it). A
    /// transport whose clients send frames (WebSocket) decodes them here.
    fn decode(&mut self, key: usize, kind: Kind, n: usize) -> bool {
        match kind {
            // (A long-poll is never a stream; its client's bytes are requests.)
            Kind::Test | Kind::Sse | Kind::Poll => self.count_stray(key, n),
        }
    }

    /// Counts `n` bytes nobody asked for; closes the connection past
    /// [`MAX_STRAY`]. Returns whether to read on.
    fn count_stray(&mut self, key: usize, n: usize) -> bool {
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
