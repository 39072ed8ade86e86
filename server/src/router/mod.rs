//! The router: which connections each subscriber id has, and the path a
//! message takes from the admin side to the reactors that own them.
//!
//! The interface is deliberately narrow, so a later broker (several server
//! processes joined over NATS) and a friends-graph subscription manager can
//! sit in front of it without touching the reactors:
//!
//! - [`Router::login`] / [`Router::logout`]: called by a reactor, on its own
//!   thread, when a stream starts or ends.
//! - [`Router::publish`] (into an [`Outbox`]) then [`Router::flush`]: called
//!   by whoever has messages. `publish` assigns the id's next sequence
//!   number, keeps the message in the id's history and appends one delivery
//!   per connection to the outbox; `flush` hands each reactor its part in
//!   one channel message and wakes it once, however many messages the batch
//!   holds.
//!
//! The map is sharded (`2 x cores` shards, each a `Mutex<HashMap>`, by `id %
//! shards`) so that two cores publishing and logging in rarely meet on one
//! lock. Cost per id with a connection: one map slot (49 B, ~55-110 B with its share
//! of free slots); a second connection to the same id moves its refs to a
//! small heap vector. An id with no connection and no history is removed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use crate::history::{replay_from, Budget, History, Replay};
use crate::presence::{Change, Presence};

mod backlog;
mod conns;

pub(crate) use backlog::Queued;

use conns::{Conns, Member};

/// Where a connection lives: which reactor, which slab slot, and the slot's
/// generation (a reused slot has a new one, so a late delivery to a closed
/// connection is ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnRef {
    pub reactor: u16,
    pub key: u32,
    pub gen: u32,
}

#[derive(Debug)]
struct Entry {
    /// Sequence number of the newest message sent to this id.
    seq: u64,
    conns: Conns,
    history: Option<Box<History>>,
}

/// One delivery: a message (a range of [`Batch::data`]) for one connection,
/// sent to `id` as its `seq` (a connection of several ids names the id).
/// 32 bytes: a batch's data is at most one admin body (`--max-body`, at
/// most 1 GB), so offsets fit `u32`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Delivery {
    pub(crate) key: u32,
    pub(crate) gen: u32,
    pub(crate) id: u64,
    pub(crate) seq: u64,
    pub(crate) start: u32,
    pub(crate) len: u32,
}

/// What a batch carries, so a reactor counts and frames it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum BatchKind {
    /// Messages sent to ids (`POST /send`).
    #[default]
    Direct,
    /// Events fanned out to a publisher's online friends (`POST /publish`).
    Fanout,
    /// One message (`data`, no deliveries) for every connection of the
    /// reactor, whatever its ids (`POST /broadcast`).
    Broadcast,
}

/// What one reactor receives in one wake-up: the message bytes once, and a
/// delivery per connection.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    pub(crate) kind: BatchKind,
    pub(crate) data: Vec<u8>,
    pub(crate) deliveries: Vec<Delivery>,
}

impl Batch {
    pub(crate) fn message(&self, d: &Delivery) -> &[u8] {
        let start = d.start as usize;
        &self.data[start..start + d.len as usize]
    }
}

/// Deliveries gathered for each reactor, sent by [`Router::flush`].
#[derive(Debug)]
pub struct Outbox {
    batches: Vec<Batch>,
    /// Where the current message starts in each reactor's batch data, once
    /// copied there ([`NOT_COPIED`] before): a message reaches a reactor's
    /// bytes once, however many of its connections (of however many ids:
    /// an event's friends) it is for.
    copied: Vec<usize>,
}

const NOT_COPIED: usize = usize::MAX;

impl Outbox {
    /// The next deliveries are of another message.
    fn new_message(&mut self) {
        self.copied.fill(NOT_COPIED);
    }

    /// Queues the current `message` for `conn` as `id`'s `seq`.
    fn push(&mut self, conn: ConnRef, id: u64, seq: u64, message: &[u8]) {
        let reactor = usize::from(conn.reactor);
        let batch = &mut self.batches[reactor];
        let start = match self.copied[reactor] {
            NOT_COPIED => {
                let start = batch.data.len();
                batch.data.extend_from_slice(message);
                self.copied[reactor] = start;
                start
            }
            start => start,
        };
        batch.deliveries.push(Delivery {
            key: conn.key,
            gen: conn.gen,
            id,
            seq,
            start: start as u32,
            len: message.len() as u32,
        });
    }
}

/// How a reactor is reached: its channel and its poll's waker, or its
/// lock when it is idle ([`Direct`]).
pub(crate) struct Mailbox {
    pub tx: mpsc::Sender<Batch>,
    pub waker: mio::Waker,
    /// Deliveries sent but not yet written by the reactor; the reactor
    /// subtracts what it has handled. Publishers wait while it is high
    /// ([`Router::room`]), so a fast publisher cannot grow the queue
    /// without bound.
    pub queued: Arc<Queued>,
    /// The reactor itself while its thread runs ([`Router::attach`]): weak,
    /// since the reactor holds the router; the thread owns it, so it is
    /// gone (and the upgrade fails) once the thread has ended.
    pub direct: OnceLock<Weak<dyn Direct>>,
}

/// A reactor that may take a small batch on the publisher's thread while
/// it is idle, so its own thread need not be woken (`reactor/direct.rs`).
pub(crate) trait Direct: Send + Sync {
    /// Writes `batch` and empties it, or leaves it whole for the mailbox.
    fn try_write(&self, batch: &mut Batch) -> DirectWrite;
}

/// What [`Direct::try_write`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DirectWrite {
    /// Nothing: the batch goes through the mailbox.
    Busy,
    /// Written; `wake`: the reactor's loop has something to look at since.
    Written { wake: bool },
}

/// What fanning one message out to several ids did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FannedOut {
    /// Ids that had a connection and got the message.
    pub online: u64,
    /// Connection deliveries queued.
    pub connections: u64,
}

/// What publishing one message did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    /// The id's sequence number given to the message.
    pub seq: u64,
    /// Connections it was queued to (0: dropped).
    pub connections: usize,
}

pub struct Router {
    shards: Box<[Mutex<HashMap<u64, Entry>>]>,
    history: usize,
    mailboxes: Vec<Mailbox>,
    /// Told when an id gets its first connection or loses its last.
    presence: Arc<Presence>,
    /// Where every id's numbering starts: 0, or the broker-mode token in the
    /// high bits ([`seq_base`]).
    seq_base: u64,
    /// When the last flush began, in nanoseconds since `epoch`: how a
    /// publisher in a burst is told from a lone message (`DIRECT_GAP`).
    last_flush: AtomicU64,
    epoch: Instant,
}

/// Flushes closer together than this are a publisher's burst (requests
/// read back to back: msggen releases a millisecond's messages at once):
/// its writes are left to the reactors, which write in parallel while it
/// parses the next and group what piles up; written by the publisher, a
/// burst's last message would wait for every write before it (measured:
/// p99 1.7x at 16,666 msg/s). A message after a quiet spell is written at
/// once (`reactor/direct.rs`). One direct write takes ~15-30 µs here.
pub(crate) const DIRECT_GAP: Duration = Duration::from_micros(50);

/// Bits of a sequence number that count messages; above them, in broker
/// mode, sits the process's token. 32 + 21 bits stay within 2^53, so a
/// JavaScript client reads `X-Seq` and SSE ids as exact numbers.
pub(crate) const SEQ_BITS: u32 = 32;

/// Largest broker-mode sequence token.
pub(crate) const MAX_SEQ_TOKEN: u32 = (1 << 21) - 1;

/// The first sequence number of every id under `token` (0: plain numbering).
pub(crate) fn seq_base(token: u32) -> u64 {
    u64::from(token.min(MAX_SEQ_TOKEN)) << SEQ_BITS
}

impl Router {
    /// A router for `mailboxes.len()` reactors keeping `history` messages
    /// per id, reporting presence changes to `presence`.
    pub(crate) fn new(
        mailboxes: Vec<Mailbox>,
        history: usize,
        cores: usize,
        presence: Arc<Presence>,
    ) -> Self {
        let shards = (0..(2 * cores).max(2))
            .map(|_| Mutex::new(HashMap::new()))
            .collect();
        Self {
            shards,
            history,
            mailboxes,
            presence,
            seq_base: 0,
            last_flush: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    /// Numbers every id's messages from `seq_base(token)`: a client's
    /// `Last-Event-ID` or `?seq=` with other high bits (another group, an
    /// earlier run, plain numbering) is foreign and gets the explicit loss
    /// notice instead of a replay that could repeat or skip messages.
    pub fn with_seq_token(mut self, token: u32) -> Self {
        self.seq_base = seq_base(token);
        self
    }

    fn new_entry(&self) -> Entry {
        Entry {
            seq: self.seq_base,
            conns: Conns::None,
            history: None,
        }
    }

    fn shard(&self, id: u64) -> std::sync::MutexGuard<'_, HashMap<u64, Entry>> {
        let shard = &self.shards[(id % self.shards.len() as u64) as usize];
        // A panic elsewhere cannot leave the map half-updated (every update is
        // one call), so a poisoned lock is still usable.
        shard.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers `conn` for `id`. With `replay`, also returns what the
    /// client missed since that sequence number, as much as the budget
    /// allows. A stream is always registered: when its replay is cut short
    /// (`Replay::next`), as catching up, and it goes on with
    /// [`Router::replay_step`]. A long-poll is registered only when there is
    /// nothing to replay, because the replay is then its whole answer.
    pub(crate) fn login(
        &self,
        id: u64,
        conn: ConnRef,
        replay: Option<(u64, Budget)>,
        subscription: Subscription,
    ) -> Login {
        let mut shard = self.shard(id);
        let entry = shard.entry(id).or_insert_with(|| self.new_entry());
        let replay = match replay {
            Some((after, _))
                if self.seq_base != 0 && after >> SEQ_BITS != entry.seq >> SEQ_BITS =>
            {
                // Another numbering: all we can say is what ours holds.
                let ours = entry.seq - self.seq_base;
                Replay {
                    lost: (ours > 0).then_some((self.seq_base + 1, entry.seq)),
                    ..Replay::default()
                }
            }
            Some((after, budget)) => {
                replay_from(entry.history.as_deref(), after, entry.seq, budget)
            }
            None => Replay::default(),
        };
        let was_offline = entry.conns.is_empty();
        let registered = match subscription {
            Subscription::Stream => {
                entry.conns.add(Member::new(conn, replay.next.is_some()));
                true
            }
            Subscription::Poll if replay.is_empty() => {
                entry.conns.add(Member::new(conn, false));
                true
            }
            Subscription::Poll => false,
        };
        if was_offline && !entry.conns.is_empty() {
            self.presence.note(Change::Online(id));
        }
        let seq = entry.seq;
        if entry.conns.is_empty() && entry.history.is_none() {
            shard.remove(&id);
        }
        Login {
            seq,
            replay,
            registered,
        }
    }

    /// The next slice of the replay of a stream catching up, from sequence
    /// number `next` (a gap first if the history has dropped it meanwhile).
    /// When the slice reaches the id's newest message the connection goes
    /// live in the same critical section, so what is published after it is
    /// delivered and nothing before it is sent twice.
    pub(crate) fn replay_step(&self, id: u64, conn: ConnRef, next: u64, budget: Budget) -> Replay {
        let mut shard = self.shard(id);
        let Some(entry) = shard.get_mut(&id) else {
            return Replay::default();
        };
        let after = next.saturating_sub(1);
        let replay = replay_from(entry.history.as_deref(), after, entry.seq, budget);
        if replay.next.is_none() {
            entry.conns.go_live(conn);
        }
        replay
    }

    /// Removes `conn` from `id`; true if it was registered.
    pub fn logout(&self, id: u64, conn: ConnRef) -> bool {
        let mut shard = self.shard(id);
        let Some(entry) = shard.get_mut(&id) else {
            return false;
        };
        let removed = entry.conns.remove(conn);
        if removed && entry.conns.is_empty() {
            self.presence.note(Change::Offline(id));
        }
        if entry.conns.is_empty() && entry.history.is_none() {
            shard.remove(&id);
        }
        removed
    }

    /// Number of connections `id` has now.
    pub fn connections(&self, id: u64) -> usize {
        self.shard(id)
            .get(&id)
            .map_or(0, |e| e.conns.as_slice().len())
    }

    /// An empty outbox for this router's reactors, for batches of `kind`
    /// (`Direct` or `Fanout`).
    pub fn outbox(&self, kind: BatchKind) -> Outbox {
        debug_assert!(kind != BatchKind::Broadcast, "a broadcast has no outbox");
        let reactors = self.mailboxes.len();
        Outbox {
            batches: (0..reactors)
                .map(|_| Batch {
                    kind,
                    ..Batch::default()
                })
                .collect(),
            copied: vec![NOT_COPIED; reactors],
        }
    }

    /// Queues `message` for every connection of `id` into `outbox`.
    pub fn publish(&self, id: u64, message: &[u8], outbox: &mut Outbox) -> Published {
        let mut shard = self.shard(id);
        let entry = if self.history > 0 {
            shard.entry(id).or_insert_with(|| self.new_entry())
        } else {
            match shard.get_mut(&id) {
                Some(e) => e,
                None => {
                    return Published {
                        seq: 0,
                        connections: 0,
                    }
                }
            }
        };
        outbox.new_message();
        let seq = self.queue(id, entry, message, outbox);
        Published {
            seq,
            connections: entry.conns.as_slice().len(),
        }
    }

    /// Queues `message` for every connection of each of `ids` that has one
    /// now (an event for a publisher's friends): it takes each id's next
    /// sequence number and enters its history as a sent message would; an
    /// id without a connection is skipped and keeps nothing.
    pub fn publish_to_online(
        &self,
        ids: impl Iterator<Item = u64>,
        message: &[u8],
        outbox: &mut Outbox,
    ) -> FannedOut {
        outbox.new_message();
        let mut out = FannedOut::default();
        for id in ids {
            let mut shard = self.shard(id);
            let Some(entry) = shard.get_mut(&id) else {
                continue;
            };
            let connections = entry.conns.as_slice().len() as u64;
            if connections > 0 {
                self.queue(id, entry, message, outbox);
                out.online += 1;
                out.connections += connections;
            }
        }
        out
    }

    /// Numbers `message` for `entry`, keeps it in the history and queues it
    /// for every connection; returns its sequence number. A member catching
    /// up on a replay gets the message from its replay instead.
    fn queue(&self, id: u64, entry: &mut Entry, message: &[u8], outbox: &mut Outbox) -> u64 {
        entry.seq += 1;
        let seq = entry.seq;
        if self.history > 0 {
            entry
                .history
                .get_or_insert_with(|| Box::new(History::new(self.history)))
                .push(seq, message);
        }
        for member in entry.conns.as_slice().iter().filter(|m| !m.catching_up) {
            outbox.push(member.conn(), id, seq, message);
        }
        seq
    }

    /// Sends `message` to every connection of every reactor, once each: one
    /// batch per reactor that walks its own connections, no id looked up.
    pub fn broadcast(&self, message: &[u8]) {
        for mailbox in &self.mailboxes {
            let batch = Batch {
                kind: BatchKind::Broadcast,
                data: message.to_vec(),
                deliveries: Vec::new(),
            };
            mailbox.queued.add(1);
            if mailbox.tx.send(batch).is_ok() {
                let _ = mailbox.waker.wake();
            }
        }
    }

    /// Sends every non-empty batch of `outbox` to its reactor, one wake-up
    /// each, or writes it on this thread while that reactor is idle.
    pub fn flush(&self, outbox: &mut Outbox) {
        let now = self.epoch.elapsed().as_nanos() as u64;
        let before = self.last_flush.swap(now, Relaxed);
        let quiet = now.saturating_sub(before) >= DIRECT_GAP.as_nanos() as u64;
        for (batch, mailbox) in outbox.batches.iter_mut().zip(&self.mailboxes) {
            if batch.deliveries.is_empty() {
                batch.data.clear();
                continue;
            }
            let reactor = (mailbox.direct.get())
                .filter(|_| quiet)
                .and_then(Weak::upgrade);
            match reactor.map(|r| r.try_write(batch)) {
                Some(DirectWrite::Written { wake }) => {
                    if wake {
                        let _ = mailbox.waker.wake();
                    }
                    continue;
                }
                Some(DirectWrite::Busy) | None => {}
            }
            let batch = std::mem::take(batch);
            mailbox.queued.add(batch.deliveries.len());
            // A reactor that has stopped (shutdown) no longer receives: the
            // messages are lost with it, which is what stopping means.
            if mailbox.tx.send(batch).is_ok() {
                let _ = mailbox.waker.wake();
            }
        }
    }

    /// The largest number of deliveries any reactor has still to write.
    #[cfg(test)]
    fn backlog(&self) -> usize {
        self.mailboxes
            .iter()
            .map(|m| m.queued.get())
            .max()
            .unwrap_or(0)
    }

    /// Waits until no reactor has more than [`backlog::MAX_BACKLOG`] deliveries
    /// left to write: the backpressure every publisher passes through.
    pub(crate) async fn room(&self) {
        backlog::room(self.mailboxes.iter().map(|m| &*m.queued)).await;
    }

    /// Lets publishers write to reactor `index` themselves while it is idle.
    pub(crate) fn attach(&self, index: usize, reactor: Weak<dyn Direct>) {
        let _ = self.mailboxes[index].direct.set(reactor);
    }

    /// Wakes every reactor (shutdown).
    pub fn wake_all(&self) {
        for mailbox in &self.mailboxes {
            let _ = mailbox.waker.wake();
        }
    }
}

/// How a connection subscribes to its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Subscription {
    /// A stream (`/test`, `/sse`): every message from now on.
    Stream,
    /// A long-poll: the next message, unless there is a replay to answer.
    Poll,
}

/// What a login returns.
#[derive(Debug)]
pub(crate) struct Login {
    /// The id's newest sequence number at login.
    pub(crate) seq: u64,
    pub(crate) replay: Replay,
    /// Whether the connection is now registered (see [`Router::login`]).
    pub(crate) registered: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(
        reactors: usize,
        history: usize,
    ) -> (Router, Vec<mpsc::Receiver<Batch>>, Vec<mio::Poll>) {
        let mut mailboxes = Vec::new();
        let mut rxs = Vec::new();
        let mut polls = Vec::new();
        for _ in 0..reactors {
            let poll = mio::Poll::new().unwrap();
            let waker = mio::Waker::new(poll.registry(), mio::Token(1)).unwrap();
            let (tx, rx) = mpsc::channel();
            mailboxes.push(Mailbox {
                tx,
                waker,
                queued: Arc::default(),
                direct: OnceLock::new(),
            });
            rxs.push(rx);
            polls.push(poll);
        }
        let presence = Arc::new(Presence::new(16, Arc::default()));
        (Router::new(mailboxes, history, 2, presence), rxs, polls)
    }

    fn conn(reactor: u16, key: u32) -> ConnRef {
        ConnRef {
            reactor,
            key,
            gen: 1,
        }
    }

    #[test]
    fn every_connection_of_an_id_gets_the_message_and_offline_ids_drop() {
        let (router, rxs, _polls) = router(2, 0);
        router.login(5, conn(0, 1), None, Subscription::Stream);
        router.login(5, conn(1, 2), None, Subscription::Stream);
        router.login(5, conn(1, 3), None, Subscription::Poll);
        let mut outbox = router.outbox(BatchKind::Direct);
        assert_eq!(router.publish(5, b"hello", &mut outbox).connections, 3);
        assert_eq!(router.publish(6, b"nobody", &mut outbox).connections, 0);
        router.flush(&mut outbox);
        let b0 = rxs[0].try_recv().unwrap();
        let b1 = rxs[1].try_recv().unwrap();
        assert_eq!(b0.deliveries.len(), 1);
        assert_eq!(b1.deliveries.len(), 2);
        assert_eq!(b1.data, b"hello", "the bytes are copied once per reactor");
        assert_eq!(router.backlog(), 2);
        assert_eq!(b1.message(&b1.deliveries[1]), b"hello");
        assert_eq!(router.connections(5), 3);
        assert!(router.logout(5, conn(1, 2)));
        assert!(!router.logout(5, conn(1, 2)));
        assert_eq!(router.connections(5), 2);
    }

    #[test]
    fn a_map_slot_is_small() {
        // What the connection module's cost table counts per id.
        assert_eq!(std::mem::size_of::<(u64, Entry)>(), 48);
        // And a queued delivery, 64K of which a reactor may hold.
        assert_eq!(std::mem::size_of::<Delivery>(), 32);
    }

    #[test]
    fn ids_without_connections_or_history_are_forgotten() {
        let (router, _rxs, _polls) = router(1, 0);
        router.login(9, conn(0, 1), None, Subscription::Stream);
        router.logout(9, conn(0, 1));
        assert!(router.shards.iter().all(|s| s.lock().unwrap().is_empty()));
    }

    #[test]
    fn history_replays_and_long_poll_is_not_registered_when_answered() {
        let (router, _rxs, _polls) = router(1, 2);
        let mut outbox = router.outbox(BatchKind::Direct);
        for m in [b"a", b"b", b"c"] {
            router.publish(3, m, &mut outbox);
        }
        let login = router.login(3, conn(0, 1), Some((0, ALL)), Subscription::Poll);
        assert!(!login.registered);
        assert_eq!(login.seq, 3);
        assert_eq!(login.replay.lost, Some((1, 1)));
        assert_eq!(login.replay.messages.len(), 2);
        let login = router.login(3, conn(0, 1), Some((3, ALL)), Subscription::Poll);
        assert!(login.registered);
        assert_eq!(router.connections(3), 1);
    }

    const ALL: Budget = Budget {
        bytes: usize::MAX,
        cost: <[u8]>::len,
    };

    #[test]
    fn a_stream_catching_up_is_counted_not_delivered_to_and_goes_live_exactly() {
        let (router, rxs, _polls) = router(1, 100);
        let mut outbox = router.outbox(BatchKind::Direct);
        for m in [b"a", b"b", b"c", b"d"] {
            router.publish(4, m, &mut outbox);
        }
        let two = Budget {
            bytes: 2,
            cost: <[u8]>::len,
        };
        let me = conn(0, 7);
        let login = router.login(4, me, Some((0, two)), Subscription::Stream);
        assert!(login.registered);
        let seqs = |r: &Replay| r.messages.iter().map(|(s, _)| *s).collect::<Vec<_>>();
        assert_eq!(
            (seqs(&login.replay), login.replay.next),
            (vec![1, 2], Some(3))
        );
        // Published while it catches up: counted, in the history, not queued.
        let published = router.publish(4, b"e", &mut outbox);
        assert_eq!(published.connections, 1);
        router.flush(&mut outbox);
        assert!(rxs[0].try_recv().is_err(), "nothing delivered live yet");
        let step = router.replay_step(4, me, 3, two);
        assert_eq!((seqs(&step), step.next), (vec![3, 4], Some(5)));
        let step = router.replay_step(4, me, 5, two);
        assert_eq!((seqs(&step), step.next), (vec![5], None));
        // Live from the next message on, and only that.
        router.publish(4, b"f", &mut outbox);
        router.flush(&mut outbox);
        let batch = rxs[0].try_recv().unwrap();
        assert_eq!(batch.deliveries.len(), 1);
        assert_eq!(batch.deliveries[0].seq, 6);
    }

    #[test]
    fn a_foreign_sequence_number_gets_the_loss_notice() {
        let (router, _rxs, _polls) = router(1, 10);
        let router = router.with_seq_token(7);
        let base = seq_base(7);
        let mut outbox = router.outbox(BatchKind::Direct);
        assert_eq!(router.publish(3, b"a", &mut outbox).seq, base + 1);
        router.publish(3, b"b", &mut outbox);
        // One of ours: the gap is replayed.
        let login = router.login(3, conn(0, 1), Some((base + 1, ALL)), Subscription::Stream);
        assert_eq!(login.replay.lost, None);
        assert_eq!(login.replay.messages.len(), 1);
        // Plain numbering, or another group's token: never replayed as ours.
        for foreign in [1, seq_base(8) + 1] {
            let login = router.login(3, conn(0, 2), Some((foreign, ALL)), Subscription::Stream);
            assert_eq!(login.replay.lost, Some((base + 1, base + 2)));
            assert!(login.replay.messages.is_empty());
        }
        // An id with nothing sent yet has nothing to say.
        let login = router.login(4, conn(0, 3), Some((99, ALL)), Subscription::Stream);
        assert!(login.replay.is_empty());
    }
}
