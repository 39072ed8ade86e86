//! 5,000 held connections, and the binary's readiness line and clean exit.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use support::*;

#[test]
fn holds_five_thousand_connections() {
    const N: u64 = 5_000;
    let server = server(config());
    let mut clients: Vec<TcpStream> = (0..N)
        .map(|id| {
            let mut s = TcpStream::connect(server.subscriber_addr()).unwrap();
            s.write_all(format!("GET /test/{id} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes())
                .unwrap();
            s
        })
        .collect();
    assert!(eventually(Duration::from_secs(20), || stats(&server)
        .logged_in
        == N));
    let snap = stats(&server);
    assert_eq!((snap.connections, snap.logins, snap.accepted), (N, N, N));
    let batch: String = (0..N).map(|id| format!("{id}\tmsg-{id}\n")).collect();
    let (_, body) = admin(&server, "POST", "/send", batch.as_bytes());
    assert!(body.contains(r#""delivered":5000,"dropped":0"#), "{body}");
    // Spot-check that messages arrived.
    for id in [0, 2_500, 4_999] {
        let mut c = Client {
            stream: clients[id as usize].try_clone().unwrap(),
            received: Vec::new(),
        };
        c.stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        c.expect(&format!("msg-{id}\r\n"));
    }
    assert!(eventually(Duration::from_secs(5), || stats(&server)
        .messages_out
        == N));
    clients.truncate(N as usize / 2);
    assert!(eventually(Duration::from_secs(10), || stats(&server)
        .logged_in
        == N / 2));
}

#[test]
fn binary_announces_its_ports_and_ends_streams_on_sigterm() {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_comet-server"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--admin",
            "127.0.0.1:0",
            "--reactors",
            "1",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words[..3], ["comet-server", "listening", "on"], "{line:?}");
    assert_eq!(words[4], "admin");
    let mut c = Client::get(words[3].parse().unwrap(), "/test/1");
    c.expect("welcome");
    // SAFETY: kill with a valid pid of our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let mut rest = Vec::new();
    c.stream.read_to_end(&mut rest).unwrap();
    c.received.extend_from_slice(&rest);
    assert!(c.text().ends_with("0\r\n\r\n"), "{:?}", c.text());
    assert!(child.wait().unwrap().success());
}

#[test]
fn binary_refuses_absurd_configuration_before_it_starts() {
    for args in [
        ["--heartbeat", "1000000h"],
        ["--sse-keepalive", "30d"],
        ["--max-body", "2G"],
    ] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_comet-server"))
            .args(["--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // A server that started would run until stopped: give it 10 s.
        let exited = eventually(Duration::from_secs(10), || {
            child.try_wait().unwrap().is_some()
        });
        if !exited {
            child.kill().unwrap();
        }
        let out = child.wait_with_output().unwrap();
        assert!(exited, "{args:?} started a server");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.starts_with(&format!("comet-server: {}", args[0])),
            "{stderr}"
        );
        assert!(out.stdout.is_empty(), "it never started listening");
    }
}
