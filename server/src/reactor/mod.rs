//! A subscriber reactor: one thread, one `mio::Poll`, the accepted
//! connections of this thread in a slab of compact records (see `conn`).
//!
//! Idle connections are not tasks: a connection costs its record, its
//! router slot and the kernel's socket, nothing else. The reactor reads only
//! when the kernel says a socket is readable, into one scratch buffer for
//! the whole thread; the only readable event an idle stream sees is its
//! client closing it (EOF, reset), which logs it out at once.
//!
//! Messages arrive from the router as one [`Batch`] per wake-up (a channel
//! plus a `mio::Waker`); the reactor frames each and writes it straight to
//! the socket. While the reactor waits, a publisher may take its lock and
//! write a small batch itself, without waking it (`direct`). What the
//! socket does not take is kept in the record and written on WRITABLE;
//! past `--max-pending` unsent bytes the connection is closed as a slow
//! consumer, so one slow reader never delays the others and costs at most
//! its buffer (compacted lazily, so up to ~4x `--max-pending`: 256 KiB at
//! the default), freed once drained. The batches waiting for a
//! reactor are bounded too: publishers wait while any reactor has more than
//! 64K deliveries unwritten (see `admin`).
//!
//! Timers are per reactor, not per connection: three FIFOs of deadlines
//! (header timeout, poll timeout, and the write deadline of a last answer
//! the socket has not taken) and one tick for heartbeats and SSE
//! keep-alives that walks the slab.
//!
//! This file holds the loop and a connection's life (accept, close); the
//! read path is in `read`, serving a request in `requests`, replays paced
//! by the reader in `replay`, the write path in `delivery`, a publisher's
//! own writes in `direct`, the timers and shutdown in `timers`, what a
//! `/ws` client sends in `ws`; every byte to and from a socket passes
//! through `link`.

mod conn;
mod deadlines;
mod delivery;
mod direct;
mod handoff;
mod link;
mod read;
mod replay;
mod requests;
mod timers;
mod ws;

use std::io;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Registry, Token};
use slab::Slab;

pub(crate) use conn::Conn;
use conn::Phase;
use deadlines::Deadlines;
use handoff::{Handoff, Parcel, HANDOFF_TOKENS};

use crate::config::Config;
use crate::router::{Batch, ConnRef, Queued, Router};
use crate::stats::{LocalCounts, Stats};
use c1m_http::{write_error, Reject, Status};

const LISTENER: Token = Token(0);
pub(crate) const WAKER: Token = Token(1);
const FIRST_CONN: usize = 2;

/// Batches merged into one pass of grouped writes.
const MAX_BATCHES_PER_PASS: usize = 64;

/// Passes of grouped writes before the loop looks at its sockets and timers
/// again (1,024 batches).
const MAX_PASSES_PER_WAKEUP: usize = 16;

/// Bytes read per read call, into the reactor's one scratch buffer.
const SCRATCH: usize = 64 * 1024;

/// What every reactor shares.
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) router: Arc<Router>,
    pub(crate) stats: Arc<Stats>,
    pub(crate) shutdown: AtomicBool,
    /// Set once EMFILE/ENFILE has been reported, so it is reported once.
    pub(crate) exhaustion_reported: AtomicBool,
    /// Tests only: makes every reactor fail at its next wake-up, to test
    /// what a reactor's death does to the server.
    #[cfg(test)]
    pub(crate) fault: AtomicBool,
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

pub(crate) struct Reactor {
    index: u16,
    /// This reactor's epoll registrations (its `Poll` is waited on outside
    /// the lock, by [`run`]; see `direct`).
    registry: Registry,
    listener: TcpListener,
    rx: mpsc::Receiver<Batch>,
    /// Deliveries not yet handled, shared with the router (backpressure).
    queued: Arc<Queued>,
    /// Reused between wake-ups: the batches taken and their delivery order.
    batches: Vec<Batch>,
    order: Vec<(u32, u32, u32)>,
    conns: Slab<Conn>,
    next_gen: u32,
    scratch: Vec<u8>,
    /// A `/ws` client's frames being read (a kept partial frame and the
    /// new bytes): per reactor, empty at rest.
    ws_input: Vec<u8>,
    out: Vec<u8>,
    frame: Vec<u8>,
    header_deadlines: Deadlines,
    poll_deadlines: Deadlines,
    /// A last answer (a refusal, a long-poll answer) waiting for the socket
    /// to take it: a client that never reads it is closed at
    /// `--header-timeout`, as long as it had to send its request. Only
    /// connections so waiting have an entry.
    write_deadlines: Deadlines,
    next_heartbeat: Option<Instant>,
    next_keepalive: Instant,
    accept_paused: bool,
    /// The mailbox still held batches when the last drain stopped.
    mail_left: bool,
    /// (key, gen) of connections to resume at the end of the loop pass
    /// (see `next_request`): per reactor, empty at rest.
    ready: Vec<(usize, u32)>,
    local: LocalCounts,
    shared: Arc<Shared>,
    /// In a worker of a group: moving connections to their id's owner.
    handoff: Option<Handoff>,
    /// Reused: connections just handed in.
    parcels: Vec<Parcel>,
}

impl Reactor {
    /// A reactor over `poll` (whose waker, `WAKER`, the router holds),
    /// accepting from `listener`; [`run`] waits on the same `poll`.
    pub(crate) fn new(
        index: u16,
        poll: &Poll,
        listener: std::net::TcpListener,
        rx: mpsc::Receiver<Batch>,
        queued: Arc<Queued>,
        shared: Arc<Shared>,
    ) -> io::Result<Self> {
        listener.set_nonblocking(true)?;
        let mut listener = TcpListener::from_std(listener);
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let now = Instant::now();
        let config = &shared.config;
        let handoff = config
            .membership
            .map(|m| Handoff::new(m, index, poll.registry()))
            .transpose()?;
        Ok(Self {
            index,
            registry: poll.registry().try_clone()?,
            listener,
            rx,
            queued,
            batches: Vec::new(),
            order: Vec::new(),
            conns: Slab::new(),
            next_gen: 0,
            scratch: vec![0; SCRATCH],
            ws_input: Vec::new(),
            out: Vec::with_capacity(4096),
            frame: Vec::with_capacity(4096),
            header_deadlines: Deadlines::new(config.header_timeout),
            poll_deadlines: Deadlines::new(config.poll_timeout),
            write_deadlines: Deadlines::new(config.header_timeout),
            next_heartbeat: config.heartbeat.map(|h| now + h),
            next_keepalive: now + config.sse_keepalive,
            accept_paused: false,
            mail_left: false,
            ready: Vec::new(),
            local: LocalCounts::default(),
            shared,
            handoff,
            parcels: Vec::new(),
        })
    }

    /// When the next wait must end: at once while work is left over,
    /// else at the next timer (`None`: only an event wakes it).
    fn timeout(&self) -> Option<Duration> {
        if self.mail_left || !self.ready.is_empty() {
            Some(Duration::ZERO)
        } else {
            self.next_timer()
                .map(|at| at.saturating_duration_since(Instant::now()))
        }
    }

    /// One pass over what `poll` returned, then the mailbox, timers and
    /// resumptions; `Break` once shut down (every stream ended) or failed.
    fn pass(&mut self, events: &Events) -> ControlFlow<io::Result<()>> {
        #[cfg(test)]
        if self.shared.fault.load(Relaxed) {
            return ControlFlow::Break(Err(io::Error::other("injected fault")));
        }
        for event in events.iter() {
            match event.token() {
                LISTENER => self.accept(),
                WAKER => self.drain_mailbox(),
                Token(t) if t >= HANDOFF_TOKENS => self.on_handoff(t),
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
        if self.mail_left {
            self.drain_mailbox();
        }
        self.on_timers(Instant::now());
        self.resume_ready();
        self.local.flush(&self.shared.stats);
        if self.shared.shutdown.load(Relaxed) {
            self.end_all();
            self.local.flush(&self.shared.stats);
            return ControlFlow::Break(Ok(()));
        }
        ControlFlow::Continue(())
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
        loop {
            let (stream, _) = match self.listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    if let Some(exhaustion) = c1m_common::is_exhaustion(&e) {
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
            let session = match &self.shared.config.tls {
                None => None,
                Some(tls) => match rustls::server::UnbufferedServerConnection::new(tls.0.clone()) {
                    Ok(session) => Some(c1m_tls::ServerSession::new(session)),
                    Err(_) => {
                        self.local.tls_failures += 1;
                        continue;
                    }
                },
            };
            if self.register(stream, session).is_some() {
                self.local.accepted += 1;
            }
        }
    }

    /// Takes a new connection in (accepted here or handed in): a record in
    /// the slab, under the header deadline; above `--max-conns` a 503 and
    /// the close instead. `tls`: the session of a connection to a TLS
    /// listener (never one handed in: `--tls-cert` refuses `--workers`).
    /// Returns its slab key.
    fn register(
        &mut self,
        mut stream: mio::net::TcpStream,
        tls: Option<c1m_tls::ServerSession>,
    ) -> Option<usize> {
        let stats = &self.shared.stats;
        if stats.connections.load(Relaxed) >= self.shared.config.max_conns {
            self.out.clear();
            write_error(
                &Reject::new(Status::ServiceUnavailable, "server is at --max-conns"),
                &mut self.out,
            );
            // Take the request if it is already here: closing a socket
            // with unread bytes sends a reset instead of a clean end.
            let _ = io::Read::read(&mut stream, &mut self.scratch);
            // Best effort: a few hundred bytes fit any fresh socket buffer.
            let _ = io::Write::write(&mut stream, &self.out);
            self.local.over_capacity += 1;
            return None;
        }
        let _ = stream.set_nodelay(true);
        let gen = self.next_gen;
        self.next_gen = self.next_gen.wrapping_add(1);
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        self.registry
            .register(&mut stream, Token(key + FIRST_CONN), Interest::READABLE)
            .ok()?;
        let mut conn = Conn::new(stream, gen);
        if let Some(session) = tls {
            conn.start_tls(session);
        }
        entry.insert(conn);
        stats.connections.fetch_add(1, Relaxed);
        self.header_deadlines.push(Instant::now(), key, gen);
        Some(key)
    }

    fn logout(&mut self, key: usize) {
        let conn = &self.conns[key];
        if conn.logged_in() {
            let me = self.conn_ref(key, conn.gen);
            for &id in std::iter::once(&conn.id).chain(conn.more_ids()) {
                self.shared.router.logout(id, me);
            }
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
        if why == Close::Done {
            // A TLS session ends with its close_notify (best effort).
            conn.end_tls();
            let _ = conn.flush();
        }
        let _ = self.registry.deregister(conn.link.source());
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
}

/// Runs `reactor` until shutdown, then ends every stream cleanly and closes
/// it. The wait on `poll` holds no lock; each pass over what it returned
/// holds the reactor's, which a publisher takes between passes to write a
/// small batch itself (`direct`).
pub(crate) fn run(reactor: &Mutex<Reactor>, mut poll: Poll) -> io::Result<()> {
    let mut events = Events::with_capacity(1024);
    let mut timeout = lock(reactor).timeout();
    loop {
        if let Err(e) = poll.poll(&mut events, timeout) {
            if e.kind() == io::ErrorKind::Interrupted {
                timeout = lock(reactor).timeout();
                continue;
            }
            return Err(e);
        }
        let mut reactor = lock(reactor);
        if let ControlFlow::Break(ended) = reactor.pass(&events) {
            return ended;
        }
        timeout = reactor.timeout();
    }
}

/// The reactor, whoever held it last: a publisher that panicked writing
/// left every record whole (each write is one call), so it is still usable.
fn lock(reactor: &Mutex<Reactor>) -> MutexGuard<'_, Reactor> {
    reactor.lock().unwrap_or_else(|e| e.into_inner())
}
