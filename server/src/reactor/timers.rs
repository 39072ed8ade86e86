//! Per-reactor timers, not per connection: the header, poll and write
//! deadline FIFOs, the heartbeat and SSE keep-alive ticks that walk the slab, and
//! the end of every stream at shutdown.

use std::time::{Duration, Instant};

use super::conn::Phase;
use super::{after_poll, Close, Reactor};
use crate::transport::{self, Kind, PollHead};

/// The head of an empty long-poll answer (a timeout, or shutdown).
fn empty(keep_alive: bool) -> PollHead {
    PollHead {
        newest: None,
        lost: None,
        keep_alive,
    }
}

impl Reactor {
    pub(super) fn next_timer(&self) -> Option<Instant> {
        let mut next = [
            self.header_deadlines.next(),
            self.poll_deadlines.next(),
            self.write_deadlines.next(),
            self.next_heartbeat,
            Some(self.next_keepalive),
            self.handoff.as_ref().and_then(|h| h.next_retry()),
        ]
        .into_iter()
        .flatten()
        .min();
        if self.accept_paused {
            let retry = Instant::now() + Duration::from_millis(100);
            next = Some(next.map_or(retry, |n| n.min(retry)));
        }
        next
    }

    pub(super) fn on_timers(&mut self, now: Instant) {
        while let Some((key, gen)) = self.header_deadlines.pop_expired(now) {
            match self
                .conns
                .get(key)
                .filter(|c| c.gen == gen)
                .map(|c| c.phase)
            {
                Some(Phase::Head) => self.close(key, Close::HeaderTimeout),
                // A last answer (a WebSocket Close behind a full socket)
                // that did not drain in time.
                Some(Phase::Closing) => self.close(key, Close::Done),
                _ => {}
            }
        }
        self.header_deadlines.shrink();
        while let Some((key, gen)) = self.poll_deadlines.pop_expired(now) {
            if self
                .conns
                .get(key)
                .is_some_and(|c| c.gen == gen && c.logged_in())
            {
                let Phase::PollWait { keep_alive } = self.conns[key].phase else {
                    continue;
                };
                self.local.poll_timeouts += 1;
                self.logout(key);
                self.conns[key].phase = after_poll(keep_alive);
                self.out.clear();
                transport::poll_answer(&mut self.out, &mut self.frame, empty(keep_alive), [], 0);
                self.send_out(key);
            }
        }
        self.poll_deadlines.shrink();
        while let Some((key, gen)) = self.write_deadlines.pop_expired(now) {
            // Still on the answer it was waiting to write (a keep-alive
            // long-poll that took it and asked again may wait on a new one:
            // it is then held to the older, shorter bound).
            if self.conns.get(key).is_some_and(|c| {
                c.gen == gen && matches!(c.phase, Phase::Closing | Phase::Answered) && c.unsent()
            }) {
                self.close(key, Close::SlowConsumer);
            }
        }
        self.write_deadlines.shrink();
        if let Some(at) = self.next_heartbeat.filter(|at| *at <= now) {
            let interval = self
                .shared
                .config
                .heartbeat
                .unwrap_or(Duration::from_secs(1));
            // Catch up at most one interval late (`now - interval` would
            // panic on a machine up for less than an interval).
            let floor = now.checked_sub(interval).unwrap_or(at);
            self.next_heartbeat = Some(at.max(floor) + interval);
            self.tick(true);
        }
        if self.next_keepalive <= now {
            self.next_keepalive = now + self.shared.config.sse_keepalive;
            self.tick(false);
        }
        if self.accept_paused {
            self.accept();
        }
        if let Some(handoff) = &mut self.handoff {
            handoff.retry(now);
        }
    }

    /// Heartbeat chunks (to `/test`, `/sse` and `/ws` streams), or the
    /// keep-alives: an SSE comment, a WebSocket Ping.
    pub(super) fn tick(&mut self, heartbeat: bool) {
        let keys: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| match c.phase {
                Phase::Stream(Kind::Sse | Kind::Ws, _) => true,
                Phase::Stream(..) => heartbeat,
                _ => false,
            })
            .map(|(k, _)| k)
            .collect();
        for key in keys {
            let conn = &mut self.conns[key];
            self.out.clear();
            let Phase::Stream(kind, framing) = conn.phase else {
                continue;
            };
            if heartbeat {
                conn.ticks = conn.ticks.wrapping_add(1);
                let stream = (kind, framing);
                transport::heartbeat(&mut self.out, &mut self.frame, stream, conn.ticks, conn.id);
                self.local.heartbeats += 1;
            } else if kind == Kind::Ws {
                transport::ws::keepalive(&mut self.out);
            } else {
                transport::sse_keepalive(&mut self.out, framing);
            }
            self.send_out(key);
        }
    }

    /// Shutdown: end each stream with its terminator (or an empty long-poll
    /// answer), one best-effort write, then close everything.
    pub(super) fn end_all(&mut self) {
        let _ = self.registry.deregister(&mut self.listener);
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            self.out.clear();
            match self.conns[key].phase {
                Phase::Stream(_, framing) => framing.terminator(&mut self.out),
                Phase::PollWait { .. } => {
                    transport::poll_answer(&mut self.out, &mut self.frame, empty(false), [], 0);
                }
                Phase::Head | Phase::Closing | Phase::Answered => {}
            }
            if !self.out.is_empty() {
                let max_pending = self.shared.config.max_pending;
                let _ = self.conns[key].send(&self.out, max_pending);
            }
            // Also what an answer still had unsent (a long-poll answer or a
            // refusal being written): one more try before the close.
            let _ = self.conns[key].flush();
            self.close(key, Close::Done);
        }
    }
}
