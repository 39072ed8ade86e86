//! The server's own connection count: `GET /stats` on comet-server's
//! admin address (`--server-stats`), read as the [`StatsSnapshot`] the
//! server serialises. A group's front answers with the sum over its
//! workers, so one request covers a million connections in 53 processes.
//!
//! Cost per sample on memlog's side: one loopback connection, a request
//! head, and a JSON document of a few KB (a front lists each worker's
//! counters: ~1 KB per worker), ~0.1-0.5 ms of CPU; against ~1 us per
//! socket for counting them (`benches/sample_cost.sh`). The answer is
//! bounded in size and time ([`TIMEOUT`] for the whole exchange), so a
//! stuck server delays a sample by at most that much.

use anyhow::{bail, Context};
use c1m_common::StatsSnapshot;
use c1m_http::{parse_response, write_request_head, BodyDecoder, HeadLimits, HeaderSlots};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// The whole exchange (connect, request, answer) must fit in this: a
/// sample waits for it.
pub(crate) const TIMEOUT: Duration = Duration::from_millis(500);
/// An admin answer's head is a few hundred bytes.
const LIMITS: HeadLimits = HeadLimits::new(16 * 1024, 32);
/// A front's `/stats` with 100 workers is ~100 KB; anything past this is
/// not a stats document.
const MAX_ANSWER: usize = 4 << 20;

/// Where the server's `/stats` is: `http://IP:PORT/PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsUrl {
    /// The URL as given, for messages.
    url: String,
    addr: SocketAddr,
    /// `HOST:PORT` as given, for the Host header.
    authority: String,
    path: String,
}

impl StatsUrl {
    /// Parses `http://IP:PORT[/PATH]` (PATH defaults to `/stats`); a clap
    /// value parser, so a bad URL is refused with the command line.
    pub fn parse(url: &str) -> Result<Self, String> {
        let expected = "expected comet-server's admin URL, such as http://127.0.0.1:8001/stats";
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("{url:?}: {expected}"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/stats"),
        };
        if path.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            return Err(format!("{url:?}: a space or control character in the path"));
        }
        // An address, not a name: the admin listens on one (127.0.0.1 by
        // default), and a name that resolves to ::1 first would miss it.
        let addr: SocketAddr = authority.parse().map_err(|_| {
            format!("{url:?}: {expected} (HOST:PORT {authority:?} is not an IP address and port)")
        })?;
        Ok(StatsUrl {
            url: url.to_owned(),
            addr,
            authority: authority.to_owned(),
            path: path.to_owned(),
        })
    }

    /// The server's `connections`: subscriber connections open now,
    /// summed over a group's workers.
    pub(crate) fn connections(&self) -> anyhow::Result<u64> {
        let body = self.get().with_context(|| format!("GET {}", self.url))?;
        let stats: StatsSnapshot = serde_json::from_slice(&body).with_context(|| {
            format!(
                "GET {} is not comet-server's /stats: {:?}",
                self.url,
                String::from_utf8_lossy(&body[..body.len().min(200)])
            )
        })?;
        Ok(stats.connections)
    }

    /// The body of one `GET`, on a connection the server closes after it.
    fn get(&self) -> anyhow::Result<Vec<u8>> {
        let deadline = Instant::now() + TIMEOUT;
        let mut stream = TcpStream::connect_timeout(&self.addr, TIMEOUT)
            .with_context(|| format!("connecting to {}", self.addr))?;
        stream.set_write_timeout(Some(TIMEOUT))?;
        let mut request = Vec::new();
        let close: [(&str, &dyn std::fmt::Display); 1] = [("Connection", &"close")];
        write_request_head(
            &mut request,
            "GET",
            &self.path,
            &self.authority,
            &close,
            None,
        );
        stream.write_all(&request).context("sending the request")?;
        let answer = read_until_closed(&mut stream, deadline)?;
        let mut slots = HeaderSlots::new();
        let head = parse_response(&answer, &LIMITS, "GET", &mut slots)?
            .context("the answer ended inside its head")?;
        if head.status != 200 {
            let status_line = format!("{} {} {}", head.version, head.status, head.reason);
            bail!("{}", status_line.trim_end());
        }
        let mut body = Vec::new();
        let mut decoder = BodyDecoder::new(head.body)?;
        decoder
            .decode(&answer[head.len..], |bytes| body.extend_from_slice(bytes))
            .and_then(|_| decoder.finish())
            .context("bad body")?;
        Ok(body)
    }
}

impl std::fmt::Display for StatsUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.url)
    }
}

/// Everything the server sends until it closes, by `deadline`, at most
/// [`MAX_ANSWER`] bytes.
fn read_until_closed(stream: &mut TcpStream, deadline: Instant) -> anyhow::Result<Vec<u8>> {
    let mut answer = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bail!("no whole answer within {} ms", TIMEOUT.as_millis());
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut buf) {
            Ok(0) => return Ok(answer),
            Ok(n) if answer.len() + n > MAX_ANSWER => {
                bail!("the answer is over {} MiB", MAX_ANSWER >> 20)
            }
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                bail!("no whole answer within {} ms", TIMEOUT.as_millis())
            }
            Err(e) => return Err(e).context("reading the answer"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn urls_are_checked_when_parsed() {
        let url = StatsUrl::parse("http://127.0.0.1:8001/stats").unwrap();
        assert_eq!(url.addr, "127.0.0.1:8001".parse().unwrap());
        assert_eq!(
            (url.path.as_str(), url.to_string().as_str()),
            ("/stats", "http://127.0.0.1:8001/stats")
        );
        assert_eq!(StatsUrl::parse("http://[::1]:9").unwrap().path, "/stats");
        for (bad, says) in [
            ("127.0.0.1:8001", "expected comet-server's admin URL"),
            (
                "https://127.0.0.1:8001/stats",
                "expected comet-server's admin URL",
            ),
            ("http://127.0.0.1/stats", "HOST:PORT \"127.0.0.1\" is not"),
            (
                "http://localhost:8001/stats",
                "HOST:PORT \"localhost:8001\" is not",
            ),
            ("http://127.0.0.1:9/st ats", "space or control"),
        ] {
            let err = StatsUrl::parse(bad).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn a_server_that_does_not_answer_costs_at_most_the_timeout() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url =
            StatsUrl::parse(&format!("http://{}/stats", listener.local_addr().unwrap())).unwrap();
        // Accepted by the kernel, never answered.
        let started = Instant::now();
        let err = format!("{:#}", url.connections().unwrap_err());
        assert!(err.contains("no whole answer within 500 ms"), "{err}");
        assert!(started.elapsed() < TIMEOUT * 4, "{:?}", started.elapsed());
        drop(listener);
    }
}
