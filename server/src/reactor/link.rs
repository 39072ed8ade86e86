//! The byte stream under a connection record: every read and write of a
//! subscriber's socket goes through a [`Link`], and nothing above it
//! touches the socket.
//!
//! A link is the socket, 4 bytes in the record (a descriptor), and for a
//! TLS listener the connection's TLS session (`c1m_tls`: rustls's
//! unbuffered API, no buffer held at rest), kept in the record's side
//! allocation (`conn::Side`) so that a plain connection pays nothing for
//! it: `read` decrypts what the socket returns, `write` encrypts what it is
//! given. The read path, the request parser, the framing and the delivery
//! path above it see plaintext only.
//!
//! Writes through a session are paced like plain ones: the session is given
//! plaintext (at most [`TLS_CHUNK`] at a time) only once it has written the
//! ciphertext of the last, so what the session keeps is one chunk at most and
//! `--max-pending` still bounds the rest (in the side's unsent bytes).

use std::io::{self, Read, Write};

use c1m_tls::ServerSession;
use mio::net::TcpStream;

/// Plaintext handed to a session per write: one TLS record's worth.
const TLS_CHUNK: usize = c1m_tls::MAX_RECORD_PLAINTEXT;

/// A subscriber connection's byte stream.
#[derive(Debug)]
pub(crate) struct Link {
    socket: TcpStream,
}

/// A TLS error, as the I/O error the read path sees (for counting).
pub(crate) use c1m_tls::is_tls_error;

impl Link {
    pub(crate) fn new(socket: TcpStream) -> Self {
        Self { socket }
    }

    /// Reads what has arrived into `buf` (through `tls` if the connection
    /// has a session; `buf` then holds at least one record); `Ok(0)` once
    /// the client has closed (or half-closed) its side.
    pub(crate) fn read(
        &self,
        tls: Option<&mut ServerSession>,
        buf: &mut [u8],
    ) -> io::Result<usize> {
        match tls {
            None => (&self.socket).read(buf),
            Some(tls) => tls.read(&mut &self.socket, buf),
        }
    }

    /// Writes what the socket takes of `data` (through `tls` if the
    /// connection has a session: `WouldBlock` while the session still holds
    /// ciphertext of an earlier write).
    pub(crate) fn write(&self, tls: Option<&mut ServerSession>, data: &[u8]) -> io::Result<usize> {
        let Some(tls) = tls else {
            return (&self.socket).write(data);
        };
        if !self.flush_tls(tls)? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = data.len().min(TLS_CHUNK);
        tls.write(&mut &self.socket, &data[..n])?;
        Ok(n)
    }

    /// Writes the ciphertext the session holds; true once it holds none.
    pub(crate) fn flush_tls(&self, tls: &mut ServerSession) -> io::Result<bool> {
        tls.flush(&mut &self.socket)
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
