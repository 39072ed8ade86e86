//! The HTTP/1.1 client side of `POST /send`: one request at a time on a
//! keep-alive connection, heads written and answers read by the shared
//! codec (`c1m_http`).
//!
//! A whole HTTP client stack (hyper) would buy connection pooling and
//! HTTP/2 that a sender with exactly one connection and one request in
//! flight does not use; the codec writes the request head, and reads the
//! answer's head and body (Content-Length, chunked or until the close) by
//! RFC 9112's framing rules. A connection holds its socket and one read
//! buffer (a few KiB, kept for the life of the connection).

use crate::stats::FailureClass;
use c1m_common::BatchAnswer;
use c1m_http::{
    parse_response, write_request_head, BodyDecoder, BodyError, BodyFraming, HeadLimits,
    HeaderSlots,
};
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
        let bearer = token.map(|token| format!("Bearer {token}"));
        let mut fields: Vec<(&str, &dyn std::fmt::Display)> = vec![("Content-Type", &"text/plain")];
        if let Some(bearer) = &bearer {
            fields.push(("Authorization", bearer));
        }
        let mut head = Vec::with_capacity(128);
        write_request_head(
            &mut head,
            "POST",
            &self.send_path,
            &self.host,
            &fields,
            Some(body_len),
        );
        head
    }
}

/// Why a request got no 2xx answer.
#[derive(Debug)]
pub(crate) enum RequestError {
    Io(io::Error),
    /// An answer the codec could not read, or framed in a way it refuses.
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

/// An answer's head bigger than this, or with more fields, is refused
/// rather than buffered.
const LIMITS: HeadLimits = HeadLimits::new(64 * 1024, 32);
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
        let (status, framing, reusable, head_len) = loop {
            if let Some(head) = parse_head(&self.buf)? {
                break head;
            }
            self.fill().await?;
        };
        if matches!(framing, BodyFraming::Length(n) if n > MAX_BODY as u64) {
            return Err(RequestError::BadResponse("response body over 1 MiB"));
        }
        let body = self.read_body(framing, head_len).await?;
        if !(200..300).contains(&status) {
            return Err(RequestError::Status(status));
        }
        // comet-server's answer; another target's body tells nothing.
        let answer = serde_json::from_slice::<BatchAnswer>(&body).ok();
        Ok(Reply {
            status,
            dropped: answer.and_then(|a| a.dropped),
            rejected: answer.map(|a| a.rejected),
            keep_alive: reusable,
        })
    }

    /// Reads more bytes; the peer closing here is an error.
    async fn fill(&mut self) -> io::Result<()> {
        if self.stream.read_buf(&mut self.buf).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    }

    /// Reads the body that starts at `start` in the buffer, de-framed.
    async fn read_body(
        &mut self,
        framing: BodyFraming,
        start: usize,
    ) -> Result<Vec<u8>, RequestError> {
        let bad = |e: BodyError| RequestError::BadResponse(e.reason());
        let mut decoder = BodyDecoder::new(framing).map_err(bad)?;
        let mut body = Vec::new();
        let mut at = start;
        loop {
            decoder
                .decode(&self.buf[at..], |bytes| body.extend_from_slice(bytes))
                .map_err(bad)?;
            at = self.buf.len();
            if body.len() > MAX_BODY {
                return Err(RequestError::BadResponse("response body over 1 MiB"));
            }
            if decoder.is_done() {
                return Ok(body);
            }
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                // The end of an until-close body; any other body is cut short.
                decoder
                    .finish()
                    .map_err(|_| io::Error::from(io::ErrorKind::UnexpectedEof))?;
                return Ok(body);
            }
        }
    }
}

/// Status, body framing, whether the connection can carry the next
/// request, and head length; `None` while the head is incomplete.
fn parse_head(buf: &[u8]) -> Result<Option<(u16, BodyFraming, bool, usize)>, RequestError> {
    let mut slots = HeaderSlots::new();
    match parse_response(buf, &LIMITS, "POST", &mut slots) {
        Ok(head) => Ok(head.map(|h| (h.status, h.body, h.reusable(), h.len))),
        Err(e) => Err(RequestError::BadResponse(e.reason())),
    }
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
             Authorization: Bearer s3cret\r\nContent-Length: 12\r\n\r\n"
        );
        let anonymous = String::from_utf8(t.batch_head(0, None)).unwrap();
        assert!(
            anonymous.ends_with("text/plain\r\nContent-Length: 0\r\n\r\n"),
            "{anonymous}"
        );
    }

    /// What `post` makes of `answer`, sent whole by a server that then
    /// closes the connection.
    async fn reply_to(answer: &'static [u8]) -> Result<Reply, RequestError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            while !request.ends_with(b"\r\n\r\nbody") {
                let mut buf = [0u8; 1024];
                let n = socket.read(&mut buf).await.unwrap();
                assert!(n > 0, "request cut short");
                request.extend_from_slice(&buf[..n]);
            }
            socket.write_all(answer).await.unwrap();
        });
        let target = Target::parse(&format!("http://{addr}")).unwrap();
        let mut conn = Conn::connect(addr).await.unwrap();
        let reply = conn.post(&target.batch_head(4, None), b"body").await;
        server.await.unwrap();
        reply
    }

    #[tokio::test]
    async fn reads_replies_by_their_framing() {
        let length = reply_to(
            b"HTTP/1.1 200 OK\r\nContent-Length: 39\r\n\r\n{\"accepted\":3,\"rejected\":1,\"dropped\":2}",
        );
        assert_eq!(
            length.await.unwrap(),
            Reply {
                status: 200,
                dropped: Some(2),
                rejected: Some(1),
                keep_alive: true
            }
        );
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\n{\"acce\r\n22\r\npted\":7,\"rejected\":0,\"dropped\":7}\n\r\n0\r\n\r\n";
        let reply = reply_to(chunked).await.unwrap();
        assert_eq!((reply.dropped, reply.keep_alive), (Some(7), true));
        // Another target's document tells nothing: no dropped, no rejected.
        let foreign = reply_to(b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n{\"dropped\":2}");
        let reply = foreign.await.unwrap();
        assert_eq!((reply.dropped, reply.rejected), (None, None));
        let until_close =
            reply_to(b"HTTP/1.0 200 OK\r\n\r\n{\"accepted\":0,\"rejected\":0,\"dropped\":0}")
                .await
                .unwrap();
        assert_eq!(
            (until_close.dropped, until_close.keep_alive),
            (Some(0), false)
        );
        let refused =
            reply_to(b"HTTP/1.1 503 Busy\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
        assert!(matches!(refused.await, Err(RequestError::Status(503))));
        let cut = reply_to(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{}").await;
        assert!(
            matches!(cut, Err(RequestError::Io(e)) if e.kind() == io::ErrorKind::UnexpectedEof)
        );
    }

    #[tokio::test]
    async fn a_length_beside_a_coding_is_a_bad_response_in_either_order() {
        // RFC 9112 6.3: such an answer is how responses are split; it was
        // read by whichever field came last.
        let te_first =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n{}";
        assert!(matches!(
            reply_to(te_first).await,
            Err(RequestError::BadResponse(_))
        ));
        let cl_first = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n";
        assert!(matches!(
            reply_to(cl_first).await,
            Err(RequestError::BadResponse(_))
        ));
    }

    #[test]
    fn reads_heads() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n{...}";
        assert_eq!(
            parse_head(ok).unwrap(),
            Some((200, BodyFraming::Length(5), true, 38))
        );
        assert_eq!(parse_head(&ok[..20]).unwrap(), None);
        let close = b"HTTP/1.1 500 Oops\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n";
        let (status, framing, reusable, _) = parse_head(close).unwrap().unwrap();
        assert_eq!(
            (status, framing, reusable),
            (500, BodyFraming::Chunked, false)
        );
        assert!(parse_head(b"SMTP ready\r\n\r\n").is_err());
        let old = b"HTTP/1.0 200 OK\r\n\r\n";
        assert_eq!(
            parse_head(old).unwrap(),
            Some((200, BodyFraming::UntilClose, false, 19))
        );
    }
}
