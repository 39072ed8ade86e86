//! A worker: one thread, one `mio::Poll`, a slab of connection records.
//!
//! Idle connections are not tasks. Each is a [`Conn`] in a `Slab`, touched
//! only when epoll says its socket is ready; bytes are read into one scratch
//! buffer per worker and parsed in place. A record at rest holds:
//!
//! | field | bytes | why |
//! | --- | --- | --- |
//! | socket | 4 | the descriptor |
//! | index | 4 | which connection of the plan: gives its id, and reconnects |
//! | state, attempts, written, port | 6 (+2 padding) | connect phase, backoff step, request offset, destination port |
//! | started_us | 8 | connect start: the times to connect, head and first byte, the timeout, and a WebSocket's key |
//! | receiver | 40 | the stage (12, padded to 16: nothing until the head comes; then the HTTP body decoder (the codec's, 5) and flags (SSE line, first byte seen), or the WebSocket frame decoder (12)), last seq (16), spill (8) |
//!
//! 64 bytes, 72 with the slab's entry tag (`record_size` test, release
//! build), against a budget of 1,024 B per connection; the same for a
//! WebSocket stream. A TLS stream adds its session in the spill (see
//! `tls`). Measured as resident
//! memory growth over held connections (`benches/memory.sh`, comet-server on
//! loopback, median of 3): 87-94 B at 10,000 and 72-75 B at 19,000 (two
//! sessions, other builds running; growth since the baseline over the
//! peak, which spreads the ~0.5 MiB the first connections pay once: the
//! summary now takes the growth from half way, [`crate::fleet`]).
//! What the kernel keeps (socket buffers, epoll item, ~4-5 KB a socket) is
//! not ours to shrink and is not counted.
//!
//! Per worker, not per connection: the scratch buffer ([`READ_BUF`]), the
//! request buffer, a FIFO of connect deadlines (only attempts in flight;
//! every connect has the same timeout, so FIFO order is deadline order), a
//! heap of pending reconnects, and the [`Tally`].

use crate::addr::{start_connect, Sources};
use crate::class::ErrorClass;
use crate::failure;
use crate::pacing::Pacer;
use crate::plan::Unit;
use crate::stats::{Snapshot, Tally};
use crate::stream::{Mode, Receiver, StreamError};
use crate::target::ws_key;
use mio::event::Event;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use slab::Slab;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The scratch read buffer, one per worker.
pub(crate) const READ_BUF: usize = 64 * 1024;
/// How often a worker publishes its counters and histograms.
pub(crate) const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// Longest sleep in `poll`, so stop requests and timeouts are seen.
const MAX_WAIT: Duration = Duration::from_millis(50);
/// Cap on the reconnect backoff (before its jitter).
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// What every worker of a process shares with the controller.
#[derive(Debug, Default)]
pub(crate) struct Control {
    /// Set to end the run: workers close their connections and return.
    pub(crate) stop: AtomicBool,
    /// `--pause-every` steps released so far.
    pub(crate) gate: AtomicU64,
}

/// Where a worker publishes what it has counted.
pub(crate) type Slot = Mutex<Snapshot>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum State {
    Connecting,
    Sending,
    Receiving,
}

/// One connection at rest (see the module doc for its cost).
struct Conn {
    sock: TcpStream,
    index: u32,
    state: State,
    attempts: u8,
    written: u16,
    /// Destination port, for the `Host` header (fills padding: free).
    port: u16,
    /// When this attempt started (microseconds on the worker's clock).
    started_us: u64,
    rx: Receiver,
}

impl Conn {
    /// The TLS session, on an `https://` or `wss://` stream.
    fn tls(&mut self) -> Option<&mut c1m_tls::ClientSession> {
        self.rx.spill.as_mut()?.tls.as_deref_mut()
    }

    /// Reads what has arrived (decrypted, over TLS).
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.rx.spill.as_mut().and_then(|s| s.tls.as_deref_mut()) {
            Some(session) => session.read(&mut self.sock, buf),
            None => self.sock.read(buf),
        }
    }

    /// Sends `data`, keeping in the spill what the socket does not take
    /// (the TLS session keeps its own ciphertext) until [`Conn::flush`].
    fn send(&mut self, data: &[u8]) -> io::Result<()> {
        if let Some(session) = self.rx.spill.as_mut().and_then(|s| s.tls.as_deref_mut()) {
            return session.write(&mut self.sock, data);
        }
        let spill = &mut self.rx.spill;
        if spill.as_ref().is_some_and(|s| !s.unsent.is_empty()) {
            spill
                .get_or_insert_with(Box::default)
                .unsent
                .extend_from_slice(data);
            return self.flush();
        }
        let mut written = 0;
        while written < data.len() {
            match self.sock.write(&data[written..]) {
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if written < data.len() {
            spill.get_or_insert_with(Box::default).unsent = data[written..].to_vec();
        }
        Ok(())
    }

    /// Writes what is waiting for the socket, after WRITABLE.
    fn flush(&mut self) -> io::Result<()> {
        let Some(spill) = self.rx.spill.as_deref_mut() else {
            return Ok(());
        };
        if let Some(session) = spill.tls.as_deref_mut() {
            return session.flush(&mut self.sock).map(drop);
        }
        while !spill.unsent.is_empty() {
            match self.sock.write(&spill.unsent) {
                Ok(n) => {
                    spill.unsent.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        spill.unsent = Vec::new();
        crate::messages::release_if_idle(&mut self.rx.spill);
        Ok(())
    }
}

pub(crate) struct Worker {
    unit: Unit,
    control: Arc<Control>,
    slot: Arc<Slot>,
    poll: Poll,
    conns: Slab<Conn>,
    buf: Vec<u8>,
    request: Vec<u8>,
    /// What a read's frames must answer (Pongs, a Close), per worker.
    replies: Vec<u8>,
    tally: Tally,
    sources: Sources,
    pacer: Pacer,
    /// Next connection of the plan to start, counted from `unit.indices.first`.
    next_index: u64,
    /// Attempts before their response head.
    connecting: u64,
    deadlines: VecDeque<(usize, u64)>,
    /// (due_us, index, attempts) of connections waiting to reconnect.
    reconnects: BinaryHeap<Reverse<(u64, u32, u8)>>,
    epoch: Instant,
    /// Wall clock of the first connect and of the latest open (see
    /// [`Snapshot::first_start_us`]).
    first_start_us: u64,
    last_open_us: u64,
    /// Streams open when the stop came, before [`Worker::close_all`].
    held: u64,
}

impl Worker {
    /// Allocates everything the worker needs up front, so memory measured
    /// after this is what connections cost.
    pub(crate) fn new(unit: Unit, control: Arc<Control>, slot: Arc<Slot>) -> io::Result<Self> {
        let sources = Sources::new(
            unit.bind_mode,
            unit.source_ips.clone(),
            unit.local_ports,
            unit.target.destinations(),
        );
        Ok(Self {
            pacer: Pacer::new(unit.rate),
            // Untouched capacity is not resident: it costs address space only.
            conns: Slab::with_capacity(unit.indices.len() as usize),
            unit,
            control,
            slot,
            poll: Poll::new()?,
            // Filled, not zeroed: a zeroed allocation gets its pages only
            // when first read into, after the baseline RSS, and 64 KiB per
            // worker would be charged to the first few connections.
            buf: vec![0xa5; READ_BUF],
            request: Vec::with_capacity(512),
            replies: Vec::new(),
            tally: Tally::new(),
            sources,
            next_index: 0,
            connecting: 0,
            deadlines: VecDeque::new(),
            reconnects: BinaryHeap::new(),
            epoch: Instant::now(),
            first_start_us: u64::MAX,
            last_open_us: 0,
            held: 0,
        })
    }

    fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    /// Runs until [`Control::stop`], then closes every connection cleanly.
    pub(crate) fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let mut last_flush = Instant::now();
        while !self.control.stop.load(Ordering::Relaxed) {
            let now = self.now_us();
            self.expire(now);
            let wait = self.launch(now);
            match self.poll.poll(&mut events, Some(wait)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            for event in events.iter() {
                self.handle(event);
            }
            if last_flush.elapsed() >= FLUSH_EVERY {
                self.flush(false);
                last_flush = Instant::now();
            }
        }
        self.held = self.tally.counters.open();
        self.close_all();
        self.flush(true);
        Ok(())
    }

    fn gate_limit(&self) -> u64 {
        match self.unit.pause_step {
            Some(step) => (self.control.gate.load(Ordering::Relaxed) + 1).saturating_mul(step),
            None => u64::MAX,
        }
    }

    /// Starts due reconnects, then new connections, as pacing allows;
    /// returns how long `poll` may sleep.
    fn launch(&mut self, now: u64) -> Duration {
        let max = self.unit.max_connecting;
        while let Some(&Reverse((due, index, attempts))) = self.reconnects.peek() {
            if due > now || self.connecting >= max || !self.pacer.try_take(now) {
                break;
            }
            self.reconnects.pop();
            self.open(index, attempts, now);
        }
        let limit = self.gate_limit().min(self.unit.indices.len());
        while self.next_index < limit && self.connecting < max && self.pacer.try_take(now) {
            self.open(self.next_index as u32, 0, now);
            self.next_index += 1;
        }
        let mut wait = MAX_WAIT;
        if self.next_index < limit && self.connecting < max {
            wait = wait.min(self.pacer.wait().max(Duration::from_millis(1)));
        }
        if let Some(&Reverse((due, _, _))) = self.reconnects.peek() {
            wait = wait.min(Duration::from_micros(due.saturating_sub(now)));
        }
        wait
    }

    /// Opens connection `index`: socket, bind, non-blocking connect.
    fn open(&mut self, index: u32, attempts: u8, now: u64) {
        self.tally.counters.started += 1;
        if self.first_start_us == u64::MAX {
            self.first_start_us = c1m_common::unix_us_now();
        }
        let mut skips = 0;
        let (sock, port) = loop {
            let route = self.sources.next_route();
            let dest = self.unit.target.destination(route.destination);
            match start_connect(self.unit.bind_mode, route.source, dest) {
                Ok(sock) => break (sock, dest.port()),
                Err(e) if e.pair_taken() && skips < self.sources.max_skips() => {
                    self.tally.counters.addr_retries += 1;
                    skips += 1;
                }
                Err(e) => {
                    self.tally
                        .failures
                        .note(e.class(), || format!("{dest}: {e}"));
                    return self.failed(index, attempts, e.class(), now);
                }
            }
        };
        // Not the loop's `now`: a batch of connects takes a while, and the
        // connect time should not include the ones before it.
        let started_us = self.now_us();
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        let mut conn = Conn {
            sock,
            index,
            state: State::Connecting,
            attempts,
            written: 0,
            port,
            started_us,
            rx: Receiver::default(),
        };
        if let Some(config) = &self.unit.tls {
            match config.session() {
                Ok(session) => {
                    conn.rx.spill.get_or_insert_with(Box::default).tls = Some(Box::new(session));
                }
                Err(e) => return self.failed(index, attempts, ErrorClass::of(&e), now),
            }
        }
        if let Err(e) = self.poll.registry().register(
            &mut conn.sock,
            Token(key),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            return self.failed(index, attempts, ErrorClass::of(&e), now);
        }
        self.deadlines.push_back((key, started_us));
        entry.insert(conn);
        self.connecting += 1;
    }

    /// Counts a failure and schedules a reconnect if asked to.
    fn failed(&mut self, index: u32, attempts: u8, class: ErrorClass, now: u64) {
        self.tally.counters.fail(class);
        let timeout = self.unit.connect_timeout;
        self.tally
            .failures
            .note(class, || failure::plain(class, timeout));
        self.schedule_reconnect(index, attempts, now);
    }

    fn schedule_reconnect(&mut self, index: u32, attempts: u8, now: u64) {
        let Some(base) = self.unit.reconnect else {
            return;
        };
        if self.control.stop.load(Ordering::Relaxed) {
            return;
        }
        let backoff = base.saturating_mul(1 << attempts.min(16)).min(MAX_BACKOFF);
        // Jitter: a uniform draw in [backoff/2, backoff], so connections
        // dropped together (a server that died) come back spread over half
        // a backoff, not all in the same millisecond (a thundering herd on
        // the restarted server).
        let backoff = backoff.mul_f64(rand::random_range(0.5..=1.0));
        let due = now + backoff.as_micros() as u64;
        self.reconnects
            .push(Reverse((due, index, attempts.saturating_add(1))));
    }

    /// Ends connection `key`; `class` is why, `None` for our own clean close.
    fn end(&mut self, key: usize, class: Option<ErrorClass>) {
        let conn = self.conns.remove(key);
        if conn.rx.is_open() {
            self.tally.counters.closed += 1;
        } else {
            self.connecting -= 1;
        }
        if let Some(class) = class {
            let now = self.now_us();
            // A held connection that drops starts its backoff afresh.
            self.failed(conn.index, conn.attempts, class, now);
        }
    }

    /// Ends connection `key` on a socket error, keeping its words (and the
    /// destination) if it is the first of its class.
    fn socket_failed(&mut self, key: usize, e: &io::Error) {
        let class = ErrorClass::of(e);
        let (ip, port) = (self.unit.target.ip, self.conns[key].port);
        self.tally
            .failures
            .note(class, || format!("{ip}:{port}: {e}"));
        self.end(key, Some(class));
    }

    /// Times out attempts older than `--connect-timeout`.
    fn expire(&mut self, now: u64) {
        let timeout = self.unit.connect_timeout.as_micros() as u64;
        while let Some(&(key, started)) = self.deadlines.front() {
            let pending = self
                .conns
                .get(key)
                .is_some_and(|c| c.started_us == started && !c.rx.is_open());
            if pending && now.saturating_sub(started) < timeout {
                break;
            }
            self.deadlines.pop_front();
            if pending {
                self.end(key, Some(ErrorClass::Timeout));
            }
        }
        // Entries of attempts that already finished wait for their turn at
        // the front; drop them early so the queue stays the size of the
        // attempts in flight rather than of a timeout's worth of connects.
        if self.deadlines.len() > 2 * self.connecting as usize + 1024 {
            let conns = &self.conns;
            self.deadlines.retain(|&(k, s)| {
                conns
                    .get(k)
                    .is_some_and(|c| c.started_us == s && !c.rx.is_open())
            });
            self.deadlines.shrink_to_fit();
        }
    }

    fn handle(&mut self, event: &Event) {
        let key = event.token().0;
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.state == State::Connecting {
            match connected(&conn.sock, event) {
                Ok(false) => return,
                Ok(true) => {
                    let took = self.epoch.elapsed().as_micros() as u64 - conn.started_us;
                    self.tally.timings.connect.saturating_record(took);
                    self.tally.counters.connected += 1;
                    conn.state = State::Sending;
                }
                Err(e) => return self.socket_failed(key, &e),
            }
        }
        if conn.state == State::Sending {
            match self.send_request(key) {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => return self.socket_failed(key, &e),
            }
        }
        let conn = &mut self.conns[key];
        if event.is_writable() && conn.state == State::Receiving {
            if let Err(e) = conn.flush() {
                return self.socket_failed(key, &e);
            }
        }
        if event.is_readable() || event.is_read_closed() || event.is_error() {
            self.receive(key, event.is_read_closed());
        }
    }

    /// Writes (the rest of) the request; `Ok(true)` once it is all sent.
    fn send_request(&mut self, key: usize) -> io::Result<bool> {
        let conn = &mut self.conns[key];
        let port = conn.port;
        let id = self
            .unit
            .ids
            .nth_wrapping(self.unit.indices.first + u64::from(conn.index));
        self.request.clear();
        let key = ws_key(conn.index, conn.started_us);
        let sse = self.unit.expect.mode == Mode::Sse;
        let ws = (&key, self.unit.expect.subprotocol.as_deref());
        self.unit
            .target
            .write_request(id, port, sse, ws, &mut self.request);
        if conn.tls().is_some() {
            // The session takes it all, and sends it once its handshake is done.
            conn.send(&self.request)?;
            conn.state = State::Receiving;
            return Ok(true);
        }
        while usize::from(conn.written) < self.request.len() {
            match conn.sock.write(&self.request[usize::from(conn.written)..]) {
                Ok(n) => conn.written += n as u16,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        conn.state = State::Receiving;
        Ok(true)
    }

    /// Reads until the socket is drained, feeding the stream parser.
    fn receive(&mut self, key: usize, read_closed: bool) {
        let expect = self.unit.expect.clone();
        let over_tls = self.unit.tls.is_some();
        loop {
            let conn = &mut self.conns[key];
            let n = match conn.read(&mut self.buf) {
                Ok(0) => return self.end(key, Some(ErrorClass::ClosedByServer)),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return self.socket_failed(key, &e),
            };
            // The receive time of what this read carries, taken per read
            // (a vDSO call, tens of ns) rather than once per poll batch, so
            // the time spent on the batch's earlier reads is not left out of
            // the latency.
            self.tally.now_us = c1m_common::unix_us_now();
            let (was_open, had_body) = (conn.rx.is_open(), conn.rx.has_body());
            self.replies.clear();
            let fed = conn.rx.feed(
                &self.buf[..n],
                (&expect, (conn.index, conn.started_us)),
                &mut self.tally,
                &mut self.replies,
            );
            if !self.replies.is_empty() {
                if let Err(e) = conn.send(&self.replies) {
                    return self.socket_failed(key, &e);
                }
            }
            let since_start = || self.epoch.elapsed().as_micros() as u64 - conn.started_us;
            if !was_open && conn.rx.is_open() {
                self.tally.timings.head.saturating_record(since_start());
            }
            if !had_body && conn.rx.has_body() {
                self.tally
                    .timings
                    .first_byte
                    .saturating_record(since_start());
            }
            // The head may have arrived in this read even when what follows
            // it failed (a bad chunk-size line in the same read): the attempt
            // is over either way, so it leaves `connecting` before `end`
            // counts it as an opened stream that closed.
            if !was_open && conn.rx.is_open() {
                self.connecting -= 1;
                conn.attempts = 0;
                self.last_open_us = self.tally.now_us;
            }
            if let Err(e) = fed {
                let class = ErrorClass::of_stream(e);
                if let StreamError::Status(code) = e {
                    self.tally.failures.status(code);
                }
                let bytes = conn.rx.failed_bytes(&self.buf[..n]);
                self.tally
                    .failures
                    .note(class, || failure::describe(e, bytes));
                return self.end(key, Some(class));
            }
            if conn.rx.is_ended() {
                return self.end(key, Some(ErrorClass::ClosedByServer));
            }
            // A short read drained the socket, so the would-block read is
            // saved. Safe with edge-triggered readiness (audited for issue
            // 13): a TCP read returns less than asked only when the receive
            // queue is empty, data or a FIN arriving after it raise a new
            // edge, and a FIN that had already arrived was reported with
            // this event as read-closed, which makes the loop read to EOF.
            // Not over TLS: a short read of plaintext says nothing of the
            // ciphertext still in the socket.
            if n < self.buf.len() && !read_closed && !over_tls {
                return;
            }
        }
    }

    /// Closes every connection at the end of the run: a WebSocket with a
    /// Close frame (1000), a TLS session with its close_notify, each one
    /// best-effort write.
    fn close_all(&mut self) {
        let mut close = Vec::new();
        let websocket = self.unit.expect.websocket;
        for mut conn in self.conns.drain() {
            if conn.rx.is_open() {
                self.tally.counters.closed += 1;
                if websocket && !conn.rx.is_ended() {
                    close.clear();
                    let mask = Some((conn.index ^ 0x5bd1_e995).to_le_bytes());
                    c1m_http::ws::write_close(
                        &mut close,
                        c1m_http::ws::CloseCode::NORMAL,
                        "",
                        mask,
                    );
                    let _ = conn.send(&close);
                }
            }
            if let Some(session) = conn.tls() {
                // Best effort: a session that failed has nothing to close.
                let _ = session.close();
                let _ = conn.flush();
            }
        }
        self.connecting = 0;
        self.reconnects.clear();
    }

    /// Publishes counters, gauges and the histograms recorded since the
    /// last flush.
    fn flush(&mut self, finished: bool) {
        let limit = self.unit.indices.len();
        let gate = self.gate_limit();
        let mut slot = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        slot.counters = self.tally.counters;
        slot.connecting = self.connecting;
        slot.waiting = self.reconnects.len() as u64;
        slot.started_all = self.next_index >= limit;
        // A unit that has started everything counts as paused too: units
        // differ by one connection, so one may finish its slice exactly at a
        // step while the others wait at it.
        slot.paused = self.next_index >= limit.min(gate) && self.connecting == 0;
        slot.finished = finished;
        slot.held = self.held;
        slot.failures.clone_from(&self.tally.failures);
        slot.first_start_us = self.first_start_us;
        slot.last_open_us = self.last_open_us;
        slot.timings.add(&self.tally.timings);
        self.tally.timings.reset();
    }
}

/// After an event on a connecting socket: `true` once the handshake
/// completed, `false` if it is still in progress, or its error. Linux
/// reports a non-blocking connect's end as writable (or error), so
/// SO_ERROR alone tells which; no getpeername is needed.
fn connected(sock: &TcpStream, event: &Event) -> io::Result<bool> {
    if let Some(e) = sock.take_error()? {
        return Err(e);
    }
    Ok(event.is_writable())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The slab stores `enum Entry<T> { Vacant(usize), Occupied(T) }`
    /// (private); this mirror has the same layout.
    #[allow(dead_code)]
    enum SlabEntry {
        Vacant(usize),
        Occupied(Conn),
    }

    #[test]
    fn record_size() {
        let record = std::mem::size_of::<Conn>();
        let entry = std::mem::size_of::<SlabEntry>();
        // mio keeps a selector id beside the descriptor in debug builds.
        let debug_extra = if cfg!(debug_assertions) { 16 } else { 0 };
        assert!(record <= 64 + debug_extra, "Conn is {record} bytes");
        assert!(entry <= 72 + debug_extra, "slab entry is {entry} bytes");
    }
}
