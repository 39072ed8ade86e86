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

/// A friends graph from `user,friend` pairs, through the server's loader.
pub(crate) fn graph(pairs: &[(u64, u64)]) -> std::sync::Arc<c1m_server::FriendsGraph> {
    let mut text = b"user,friend\n".to_vec();
    for &(u, f) in pairs {
        text.extend_from_slice(format!("{u},{f}\n").as_bytes());
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("friends.csv");
    std::fs::write(&path, text).unwrap();
    std::sync::Arc::new(c1m_server::FriendsGraph::load(&path, u64::MAX).unwrap())
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
        Self::sending(TcpStream::connect(addr).unwrap(), request)
    }

    /// A client whose receive buffer is 4 KiB, so the server cannot hand
    /// the kernel much ahead of what it reads: what the server keeps for it
    /// is visible.
    pub(crate) fn small_window(addr: SocketAddr, request: &[u8]) -> Client {
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        socket.connect(&addr.into()).unwrap();
        Self::sending(socket.into(), request)
    }

    fn sending(mut stream: TcpStream, request: &[u8]) -> Client {
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
        // Only the new bytes (and a needle's length before them) are
        // searched again, so a long stream is not rescanned per read.
        let mut searched: usize = 0;
        loop {
            let from = searched.saturating_sub(needle.len());
            if contains(&self.received[from..], needle.as_bytes()) {
                break;
            }
            searched = self.received.len();
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

/// One event of a `text/event-stream`, as an EventSource dispatches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Event {
    /// The last event ID when this event was dispatched.
    pub id: String,
    /// The event type (`message` unless an `event:` field said otherwise).
    pub event: String,
    pub data: String,
}

/// The events of a complete `text/event-stream` body, parsed as the HTML
/// standard's EventSource does (so framing that a browser would read
/// differently from what the server meant shows up here): lines end at
/// CRLF, LF or a lone CR; `name: value` with one leading space dropped;
/// `data` lines joined with LF; an empty line dispatches.
pub(crate) fn sse_events(body: &str) -> Vec<Event> {
    let mut events = Vec::new();
    let (mut id, mut event, mut data) = (String::new(), String::new(), String::new());
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                lines.push(std::mem::take(&mut line));
            }
            '\n' => lines.push(std::mem::take(&mut line)),
            c => line.push(c),
        }
    }
    for line in lines {
        if line.is_empty() {
            if !data.is_empty() {
                data.pop();
                let kind = if event.is_empty() { "message" } else { &event };
                events.push(Event {
                    id: id.clone(),
                    event: kind.to_owned(),
                    data: std::mem::take(&mut data),
                });
            }
            event.clear();
            data.clear();
            continue;
        }
        if line.starts_with(':') {
            continue;
        }
        let (name, value) = line.split_once(':').unwrap_or((&line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match name {
            "id" if !value.contains('\0') => id = value.to_owned(),
            "event" => event = value.to_owned(),
            "data" => {
                data.push_str(value);
                data.push('\n');
            }
            _ => {}
        }
    }
    events
}

/// A `/poll` answer body, as the README documents it: `lost\t<first>-<last>`
/// lines and `<seq>\t<length>\t<message>` entries, each ending in LF.
/// Returns the lost ranges and the messages; panics on anything else.
#[allow(clippy::type_complexity)]
pub(crate) fn poll_entries(body: &[u8]) -> (Vec<(u64, u64)>, Vec<(u64, Vec<u8>)>) {
    let (mut lost, mut messages) = (Vec::new(), Vec::new());
    let mut rest = body;
    let field = |rest: &mut &[u8]| -> String {
        let tab = rest.iter().position(|&b| b == b'\t').expect("a tab");
        let text = String::from_utf8(rest[..tab].to_vec()).unwrap();
        *rest = &rest[tab + 1..];
        text
    };
    while !rest.is_empty() {
        let first = field(&mut rest);
        if first == "lost" {
            let end = rest.iter().position(|&b| b == b'\n').expect("a line end");
            let range = std::str::from_utf8(&rest[..end]).unwrap();
            let (a, b) = range.split_once('-').expect("a range");
            lost.push((a.parse().unwrap(), b.parse().unwrap()));
            rest = &rest[end + 1..];
            continue;
        }
        let seq: u64 = first.parse().expect("a sequence number");
        let len: usize = field(&mut rest).parse().expect("a length");
        assert_eq!(
            rest.get(len),
            Some(&b'\n'),
            "the entry for {seq} ends in LF"
        );
        messages.push((seq, rest[..len].to_vec()));
        rest = &rest[len + 1..];
    }
    (lost, messages)
}

/// Reads one HTTP response with a Content-Length from `c` (after what it
/// already holds); returns its head and body and keeps what follows.
pub(crate) fn read_response(c: &mut Client) -> (String, Vec<u8>) {
    let end = loop {
        if let Some(at) = c.received.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        c.fill();
    };
    let head = String::from_utf8_lossy(&c.received[..end]).into_owned();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .expect("a Content-Length")
        .trim()
        .parse()
        .unwrap();
    while c.received.len() < end + len {
        c.fill();
    }
    let body = c.received[end..end + len].to_vec();
    c.received.drain(..end + len);
    (head, body)
}

/// The value of header `name` in a response head.
pub(crate) fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
}

impl Client {
    /// Reads once more into `received`; panics on a close or a timeout.
    pub(crate) fn fill(&mut self) {
        let mut buf = [0u8; 65536];
        match self.stream.read(&mut buf) {
            Ok(0) => panic!("closed; got {:?}", self.text()),
            Ok(n) => self.received.extend_from_slice(&buf[..n]),
            Err(e) => panic!("read failed: {e}; got {:?}", self.text()),
        }
    }
}

pub(crate) mod binary;
pub(crate) mod nats;
