//! Reading the server's admin `GET /stats` while the run goes on: the
//! runner waits on its `connections` figure to know the flood has reached
//! its target, and keeps the last answer for the report. The answer is read
//! as the [`StatsSnapshot`] comet-server serialises.
//!
//! One blocking request per poll on loopback (a few hundred microseconds),
//! so a plain `std::net` client is enough; no async runtime in the runner.

use anyhow::{bail, Context};
use c1m_common::StatsSnapshot;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(2);

/// The answer of `GET /stats` at `admin`.
pub(crate) fn stats(admin: SocketAddr) -> anyhow::Result<StatsSnapshot> {
    let body = get(admin, "/stats")?;
    serde_json::from_slice(&body).with_context(|| {
        format!(
            "GET http://{admin}/stats is not comet-server's counters: {:?}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        )
    })
}

/// The body of `GET path` (HTTP/1.0, so the answer is neither chunked nor
/// kept alive).
fn get(addr: SocketAddr, path: &str) -> anyhow::Result<Vec<u8>> {
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT)
        .with_context(|| format!("connecting to the admin port {addr}"))?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")
        .with_context(|| format!("sending GET {path} to {addr}"))?;
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .with_context(|| format!("reading GET {path} from {addr}"))?;
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .with_context(|| format!("GET http://{addr}{path}: no end of headers"))?;
    let status_line =
        String::from_utf8_lossy(answer.split(|&b| b == b'\r').next().unwrap_or(&[])).into_owned();
    if status_line.split_whitespace().nth(1) != Some("200") {
        bail!("GET http://{addr}{path}: {status_line}");
    }
    let body = answer.split_off(split + 4);
    let head = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    if head.contains("transfer-encoding: chunked") {
        return dechunk(&body)
            .with_context(|| format!("GET http://{addr}{path}: bad chunked body"));
    }
    Ok(body)
}

/// Joins the chunks of a chunked body (a server may answer HTTP/1.0 with
/// chunks all the same).
fn dechunk(mut rest: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("chunk size line not ended")?;
        let size_text = std::str::from_utf8(&rest[..line_end])?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        if rest.len() < size {
            bail!("chunk shorter than its size");
        }
        body.extend_from_slice(&rest[..size]);
        rest = rest.get(size + 2..).unwrap_or(&[]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn serve_once(answer: String) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            // Read the whole request first: closing with unread bytes
            // would reset the connection before the answer is read.
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = s.read(&mut buf).unwrap();
                assert!(n > 0, "request cut short");
                request.extend_from_slice(&buf[..n]);
            }
            s.write_all(answer.as_bytes()).unwrap();
        });
        addr
    }

    /// A `/stats` answer holding `connections`.
    fn snapshot(connections: u64) -> String {
        serde_json::to_string(&StatsSnapshot {
            connections,
            ..StatsSnapshot::default()
        })
        .unwrap()
    }

    #[test]
    fn reads_the_snapshot_from_plain_and_chunked_answers() {
        let plain = serve_once(format!(
            "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{}",
            snapshot(42)
        ));
        assert_eq!(stats(plain).unwrap().connections, 42);
        let body = snapshot(7);
        let (first, second) = body.split_at(6);
        let chunked = serve_once(format!(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
             {:x}\r\n{first}\r\n{:x}\r\n{second}\r\n0\r\n\r\n",
            first.len(),
            second.len()
        ));
        assert_eq!(stats(chunked).unwrap().connections, 7);
    }

    #[test]
    fn a_bad_status_or_another_document_is_an_error() {
        let missing = serve_once("HTTP/1.0 404 Not Found\r\n\r\n".to_owned());
        let err = format!("{:#}", stats(missing).unwrap_err());
        assert!(err.ends_with("HTTP/1.0 404 Not Found"), "{err}");
        let other = serve_once("HTTP/1.0 200 OK\r\n\r\n{\"conns\": 1}".to_owned());
        let err = format!("{:#}", stats(other).unwrap_err());
        assert!(
            err.contains("is not comet-server's counters")
                && err.contains("missing field `connections`"),
            "{err}"
        );
    }
}
