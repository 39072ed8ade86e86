//! A TLS session held the way the c1m reactors hold a connection.
//!
//! rustls's buffered `ServerConnection` and `ClientConnection` keep a 4 KiB
//! read buffer for the life of the session once it has read anything, so a
//! held connection at rest carried ~4 KiB of buffer it never uses again.
//! [`Session`] drives rustls's unbuffered API instead: the ciphertext that
//! came in pieces, the ciphertext the socket has not taken, the plaintext
//! given before the handshake allowed it to be encrypted and the part of a
//! record a read had no room for live in one allocation that is freed as
//! soon as it is all empty. At rest a session is the rustls state (keys,
//! sequence numbers, the traffic secrets kept for key updates, the peer's
//! certificate on a client) and 8 bytes of pointer; `examples/at_rest.rs`
//! measures it allocation by allocation: ~3.9 KB a server session, ~4.1 KB
//! a client one, against ~7.8 KB and ~8.3 KB for rustls's buffered
//! connections.
//!
//! The socket is anything `Read + Write` that returns `WouldBlock` when it
//! has nothing or takes nothing (a non-blocking `mio` socket). Reads return
//! plaintext, `Ok(0)` once the peer has closed (with or without
//! close_notify), and write the handshake's messages as they go. Writes
//! take everything they are given: what the socket does not take waits in
//! the session until [`Session::flush`], so the caller bounds how much it
//! hands over at once.

use std::io::{self, Read, Write};

use rustls::client::{ClientConnectionData, UnbufferedClientConnection};
use rustls::server::{ServerConnectionData, UnbufferedServerConnection};
use rustls::unbuffered::{
    ConnectionState, EncodeError, EncryptError, UnbufferedStatus, WriteTraffic,
};

/// The largest plaintext of one TLS record.
pub const MAX_RECORD_PLAINTEXT: usize = 16 * 1024;

/// Ciphertext read from the socket at a time: one full record with its
/// header and tag, and room for the header of the next.
const READ_SIZE: usize = MAX_RECORD_PLAINTEXT + 512;

/// Ciphertext a session holds before it has a whole message: rustls accepts
/// handshake messages of up to 64 KiB, gathered over several records.
const MAX_INCOMING: usize = 64 * 1024 + READ_SIZE;

/// Per-record overhead to reserve when encrypting (TLS 1.3: header 5,
/// content type 1, tag 16; TLS 1.2 GCM: header 5, nonce 8, tag 16).
const RECORD_OVERHEAD: usize = 32;

/// rustls's unbuffered server and client connections, as one.
pub trait Records {
    /// The side's connection data (rustls's).
    type Data;
    /// Processes the records in `incoming` until the next state.
    fn process<'c, 'i>(
        &'c mut self,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, Self::Data>;
}

impl Records for UnbufferedServerConnection {
    type Data = ServerConnectionData;
    fn process<'c, 'i>(
        &'c mut self,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, Self::Data> {
        self.process_tls_records(incoming)
    }
}

impl Records for UnbufferedClientConnection {
    type Data = ClientConnectionData;
    fn process<'c, 'i>(
        &'c mut self,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, Self::Data> {
        self.process_tls_records(incoming)
    }
}

/// A server's session (comet-server's TLS listener).
pub type ServerSession = Session<UnbufferedServerConnection>;
/// A client's session (floodtest's `https://` and `wss://` streams).
pub type ClientSession = Session<UnbufferedClientConnection>;

/// One connection's TLS session: rustls's state and the bytes in flight.
pub struct Session<C> {
    conn: C,
    /// Whatever is in flight, in one allocation made when first needed and
    /// freed once it is all empty: a session at rest holds 8 bytes here.
    flight: Option<Box<InFlight>>,
    /// The peer has closed (close_notify, or the socket's end).
    peer_closed: bool,
    /// A close_notify is wanted once the session may send one.
    close_wanted: bool,
}

/// The bytes a session holds only while they are in flight.
#[derive(Default)]
struct InFlight {
    /// Ciphertext read and not yet processed: a record that came in pieces.
    incoming: Vec<u8>,
    /// Ciphertext made and not yet written; the first `sent` bytes are out.
    outgoing: Vec<u8>,
    sent: usize,
    /// Plaintext given before the handshake let it be encrypted.
    pending: Vec<u8>,
    /// Plaintext decrypted and not read yet: the part of a record that did
    /// not fit the caller's buffer.
    unread: Vec<u8>,
    /// The error the session failed with: rustls is not called again (it
    /// would try to send a second fatal alert). Kept for the session's
    /// short remaining life.
    failed: Option<rustls::Error>,
}

impl InFlight {
    fn is_empty(&self) -> bool {
        self.incoming.is_empty()
            && self.outgoing.len() == self.sent
            && self.pending.is_empty()
            && self.unread.is_empty()
            && self.failed.is_none()
    }

    fn unsent(&self) -> bool {
        self.sent < self.outgoing.len()
    }
}

impl<C> std::fmt::Debug for Session<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Session");
        if let Some(flight) = &self.flight {
            d.field("incoming", &flight.incoming.len())
                .field("unsent", &(flight.outgoing.len() - flight.sent))
                .field("pending", &flight.pending.len())
                .field("unread", &flight.unread.len())
                .field("failed", &flight.failed);
        }
        d.field("peer_closed", &self.peer_closed).finish()
    }
}

/// A rustls error as the I/O error the read and write paths return.
fn tls_error(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// Whether an I/O error came from TLS (a handshake refused, a bad record),
/// for counting TLS failures apart from the socket's.
pub fn is_tls_error(err: &io::Error) -> bool {
    err.get_ref().is_some_and(|e| e.is::<rustls::Error>())
}

/// What one step of the state machine asks for next.
enum Step {
    /// Process again: the state moved on.
    Again,
    /// Nothing more to do until more ciphertext arrives (or `buf` has room).
    Wait,
}

impl<C: Records> Session<C> {
    /// A session over a new rustls connection.
    pub fn new(conn: C) -> Self {
        Session {
            conn,
            flight: None,
            peer_closed: false,
            close_wanted: false,
        }
    }

    /// Reads plaintext into `buf`: `Ok(0)` once the peer has closed,
    /// `WouldBlock` once the socket has nothing more. Handshake messages
    /// and alerts are written meanwhile. A record larger than `buf` is
    /// returned over several reads.
    pub fn read<S: Read + Write>(&mut self, sock: &mut S, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.read_through(sock, buf);
        self.tidy();
        read
    }

    /// Encrypts `data` (at once if the handshake is done, else once it is)
    /// and writes what the socket takes; the rest waits for [`Self::flush`].
    pub fn write<S: Write>(&mut self, sock: &mut S, data: &[u8]) -> io::Result<()> {
        let written = self.drive(&mut [], data).and_then(|_| self.flush(sock));
        self.tidy();
        written.map(drop)
    }

    /// Asks for a close_notify, encrypted as soon as the session may send
    /// one; [`Self::flush`] writes it.
    pub fn close(&mut self) -> io::Result<()> {
        self.close_wanted = true;
        let closed = self.drive(&mut [], &[]);
        self.tidy();
        closed.map(drop)
    }

    /// Writes the ciphertext the session holds; true once it holds none.
    pub fn flush<S: Write>(&mut self, sock: &mut S) -> io::Result<bool> {
        let Some(flight) = self.flight.as_deref_mut() else {
            return Ok(true);
        };
        while flight.unsent() {
            match sock.write(&flight.outgoing[flight.sent..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => flight.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        flight.outgoing = Vec::new();
        flight.sent = 0;
        self.tidy();
        Ok(true)
    }

    /// Ciphertext waits for the socket.
    pub fn wants_write(&self) -> bool {
        self.flight.as_ref().is_some_and(|f| f.unsent())
    }

    /// Bytes of heap the session holds besides rustls's state (the
    /// in-flight allocation and its buffers): 0 at rest.
    pub fn buffered(&self) -> usize {
        self.flight.as_ref().map_or(0, |f| {
            std::mem::size_of::<InFlight>()
                + f.incoming.capacity()
                + f.outgoing.capacity()
                + f.pending.capacity()
                + f.unread.capacity()
        })
    }

    /// The rustls connection (to ask what was negotiated).
    pub fn connection(&self) -> &C {
        &self.conn
    }

    /// Frees the in-flight allocation once nothing is in it.
    fn tidy(&mut self) {
        if self.flight.as_ref().is_some_and(|f| f.is_empty()) {
            self.flight = None;
        }
    }

    fn read_through<S: Read + Write>(&mut self, sock: &mut S, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let got = self.drive_or_alert(sock, buf)?;
            self.flush(sock)?;
            if got > 0 {
                return Ok(got);
            }
            if self.peer_closed {
                return Ok(0);
            }
            match self.fill(sock) {
                Ok(0) => {
                    self.peer_closed = true;
                    return Ok(0);
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Drives the session and, on a TLS error, queues the alert rustls
    /// has for the peer and writes it (best effort) before returning it.
    fn drive_or_alert<S: Write>(&mut self, sock: &mut S, buf: &mut [u8]) -> io::Result<usize> {
        let failed_before = self.flight.as_ref().is_some_and(|f| f.failed.is_some());
        self.drive(buf, &[]).inspect_err(|_| {
            if failed_before {
                return;
            }
            // The alert is the first state rustls gives after a failure
            // (queued before it looks at any input).
            if let Ok(ConnectionState::EncodeTlsData(mut alert)) = self.conn.process(&mut []).state
            {
                let flight = self.flight.get_or_insert_with(Box::default);
                let _ = encode_into(&mut flight.outgoing, |out| {
                    alert.encode(out).map_err(encode_room)
                });
                let _ = self.flush(sock);
            }
        })
    }

    /// Runs rustls over the ciphertext held: plaintext into `buf` (the
    /// bytes are returned), handshake messages into the outgoing
    /// ciphertext, and `data` (after what is pending) encrypted once the
    /// session may send application data; until then it is kept.
    fn drive(&mut self, buf: &mut [u8], data: &[u8]) -> io::Result<usize> {
        let flight = self.flight.get_or_insert_with(Box::default);
        if let Some(e) = &flight.failed {
            return Err(tls_error(e.clone()));
        }
        // What an earlier record left comes first.
        let mut got = flight.unread.len().min(buf.len());
        if got > 0 {
            buf[..got].copy_from_slice(&flight.unread[..got]);
            flight.unread.drain(..got);
        }
        let mut data = Some(data).filter(|d| !d.is_empty());
        let mut failed = None;
        loop {
            let UnbufferedStatus { mut discard, state } = self.conn.process(&mut flight.incoming);
            let step = match state {
                Err(e) => {
                    failed = Some(e);
                    Step::Wait
                }
                Ok(ConnectionState::ReadTraffic(mut records)) => {
                    let mut step = Step::Again;
                    if !flight.unread.is_empty() {
                        // `buf` is full: the records wait in rustls.
                        step = Step::Wait;
                    }
                    while let Step::Again = step {
                        let Some(record) = records.next_record() else {
                            break;
                        };
                        let record = match record {
                            Ok(record) => record,
                            Err(e) => {
                                failed = Some(e);
                                break;
                            }
                        };
                        let take = (buf.len() - got).min(record.payload.len());
                        buf[got..got + take].copy_from_slice(&record.payload[..take]);
                        got += take;
                        discard += record.discard;
                        if take < record.payload.len() {
                            // The caller reads again for the rest.
                            flight.unread.extend_from_slice(&record.payload[take..]);
                            step = Step::Wait;
                        }
                    }
                    step
                }
                Ok(ConnectionState::EncodeTlsData(mut message)) => {
                    encode_into(&mut flight.outgoing, |out| {
                        message.encode(out).map_err(encode_room)
                    })?;
                    Step::Again
                }
                // What was encoded is in `outgoing`, which is written in order.
                Ok(ConnectionState::TransmitTlsData(sent)) => {
                    sent.done();
                    Step::Again
                }
                Ok(ConnectionState::WriteTraffic(mut traffic)) => {
                    if !flight.pending.is_empty() {
                        let pending = std::mem::take(&mut flight.pending);
                        encrypt_into(&mut flight.outgoing, &mut traffic, &pending)?;
                    }
                    if let Some(data) = data.take() {
                        encrypt_into(&mut flight.outgoing, &mut traffic, data)?;
                    }
                    if std::mem::take(&mut self.close_wanted) {
                        encode_into(&mut flight.outgoing, |out| {
                            traffic.queue_close_notify(out).map_err(encrypt_room)
                        })?;
                    }
                    Step::Wait
                }
                Ok(ConnectionState::PeerClosed | ConnectionState::Closed) => {
                    self.peer_closed = true;
                    Step::Wait
                }
                // Blocked on the handshake; early data is never enabled.
                Ok(_) => Step::Wait,
            };
            flight.incoming.drain(..discard);
            if let Some(e) = failed {
                flight.incoming = Vec::new();
                flight.pending = Vec::new();
                flight.failed = Some(e.clone());
                return Err(tls_error(e));
            }
            if let Step::Wait = step {
                break;
            }
        }
        if let Some(data) = data {
            flight.pending.extend_from_slice(data);
        }
        Ok(got)
    }

    /// Reads ciphertext from the socket onto what is held.
    fn fill<S: Read>(&mut self, sock: &mut S) -> io::Result<usize> {
        let flight = self.flight.get_or_insert_with(Box::default);
        let held = flight.incoming.len();
        if held >= MAX_INCOMING {
            return Err(tls_error(rustls::Error::General(
                "a TLS message larger than 64 KiB".into(),
            )));
        }
        flight.incoming.resize(held + READ_SIZE, 0);
        let read = sock.read(&mut flight.incoming[held..]);
        flight
            .incoming
            .truncate(held + *read.as_ref().unwrap_or(&0));
        read
    }
}

/// The room an encoding asked for, or the error it failed with.
type Room = Result<usize, Option<usize>>;

fn encode_room(e: EncodeError) -> Option<usize> {
    match e {
        EncodeError::InsufficientSize(e) => Some(e.required_size),
        EncodeError::AlreadyEncoded => None,
    }
}

fn encrypt_room(e: EncryptError) -> Option<usize> {
    match e {
        EncryptError::InsufficientSize(e) => Some(e.required_size),
        _ => None,
    }
}

/// Appends what `encode` writes to `out`, growing it to the room asked for.
fn encode_into(out: &mut Vec<u8>, mut encode: impl FnMut(&mut [u8]) -> Room) -> io::Result<()> {
    let start = out.len();
    let mut room = 4096;
    loop {
        out.resize(start + room, 0);
        match encode(&mut out[start..]) {
            Ok(n) => {
                out.truncate(start + n);
                return Ok(());
            }
            Err(Some(needed)) if needed > room => room = needed,
            Err(_) => {
                out.truncate(start);
                return Err(tls_error(rustls::Error::EncryptError));
            }
        }
    }
}

/// Appends `plaintext`, encrypted into as many records as it takes, to `out`.
fn encrypt_into<D>(
    out: &mut Vec<u8>,
    traffic: &mut WriteTraffic<'_, D>,
    plaintext: &[u8],
) -> io::Result<()> {
    let records = plaintext.len() / MAX_RECORD_PLAINTEXT + 1;
    let start = out.len();
    let room = plaintext.len() + records * RECORD_OVERHEAD;
    out.resize(start + room, 0);
    match traffic.encrypt(plaintext, &mut out[start..]) {
        Ok(n) => {
            out.truncate(start + n);
            Ok(())
        }
        Err(EncryptError::InsufficientSize(e)) => {
            out.resize(start + e.required_size, 0);
            let n = traffic
                .encrypt(plaintext, &mut out[start..])
                .map_err(|_| tls_error(rustls::Error::EncryptError))?;
            out.truncate(start + n);
            Ok(())
        }
        Err(_) => {
            out.truncate(start);
            Err(tls_error(rustls::Error::EncryptError))
        }
    }
}
