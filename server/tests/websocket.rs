//! `/ws/{id}` against independent and hostile clients: Python's
//! `websockets` (not this project's codec) receives messages as text and
//! binary frames, gets its Ping answered, and sees both closing handshakes
//! (its own, echoed; the server's at shutdown, 1001); raw clients send the
//! malformed frames RFC 6455 says to fail a connection for, and each is
//! answered with the Close code the RFC names while the server serves on.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use c1m_http::ws::{self, Opcode};
use support::binary::Binary;
use support::{admin, config, contains, server, stats_reach, Client};

/// A Python that has the `websockets` module (Debian's `python3-websockets`
/// lives in /usr/bin's Python, which may not be the first on PATH).
fn python() -> &'static str {
    ["python3", "/usr/bin/python3"]
        .into_iter()
        .find(|p| {
            Command::new(p)
                .args(["-c", "import websockets"])
                .status()
                .is_ok_and(|s| s.success())
        })
        .expect("python3 with websockets is needed (apt-get install python3-websockets; scripts/test.sh installs it)")
}

/// The Python client, started and read line by line.
struct PyClient {
    child: Child,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
}

impl PyClient {
    fn start(args: &[&str]) -> PyClient {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/ws_client.py");
        let mut child = Command::new(python())
            .arg(script)
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        PyClient { child, lines }
    }

    fn line(&mut self) -> String {
        self.lines.next().expect("the client ended").unwrap()
    }

    fn exit_code(mut self) -> i32 {
        self.child.wait().unwrap().code().unwrap_or(-1)
    }
}

#[test]
fn a_python_client_gets_text_and_binary_frames_and_the_shutdown_close() {
    let server = server(config());
    let url = format!("ws://{}/ws/42", server.subscriber_addr());
    let mut client = PyClient::start(&[&url, "2"]);
    assert_eq!(client.line(), "connected");
    assert_eq!(client.line(), "pong");
    assert!(stats_reach(&server, |s| s.logged_in == 1));
    assert_eq!(
        admin(&server, "POST", "/send/42", "héllo".as_bytes()).0,
        200
    );
    assert_eq!(admin(&server, "POST", "/send/42", b"\xff\x00").0, 200);
    assert_eq!(client.line(), "text 'héllo'");
    assert_eq!(client.line(), "binary ff00");
    server.shutdown().unwrap();
    assert_eq!(client.line(), "closed 1001 server shutting down");
    assert_eq!(client.exit_code(), 0);
}

#[test]
fn a_client_close_is_echoed_and_logs_out() {
    let server = server(config());
    let url = format!("ws://{}/ws/7", server.subscriber_addr());
    let mut client = PyClient::start(&[&url, "1", "close", "4000"]);
    assert_eq!(client.line(), "connected");
    assert_eq!(client.line(), "pong");
    assert!(stats_reach(&server, |s| s.logged_in == 1));
    admin(&server, "POST", "/send/7", b"one");
    assert_eq!(client.line(), "text 'one'");
    // The server echoes the code, without a reason.
    assert_eq!(client.line(), "closed 4000 ");
    assert_eq!(client.exit_code(), 0);
    assert!(stats_reach(&server, |s| s.logged_in == 0 && s.connections == 0));
}

const HANDSHAKE: &str = "Upgrade: websocket\r\nConnection: Upgrade\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";

/// A raw client of `/ws/{ids}` past its `101`.
fn upgraded(addr: std::net::SocketAddr, ids: impl std::fmt::Display) -> Client {
    let mut c = Client::get_with(addr, &format!("/ws/{ids}"), HANDSHAKE);
    let head = c.expect("\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert!(head.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    c.received.clear();
    c
}

/// A masked client frame, its header bytes as given.
fn masked(first: u8, payload: &[u8]) -> Vec<u8> {
    let key = [1, 2, 3, 4];
    let mut out = Vec::new();
    ws::write_frame_header(&mut out, true, Opcode::Binary, payload.len(), Some(key));
    out[0] = first;
    let start = out.len();
    out.extend_from_slice(payload);
    ws::apply_mask(&mut out[start..], key, 0);
    out
}

/// Sends `frames` and reads to the close: the code of the server's Close
/// frame (the last frame it sent).
fn close_code_after(c: &mut Client, frames: &[u8]) -> u16 {
    c.stream.write_all(frames).unwrap();
    let mut got = Vec::new();
    let _ = c.stream.read_to_end(&mut got);
    let at = got.iter().rposition(|&b| b == 0x88).expect("a close frame");
    let close = ws::parse_close(&got[at + 2..at + 2 + usize::from(got[at + 1])]).unwrap();
    close.code.expect("a code").0
}

#[test]
fn malformed_frames_are_answered_as_rfc_6455_says() {
    let server = server(config());
    let addr = server.subscriber_addr();
    let mut unmasked = Vec::new();
    ws::write_frame(&mut unmasked, Opcode::Text, b"hi", None);
    let mut oversized = Vec::new();
    ws::write_frame_header(&mut oversized, true, Opcode::Binary, 1 << 20, Some([9; 4]));
    let cases: [(&str, Vec<u8>, u16); 7] = [
        ("no mask bit", unmasked, 1002),
        ("a reserved bit", masked(0x81 | 0x40, b"hi"), 1002),
        ("a reserved opcode", masked(0x83, b"hi"), 1002),
        ("a length over the bound", oversized, 1009),
        ("a ping over 125 bytes", masked(0x89, &[0; 126]), 1002),
        ("text that is not utf-8", masked(0x81, b"\xc3\x28"), 1007),
        (
            "a close with code 1005",
            masked(0x88, &1005u16.to_be_bytes()),
            1002,
        ),
    ];
    for (i, (what, frames, code)) in cases.iter().enumerate() {
        let mut c = upgraded(addr, i as u64);
        assert_eq!(close_code_after(&mut c, frames), *code, "{what}");
    }
    assert!(stats_reach(&server, |s| s.ws_protocol_closes == 7 && s.connections == 0));
    // The server serves on, and a good client's ping and data are fine.
    let mut c = upgraded(addr, 100);
    let mut frames = masked(0x89, b"ping!");
    frames.extend(masked(0x82, b"data is counted and dropped"));
    c.stream.write_all(&frames).unwrap();
    c.expect("ping!");
    assert_eq!(c.received[..2], [0x8A, 5], "a pong with the ping's payload");
    assert!(stats_reach(&server, |s| s.ws_frames_in == 1 && s.logged_in == 1));
    assert_eq!(
        close_code_after(&mut c, &masked(0x88, &1000u16.to_be_bytes())),
        1000
    );
}

#[test]
fn a_plain_get_or_a_bad_handshake_is_refused() {
    let server = server(config());
    let addr = server.subscriber_addr();
    let mut plain = Client::get(addr, "/ws/1");
    let answer = plain.read_to_close();
    assert!(answer.starts_with("HTTP/1.1 426 "), "{answer}");
    assert!(answer.contains("Sec-WebSocket-Version: 13\r\n"));
    let old = HANDSHAKE.replace("Version: 13", "Version: 8");
    let answer = Client::get_with(addr, "/ws/1", &old).read_to_close();
    assert!(answer.starts_with("HTTP/1.1 426 "), "{answer}");
    let no_key = HANDSHAKE.replace("Sec-WebSocket-Key", "X-Key");
    let answer = Client::get_with(addr, "/ws/1", &no_key).read_to_close();
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
}

#[test]
fn ws_streams_get_pings_and_heartbeats_and_a_slow_one_a_1008() {
    let server = server(c1m_server::Config {
        sse_keepalive: Duration::from_millis(200),
        heartbeat: Some(Duration::from_millis(300)),
        ..config()
    });
    let mut c = upgraded(server.subscriber_addr(), 5);
    c.expect("Chunk 1 for id 5\n");
    assert!(
        support::contains(&c.received, &[0x89, 0x00]),
        "an empty ping"
    );
    server.shutdown().unwrap();

    let server = support::server(c1m_server::Config {
        max_pending: 8192,
        ..config()
    });
    let addr = server.subscriber_addr();
    let mut slow = Client::small_window(
        addr,
        format!("GET /ws/6 HTTP/1.1\r\nHost: t\r\n{HANDSHAKE}\r\n").as_bytes(),
    );
    slow.expect("\r\n\r\n");
    // The kernel takes up to ~4 MiB for the socket before the server has
    // to keep anything; 200 KB a round passes that in ~25 rounds.
    let batch: String = (0..50)
        .map(|_| format!("6\t{}\n", "m".repeat(4000)))
        .collect();
    for _ in 0..100 {
        admin(&server, "POST", "/send", batch.as_bytes());
        if support::stats(&server).slow_consumer_closes == 1 {
            break;
        }
    }
    assert!(stats_reach(&server, |s| s.slow_consumer_closes == 1 && s.logged_in == 0));
    let mut rest = Vec::new();
    let _ = slow.stream.read_to_end(&mut rest);
    let tail = &rest[rest.len().saturating_sub(64)..];
    let close = tail
        .windows(4)
        .position(|w| w[0] == 0x88 && w[2..] == 1008u16.to_be_bytes());
    assert!(close.is_some(), "ends with a 1008 close frame");
}

#[test]
fn one_websocket_may_name_several_ids() {
    let server = server(config());
    let mut c = upgraded(server.subscriber_addr(), "5,6");
    // One connection, one login, under both ids.
    assert!(stats_reach(&server, |s| s.logged_in == 1 && s.logins == 1));
    assert_eq!(admin(&server, "POST", "/send/6", b"six").0, 200);
    assert_eq!(admin(&server, "POST", "/send/5", b"five").0, 200);
    c.expect("five");
    // Unmasked text frames, in the order sent.
    assert!(
        contains(&c.received, b"\x81\x03six\x81\x04five"),
        "{:?}",
        c.text()
    );
    drop(c);
    assert!(stats_reach(&server, |s| s.logged_in == 0));
}

#[test]
fn in_a_group_the_upgrade_is_handed_whole_to_the_owner_which_answers_the_101() {
    const N: u64 = 12;
    let group = Binary::start(&["--workers", "2"]);
    let mut clients: Vec<Client> = (0..N).map(|id| upgraded(group.listen, id)).collect();
    assert!(group.stats_reach(Duration::from_secs(5), |s| s.logged_in == N));
    let batch: String = (0..N).map(|id| format!("{id}\tm{id}.\n")).collect();
    let (status, _) = group.admin("POST", "/send", batch.as_bytes());
    assert_eq!(status, 200);
    for (id, c) in clients.iter_mut().enumerate() {
        c.expect(&format!("m{id}."));
    }
    let s = group.stats();
    // 12 connections on 2 workers: all on their owner has odds of 1 in 4,096.
    assert!(s.handed_off > 0 && s.handed_off == s.handed_in, "{s:?}");
    assert_eq!(s.ws_protocol_closes, 0);
}
