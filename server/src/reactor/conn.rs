//! The connection record: what the server keeps for one subscriber.
//!
//! At rest (a `/test` or `/sse` stream with nothing unsent) a record is:
//!
//! | field | bytes | why |
//! | --- | --- | --- |
//! | `link` | 4 | the byte stream: today the socket (a file descriptor), see `link` |
//! | `phase` | 2 | reading the head, streaming `/test` or `/sse` (chunked or close-delimited), waiting long-poll, answered, closing |
//! | `stray` | 2 | bytes the client sent after its request; past [`MAX_STRAY`] it is closed |
//! | `gen` | 4 | generation of the slab slot, so a delivery for a closed connection whose slot was reused is dropped |
//! | `ticks` | 4 | Part 1 heartbeat counter (`Chunk N for id X`) |
//! | `id` | 8 | the subscriber id (the first, for a stream of several), for logout and heartbeats |
//! | `side` | 8 | `None` at rest; the [`Side`] allocation while the connection needs one |
//!
//! `size_of::<Conn>()` is 32 bytes in release builds, and so is its slab
//! slot (the slot's vacant/occupied tag fits in a niche of `phase`); tests
//! pin both. `stray` lives in what would otherwise be padding. There is no
//! read buffer (reads go to the reactor's one scratch buffer), no timer
//! (deadlines are per-reactor FIFOs, heartbeats one per-reactor tick) and
//! no task or channel.
//!
//! What only some connections need lives in one [`Side`] allocation (an
//! 88-byte box, plus the buffers it points to), made when first needed and
//! freed as soon as nothing in it is: the output the socket has not taken
//! (while waiting for WRITABLE), the input not consumed yet (a request
//! head that came in pieces, requests pipelined behind a long-poll),
//! while an SSE replay is under way, where it goes on from, and the ids of
//! a stream of several besides the first (`/sse/1,2,3`). Later transports
//! keep their state there too (a TLS session, a WebSocket decoder), so a
//! plain connection pays nothing for them. By state:
//!
//! | state | record | side |
//! | --- | --- | --- |
//! | idle stream or waiting long-poll | 32 | none |
//! | head arriving in pieces, or requests pipelined behind a long-poll | 32 | 88 + the bytes so far (at most 16 KiB) |
//! | socket full | 32 | 88 + the unsent bytes (at most `--max-pending`, ~4x with lazy compaction) |
//! | SSE replay under way | 32 | 88 + the step being written (about `--max-pending` / 2) |
//! | a stream of N ids, at rest | 32 | 88 + 8 x (N - 1): the side stays while the connection lives |
//! | a TLS connection, at rest | 32 | 88 + the boxed `c1m_tls` session (~3.8 KB measured, no buffer): the side stays while the connection lives |
//!
//! What an idle connection costs in user space, all told:
//!
//! | what | bytes | note |
//! | --- | --- | --- |
//! | slab slot | 32 | the slab doubles, so 32-64 per connection |
//! | router map slot | 49 | `u64` key + 40-byte entry + control byte; the map keeps up to 1/8 free and doubles, so ~55-110 |
//! | header deadline | 16 | only for the first `--header-timeout` (10 s), then freed |
//!
//! Each id of a stream past the first costs, at rest: 8 bytes in the side
//! allocation (which a stream of several ids keeps: 88 bytes plus a 16-byte
//! heap block header for the two allocations), and the id's router map
//! slot (~55-110 bytes, as any id; plus 12 if the id has other
//! connections). A stream of 100 ids: ~100 + 800 + 100 x ~80 = ~9 KB,
//! against ~100 x ~140 B for 100 streams of one id, which also pay 100
//! records and 100 kernel sockets (~9-10 KB each).
//!
//! Measured (`benches/idle_memory.sh`, release, system allocator, RSS
//! after - before over the count, median of 3): **167 B at 10,000 and 163 B
//! at 19,000 connections** one second after the last login (169 B and 159 B
//! before the review's changes), and **150 B and 144 B** once the header
//! deadlines have expired (`SETTLE=12`). After the side allocation and the
//! link replaced the pending box and the raw socket: 192 B and 162 B, on a
//! busier machine (182 B and 172 B just before; the spread of a run is
//! ~20 B). With mimalloc it was 2,766 B and
//! 1,752 B, so the server keeps the system allocator. The kernel's two socket buffers and
//! the epoll item (~9-10 KB per loopback connection) are not in these
//! figures: they are kernel memory.

use std::io;
use std::num::NonZeroU64;

use c1m_tls::ServerSession;
use mio::net::TcpStream;

use super::link::Link;
use crate::transport::{Framing, Kind};

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Reading the request head (under the header deadline).
    Head,
    /// A `/test` or `/sse` stream, logged in to the router, and how its
    /// body is delimited.
    Stream(Kind, Framing),
    /// A long-poll waiting for a message, logged in to the router; whether
    /// the connection stays open for the next request after the answer.
    PollWait { keep_alive: bool },
    /// The last answer is written or being written; closed once it is out.
    Closing,
    /// A long-poll answer is being written; once it is out the connection
    /// waits for the client's next request (keep-alive).
    Answered,
}

/// What only some connections need, allocated while one of them is needed.
#[derive(Debug, Default)]
pub(crate) struct Side {
    /// Output the socket has not taken yet; the first `sent` bytes of it
    /// are written.
    out: Vec<u8>,
    sent: usize,
    /// Input not consumed yet: a request head that came in pieces, or
    /// requests pipelined behind a long-poll (at most `read::MAX_INPUT`).
    input: Vec<u8>,
    /// While an SSE replay is under way: the sequence number it goes on
    /// from once the socket has taken what was sent (see `replay`).
    replay: Option<NonZeroU64>,
    /// The TLS session of a connection to a TLS listener, for its life.
    tls: Option<Box<ServerSession>>,
    /// A stream of several ids: those besides the record's `id`.
    more_ids: Box<[u64]>,
}

impl Side {
    fn unsent(&self) -> usize {
        self.out.len() - self.sent
    }

    fn is_idle(&self) -> bool {
        self.out.is_empty()
            && self.input.is_empty()
            && self.replay.is_none()
            && self.more_ids.is_empty()
            && self.tls.is_none()
    }

    /// Ciphertext the session has not written yet.
    fn tls_unsent(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.wants_write())
    }
}

/// Bytes a client may send after its request head over the connection's
/// life (a stream needs nothing from its client): a client that keeps
/// sending, however slowly, is closed once past this, so junk can neither
/// cost the reactor reads forever nor hide a client that is not a subscriber.
pub(super) const MAX_STRAY: u16 = 8 * 1024;

/// One subscriber connection.
#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) link: Link,
    pub(crate) phase: Phase,
    /// Bytes received after the request head (saturating).
    pub(crate) stray: u16,
    pub(crate) gen: u32,
    pub(crate) ticks: u32,
    pub(crate) id: u64,
    side: Option<Box<Side>>,
}

/// Why a write could not complete.
#[derive(Debug)]
pub(crate) enum WriteError {
    /// Unsent bytes would pass `--max-pending`.
    TooSlow,
    /// The socket failed; only tests print the error, the reactor just
    /// closes the connection.
    Io(#[allow(dead_code)] io::Error),
}

impl Conn {
    pub(crate) fn new(socket: TcpStream, gen: u32) -> Self {
        Self {
            link: Link::new(socket),
            phase: Phase::Head,
            stray: 0,
            gen,
            ticks: 0,
            id: 0,
            side: None,
        }
    }

    /// Whether the router knows this connection.
    pub(crate) fn logged_in(&self) -> bool {
        matches!(self.phase, Phase::Stream(..) | Phase::PollWait { .. })
    }

    /// Serves the connection over TLS with `session`.
    pub(crate) fn start_tls(&mut self, session: ServerSession) {
        self.side_mut().tls = Some(Box::new(session));
    }

    /// Whether output is waiting for the socket to drain.
    pub(crate) fn unsent(&self) -> bool {
        self.side
            .as_ref()
            .is_some_and(|s| s.unsent() > 0 || s.tls_unsent())
    }

    /// Reads what has arrived, decrypted if the connection has a session.
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let tls = self.side.as_mut().and_then(|s| s.tls.as_deref_mut());
        self.link.read(tls, buf)
    }

    /// Starts the close of a TLS session (its close_notify, written with
    /// whatever is flushed next).
    pub(crate) fn end_tls(&mut self) {
        if let Some(tls) = self.side.as_mut().and_then(|s| s.tls.as_deref_mut()) {
            // Best effort: a session that failed has nothing to close.
            let _ = tls.close();
        }
    }

    /// Writes `data`, keeping what the socket does not take. Returns true
    /// when the connection has just started waiting for the socket to drain
    /// (the caller then asks for WRITABLE).
    pub(crate) fn send(&mut self, data: &[u8], max_pending: usize) -> Result<bool, WriteError> {
        let was_waiting = self.unsent();
        if let Some(side) = self.side.as_deref_mut().filter(|s| s.unsent() > 0) {
            // Already waiting for WRITABLE: keep order, just queue.
            if side.unsent() + data.len() > max_pending {
                return Err(WriteError::TooSlow);
            }
            if side.sent > 0 && side.sent >= side.out.len() / 2 {
                side.out.drain(..side.sent);
                side.sent = 0;
            }
            side.out.extend_from_slice(data);
            return Ok(false);
        }
        let mut written = 0;
        let mut tls = self.side.as_mut().and_then(|s| s.tls.as_deref_mut());
        while written < data.len() {
            match self.link.write(tls.as_deref_mut(), &data[written..]) {
                Ok(0) => return Err(WriteError::Io(io::ErrorKind::WriteZero.into())),
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(WriteError::Io(e)),
            }
        }
        if written == data.len() {
            // All taken, but a session may still hold the last chunk's
            // ciphertext: then it waits for WRITABLE too.
            return Ok(!was_waiting && self.unsent());
        }
        let rest = &data[written..];
        if rest.len() > max_pending {
            return Err(WriteError::TooSlow);
        }
        let side = self.side_mut();
        side.out.extend_from_slice(rest);
        side.sent = 0;
        Ok(true)
    }

    /// Writes queued bytes after WRITABLE. Returns true when nothing is left
    /// (the buffer is freed: a connection at rest holds none).
    pub(crate) fn flush(&mut self) -> io::Result<bool> {
        let Some(side) = self.side.as_deref_mut() else {
            return Ok(true);
        };
        while side.sent < side.out.len() {
            match self
                .link
                .write(side.tls.as_deref_mut(), &side.out[side.sent..])
            {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => side.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        side.out = Vec::new();
        side.sent = 0;
        if let Some(tls) = side.tls.as_deref_mut() {
            if !self.link.flush_tls(tls)? {
                return Ok(false);
            }
        }
        self.tidy();
        Ok(true)
    }

    /// Input received and not consumed yet.
    pub(crate) fn input(&self) -> &[u8] {
        self.side.as_ref().map_or(&[], |s| &s.input)
    }

    /// Keeps `bytes` as input to consume later.
    pub(crate) fn push_input(&mut self, bytes: &[u8]) {
        if !bytes.is_empty() {
            self.side_mut().input.extend_from_slice(bytes);
        }
    }

    /// Drops the first `n` bytes of the input (a request served).
    pub(crate) fn consume_input(&mut self, n: usize) {
        let Some(side) = &mut self.side else {
            return;
        };
        side.input.drain(..n);
        if side.input.is_empty() {
            side.input = Vec::new();
            self.tidy();
        }
    }

    /// Drops the input (a refused request: nothing after it is read).
    pub(crate) fn clear_input(&mut self) {
        if let Some(side) = &mut self.side {
            side.input = Vec::new();
        }
        self.tidy();
    }

    /// Where the replay under way goes on from, if one is.
    pub(crate) fn replaying(&self) -> Option<u64> {
        self.side.as_ref()?.replay.map(NonZeroU64::get)
    }

    /// Sets where the replay goes on from; `None` once it has caught up.
    pub(crate) fn set_replay(&mut self, next: Option<u64>) {
        match next.and_then(NonZeroU64::new) {
            Some(next) => self.side_mut().replay = Some(next),
            None => {
                if let Some(side) = &mut self.side {
                    side.replay = None;
                }
                self.tidy();
            }
        }
    }

    /// The ids of a stream of several besides the record's `id`.
    pub(crate) fn more_ids(&self) -> &[u64] {
        self.side.as_ref().map_or(&[], |s| &s.more_ids)
    }

    /// Whether this stream has several ids (its SSE events name theirs).
    pub(crate) fn several_ids(&self) -> bool {
        !self.more_ids().is_empty()
    }

    /// Sets the ids besides the record's `id` (a stream starting).
    pub(crate) fn set_more_ids(&mut self, ids: Box<[u64]>) {
        if ids.is_empty() {
            if let Some(side) = &mut self.side {
                side.more_ids = ids;
            }
            self.tidy();
        } else {
            self.side_mut().more_ids = ids;
        }
    }

    fn side_mut(&mut self) -> &mut Side {
        self.side.get_or_insert_with(Box::default)
    }

    /// Frees the side allocation once nothing in it is needed.
    fn tidy(&mut self) {
        if self.side.as_ref().is_some_and(|s| s.is_idle()) {
            self.side = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_at_rest_is_small() {
        // Debug builds of mio add a selector id to every socket.
        let expected = if cfg!(debug_assertions) { 48 } else { 32 };
        assert_eq!(std::mem::size_of::<Conn>(), expected);
        assert_eq!(std::mem::size_of::<Side>(), 88, "what the module doc says");
    }

    #[test]
    fn a_slow_reader_costs_at_most_four_times_max_pending() {
        use std::io::Read;
        const MAX: usize = 64 * 1024;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut reader = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server_side, _) = listener.accept().unwrap();
        server_side.set_nonblocking(true).unwrap();
        let mut conn = Conn::new(TcpStream::from_std(server_side), 0);
        let message = [b'm'; 1000];
        let mut sink = vec![0; 4_000];
        let mut most = 0;
        // The reader takes a little now and then, so the buffer is written
        // from its front and compacted, the worst case for its size.
        for round in 0.. {
            match conn.send(&message, MAX) {
                Ok(_) => {}
                Err(WriteError::TooSlow) => break,
                Err(WriteError::Io(e)) => panic!("{e}"),
            }
            if round % 7 == 0 {
                let _ = reader.read(&mut sink).unwrap();
                conn.flush().unwrap();
            }
            if let Some(side) = &conn.side {
                assert!(side.unsent() <= MAX);
                most = most.max(side.out.capacity());
            }
            assert!(round < 100_000, "never passed --max-pending");
        }
        assert!(most > 0 && most <= 4 * MAX, "buffer grew to {most}");
    }

    #[test]
    fn a_slab_slot_is_no_larger_than_the_record() {
        // The same shape as `slab::Entry<T>` (private in slab 0.4), which the
        // slab stores per slot.
        #[allow(dead_code)]
        enum SlabEntry<T> {
            Vacant(usize),
            Occupied(T),
        }
        assert_eq!(
            std::mem::size_of::<SlabEntry<Conn>>(),
            std::mem::size_of::<Conn>()
        );
    }
}
