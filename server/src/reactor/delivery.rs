//! The write path: batches from the router framed and written to their
//! connections, grouped per connection, and what the socket did not take
//! written on WRITABLE.

use std::time::Instant;

use mio::{Interest, Token};

use super::conn::{Phase, WriteError};
use super::{after_poll, Close, Reactor, FIRST_CONN, MAX_BATCHES_PER_PASS, MAX_PASSES_PER_WAKEUP};
use crate::router::{Batch, BatchKind};
use crate::transport::ws::Ending;
use crate::transport::{self, EventId, Kind, PollHead};

impl Reactor {
    /// Takes every batch waiting in the mailbox and writes them grouped by
    /// connection: when the reactor is behind, a connection with several
    /// messages gets them in one write, so the cost per message falls as
    /// the load rises.
    ///
    /// At most [`MAX_PASSES_PER_WAKEUP`] passes: under a sustained flood the
    /// mailbox never empties, and the loop must still get to closes, accepts
    /// and timers. What is left sets `mail_left`, which makes the next poll
    /// return at once.
    pub(super) fn drain_mailbox(&mut self) {
        self.mail_left = false;
        for _ in 0..MAX_PASSES_PER_WAKEUP {
            let mut batches = std::mem::take(&mut self.batches);
            while batches.len() < MAX_BATCHES_PER_PASS {
                match self.rx.try_recv() {
                    Ok(batch) => batches.push(batch),
                    Err(_) => break,
                }
            }
            if batches.is_empty() {
                self.batches = batches;
                return;
            }
            let mut order = std::mem::take(&mut self.order);
            order.clear();
            let mut handled = 0;
            for (b, batch) in batches.iter().enumerate() {
                if batch.kind == BatchKind::Broadcast {
                    // What came before it is written before it.
                    handled += self.deliver_ordered(&mut order, &batches);
                    self.broadcast(&batch.data);
                    handled += 1;
                    continue;
                }
                for (d, delivery) in batch.deliveries.iter().enumerate() {
                    order.push((delivery.key, b as u32, d as u32));
                }
            }
            handled += self.deliver_ordered(&mut order, &batches);
            self.queued.done(handled);
            // Keep the buffers for the next wake-up, but not a burst's worth.
            if order.capacity() > 1 << 16 {
                order = Vec::new();
            }
            self.order = order;
            batches.clear();
            self.batches = batches;
        }
        self.mail_left = true;
    }

    pub(super) fn deliver_ordered(
        &mut self,
        order: &mut Vec<(u32, u32, u32)>,
        batches: &[Batch],
    ) -> usize {
        // (key, batch, index) is unique, so this keeps each connection's
        // messages in the order they were published.
        order.sort_unstable();
        for run in order.chunk_by(|a, b| a.0 == b.0) {
            self.deliver_run(run, batches);
        }
        let n = order.len();
        order.clear();
        n
    }

    /// A broadcast: `message` to every connection that is streaming or
    /// waiting for a long-poll answer, walking the slab.
    fn broadcast(&mut self, message: &[u8]) {
        let keys: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| c.logged_in())
            .map(|(k, _)| k)
            .collect();
        for key in keys {
            self.out.clear();
            match self.conns[key].phase {
                Phase::Stream(kind, framing) => {
                    transport::broadcast(&mut self.out, &mut self.frame, (kind, framing), message);
                }
                Phase::PollWait { keep_alive } => {
                    let (out, frame) = (&mut self.out, &mut self.frame);
                    transport::poll_broadcast(out, frame, message, keep_alive);
                    self.logout(key);
                    self.conns[key].phase = after_poll(keep_alive);
                }
                Phase::Head | Phase::Closing | Phase::Answered => continue,
            }
            self.local.messages_out += 1;
            self.local.broadcast_out += 1;
            self.send_out(key);
        }
    }

    /// Writes the deliveries of `run` (all for one slab key) in one go.
    pub(super) fn deliver_run(&mut self, run: &[(u32, u32, u32)], batches: &[Batch]) {
        let key = run[0].0 as usize;
        let Some(conn) = self.conns.get(key) else {
            return;
        };
        let (gen, phase, several) = (conn.gen, conn.phase, conn.several_ids());
        let mine = || {
            run.iter()
                .map(|&(_, b, d)| {
                    (
                        &batches[b as usize],
                        &batches[b as usize].deliveries[d as usize],
                    )
                })
                .filter(|(_, d)| d.gen == gen)
        };
        self.out.clear();
        let mut count = 0;
        match phase {
            Phase::Stream(kind, framing) => {
                for (batch, d) in mine() {
                    let at = EventId {
                        named: several.then_some(d.id),
                        seq: d.seq,
                    };
                    let (out, frame) = (&mut self.out, &mut self.frame);
                    transport::message(out, frame, (kind, framing), at, batch.message(d));
                    count += 1;
                }
            }
            Phase::PollWait { keep_alive } => {
                let mut messages = mine()
                    .map(|(batch, d)| (d.seq, batch.message(d)))
                    .peekable();
                if messages.peek().is_none() {
                    return;
                }
                let head = PollHead {
                    newest: None,
                    lost: None,
                    keep_alive,
                };
                // What the budget leaves out is in the history (or, without
                // one, reported lost to the next poll): X-Seq says where
                // this answer ends.
                let budget = self.shared.config.max_pending / 2;
                count =
                    transport::poll_answer(&mut self.out, &mut self.frame, head, messages, budget);
                self.logout(key);
                self.conns[key].phase = after_poll(keep_alive);
            }
            Phase::Head | Phase::Closing | Phase::Answered => return,
        }
        if count > 0 {
            self.local.messages_out += count;
            // Of what went out (a long-poll answer may carry fewer than it
            // was given), the events.
            self.local.fanout_out += mine()
                .take(count as usize)
                .filter(|(batch, _)| batch.kind == BatchKind::Fanout)
                .count() as u64;
            self.send_out(key);
        }
    }

    /// Writes `self.out` to connection `key`, closing it if it is too slow
    /// or gone, or if its last answer is now out.
    pub(super) fn send_out(&mut self, key: usize) {
        let max_pending = self.shared.config.max_pending;
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        self.local.bytes_out += self.out.len() as u64;
        match conn.send(&self.out, max_pending) {
            Ok(true) => {
                self.want_writable(key);
                // A last answer the client never reads must not hold the
                // connection for ever: it gets a write deadline.
                if let Some(conn) = self.conns.get(key) {
                    if matches!(conn.phase, Phase::Closing | Phase::Answered) {
                        self.write_deadlines.push(Instant::now(), key, conn.gen);
                    }
                }
            }
            Ok(false) if !conn.unsent() => self.output_done(key),
            Ok(false) => {}
            Err(WriteError::TooSlow) => self.too_slow(key),
            Err(WriteError::Io(_)) => self.close(key, Close::Gone),
        }
    }

    /// Connection `key` let more than `--max-pending` pile up: closed at
    /// once, or for `/ws` after a Close frame (1008) queued behind what is
    /// unsent.
    fn too_slow(&mut self, key: usize) {
        if !matches!(self.conns[key].phase, Phase::Stream(Kind::Ws, _)) {
            return self.close(key, Close::SlowConsumer);
        }
        self.local.slow_consumer_closes += 1;
        self.out.clear();
        self.end_ws(key, Ending::SlowConsumer);
    }

    /// Writes `self.out` to connection `key` past `--max-pending` (a last
    /// Close frame, a few bytes); closes it if it is gone, or once it is out.
    pub(super) fn send_last(&mut self, key: usize) {
        let conn = &mut self.conns[key];
        self.local.bytes_out += self.out.len() as u64;
        match conn.send(&self.out, usize::MAX) {
            Ok(true) => self.want_writable(key),
            Ok(false) if !conn.unsent() => self.close(key, Close::Done),
            Ok(false) => {}
            Err(_) => self.close(key, Close::Gone),
        }
    }

    /// Connection `key` waits for its socket to drain: WRITABLE is asked
    /// for (until `on_writable` has written everything).
    pub(super) fn want_writable(&mut self, key: usize) {
        let conn = &mut self.conns[key];
        let token = Token(key + FIRST_CONN);
        let interest = Interest::READABLE | Interest::WRITABLE;
        if self
            .registry
            .reregister(conn.link.source(), token, interest)
            .is_err()
        {
            self.close(key, Close::Gone);
        }
    }

    pub(super) fn on_writable(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        match conn.flush() {
            Ok(true) if conn.phase == Phase::Closing => self.close(key, Close::Done),
            Ok(true) => {
                let token = Token(key + FIRST_CONN);
                if self
                    .registry
                    .reregister(conn.link.source(), token, Interest::READABLE)
                    .is_err()
                {
                    return self.close(key, Close::Gone);
                }
                self.output_done(key);
            }
            Ok(false) => {}
            Err(_) => self.close(key, Close::Gone),
        }
    }

    /// Connection `key` has nothing left unsent: what comes next for it.
    fn output_done(&mut self, key: usize) {
        let conn = &self.conns[key];
        match conn.phase {
            Phase::Closing => self.close(key, Close::Done),
            Phase::Answered => self.next_request(key),
            // The next replay step, at the end of this loop pass.
            Phase::Stream(..) if conn.replaying().is_some() => self.ready.push((key, conn.gen)),
            _ => {}
        }
    }
}
