//! Helpers shared by the integration tests: an in-process server on port 0,
//! blocking subscriber clients and a one-shot admin client.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use c1m_common::StatsSnapshot as Snapshot;
use c1m_server::{Config, Server};

pub(crate) fn server(config: Config) -> Server {
    let _ = c1m_common::raise_nofile_to_hard();
    let loopback = "127.0.0.1:0".parse().unwrap();
    let sub = c1m_server::bind(loopback, 4096, false).unwrap();
    let admin = c1m_server::bind(loopback, 128, false).unwrap();
    c1m_server::start(config, sub, admin).unwrap()
}

pub(crate) fn config() -> Config {
    Config {
        reactors: 2,
        ..Config::default()
    }
}

/// Sends one admin request (Connection: close) and returns (status, body).
pub(crate) fn admin(server: &Server, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    admin_with(server.admin_addr(), method, path, body, "")
}

pub(crate) fn admin_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &[u8],
    headers: &str,
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\nConnection: close\r\n{headers}\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    status_and_body(&out)
}

pub(crate) fn status_and_body(response: &str) -> (u16, String) {
    let status = response
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (status, body)
}

pub(crate) fn stats(server: &Server) -> Snapshot {
    let (status, body) = admin(server, "GET", "/stats", b"");
    assert_eq!(status, 200);
    serde_json::from_str(&body).unwrap()
}

/// Waits until the server's counters satisfy `cond` (reactors add their
/// counts at the end of a loop iteration, just after the bytes went out).
pub(crate) fn stats_reach(server: &Server, cond: impl Fn(&Snapshot) -> bool) -> bool {
    eventually(Duration::from_secs(3), || cond(&stats(server)))
}

/// Polls `cond` until it holds or `limit` passes; returns whether it held.
pub(crate) fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}

/// A subscriber connection read with a timeout.
pub(crate) struct Client {
    pub stream: TcpStream,
    pub received: Vec<u8>,
}

impl Client {
    pub(crate) fn raw(addr: SocketAddr, request: &[u8]) -> Client {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream.write_all(request).unwrap();
        Client {
            stream,
            received: Vec::new(),
        }
    }

    pub(crate) fn get(addr: SocketAddr, path: &str) -> Client {
        Self::get_with(addr, path, "")
    }

    pub(crate) fn get_with(addr: SocketAddr, path: &str, headers: &str) -> Client {
        Self::raw(
            addr,
            format!("GET {path} HTTP/1.1\r\nHost: t\r\n{headers}\r\n").as_bytes(),
        )
    }

    /// Reads until `needle` has been received; panics after the timeout.
    pub(crate) fn expect(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut buf = [0u8; 16384];
        while !contains(&self.received, needle.as_bytes()) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {needle:?}; got {:?}",
                self.text()
            );
            match self.stream.read(&mut buf) {
                Ok(0) => panic!("closed while waiting for {needle:?}; got {:?}", self.text()),
                Ok(n) => self.received.extend_from_slice(&buf[..n]),
                Err(e) => panic!(
                    "read failed waiting for {needle:?}: {e}; got {:?}",
                    self.text()
                ),
            }
        }
        self.text()
    }

    /// Reads until `needle` has been received `count` times (not overlapping).
    pub(crate) fn expect_count(&mut self, needle: &str, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut buf = [0u8; 65536];
        while self.text().matches(needle).count() < count {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {count} x {needle:?}"
            );
            match self.stream.read(&mut buf) {
                Ok(0) => panic!("closed while waiting for {count} x {needle:?}"),
                Ok(n) => self.received.extend_from_slice(&buf[..n]),
                Err(e) => panic!("read failed: {e}"),
            }
        }
    }

    /// Reads until the server closes; returns everything received.
    pub(crate) fn read_to_close(&mut self) -> String {
        let _ = self.stream.read_to_end(&mut self.received);
        self.text()
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.received).into_owned()
    }
}

pub(crate) fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

pub(crate) mod binary;
pub(crate) mod nats;
