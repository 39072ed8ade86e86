//! The HTTP/1.1 client side of every HTTP publisher: a keep-alive
//! connection that carries one request at a time, or several pipelined,
//! with heads written and answers read by the shared codec (`c1m_http`).
//!
//! A whole HTTP client stack (hyper) would buy pooling and HTTP/2 that
//! msggen does not use (its senders own their connections) and cost a
//! task per connection; here a connection is its socket and one read
//! buffer (a few KiB, kept for its life). Pipelined answers come back in
//! order (RFC 9112 9.3.2), so a round of N requests is N heads and bodies
//! read one after the other from the same buffer.

use crate::failure::{parse_retry_after, Failure, FailureClass};
use c1m_http::{parse_response, BodyDecoder, BodyError, BodyFraming, HeadLimits, HeaderSlots};
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Where requests go, parsed from `--target http://host:port[/path]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) addr: SocketAddr,
    /// `host[:port]` as given, for the Host header.
    pub(crate) host: String,
    /// The path as given (a prefix, or a template for `--publish http`),
    /// without a trailing `/`; empty for none.
    pub(crate) path: String,
}

impl Target {
    /// Parses and resolves a target URL (plain `http://` only).
    pub(crate) fn parse(url: &str) -> Result<Self, String> {
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            format!("{url:?}: expected an http:// URL such as http://127.0.0.1:8001")
        })?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return Err(format!("{url:?}: no host"));
        }
        if path.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            return Err(format!("{url:?}: spaces and control characters do not belong in a URL: percent-encode them"));
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
            path: path.to_owned(),
        })
    }
}

/// A whole answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    /// The de-framed body (at most [`MAX_BODY`] bytes).
    pub(crate) body: Vec<u8>,
    /// False when the connection cannot carry another request.
    pub(crate) reusable: bool,
    /// `Retry-After` in delta-seconds, when the answer had one.
    pub(crate) retry_after: Option<Duration>,
}

/// An answer's head bigger than this, or with more fields, is refused
/// rather than buffered.
const LIMITS: HeadLimits = HeadLimits::new(64 * 1024, 32);
/// A body bigger than this is refused (a publish answer is a few counters).
pub(crate) const MAX_BODY: usize = 1024 * 1024;

fn bad(reason: &'static str) -> Failure {
    Failure::new(FailureClass::BadResponse, reason)
}

/// One keep-alive connection to the target.
#[derive(Debug)]
pub(crate) struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Bytes of `buf` already read as answers (pipelined answers may
    /// arrive in one read).
    used: usize,
}

impl Conn {
    pub(crate) async fn connect(addr: SocketAddr) -> io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        // Requests are written whole, but a pipelined round ends with a
        // small one: without NODELAY, Nagle would hold it for an ACK.
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            buf: Vec::with_capacity(4096),
            used: 0,
        })
    }

    /// True when the peer has closed this idle connection, or sent bytes
    /// nobody asked for: a read would not block. Checked before each round,
    /// so a server's keep-alive idle timeout costs a reconnect rather than
    /// a failed attempt. One non-blocking read, no syscall while tokio has
    /// seen no readiness.
    pub(crate) fn is_stale(&self) -> bool {
        let mut probe = [0u8; 1];
        !matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// Writes `requests` (whole requests, one after the other) and reads
    /// `n` answers in order into `answers`; `head_only` says the requests
    /// were `HEAD` (answers without a body). An error means the connection
    /// must not be reused; the answers read before it are in `answers`.
    pub(crate) async fn exchange(
        &mut self,
        requests: &[u8],
        n: usize,
        method: &str,
        answers: &mut Vec<Answer>,
    ) -> Result<(), Failure> {
        self.stream.write_all(requests).await?;
        for _ in 0..n {
            let answer = self.read_answer(method).await?;
            let reusable = answer.reusable;
            answers.push(answer);
            if !reusable {
                break;
            }
        }
        Ok(())
    }

    async fn read_answer(&mut self, method: &str) -> Result<Answer, Failure> {
        self.buf.drain(..self.used);
        self.used = 0;
        let (status, framing, reusable, retry_after, head_len) = loop {
            if let Some(head) = parse_head(&self.buf, method)? {
                break head;
            }
            self.fill().await?;
        };
        if matches!(framing, BodyFraming::Length(n) if n > MAX_BODY as u64) {
            return Err(bad("response body over 1 MiB"));
        }
        let body = self.read_body(framing, head_len).await?;
        Ok(Answer {
            status,
            body,
            reusable,
            retry_after,
        })
    }

    /// Reads more bytes; the peer closing here is an error.
    async fn fill(&mut self) -> io::Result<()> {
        if self.stream.read_buf(&mut self.buf).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    }

    /// Reads the body that starts at `start` in the buffer, de-framed, and
    /// marks what it used.
    async fn read_body(&mut self, framing: BodyFraming, start: usize) -> Result<Vec<u8>, Failure> {
        let bad_body = |e: BodyError| bad(e.reason());
        let mut decoder = BodyDecoder::new(framing).map_err(bad_body)?;
        let mut body = Vec::new();
        let mut at = start;
        loop {
            let decoded = decoder
                .decode(&self.buf[at..], |bytes| body.extend_from_slice(bytes))
                .map_err(bad_body)?;
            at += decoded.used;
            if body.len() > MAX_BODY {
                return Err(bad("response body over 1 MiB"));
            }
            if decoder.is_done() {
                self.used = at;
                return Ok(body);
            }
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                // The end of an until-close body; any other body is cut short.
                decoder
                    .finish()
                    .map_err(|_| io::Error::from(io::ErrorKind::UnexpectedEof))?;
                self.used = self.buf.len();
                return Ok(body);
            }
        }
    }
}

/// What a head says: status, body framing, whether the connection can
/// carry the next request, `Retry-After`, and the head's length; `None`
/// while the head is incomplete.
type Head = (u16, BodyFraming, bool, Option<Duration>, usize);

fn parse_head(buf: &[u8], method: &str) -> Result<Option<Head>, Failure> {
    let mut slots = HeaderSlots::new();
    match parse_response(buf, &LIMITS, method, &mut slots) {
        Ok(head) => Ok(head.map(|h| {
            let retry_after = h.headers.get("retry-after").and_then(parse_retry_after);
            (h.status, h.body, h.reusable(), retry_after, h.len)
        })),
        Err(e) => Err(bad(e.reason())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_targets() {
        let t = Target::parse("http://127.0.0.1:8001").unwrap();
        assert_eq!(t.addr, "127.0.0.1:8001".parse().unwrap());
        assert_eq!((t.host.as_str(), t.path.as_str()), ("127.0.0.1:8001", ""));
        let t = Target::parse("http://127.0.0.1:9/admin/").unwrap();
        assert_eq!(t.path, "/admin");
        let t = Target::parse("http://127.0.0.1:9/pub?chan={id}").unwrap();
        assert_eq!(t.path, "/pub?chan={id}");
        assert_eq!(Target::parse("http://127.0.0.1").unwrap().addr.port(), 80);
        let local = Target::parse("http://localhost:8001").unwrap();
        assert_eq!(local.addr, "127.0.0.1:8001".parse().unwrap());
        assert_eq!(local.host, "localhost:8001");
        assert!(Target::parse("https://127.0.0.1:1").is_err());
        assert!(Target::parse("127.0.0.1:8001").is_err());
        assert!(Target::parse("http:///send").is_err());
        assert!(Target::parse("http://127.0.0.1:1/a b").is_err());
    }

    /// What `exchange` makes of `answer` to `n` requests, sent whole by a
    /// server that then closes the connection.
    async fn answers_to(answer: &'static [u8], n: usize) -> (Vec<Answer>, Result<(), Failure>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            while !request.ends_with(b"\r\n\r\n") {
                let mut buf = [0u8; 1024];
                let n = socket.read(&mut buf).await.unwrap();
                assert!(n > 0, "request cut short");
                request.extend_from_slice(&buf[..n]);
            }
            socket.write_all(answer).await.unwrap();
        });
        let mut conn = Conn::connect(addr).await.unwrap();
        let mut answers = Vec::new();
        let request = b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n";
        let result = conn.exchange(request, n, "POST", &mut answers).await;
        server.await.unwrap();
        (answers, result)
    }

    #[tokio::test]
    async fn reads_answers_by_their_framing() {
        let (a, r) = answers_to(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", 1).await;
        assert!(r.is_ok());
        assert_eq!(
            (a[0].status, a[0].body.as_slice(), a[0].reusable),
            (200, &b"{}"[..], true)
        );
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let (a, _) = answers_to(chunked, 1).await;
        assert_eq!(a[0].body, b"abcde");
        let (a, _) = answers_to(b"HTTP/1.0 200 OK\r\n\r\nuntil close", 1).await;
        assert_eq!(
            (a[0].body.as_slice(), a[0].reusable),
            (&b"until close"[..], false)
        );
        let busy = b"HTTP/1.1 429 Slow down\r\nRetry-After: 2\r\nContent-Length: 4\r\n\r\nwait";
        let (a, _) = answers_to(busy, 1).await;
        assert_eq!(
            (a[0].status, a[0].retry_after),
            (429, Some(Duration::from_secs(2)))
        );
        let (_, cut) = answers_to(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{}", 1).await;
        assert_eq!(cut.unwrap_err().class, FailureClass::Closed);
    }

    /// Pipelined answers that arrive in one read are each read whole.
    #[tokio::test]
    async fn reads_pipelined_answers_in_order() {
        let three = b"HTTP/1.1 201 Created\r\nContent-Length: 1\r\n\r\naHTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nb\r\n0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nc";
        let (a, r) = answers_to(three, 3).await;
        assert!(r.is_ok());
        let got: Vec<(u16, &[u8])> = a.iter().map(|a| (a.status, a.body.as_slice())).collect();
        assert_eq!(got, [(201, &b"a"[..]), (202, &b"b"[..]), (200, &b"c"[..])]);
        // Two of three answered, then the close: the third is an error.
        let (a, r) = answers_to(&three[..three.len() - 39], 3).await;
        assert_eq!((a.len(), r.unwrap_err().class), (2, FailureClass::Closed));
    }

    #[tokio::test]
    async fn a_length_beside_a_coding_is_a_bad_response_in_either_order() {
        // RFC 9112 6.3: such an answer is how responses are split; it was
        // read by whichever field came last.
        let te_first =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n{}";
        let (_, r) = answers_to(te_first, 1).await;
        assert_eq!(r.unwrap_err().class, FailureClass::BadResponse);
        let cl_first = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n";
        let (_, r) = answers_to(cl_first, 1).await;
        assert_eq!(r.unwrap_err().class, FailureClass::BadResponse);
    }

    #[test]
    fn reads_heads() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n{...}";
        assert_eq!(
            parse_head(ok, "POST").unwrap(),
            Some((200, BodyFraming::Length(5), true, None, 38))
        );
        assert_eq!(parse_head(&ok[..20], "POST").unwrap(), None);
        let close = b"HTTP/1.1 500 Oops\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n";
        let (status, framing, reusable, _, _) = parse_head(close, "POST").unwrap().unwrap();
        assert_eq!(
            (status, framing, reusable),
            (500, BodyFraming::Chunked, false)
        );
        assert!(parse_head(b"SMTP ready\r\n\r\n", "POST").is_err());
        let old = b"HTTP/1.0 200 OK\r\n\r\n";
        assert_eq!(
            parse_head(old, "POST").unwrap(),
            Some((200, BodyFraming::UntilClose, false, None, 19))
        );
    }
}
