//! The front's admin client for one worker: HTTP/1.1 keep-alive over the
//! worker's abstract Unix admin socket, with a few idle connections kept
//! for reuse (one per concurrent request at most).

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use c1m_http::{
    parse_response, write_request_head, BodyDecoder, BodyFraming, HeadLimits, HeaderSlots,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// Idle connections kept per worker.
const MAX_IDLE: usize = 8;

/// Longest answer head read from a worker.
const MAX_ANSWER_HEAD: usize = 16 * 1024;

/// A worker's admin socket and its idle connections.
pub(crate) struct Link {
    name: String,
    token: Option<String>,
    /// Idle connections and when each was last used: the worker closes one
    /// idle for its `--header-timeout`, so older ones are not reused.
    idle: Mutex<Vec<(UnixStream, Instant)>>,
    idle_limit: Duration,
    /// `--worker-timeout`: a worker stopped or stuck answers nothing, and
    /// the front must not wait with it.
    answer_limit: Duration,
}

/// A worker's answer: status and body.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
}

impl Link {
    pub(crate) fn new(
        name: String,
        token: Option<String>,
        header_timeout: Duration,
        answer_limit: Duration,
    ) -> Self {
        Self {
            name,
            token,
            idle: Mutex::default(),
            idle_limit: header_timeout / 2,
            answer_limit,
        }
    }

    async fn connect(&self) -> io::Result<UnixStream> {
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(self.name.as_bytes())?;
        let stream = std::os::unix::net::UnixStream::connect_addr(&addr)?;
        stream.set_nonblocking(true)?;
        UnixStream::from_std(stream)
    }

    fn take_idle(&self) -> Option<UnixStream> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some((stream, used)) = idle.pop() {
            if used.elapsed() < self.idle_limit {
                return Some(stream);
            }
        }
        None
    }

    /// Sends one request and reads its answer within `--worker-timeout`
    /// (else `TimedOut`, the connection dropped: a late answer may still
    /// have delivered, so a worker that is only slow is counted down too).
    pub(crate) async fn request(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> io::Result<Answer> {
        self.request_until(self.deadline(), method, path, body)
            .await
    }

    /// `--worker-timeout` from now: when an answer asked for now is late.
    pub(crate) fn deadline(&self) -> tokio::time::Instant {
        tokio::time::Instant::now() + self.answer_limit
    }

    /// [`Link::request`] that gives up at `deadline` (a lane's request
    /// carries lines that waited in its queue, and their time counts).
    pub(crate) async fn request_until(
        &self,
        deadline: tokio::time::Instant,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> io::Result<Answer> {
        tokio::time::timeout_at(deadline, self.request_once(method, path, body))
            .await
            .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
    }

    /// A reused connection that the worker closed before reading anything
    /// is retried once on a new one (nothing was done); any other failure
    /// is the caller's.
    async fn request_once(&self, method: &str, path: &str, body: &[u8]) -> io::Result<Answer> {
        if let Some(stream) = self.take_idle() {
            match self.exchange(stream, method, path, body).await {
                Ok(answer) => return Ok(answer),
                Err(Failure::Unanswered) => {}
                Err(Failure::Broken(e)) => return Err(e),
            }
        }
        let stream = self.connect().await?;
        match self.exchange(stream, method, path, body).await {
            Ok(answer) => Ok(answer),
            Err(Failure::Unanswered) => Err(io::ErrorKind::UnexpectedEof.into()),
            Err(Failure::Broken(e)) => Err(e),
        }
    }

    /// Opens a streamed answer (`GET /presence`) on a connection of its
    /// own, within `--worker-timeout`; an error unless it answered 200.
    pub(crate) async fn stream(&self, path: &str) -> io::Result<Streamed> {
        let opening = async {
            let mut stream = self.connect().await?;
            stream
                .write_all(&self.request_bytes("GET", path, b""))
                .await?;
            let mut buf = Vec::with_capacity(1024);
            loop {
                if stream.read_buf(&mut buf).await? == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                let mut slots = HeaderSlots::new();
                let limits = HeadLimits::new(MAX_ANSWER_HEAD, 32);
                let parsed = parse_response(&buf, &limits, "GET", &mut slots)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.reason()))?;
                let Some(head) = parsed else { continue };
                if head.status != 200 {
                    let status = head.status;
                    return Err(io::Error::other(format!("worker answered {status}")));
                }
                let decoder = BodyDecoder::new(head.body)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.reason()))?;
                buf.drain(..head.len);
                return Ok(Streamed {
                    stream,
                    decoder,
                    pending: buf,
                });
            }
        };
        tokio::time::timeout(self.answer_limit, opening)
            .await
            .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
    }

    fn request_bytes(&self, method: &str, path: &str, body: &[u8]) -> Vec<u8> {
        let mut request = Vec::with_capacity(256 + body.len());
        {
            let bearer = self.token.as_ref().map(|t| format!("Bearer {t}"));
            let auth: Vec<(&str, &dyn std::fmt::Display)> = match &bearer {
                Some(b) => vec![("Authorization", b)],
                None => Vec::new(),
            };
            write_request_head(
                &mut request,
                method,
                &path,
                &"worker",
                &auth,
                Some(body.len()),
            );
        }
        request.extend_from_slice(body);
        request
    }

    async fn exchange(
        &self,
        mut stream: UnixStream,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Result<Answer, Failure> {
        let request = self.request_bytes(method, path, body);
        stream.write_all(&request).await.map_err(Failure::Broken)?;
        let mut buf = Vec::with_capacity(1024);
        let (status, head_len, length, keep_alive) = loop {
            let n = stream.read_buf(&mut buf).await.map_err(Failure::Broken)?;
            if n == 0 {
                return Err(if buf.is_empty() {
                    Failure::Unanswered
                } else {
                    Failure::Broken(io::ErrorKind::UnexpectedEof.into())
                });
            }
            if let Some(parsed) = parse_answer_head(&buf).map_err(Failure::Broken)? {
                break parsed;
            }
        };
        while buf.len() < head_len + length {
            if stream.read_buf(&mut buf).await.map_err(Failure::Broken)? == 0 {
                return Err(Failure::Broken(io::ErrorKind::UnexpectedEof.into()));
            }
        }
        let body = buf[head_len..head_len + length].to_vec();
        if keep_alive {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            if idle.len() < MAX_IDLE {
                idle.push((stream, Instant::now()));
            }
        }
        Ok(Answer { status, body })
    }
}

/// A worker's streamed answer, read as it comes.
pub(crate) struct Streamed {
    stream: UnixStream,
    decoder: BodyDecoder,
    /// Bytes read with the head, not yet decoded.
    pending: Vec<u8>,
}

impl Streamed {
    /// Appends the next body bytes to `out`; `false` once the body ended
    /// (the worker closed it) or failed.
    pub(crate) async fn read(&mut self, out: &mut Vec<u8>) -> bool {
        let start = out.len();
        while out.len() == start {
            if self.decoder.is_done() {
                return false;
            }
            if self.pending.is_empty() {
                match self.stream.read_buf(&mut self.pending).await {
                    Ok(0) | Err(_) => return false,
                    Ok(_) => {}
                }
            }
            match self
                .decoder
                .decode(&self.pending, |bytes| out.extend_from_slice(bytes))
            {
                Ok(decoded) => drop(self.pending.drain(..decoded.used)),
                Err(_) => return false,
            }
        }
        true
    }
}

enum Failure {
    /// Closed before any byte of an answer: the request was not served.
    Unanswered,
    Broken(io::Error),
}

/// `(status, head length, content length, keep-alive)` once the head is in.
fn parse_answer_head(buf: &[u8]) -> io::Result<Option<(u16, usize, usize, bool)>> {
    const LIMITS: HeadLimits = HeadLimits::new(MAX_ANSWER_HEAD, 32);
    let bad =
        |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("worker answer: {what}"));
    let mut slots = HeaderSlots::new();
    let Some(head) =
        parse_response(buf, &LIMITS, "POST", &mut slots).map_err(|e| bad(e.reason()))?
    else {
        return Ok(None);
    };
    let length = match head.body {
        BodyFraming::Empty => 0,
        BodyFraming::Length(n) => usize::try_from(n).map_err(|_| bad("body too long"))?,
        BodyFraming::Chunked | BodyFraming::UntilClose => return Err(bad("no Content-Length")),
    };
    Ok(Some((head.status, head.len, length, head.reusable())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_answer_head() {
        let text = b"HTTP/1.1 200 OK\r\nContent-Type: x\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\nabc";
        let (status, len, length, keep) = parse_answer_head(text).unwrap().unwrap();
        assert_eq!((status, length, keep), (200, 3, true));
        assert_eq!(&text[len..], b"abc");
        let close =
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        assert!(!parse_answer_head(close).unwrap().unwrap().3);
        assert!(parse_answer_head(b"HTTP/1.1 200 OK\r\n").unwrap().is_none());
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert!(parse_answer_head(chunked).is_err());
    }
}
