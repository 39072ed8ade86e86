//! The byte stream under a connection record: every read and write of a
//! subscriber's socket goes through a [`Link`], and nothing above it
//! touches the socket.
//!
//! A link is the socket, 4 bytes in the record (a descriptor), and for a
//! TLS listener the connection's rustls session, kept in the record's side
//! allocation (`conn::Side`) so that a plain connection pays nothing for
//! it: `read` decrypts what the socket returns, `write` encrypts what it is
//! given. The read path, the request parser, the framing and the delivery
//! path above it see plaintext only.
//!
//! Writes through a session are paced like plain ones: the session is given
//! plaintext (at most [`TLS_CHUNK`] at a time) only once it has written the
//! ciphertext of the last, so what rustls keeps is one chunk at most and
//! `--max-pending` still bounds the rest (in the side's unsent bytes).

use std::io::{self, Read, Write};

use mio::net::TcpStream;
use rustls::ServerConnection;

/// Plaintext handed to a session per write: one TLS record's worth.
const TLS_CHUNK: usize = 16 * 1024;

/// A subscriber connection's byte stream.
#[derive(Debug)]
pub(crate) struct Link {
    socket: TcpStream,
}

/// A TLS error, as the I/O error the read path sees (for counting).
pub(crate) fn is_tls_error(err: &io::Error) -> bool {
    err.get_ref().is_some_and(|e| e.is::<rustls::Error>())
}

impl Link {
    pub(crate) fn new(socket: TcpStream) -> Self {
        Self { socket }
    }

    /// Reads what has arrived into `buf` (through `tls` if the connection
    /// has a session); `Ok(0)` once the client has closed (or half-closed)
    /// its side.
    pub(crate) fn read(
        &self,
        tls: Option<&mut ServerConnection>,
        buf: &mut [u8],
    ) -> io::Result<usize> {
        let Some(tls) = tls else {
            return (&self.socket).read(buf);
        };
        loop {
            match tls.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // Closed without close_notify: the end, as in the clear.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            match tls.read_tls(&mut &self.socket) {
                Ok(0) => return Ok(0),
                Ok(_) => {
                    let processed = tls.process_new_packets();
                    // Handshake messages and alerts go out either way.
                    self.flush_tls(tls)?;
                    processed.map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.flush_tls(tls)?;
                    return Err(e);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Writes what the socket takes of `data` (through `tls` if the
    /// connection has a session: `WouldBlock` while the session still holds
    /// ciphertext of an earlier write).
    pub(crate) fn write(
        &self,
        tls: Option<&mut ServerConnection>,
        data: &[u8],
    ) -> io::Result<usize> {
        let Some(tls) = tls else {
            return (&self.socket).write(data);
        };
        if !self.flush_tls(tls)? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = tls.writer().write(&data[..data.len().min(TLS_CHUNK)])?;
        self.flush_tls(tls)?;
        Ok(n)
    }

    /// Writes the ciphertext the session holds; true once it holds none.
    pub(crate) fn flush_tls(&self, tls: &mut ServerConnection) -> io::Result<bool> {
        while tls.wants_write() {
            match tls.write_tls(&mut &self.socket) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// The socket itself, for a connection handed to another worker of its
    /// group (`handoff`), which goes on reading it where this one stopped.
    pub(crate) fn into_socket(self) -> TcpStream {
        self.socket
    }

    /// The socket, to register with the reactor's poll.
    pub(crate) fn source(&mut self) -> &mut TcpStream {
        &mut self.socket
    }
}
