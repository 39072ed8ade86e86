//! The HTTP/1.1 client side of `POST /send`: one request at a time on a
//! keep-alive connection, responses parsed by `httparse`.
//!
//! A whole HTTP client stack (hyper) would buy connection pooling and
//! HTTP/2 that a sender with exactly one connection and one request in
//! flight does not use; writing the request is a format string, and reading
//! the answer is `httparse` plus Content-Length or chunked framing. A
//! connection holds its socket and one read buffer (a few KiB, kept for the
//! life of the connection).

use crate::stats::FailureClass;
use c1m_common::BatchAnswer;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Where batches go, parsed from `--target http://host:port[/prefix]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) addr: SocketAddr,
    /// `host[:port]` as given, for the Host header.
    pub(crate) host: String,
    /// Path of the batch endpoint: `<prefix>/send`.
    pub(crate) send_path: String,
}

impl Target {
    /// Parses and resolves a target URL (plain `http://` only).
    pub(crate) fn parse(url: &str) -> Result<Self, String> {
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            format!("{url:?}: expected an http:// URL such as http://127.0.0.1:8001")
        })?;
        let (authority, prefix) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return Err(format!("{url:?}: no host"));
        }
        let with_port = if authority
            .rsplit_once(':')
            .is_some_and(|(_, p)| !p.contains(']'))
        {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        let addrs: Vec<SocketAddr> = with_port
            .to_socket_addrs()
            .map_err(|e| format!("{url:?}: cannot resolve {with_port}: {e}"))?
            .collect();
        // IPv4 first: `localhost` often resolves to ::1 first while servers
        // here listen on 127.0.0.1.
        let addr = addrs
            .iter()
            .find(|a| a.is_ipv4())
            .or(addrs.first())
            .copied()
            .ok_or_else(|| format!("{url:?}: {with_port} resolves to no address"))?;
        Ok(Self {
            addr,
            host: authority.to_owned(),
            send_path: format!("{prefix}/send"),
        })
    }

    /// The request line and headers of a batch of `body_len` bytes.
    pub(crate) fn batch_head(&self, body_len: usize, token: Option<&str>) -> Vec<u8> {
        let mut head = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n",
            self.send_path, self.host, body_len
        );
        if let Some(token) = token {
            head.push_str("Authorization: Bearer ");
            head.push_str(token);
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        head.into_bytes()
    }
}

/// Why a request got no 2xx answer.
#[derive(Debug)]
pub(crate) enum RequestError {
    Io(io::Error),
    /// An answer httparse could not read, or framed in a way we cannot.
    // What was wrong, for Debug output; runs count failures by class only.
    BadResponse(#[allow(dead_code)] &'static str),
    Status(u16),
}

impl RequestError {
    pub(crate) fn class(&self) -> FailureClass {
        match self {
            RequestError::Io(e) => FailureClass::of_io(e),
            RequestError::BadResponse(_) => FailureClass::BadResponse,
            RequestError::Status(s) => FailureClass::of_status(*s),
        }
    }
}

impl From<io::Error> for RequestError {
    fn from(e: io::Error) -> Self {
        RequestError::Io(e)
    }
}

/// A 2xx answer to a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    /// Messages the server says reached no connection, if it said.
    pub(crate) dropped: Option<u64>,
    /// Lines the server says it refused (comet-server: a bad id, or a
    /// message over its --max-pending), if it said.
    pub(crate) rejected: Option<u64>,
    /// False when the server asked to close the connection.
    pub(crate) keep_alive: bool,
}

/// An answer's head bigger than this is refused rather than buffered.
const MAX_HEAD: usize = 64 * 1024;
/// A body bigger than this is refused (the answer is a few counters).
const MAX_BODY: usize = 1024 * 1024;

/// One keep-alive connection to the target.
#[derive(Debug)]
pub(crate) struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    pub(crate) async fn connect(addr: SocketAddr) -> io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        // Head and body are two writes: without NODELAY, Nagle would hold
        // the body until the head is acknowledged.
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            buf: Vec::with_capacity(4096),
        })
    }

    /// True when the peer has closed this idle connection, or sent bytes
    /// nobody asked for: a read would not block. Checked before each batch,
    /// so a server's keep-alive idle timeout costs a reconnect rather than
    /// a failed attempt. One non-blocking read, no syscall while tokio has
    /// seen no readiness.
    pub(crate) fn is_stale(&self) -> bool {
        let mut probe = [0u8; 1];
        !matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// Writes one request and reads its answer; an error means the
    /// connection must not be reused.
    pub(crate) async fn post(&mut self, head: &[u8], body: &[u8]) -> Result<Reply, RequestError> {
        self.stream.write_all(head).await?;
        self.stream.write_all(body).await?;
        self.read_reply().await
    }

    async fn read_reply(&mut self) -> Result<Reply, RequestError> {
        self.buf.clear();
        let (status, framing, keep_alive, head_len) = loop {
            if let Some(parsed) = parse_head(&self.buf)? {
                break parsed;
            }
            if self.buf.len() > MAX_HEAD {
                return Err(RequestError::BadResponse("response head over 64 KiB"));
            }
            self.fill().await?;
        };
        let body = match framing {
            Framing::Length(len) => {
                if len > MAX_BODY {
                    return Err(RequestError::BadResponse("response body over 1 MiB"));
                }
                while self.buf.len() < head_len + len {
                    self.fill().await?;
                }
                self.buf[head_len..head_len + len].to_vec()
            }
            Framing::Chunked => self.read_chunked(head_len).await?,
            Framing::UntilClose => {
                loop {
                    if self.buf.len() > head_len + MAX_BODY {
                        return Err(RequestError::BadResponse("response body over 1 MiB"));
                    }
                    let n = self.stream.read_buf(&mut self.buf).await?;
                    if n == 0 {
                        break;
                    }
                }
                self.buf[head_len..].to_vec()
            }
        };
        if !(200..300).contains(&status) {
            return Err(RequestError::Status(status));
        }
        // comet-server's answer; another target's body tells nothing.
        let answer = serde_json::from_slice::<BatchAnswer>(&body).ok();
        Ok(Reply {
            status,
            dropped: answer.and_then(|a| a.dropped),
            rejected: answer.map(|a| a.rejected),
            keep_alive: keep_alive && framing != Framing::UntilClose,
        })
    }

    /// Reads more bytes; the peer closing here is an error.
    async fn fill(&mut self) -> io::Result<()> {
        if self.stream.read_buf(&mut self.buf).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    }

    async fn read_chunked(&mut self, mut pos: usize) -> Result<Vec<u8>, RequestError> {
        let mut body = Vec::new();
        loop {
            let (used, size) = loop {
                match httparse::parse_chunk_size(&self.buf[pos..]) {
                    Ok(httparse::Status::Complete(c)) => break c,
                    Ok(httparse::Status::Partial) => self.fill().await?,
                    Err(_) => return Err(RequestError::BadResponse("bad chunk size")),
                }
            };
            let size = usize::try_from(size).unwrap_or(usize::MAX);
            if body.len().saturating_add(size) > MAX_BODY {
                return Err(RequestError::BadResponse("response body over 1 MiB"));
            }
            pos += used;
            // The chunk and its CRLF (the last chunk: just the final CRLF;
            // trailers are not expected from a send endpoint).
            while self.buf.len() < pos + size + 2 {
                self.fill().await?;
            }
            body.extend_from_slice(&self.buf[pos..pos + size]);
            pos += size + 2;
            if size == 0 {
                return Ok(body);
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

type Head = (u16, Framing, bool, usize);

/// Parses a response head: status, body framing, keep-alive, head length;
/// `None` when more bytes are needed.
fn parse_head(buf: &[u8]) -> Result<Option<Head>, RequestError> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(RequestError::BadResponse("unreadable response head")),
    };
    let status = response.code.unwrap_or(0);
    let mut keep_alive = response.version == Some(1);
    let mut framing = if status == 204 || status == 304 || (100..200).contains(&status) {
        Framing::Length(0)
    } else {
        Framing::UntilClose
    };
    for h in response.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let len = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .ok_or(RequestError::BadResponse("bad content-length"))?;
            framing = Framing::Length(len);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            if h.value.eq_ignore_ascii_case(b"chunked") {
                framing = Framing::Chunked;
            }
        } else if h.name.eq_ignore_ascii_case("connection") {
            if h.value.eq_ignore_ascii_case(b"close") {
                keep_alive = false;
            } else if h.value.eq_ignore_ascii_case(b"keep-alive") {
                keep_alive = true;
            }
        }
    }
    Ok(Some((status, framing, keep_alive, head_len)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_targets() {
        let t = Target::parse("http://127.0.0.1:8001").unwrap();
        assert_eq!(t.addr, "127.0.0.1:8001".parse().unwrap());
        assert_eq!(
            (t.host.as_str(), t.send_path.as_str()),
            ("127.0.0.1:8001", "/send")
        );
        let t = Target::parse("http://127.0.0.1:9/admin/").unwrap();
        assert_eq!(t.send_path, "/admin/send");
        assert_eq!(Target::parse("http://127.0.0.1").unwrap().addr.port(), 80);
        let local = Target::parse("http://localhost:8001").unwrap();
        assert_eq!(local.addr, "127.0.0.1:8001".parse().unwrap());
        assert_eq!(local.host, "localhost:8001");
        assert!(Target::parse("https://127.0.0.1:1").is_err());
        assert!(Target::parse("127.0.0.1:8001").is_err());
        assert!(Target::parse("http:///send").is_err());
    }

    #[test]
    fn writes_the_batch_head() {
        let t = Target::parse("http://127.0.0.1:8001").unwrap();
        let head = String::from_utf8(t.batch_head(12, Some("s3cret"))).unwrap();
        assert_eq!(
            head,
            "POST /send HTTP/1.1\r\nHost: 127.0.0.1:8001\r\nContent-Type: text/plain\r\n\
             Content-Length: 12\r\nAuthorization: Bearer s3cret\r\n\r\n"
        );
    }

    #[test]
    fn reads_heads() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n{...}";
        assert_eq!(
            parse_head(ok).unwrap(),
            Some((200, Framing::Length(5), true, 38))
        );
        assert_eq!(parse_head(&ok[..20]).unwrap(), None);
        let close = b"HTTP/1.1 500 Oops\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n";
        let (status, framing, keep_alive, _) = parse_head(close).unwrap().unwrap();
        assert_eq!(
            (status, framing, keep_alive),
            (500, Framing::Chunked, false)
        );
        assert!(parse_head(b"SMTP ready\r\n\r\n").is_err());
        let old = b"HTTP/1.0 200 OK\r\n\r\n";
        assert_eq!(
            parse_head(old).unwrap(),
            Some((200, Framing::UntilClose, false, 19))
        );
    }
}
