//! When a started server is ready: both its ports accept connections and,
//! where listening is not enough, a probe request through the subscriber
//! port is answered 200. Pushpin's condure listens before its proxy has
//! reached zurl and the GRIP origin, and answers 500 meanwhile: a test or a
//! run that connected then saw most of its streams refused.

use crate::Setup;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// How long one check may wait on a port before it counts as not ready.
const CHECK_TIMEOUT: Duration = Duration::from_secs(1);

impl Setup {
    /// One check: true once both ports accept and the probe (if any) is
    /// answered 200. Cheap enough to call every few tens of milliseconds.
    pub fn ready(&self) -> bool {
        let listening = |addr| TcpStream::connect_timeout(&addr, CHECK_TIMEOUT).is_ok();
        listening(self.subscribe)
            && listening(self.publish)
            && self
                .probe
                .is_none_or(|path| answers_200(self.subscribe, path))
    }
}

/// Whether `GET path` at `addr` starts its answer with a 200 status line.
/// The stream a 200 opens (Pushpin holds it) is closed by dropping it.
fn answers_200(addr: SocketAddr, path: &str) -> bool {
    let ask = || -> std::io::Result<bool> {
        let mut stream = TcpStream::connect_timeout(&addr, CHECK_TIMEOUT)?;
        stream.set_read_timeout(Some(CHECK_TIMEOUT))?;
        write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n")?;
        let status_line = b"HTTP/1.1 200 ";
        let mut got = [0u8; 13];
        stream.read_exact(&mut got)?;
        Ok(&got == status_line)
    };
    ask().unwrap_or(false)
}
