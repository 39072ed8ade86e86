//! Serving a parsed request: the connection logged in and its stream
//! started (head, welcome or replay), or its long-poll answered or left
//! waiting; and what a keep-alive connection does once its answer is out.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use super::conn::Phase;
use super::{after_poll, Reactor};
use crate::request::{Request, Route};
use crate::router::Subscription;
use crate::transport::{self, Framing, Kind, PollHead};
use c1m_http::ws::MessageState;

impl Reactor {
    /// A keep-alive long-poll connection whose answer is out reads its next
    /// request under a fresh header deadline. Its slot gets a new generation,
    /// so neither an old deadline nor a late delivery can touch it. It is
    /// resumed at the end of the loop pass: a request pipelined behind the
    /// answer is served from its input, and its socket read on.
    pub(super) fn next_request(&mut self, key: usize) {
        let gen = self.next_gen;
        self.next_gen = self.next_gen.wrapping_add(1);
        let conn = &mut self.conns[key];
        conn.phase = Phase::Head;
        conn.gen = gen;
        self.header_deadlines.push(Instant::now(), key, gen);
        self.ready.push((key, gen));
    }

    /// Goes on with a connection that was queued: the next slice of its
    /// replay once the socket has taken the last, or its next request.
    fn resume(&mut self, key: usize) {
        let conn = &self.conns[key];
        if conn.replaying().is_some() {
            if !conn.unsent() {
                self.replay_step(key);
            }
        } else if conn.phase == Phase::Head {
            self.on_readable(key);
        }
    }

    /// Picks up connections queued by [`Reactor::next_request`] and by
    /// replays that go on (`replay`).
    pub(super) fn resume_ready(&mut self) {
        let mut ready = std::mem::take(&mut self.ready);
        for &(key, gen) in &ready {
            if self.conns.get(key).is_some_and(|c| c.gen == gen) {
                self.resume(key);
            }
        }
        ready.clear();
        // Those resumed now may have queued themselves again; keep the
        // buffer for the next pass when they did not, but not a burst's worth.
        if self.ready.is_empty() && ready.capacity() <= 1024 {
            self.ready = ready;
        }
    }

    pub(super) fn answer_and_close(&mut self, key: usize, write: impl FnOnce(&mut Vec<u8>)) {
        self.conns[key].phase = Phase::Closing;
        self.out.clear();
        write(&mut self.out);
        self.send_out(key);
    }

    /// Answers a complete request: logs the connection in and writes the
    /// head, the welcome or replay, or the whole long-poll answer. An `/sse`
    /// stream allows `origin` to read it (the dashboard's page).
    pub(super) fn start(&mut self, key: usize, request: Request, origin: Option<&str>) {
        let kind = match request.route {
            Route::Test { .. } => Kind::Test,
            Route::Sse { .. } => Kind::Sse,
            Route::Poll { .. } => Kind::Poll,
            Route::Ws { .. } => Kind::Ws,
        };
        let framing = match kind {
            Kind::Ws => Framing::WebSocket(MessageState::default()),
            _ => Framing::for_request(request.http11),
        };
        if request.head_only {
            return self.answer_and_close(key, |out| transport::head_only(out, kind, framing));
        }
        let id = request.route.id();
        let more: Box<[u64]> = request.route.more_ids().into();
        // A stream of several ids names the id in its SSE events.
        let named = (!more.is_empty()).then_some(id);
        let gen = self.conns[key].gen;
        let me = self.conn_ref(key, gen);
        let (sse_budget, poll_budget) = (
            self.replay_budget(transport::sse_event_cost),
            self.replay_budget(transport::poll_entry_cost),
        );
        let router = &self.shared.router;
        self.out.clear();
        let (out, frame) = (&mut self.out, &mut self.frame);
        let mut replay_next = None;
        // The ids past the first are live: only the first replays (an
        // EventSource's Last-Event-ID is one position).
        for &other in more.iter() {
            router.login(other, me, None, Subscription::Stream);
        }
        let phase = match request.route {
            Route::Test { .. } => {
                router.login(id, me, None, Subscription::Stream);
                transport::test_head(out, framing);
                transport::welcome(out, frame, framing, id, &more);
                Phase::Stream(Kind::Test, framing)
            }
            Route::Ws { accept, .. } => {
                router.login(id, me, None, Subscription::Stream);
                transport::ws::upgrade(out, &accept);
                Phase::Stream(Kind::Ws, framing)
            }
            Route::Sse { last_event_id, .. } => {
                let after = last_event_id.map(|after| (after, sse_budget));
                let login = router.login(id, me, after, Subscription::Stream);
                transport::sse_head(out, framing, origin);
                transport::sse_replay(out, frame, framing, named, &login.replay);
                self.local.lost_notices += u64::from(login.replay.lost.is_some());
                // A replay over one step goes on as the socket drains.
                replay_next = login.replay.next;
                Phase::Stream(Kind::Sse, framing)
            }
            Route::Poll { seq, .. } => {
                let after = seq.map(|after| (after, poll_budget));
                let login = router.login(id, me, after, Subscription::Poll);
                let keep_alive = request.keep_alive;
                if login.registered {
                    self.poll_deadlines.push(Instant::now(), key, gen);
                    Phase::PollWait { keep_alive }
                } else {
                    self.local.lost_notices += u64::from(login.replay.lost.is_some());
                    let head = PollHead {
                        newest: Some(login.seq),
                        lost: login.replay.lost,
                        keep_alive,
                    };
                    let messages = login.replay.messages.iter().map(|(s, m)| (*s, &m[..]));
                    transport::poll_answer(out, frame, head, messages, poll_budget.bytes);
                    after_poll(keep_alive)
                }
            }
        };
        let conn = &mut self.conns[key];
        conn.id = id;
        conn.phase = phase;
        conn.set_more_ids(more);
        conn.set_replay(replay_next);
        if conn.logged_in() {
            self.local.logins += 1;
            self.shared.stats.logged_in.fetch_add(1, Relaxed);
        }
        if !self.out.is_empty() {
            self.send_out(key);
        }
    }
}
