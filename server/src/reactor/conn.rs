//! The connection record: what the server keeps for one subscriber.
//!
//! At rest (a `/test` or `/sse` stream with nothing unsent) a record is:
//!
//! | field | bytes | why |
//! | --- | --- | --- |
//! | `stream` | 4 | the socket (a file descriptor) |
//! | `phase` | 2 | reading the head, streaming `/test` or `/sse` (chunked or close-delimited), waiting long-poll, answered, closing |
//! | `stray` | 2 | bytes the client sent after its request; past [`MAX_STRAY`] it is closed |
//! | `gen` | 4 | generation of the slab slot, so a delivery for a closed connection whose slot was reused is dropped |
//! | `ticks` | 4 | Part 1 heartbeat counter (`Chunk N for id X`) |
//! | `id` | 8 | the subscriber id, for logout and heartbeats |
//! | `pending` | 8 | `None` at rest; while a head is incomplete it holds the partial head, while the socket is full the unsent bytes |
//!
//! `size_of::<Conn>()` is 32 bytes in release builds, and so is its slab
//! slot (the slot's vacant/occupied tag fits in a niche of `phase`); tests
//! pin both. `stray` lives in what would otherwise be padding. There is no
//! read buffer (reads go to the reactor's one scratch buffer), no timer
//! (deadlines are per-reactor FIFOs, heartbeats one per-reactor tick) and
//! no task or channel.
//!
//! What an idle connection costs in user space, all told:
//!
//! | what | bytes | note |
//! | --- | --- | --- |
//! | slab slot | 32 | the slab doubles, so 32-64 per connection |
//! | router map slot | 49 | `u64` key + 40-byte entry + control byte; the map keeps up to 1/8 free and doubles, so ~55-110 |
//! | header deadline | 16 | only for the first `--header-timeout` (10 s), then freed |
//!
//! Measured (`benches/idle_memory.sh`, release, system allocator, RSS
//! after - before over the count, median of 3): **167 B at 10,000 and 163 B
//! at 19,000 connections** one second after the last login (169 B and 159 B
//! before the review's changes), and **150 B and 144 B** once the header
//! deadlines have expired (`SETTLE=12`). With mimalloc it was 2,766 B and
//! 1,752 B, so the server keeps the system allocator. The kernel's two socket buffers and
//! the epoll item (~9-10 KB per loopback connection) are not in these
//! figures: they are kernel memory.

use std::io::{self, Write};

use mio::net::TcpStream;

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

/// Bytes a connection holds only while it needs them.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    pub(crate) bytes: Vec<u8>,
    /// How many of `bytes` are already written (output) .
    pub(crate) sent: usize,
}

/// Bytes a client may send after its request head over the connection's
/// life (a stream needs nothing from its client): a client that keeps
/// sending, however slowly, is closed once past this, so junk can neither
/// cost the reactor reads forever nor hide a client that is not a subscriber.
pub(super) const MAX_STRAY: u16 = 8 * 1024;

/// One subscriber connection.
#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) stream: TcpStream,
    pub(crate) phase: Phase,
    /// Bytes received after the request head (saturating).
    pub(crate) stray: u16,
    pub(crate) gen: u32,
    pub(crate) ticks: u32,
    pub(crate) id: u64,
    pub(crate) pending: Option<Box<Pending>>,
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
    pub(crate) fn new(stream: TcpStream, gen: u32) -> Self {
        Self {
            stream,
            phase: Phase::Head,
            stray: 0,
            gen,
            ticks: 0,
            id: 0,
            pending: None,
        }
    }

    /// Whether the router knows this connection.
    pub(crate) fn logged_in(&self) -> bool {
        matches!(self.phase, Phase::Stream(..) | Phase::PollWait { .. })
    }

    /// Writes `data`, keeping what the socket does not take. Returns true
    /// when the connection has just started waiting for the socket to drain
    /// (the caller then asks for WRITABLE).
    pub(crate) fn send(&mut self, data: &[u8], max_pending: usize) -> Result<bool, WriteError> {
        if let Some(p) = &mut self.pending {
            // Already waiting for WRITABLE: keep order, just queue.
            if p.bytes.len() - p.sent + data.len() > max_pending {
                return Err(WriteError::TooSlow);
            }
            if p.sent > 0 && p.sent >= p.bytes.len() / 2 {
                p.bytes.drain(..p.sent);
                p.sent = 0;
            }
            p.bytes.extend_from_slice(data);
            return Ok(false);
        }
        let mut written = 0;
        while written < data.len() {
            match (&self.stream).write(&data[written..]) {
                Ok(0) => return Err(WriteError::Io(io::ErrorKind::WriteZero.into())),
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(WriteError::Io(e)),
            }
        }
        if written == data.len() {
            return Ok(false);
        }
        let rest = &data[written..];
        if rest.len() > max_pending {
            return Err(WriteError::TooSlow);
        }
        self.pending = Some(Box::new(Pending {
            bytes: rest.to_vec(),
            sent: 0,
        }));
        Ok(true)
    }

    /// Writes queued bytes after WRITABLE. Returns true when nothing is left
    /// (the buffer is freed: a connection at rest holds none).
    pub(crate) fn flush(&mut self) -> io::Result<bool> {
        let Some(p) = &mut self.pending else {
            return Ok(true);
        };
        while p.sent < p.bytes.len() {
            match (&self.stream).write(&p.bytes[p.sent..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => p.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.pending = None;
        Ok(true)
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
            if let Some(p) = &conn.pending {
                assert!(p.bytes.len() - p.sent <= MAX);
                most = most.max(p.bytes.capacity());
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
