//! A subscriber reactor: one thread, one `mio::Poll`, the accepted
//! connections of this thread in a slab of compact records (see [`conn`]).
//!
//! Idle connections are not tasks: a connection costs its record, its
//! router slot and the kernel's socket, nothing else. The reactor reads only
//! when the kernel says a socket is readable, into one scratch buffer for
//! the whole thread; the only readable event an idle stream sees is its
//! client closing it (EOF, reset), which logs it out at once.
//!
//! Messages arrive from the router as one [`Batch`] per wake-up (a channel
//! plus a `mio::Waker`); the reactor frames each and writes it straight to
//! the socket. What the socket does not take is kept in the record and
//! written on WRITABLE; past `--max-pending` unsent bytes the connection is
//! closed as a slow consumer, so one slow reader never delays the others and
//! costs at most its buffer (compacted lazily, so up to ~4x `--max-pending`:
//! 256 KiB at the default), freed once drained. The batches waiting for a
//! reactor are bounded too: publishers wait while any reactor has more than
//! 64K deliveries unwritten (see `admin`).
//!
//! Timers are per reactor, not per connection: two FIFOs of deadlines
//! (header timeout, poll timeout) and one tick for heartbeats and SSE
//! keep-alives that walks the slab.

mod conn;
mod deadlines;

use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

pub use conn::Conn;
use conn::{Phase, WriteError};
use deadlines::Deadlines;

use crate::config::{Config, MAX_HEAD};
use crate::http::{write_reject, Reject, Status};
use crate::request::{parse_request, Parsed, Request, Route};
use crate::router::{Batch, ConnRef, Router};
use crate::stats::{LocalCounts, Stats};
use crate::transport::{self, Framing, Kind};

const LISTENER: Token = Token(0);
pub const WAKER: Token = Token(1);
const FIRST_CONN: usize = 2;

/// Batches merged into one pass of grouped writes.
const MAX_BATCHES_PER_PASS: usize = 64;

/// Bytes read per read call, into the reactor's one scratch buffer.
const SCRATCH: usize = 64 * 1024;

/// What every reactor shares.
pub struct Shared {
    pub config: Config,
    pub router: Arc<Router>,
    pub stats: Arc<Stats>,
    pub shutdown: AtomicBool,
    /// Set once EMFILE/ENFILE has been reported, so it is reported once.
    pub exhaustion_reported: AtomicBool,
}

/// Where a long-poll connection goes once its answer is written.
fn after_poll(keep_alive: bool) -> Phase {
    if keep_alive {
        Phase::Answered
    } else {
        Phase::Closing
    }
}

/// Why a connection is closed (for counting).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Close {
    /// The client closed, reset, or a write failed.
    Gone,
    /// Its answer is out.
    Done,
    SlowConsumer,
    HeaderTimeout,
    Stray,
}

pub struct Reactor {
    index: u16,
    poll: Poll,
    listener: TcpListener,
    rx: mpsc::Receiver<Batch>,
    /// Deliveries not yet handled, shared with the router (backpressure).
    queued: Arc<AtomicUsize>,
    /// Reused between wake-ups: the batches taken and their delivery order.
    batches: Vec<Batch>,
    order: Vec<(u32, u32, u32)>,
    conns: Slab<Conn>,
    next_gen: u32,
    scratch: Vec<u8>,
    out: Vec<u8>,
    frame: Vec<u8>,
    header_deadlines: Deadlines,
    poll_deadlines: Deadlines,
    next_heartbeat: Option<Instant>,
    next_keepalive: Instant,
    accept_paused: bool,
    local: LocalCounts,
    shared: Arc<Shared>,
}

impl Reactor {
    /// A reactor over `poll` (whose waker, `WAKER`, the router holds),
    /// accepting from `listener`.
    pub fn new(
        index: u16,
        poll: Poll,
        listener: std::net::TcpListener,
        rx: mpsc::Receiver<Batch>,
        queued: Arc<AtomicUsize>,
        shared: Arc<Shared>,
    ) -> io::Result<Self> {
        listener.set_nonblocking(true)?;
        let mut listener = TcpListener::from_std(listener);
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let now = Instant::now();
        let config = &shared.config;
        Ok(Self {
            index,
            poll,
            listener,
            rx,
            queued,
            batches: Vec::new(),
            order: Vec::new(),
            conns: Slab::new(),
            next_gen: 0,
            scratch: vec![0; SCRATCH],
            out: Vec::with_capacity(4096),
            frame: Vec::with_capacity(4096),
            header_deadlines: Deadlines::new(config.header_timeout),
            poll_deadlines: Deadlines::new(config.poll_timeout),
            next_heartbeat: config.heartbeat.map(|h| now + h),
            next_keepalive: now + config.sse_keepalive,
            accept_paused: false,
            local: LocalCounts::default(),
            shared,
        })
    }

    /// Runs until shutdown, then ends every stream cleanly and closes it.
    pub fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        loop {
            let timeout = self
                .next_timer()
                .map(|at| at.saturating_duration_since(Instant::now()));
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(),
                    WAKER => self.drain_mailbox(),
                    Token(t) => {
                        let key = t - FIRST_CONN;
                        if event.is_readable() || event.is_read_closed() || event.is_error() {
                            self.on_readable(key);
                        }
                        if event.is_writable() {
                            self.on_writable(key);
                        }
                    }
                }
            }
            self.on_timers(Instant::now());
            self.local.flush(&self.shared.stats);
            if self.shared.shutdown.load(Relaxed) {
                self.end_all();
                self.local.flush(&self.shared.stats);
                return Ok(());
            }
        }
    }

    fn next_timer(&self) -> Option<Instant> {
        let mut next = [
            self.header_deadlines.next(),
            self.poll_deadlines.next(),
            self.next_heartbeat,
            Some(self.next_keepalive),
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

    fn conn_ref(&self, key: usize, gen: u32) -> ConnRef {
        ConnRef {
            reactor: self.index,
            key: key as u32,
            gen,
        }
    }

    fn accept(&mut self) {
        self.accept_paused = false;
        let now = Instant::now();
        loop {
            let (mut stream, _) = match self.listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    if let Some(exhaustion) = c1m_common::fdlimit::is_exhaustion(&e) {
                        self.local.accept_exhausted += 1;
                        self.accept_paused = true;
                        if !self.shared.exhaustion_reported.swap(true, Relaxed) {
                            eprintln!("comet-server: {}", exhaustion.fix());
                        }
                        return;
                    }
                    // ECONNABORTED and the like: that client is gone, go on.
                    continue;
                }
            };
            let stats = &self.shared.stats;
            if stats.connections.load(Relaxed) >= self.shared.config.max_conns {
                self.out.clear();
                write_reject(
                    Reject::new(Status::ServiceUnavailable, "server is at --max-conns"),
                    &mut self.out,
                );
                // Best effort: a few hundred bytes fit any fresh socket buffer.
                let _ = io::Write::write(&mut stream, &self.out);
                self.local.over_capacity += 1;
                continue;
            }
            let _ = stream.set_nodelay(true);
            let gen = self.next_gen;
            self.next_gen = self.next_gen.wrapping_add(1);
            let entry = self.conns.vacant_entry();
            let key = entry.key();
            if self
                .poll
                .registry()
                .register(&mut stream, Token(key + FIRST_CONN), Interest::READABLE)
                .is_err()
            {
                continue;
            }
            entry.insert(Conn::new(stream, gen));
            stats.connections.fetch_add(1, Relaxed);
            self.local.accepted += 1;
            self.header_deadlines.push(now, key, gen);
        }
    }

    /// Takes every batch waiting in the mailbox and writes them grouped by
    /// connection: when the reactor is behind, a connection with several
    /// messages gets them in one write, so the cost per message falls as
    /// the load rises.
    fn drain_mailbox(&mut self) {
        loop {
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
            for (b, batch) in batches.iter().enumerate() {
                for (d, delivery) in batch.deliveries.iter().enumerate() {
                    order.push((delivery.key, b as u32, d as u32));
                }
            }
            // (key, batch, index) is unique, so this keeps each connection's
            // messages in the order they were published.
            order.sort_unstable();
            for run in order.chunk_by(|a, b| a.0 == b.0) {
                self.deliver_run(run, &batches);
            }
            self.queued.fetch_sub(order.len(), Relaxed);
            // Keep the buffers for the next wake-up, but not a burst's worth.
            if order.capacity() > 1 << 16 {
                order = Vec::new();
            }
            self.order = order;
            batches.clear();
            self.batches = batches;
        }
    }

    /// Writes the deliveries of `run` (all for one slab key) in one go.
    fn deliver_run(&mut self, run: &[(u32, u32, u32)], batches: &[Batch]) {
        let key = run[0].0 as usize;
        let Some(conn) = self.conns.get(key) else {
            return;
        };
        let (gen, phase) = (conn.gen, conn.phase);
        let mine = run
            .iter()
            .map(|&(_, b, d)| {
                (
                    &batches[b as usize],
                    &batches[b as usize].deliveries[d as usize],
                )
            })
            .filter(|(_, d)| d.gen == gen);
        self.out.clear();
        let mut count = 0;
        match phase {
            Phase::Stream(kind, framing) => {
                for (batch, d) in mine {
                    transport::message(
                        &mut self.out,
                        &mut self.frame,
                        (kind, framing),
                        d.seq,
                        batch.message(d),
                    );
                    count += 1;
                }
            }
            Phase::PollWait { keep_alive } => {
                let messages: Vec<(u64, &[u8])> =
                    mine.map(|(batch, d)| (d.seq, batch.message(d))).collect();
                let Some(&(newest, _)) = messages.last() else {
                    return;
                };
                count = messages.len() as u64;
                transport::poll_answer(
                    &mut self.out,
                    &mut self.frame,
                    Some(newest),
                    None,
                    messages,
                    keep_alive,
                );
                self.logout(key);
                self.conns[key].phase = after_poll(keep_alive);
            }
            Phase::Head | Phase::Closing | Phase::Answered => return,
        }
        if count > 0 {
            self.local.messages_out += count;
            self.send_out(key);
        }
    }

    /// Writes `self.out` to connection `key`, closing it if it is too slow
    /// or gone, or if its last answer is now out.
    fn send_out(&mut self, key: usize) {
        let max_pending = self.shared.config.max_pending;
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        self.local.bytes_out += self.out.len() as u64;
        match conn.send(&self.out, max_pending) {
            Ok(true) => {
                let token = Token(key + FIRST_CONN);
                let interest = Interest::READABLE | Interest::WRITABLE;
                if self
                    .poll
                    .registry()
                    .reregister(&mut conn.stream, token, interest)
                    .is_err()
                {
                    self.close(key, Close::Gone);
                }
            }
            Ok(false) if conn.pending.is_none() => match conn.phase {
                Phase::Closing => self.close(key, Close::Done),
                Phase::Answered => self.await_next_request(key),
                _ => {}
            },
            Ok(false) => {}
            Err(WriteError::TooSlow) => self.close(key, Close::SlowConsumer),
            Err(WriteError::Io(_)) => self.close(key, Close::Gone),
        }
    }

    fn on_writable(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        match conn.flush() {
            Ok(true) if conn.phase == Phase::Closing => self.close(key, Close::Done),
            Ok(true) => {
                if conn.phase == Phase::Answered {
                    self.await_next_request(key);
                }
                let conn = &mut self.conns[key];
                let token = Token(key + FIRST_CONN);
                if self
                    .poll
                    .registry()
                    .reregister(&mut conn.stream, token, Interest::READABLE)
                    .is_err()
                {
                    self.close(key, Close::Gone);
                }
            }
            Ok(false) => {}
            Err(_) => self.close(key, Close::Gone),
        }
    }

    fn on_readable(&mut self, key: usize) {
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

    fn read_head(&mut self, key: usize) {
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
                Ok(Parsed::Complete { request, .. }) => {
                    // Pipelined bytes after the head are not requests we serve.
                    conn.pending = None;
                    return self.start(key, request);
                }
                Err(reject) => {
                    conn.pending = None;
                    self.local.bad_requests += 1;
                    return self.answer_and_close(key, |out| write_reject(reject, out));
                }
            }
        }
    }

    /// A keep-alive long-poll connection whose answer is out reads its next
    /// request under a fresh header deadline. Its slot gets a new generation,
    /// so neither an old deadline nor a late delivery can touch it.
    fn await_next_request(&mut self, key: usize) {
        let gen = self.next_gen;
        self.next_gen = self.next_gen.wrapping_add(1);
        let conn = &mut self.conns[key];
        conn.phase = Phase::Head;
        conn.gen = gen;
        self.header_deadlines.push(Instant::now(), key, gen);
    }

    fn answer_and_close(&mut self, key: usize, write: impl FnOnce(&mut Vec<u8>)) {
        self.conns[key].phase = Phase::Closing;
        self.out.clear();
        write(&mut self.out);
        self.send_out(key);
    }

    /// Answers a complete request: logs the connection in and writes the
    /// head, the welcome or replay, or the whole long-poll answer.
    fn start(&mut self, key: usize, request: Request) {
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

    fn logout(&mut self, key: usize) {
        let conn = &self.conns[key];
        if conn.logged_in() {
            let me = self.conn_ref(key, conn.gen);
            self.shared.router.logout(conn.id, me);
            self.local.logouts += 1;
            self.shared.stats.logged_in.fetch_sub(1, Relaxed);
        }
    }

    fn close(&mut self, key: usize, why: Close) {
        if !self.conns.contains(key) {
            return;
        }
        self.logout(key);
        let mut conn = self.conns.remove(key);
        let _ = self.poll.registry().deregister(&mut conn.stream);
        self.shared.stats.connections.fetch_sub(1, Relaxed);
        match why {
            Close::SlowConsumer => self.local.slow_consumer_closes += 1,
            Close::HeaderTimeout => self.local.header_timeouts += 1,
            Close::Stray => self.local.stray_closes += 1,
            Close::Gone | Close::Done => {}
        }
        if self.conns.is_empty() && self.conns.capacity() > 1024 {
            // After a mass disconnect, give the slab's memory back.
            self.conns.shrink_to_fit();
        }
    }

    fn on_timers(&mut self, now: Instant) {
        while let Some((key, gen)) = self.header_deadlines.pop_expired(now) {
            if self
                .conns
                .get(key)
                .is_some_and(|c| c.gen == gen && c.phase == Phase::Head)
            {
                self.close(key, Close::HeaderTimeout);
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
                let empty = std::iter::empty();
                transport::poll_answer(
                    &mut self.out,
                    &mut self.frame,
                    None,
                    None,
                    empty,
                    keep_alive,
                );
                self.send_out(key);
            }
        }
        self.poll_deadlines.shrink();
        if let Some(at) = self.next_heartbeat.filter(|at| *at <= now) {
            let interval = self
                .shared
                .config
                .heartbeat
                .unwrap_or(Duration::from_secs(1));
            self.next_heartbeat = Some(at.max(now - interval) + interval);
            self.tick(true);
        }
        if self.next_keepalive <= now {
            self.next_keepalive = now + self.shared.config.sse_keepalive;
            self.tick(false);
        }
        if self.accept_paused {
            self.accept();
        }
    }

    /// Heartbeat chunks (to `/test` and `/sse` streams) or SSE keep-alives.
    fn tick(&mut self, heartbeat: bool) {
        let keys: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| match c.phase {
                Phase::Stream(Kind::Sse, _) => true,
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
            } else {
                transport::sse_keepalive(&mut self.out, framing);
            }
            self.send_out(key);
        }
    }

    /// Shutdown: end each stream with its terminator (or an empty long-poll
    /// answer), one best-effort write, then close everything.
    fn end_all(&mut self) {
        let _ = self.poll.registry().deregister(&mut self.listener);
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            self.out.clear();
            match self.conns[key].phase {
                Phase::Stream(_, framing) => self.out.extend_from_slice(framing.terminator()),
                Phase::PollWait { .. } => transport::poll_answer(
                    &mut self.out,
                    &mut self.frame,
                    None,
                    None,
                    std::iter::empty(),
                    false,
                ),
                Phase::Head | Phase::Closing | Phase::Answered => {}
            }
            if !self.out.is_empty() {
                let max_pending = self.shared.config.max_pending;
                let _ = self.conns[key].send(&self.out, max_pending);
                let _ = self.conns[key].flush();
            }
            self.close(key, Close::Done);
        }
    }
}
