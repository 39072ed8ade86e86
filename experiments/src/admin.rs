//! Reading the server's admin `GET /stats` while the run goes on: the
//! runner waits on its `connections` figure to know the flood has reached
//! its target, and keeps the last answer for the report. The answer is read
//! as the [`StatsSnapshot`] comet-server serialises.
//!
//! One blocking request per poll on loopback (a few hundred microseconds),
//! so a plain `std::net` client is enough; no async runtime in the runner.

use anyhow::{bail, Context};
use c1m_common::StatsSnapshot;
use c1m_http::{parse_response, write_request_head, BodyDecoder, HeadLimits, HeaderSlots};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(2);
/// An admin answer's head is a few hundred bytes.
const LIMITS: HeadLimits = HeadLimits::new(16 * 1024, 32);

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

/// The body of `GET path`; the server is asked to close after the answer.
fn get(addr: SocketAddr, path: &str) -> anyhow::Result<Vec<u8>> {
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT)
        .with_context(|| format!("connecting to the admin port {addr}"))?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    let mut request = Vec::new();
    let close: [(&str, &dyn std::fmt::Display); 1] = [("Connection", &"close")];
    write_request_head(&mut request, "GET", &path, &addr, &close, None);
    stream
        .write_all(&request)
        .with_context(|| format!("sending GET {path} to {addr}"))?;
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .with_context(|| format!("reading GET {path} from {addr}"))?;
    let url = format!("GET http://{addr}{path}");
    let mut slots = HeaderSlots::new();
    let head = parse_response(&answer, &LIMITS, "GET", &mut slots)
        .with_context(|| url.clone())?
        .with_context(|| format!("{url}: no end of headers"))?;
    if head.status != 200 {
        let status_line = format!("{} {} {}", head.version, head.status, head.reason);
        bail!("{url}: {}", status_line.trim_end());
    }
    let mut body = Vec::new();
    let mut decoder = BodyDecoder::new(head.body).with_context(|| url.clone())?;
    decoder
        .decode(&answer[head.len..], |bytes| body.extend_from_slice(bytes))
        .and_then(|_| decoder.finish())
        .with_context(|| format!("{url}: bad body"))?;
    Ok(body)
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
    fn reads_the_framing_as_rfc_9112_says_not_by_substring() {
        // No space after the colon, and a trailer: still chunked.
        let body = snapshot(9);
        let tight = serve_once(format!(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding:chunked\r\n\r\n\
             {:x}\r\n{body}\r\n0\r\nX-T: 1\r\n\r\n",
            body.len()
        ));
        assert_eq!(stats(tight).unwrap().connections, 9);
        let body = snapshot(3);
        let sized = serve_once(format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ));
        assert_eq!(stats(sized).unwrap().connections, 3);
        let closed = serve_once(format!("HTTP/1.0 200 OK\r\n\r\n{}", snapshot(42)));
        assert_eq!(stats(closed).unwrap().connections, 42);
        let body = snapshot(9);
        let smuggled = serve_once(format!(
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n\
             {:x}\r\n{body}\r\n0\r\n\r\n",
            body.len()
        ));
        let err = format!("{:#}", stats(smuggled).unwrap_err());
        assert!(
            err.contains("both transfer-encoding and content-length"),
            "{err}"
        );
    }

    #[test]
    fn a_bad_status_or_another_document_is_an_error() {
        let missing = serve_once("HTTP/1.0 404 Not Found\r\n\r\n".to_owned());
        let err = format!("{:#}", stats(missing).unwrap_err());
        assert!(err.ends_with("HTTP/1.0 404 Not Found"), "{err}");
        let other = serve_once("HTTP/1.0 200 OK\r\n\r\n{\"conns\": 1}".to_owned());
        let err = format!("{:#}", stats(other).unwrap_err());
        assert!(
            // Counters an older server lacks read as 0, so the field named
            // is the first one that is required.
            err.contains("is not comet-server's counters") && err.contains("missing field `"),
            "{err}"
        );
    }
}
