//! Replays paced by the reader. A history replay can be far larger than
//! `--max-pending` (up to `--history` messages per id), and dumping it into
//! one buffer would close even a reader that keeps up as a slow consumer.
//! So a replay is taken and written a step at a time: at most
//! [`Reactor::replay_budget`] of framed bytes, copied under the router's
//! shard lock, never the whole history.
//!
//! - `/sse`: the first step goes out with the head; the record's side
//!   allocation keeps where the replay goes on from, and once the socket
//!   has taken a step the connection is queued (`resume_ready`) for the
//!   next. Meanwhile the router counts the connection but gives it no live
//!   deliveries (everything published is in the history the replay walks);
//!   the step that reaches the id's newest message switches it to live under
//!   the same lock as publishing, so nothing is sent twice or skipped.
//! - `/poll`: an answer carries one step, its `X-Seq` the last message it
//!   holds, so the client's next poll asks for the rest.
//!
//! Cost: a cursor (8 bytes in the side allocation) only while a replay is
//! under way, and one step's bytes (about `--max-pending` / 2) in flight.

use super::conn::Phase;
use super::Reactor;
use crate::history::Budget;
use crate::transport;

impl Reactor {
    /// One replay step for a transport whose framing `cost` says: half of
    /// `--max-pending`, so a step always leaves room for the heartbeats and
    /// keep-alives queued behind it.
    pub(super) fn replay_budget(&self, cost: fn(&[u8]) -> usize) -> Budget {
        Budget {
            bytes: self.shared.config.max_pending / 2,
            cost,
        }
    }

    /// Writes the next step of connection `key`'s SSE replay.
    pub(super) fn replay_step(&mut self, key: usize) {
        let conn = &self.conns[key];
        let (Some(next), Phase::Stream(_, framing)) = (conn.replaying(), conn.phase) else {
            return;
        };
        let me = self.conn_ref(key, conn.gen);
        let budget = self.replay_budget(transport::sse_event_cost);
        let step = self.shared.router.replay_step(conn.id, me, next, budget);
        self.conns[key].set_replay(step.next);
        self.local.lost_notices += u64::from(step.lost.is_some());
        self.out.clear();
        let named = self.conns[key].several_ids().then_some(self.conns[key].id);
        transport::sse_replay(&mut self.out, &mut self.frame, framing, named, &step);
        if !self.out.is_empty() {
            self.send_out(key);
        }
    }
}
