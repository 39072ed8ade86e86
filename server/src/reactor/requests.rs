//! The read path: a request head read into the reactor's scratch buffer
//! and parsed, the connection logged in and its stream started; on a
//! stream, reads only to see the close (or to count stray bytes).

use std::io::{self, Read};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use super::conn::{self, Phase};
use super::{after_poll, handoff, Close, Reactor};
use crate::config::MAX_HEAD;
use crate::request::{parse_request, Parsed, Request, Route};
use crate::transport::{self, Framing, Kind};
use c1m_http::write_error;

impl Reactor {
    pub(super) fn on_readable(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.phase == Phase::Head {
            return self.read_head(key);
        }
        // A stream needs nothing from its client: read only to see the close,
        // and discard up to MAX_STRAY bytes of anything else over its life.
        loop {
            match (&conn.stream).read(&mut self.scratch) {
                Ok(0) => return self.close(key, Close::Gone),
                Ok(n) => {
                    let n = u16::try_from(n).unwrap_or(u16::MAX);
                    conn.stray = conn.stray.saturating_add(n);
                    if conn.stray > conn::MAX_STRAY {
                        return self.close(key, Close::Stray);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return self.close(key, Close::Gone),
            }
        }
    }

    pub(super) fn read_head(&mut self, key: usize) {
        loop {
            let conn = &mut self.conns[key];
            let n = match (&conn.stream).read(&mut self.scratch) {
                Ok(0) => return self.close(key, Close::Gone),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return self.close(key, Close::Gone),
            };
            let received = &self.scratch[..n];
            let parsed = match &mut conn.pending {
                Some(partial) => {
                    // Bounded: parse_request refuses heads over MAX_HEAD.
                    partial.bytes.extend_from_slice(received);
                    parse_request(&partial.bytes, self.shared.config.max_id)
                }
                None => parse_request(received, self.shared.config.max_id),
            };
            match parsed {
                Ok(Parsed::Incomplete) => {
                    if conn.pending.is_none() {
                        let mut bytes = Vec::with_capacity(n.clamp(512, MAX_HEAD + 1));
                        bytes.extend_from_slice(received);
                        conn.pending = Some(Box::new(conn::Pending { bytes, sent: 0 }));
                    }
                }
                Ok(Parsed::Complete { request, len }) => {
                    let membership = self.shared.config.membership;
                    if let Some(owner) = handoff::owner_elsewhere(membership, &request) {
                        let head = match conn.pending.take() {
                            Some(partial) => partial.bytes[..len].to_vec(),
                            None => received[..len].to_vec(),
                        };
                        return self.hand_off(key, owner, head);
                    }
                    // Pipelined bytes after the head are not requests we serve.
                    conn.pending = None;
                    return self.start(key, request);
                }
                Err(reject) => {
                    conn.pending = None;
                    self.local.bad_requests += 1;
                    return self.answer_and_close(key, |out| write_error(&reject, out));
                }
            }
        }
    }

    /// A keep-alive long-poll connection whose answer is out reads its next
    /// request under a fresh header deadline. Its slot gets a new generation,
    /// so neither an old deadline nor a late delivery can touch it.
    pub(super) fn await_next_request(&mut self, key: usize) {
        let gen = self.next_gen;
        self.next_gen = self.next_gen.wrapping_add(1);
        let conn = &mut self.conns[key];
        conn.phase = Phase::Head;
        conn.gen = gen;
        self.header_deadlines.push(Instant::now(), key, gen);
    }

    pub(super) fn answer_and_close(&mut self, key: usize, write: impl FnOnce(&mut Vec<u8>)) {
        self.conns[key].phase = Phase::Closing;
        self.out.clear();
        write(&mut self.out);
        self.send_out(key);
    }

    /// Answers a complete request: logs the connection in and writes the
    /// head, the welcome or replay, or the whole long-poll answer.
    pub(super) fn start(&mut self, key: usize, request: Request) {
        let kind = match request.route {
            Route::Test { .. } => Kind::Test,
            Route::Sse { .. } => Kind::Sse,
            Route::Poll { .. } => Kind::Poll,
        };
        let framing = Framing::for_request(request.http11);
        if request.head_only {
            return self.answer_and_close(key, |out| transport::head_only(out, kind, framing));
        }
        let id = request.route.id();
        let gen = self.conns[key].gen;
        let me = self.conn_ref(key, gen);
        let router = &self.shared.router;
        self.out.clear();
        let (out, frame) = (&mut self.out, &mut self.frame);
        let phase = match request.route {
            Route::Test { .. } => {
                router.login(id, me, None, false);
                transport::test_head(out, framing);
                transport::welcome(out, frame, framing, id);
                Phase::Stream(Kind::Test, framing)
            }
            Route::Sse { last_event_id, .. } => {
                let login = router.login(id, me, last_event_id, false);
                transport::sse_head(out, framing);
                transport::sse_replay(out, frame, framing, &login.replay);
                self.local.lost_notices += u64::from(login.replay.lost.is_some());
                Phase::Stream(Kind::Sse, framing)
            }
            Route::Poll { seq, .. } => {
                let login = router.login(id, me, seq, true);
                let keep_alive = request.keep_alive;
                if login.registered {
                    self.poll_deadlines.push(Instant::now(), key, gen);
                    Phase::PollWait { keep_alive }
                } else {
                    self.local.lost_notices += u64::from(login.replay.lost.is_some());
                    let messages = login.replay.messages.iter().map(|(s, m)| (*s, &m[..]));
                    transport::poll_answer(
                        out,
                        frame,
                        Some(login.seq),
                        login.replay.lost,
                        messages,
                        keep_alive,
                    );
                    after_poll(keep_alive)
                }
            }
        };
        let conn = &mut self.conns[key];
        conn.id = id;
        conn.phase = phase;
        if conn.logged_in() {
            self.local.logins += 1;
            self.shared.stats.logged_in.fetch_add(1, Relaxed);
        }
        if !self.out.is_empty() {
            self.send_out(key);
        }
    }
}
