//! The byte stream under a connection record: every read and write of a
//! subscriber's socket goes through a [`Link`], and nothing above it
//! touches the socket.
//!
//! Today a link is the plain socket, 4 bytes in the record (a descriptor).
//! It is the place a TLS session would sit: `read` would decrypt what the
//! socket returns and `write` encrypt what it is given, the session's state
//! kept in the record's side allocation (`conn::Side`) so that a plain
//! connection pays nothing for it. The read path, the request parser, the
//! framing and the delivery path above it would not change.

use std::io::{self, Read, Write};

use mio::net::TcpStream;

/// A subscriber connection's byte stream.
#[derive(Debug)]
pub(crate) struct Link {
    socket: TcpStream,
}

impl Link {
    pub(crate) fn new(socket: TcpStream) -> Self {
        Self { socket }
    }

    /// Reads what has arrived into `buf`; `Ok(0)` once the client has
    /// closed (or half-closed) its side.
    pub(crate) fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        (&self.socket).read(buf)
    }

    /// Writes what the socket takes of `data`.
    pub(crate) fn write(&self, data: &[u8]) -> io::Result<usize> {
        (&self.socket).write(data)
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
