//! `PUBLISH` to a Redis server: a batch is that many commands pipelined on
//! one connection, answered by as many integer replies (the subscribers
//! that received each message; 0 counts as dropped).
//!
//! Hand-written rather than the `redis` crate: msggen needs one command
//! and two reply types (`:n` and `-error`), which is this file, while the
//! crate brings a connection manager, a runtime adapter and every RESP3
//! type. A connection is its socket and one read buffer.

use crate::failure::{Failure, FailureClass};
use std::io::{self, Write};
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Appends `PUBLISH channel message` in RESP (an array of bulk strings).
pub(crate) fn push_publish(out: &mut Vec<u8>, channel: &[u8], message: &[u8]) {
    let _ = write!(out, "*3\r\n$7\r\nPUBLISH\r\n${}\r\n", channel.len());
    out.extend_from_slice(channel);
    let _ = write!(out, "\r\n${}\r\n", message.len());
    out.extend_from_slice(message);
    out.extend_from_slice(b"\r\n");
}

/// One reply line.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ReplyLine<'a> {
    Integer(i64),
    Simple(&'a [u8]),
    Error(&'a [u8]),
}

/// The first reply in `buf` and its length; `None` while incomplete. Only
/// one-line replies are expected (PUBLISH and AUTH answer with them).
fn parse_reply(buf: &[u8]) -> Result<Option<(ReplyLine<'_>, usize)>, Failure> {
    let Some(end) = buf.windows(2).position(|w| w == b"\r\n") else {
        if buf.len() > 64 * 1024 {
            return Err(Failure::new(
                FailureClass::BadResponse,
                "redis reply line over 64 KiB",
            ));
        }
        return Ok(None);
    };
    let line = &buf[1..end];
    let reply = match buf[0] {
        b':' => std::str::from_utf8(line)
            .ok()
            .and_then(|s| s.parse().ok())
            .map(ReplyLine::Integer)
            .ok_or_else(|| {
                Failure::new(
                    FailureClass::BadResponse,
                    "redis integer reply is not a number",
                )
            })?,
        b'+' => ReplyLine::Simple(line),
        b'-' => ReplyLine::Error(line),
        _ => {
            return Err(Failure::new(
                FailureClass::BadResponse,
                "not a redis reply msggen expects (an integer, OK or an error)",
            ))
        }
    };
    Ok(Some((reply, end + 2)))
}

/// One connection to a Redis server.
#[derive(Debug)]
pub(crate) struct RedisConn {
    stream: TcpStream,
    buf: Vec<u8>,
}

/// What a pipeline of publishes was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Published {
    /// Messages no subscriber received (a reply of 0).
    pub(crate) unheard: u64,
}

impl RedisConn {
    /// Connects, and authenticates when a password is given.
    pub(crate) async fn connect(addr: SocketAddr, password: Option<&str>) -> Result<Self, Failure> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let mut conn = Self {
            stream,
            buf: Vec::with_capacity(4096),
        };
        if let Some(password) = password {
            let mut auth = Vec::new();
            let _ = write!(
                auth,
                "*2\r\n$4\r\nAUTH\r\n${}\r\n{password}\r\n",
                password.len()
            );
            conn.stream.write_all(&auth).await?;
            match conn.next_reply().await? {
                Reply::Ok => {}
                Reply::Error(text) => return Err(Failure::api_error(text.as_bytes())),
                Reply::Count(_) => {
                    return Err(Failure::new(
                        FailureClass::BadResponse,
                        "AUTH answered an integer",
                    ))
                }
            }
        }
        Ok(conn)
    }

    /// Writes `commands` (`n` PUBLISH commands) and reads their `n`
    /// replies. An error reply fails the whole pipeline as `api_error`
    /// (after reading every reply, so the connection stays in step).
    pub(crate) async fn publish(
        &mut self,
        commands: &[u8],
        n: usize,
    ) -> Result<Published, Failure> {
        self.stream.write_all(commands).await?;
        let mut unheard = 0;
        let mut error = None;
        for _ in 0..n {
            match self.next_reply().await? {
                Reply::Count(0) => unheard += 1,
                Reply::Count(_) => {}
                Reply::Error(text) => {
                    error.get_or_insert(text);
                }
                Reply::Ok => {
                    return Err(Failure::new(
                        FailureClass::BadResponse,
                        "PUBLISH answered OK, not a count",
                    ))
                }
            }
        }
        match error {
            Some(text) => Err(Failure::api_error(text.as_bytes())),
            None => Ok(Published { unheard }),
        }
    }

    async fn next_reply(&mut self) -> Result<Reply, Failure> {
        loop {
            if let Some((line, used)) = parse_reply(&self.buf)? {
                let reply = match line {
                    ReplyLine::Integer(n) => Reply::Count(n),
                    ReplyLine::Simple(_) => Reply::Ok,
                    ReplyLine::Error(text) => {
                        Reply::Error(String::from_utf8_lossy(text).into_owned())
                    }
                };
                self.buf.drain(..used);
                return Ok(reply);
            }
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
            }
        }
    }
}

/// A reply, owned.
enum Reply {
    Count(i64),
    Ok,
    Error(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_publish_commands() {
        let mut out = Vec::new();
        push_publish(&mut out, b"c1m.7", b"[c1m 7 0 1 9 2|hi]");
        assert_eq!(
            out,
            b"*3\r\n$7\r\nPUBLISH\r\n$5\r\nc1m.7\r\n$18\r\n[c1m 7 0 1 9 2|hi]\r\n"
        );
    }

    #[test]
    fn reads_replies_and_waits_for_whole_lines() {
        assert_eq!(
            parse_reply(b":3\r\n:0").unwrap(),
            Some((ReplyLine::Integer(3), 4))
        );
        assert_eq!(parse_reply(b":3\r").unwrap(), None);
        assert_eq!(
            parse_reply(b"+OK\r\n").unwrap(),
            Some((ReplyLine::Simple(b"OK"), 5))
        );
        let err = parse_reply(b"-NOAUTH Authentication required.\r\n").unwrap();
        assert_eq!(
            err,
            Some((ReplyLine::Error(b"NOAUTH Authentication required."), 34))
        );
        assert!(parse_reply(b"$5\r\nhello\r\n").is_err());
        assert!(parse_reply(b":x\r\n").is_err());
    }
}
