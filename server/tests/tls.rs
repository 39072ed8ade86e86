//! The subscriber listener over TLS (`Config::tls`), with a certificate
//! made when the test runs (rcgen; no key is committed), checked by
//! independent clients: `openssl s_client` (the handshake, ALPN
//! `http/1.1`, the certificate chain verified, a chunked `/test` stream
//! over it) and Python's `ssl` under `websockets` (`wss://`); a client
//! that does not speak TLS is counted and closed while others are served.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use c1m_server::{Config, TlsConfig};
use support::{admin, config, server, stats_reach, Client};

/// A self-signed certificate for localhost and 127.0.0.1, written to a
/// temporary folder: (folder, certificate path, configuration).
fn certificate() -> (tempfile::TempDir, std::path::PathBuf, TlsConfig) {
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let made = rcgen::generate_simple_self_signed(names).unwrap();
    let (cert, key) = (made.cert.pem(), made.key_pair.serialize_pem());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cert.pem");
    std::fs::write(&path, &cert).unwrap();
    let tls = TlsConfig::from_pem(cert.as_bytes(), key.as_bytes()).unwrap();
    (dir, path, tls)
}

fn tls_server() -> (c1m_server::Server, tempfile::TempDir, std::path::PathBuf) {
    let (dir, cert, tls) = certificate();
    let server = server(Config {
        tls: Some(tls),
        ..config()
    });
    (server, dir, cert)
}

#[test]
fn openssl_verifies_the_chain_and_alpn_and_reads_a_stream() {
    let (server, _dir, cert) = tls_server();
    let mut child = Command::new("openssl")
        .args(["s_client", "-connect"])
        .arg(server.subscriber_addr().to_string())
        .args(["-servername", "localhost", "-alpn", "http/1.1", "-CAfile"])
        .arg(&cert)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl is needed (apt-get install openssl)");
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(b"GET /test/5 HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut seen = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        let done = line.contains("hello over tls");
        if line.contains("c1m welcome, id: 5") {
            admin(&server, "POST", "/send/5", b"hello over tls");
        }
        seen.push(line);
        if done {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let text = seen.join("\n");
    assert!(text.contains("ALPN protocol: http/1.1"), "{text}");
    assert!(text.contains("Verify return code: 0 (ok)"), "{text}");
    assert!(text.contains("HTTP/1.1 200 OK"), "{text}");
    assert!(text.contains("hello over tls"), "{text}");
}

#[test]
fn a_python_client_over_wss_gets_messages_and_the_shutdown_close() {
    let (server, _dir, cert) = tls_server();
    let url = format!("wss://localhost:{}/ws/9", server.subscriber_addr().port());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/ws_client.py");
    let python = ["python3", "/usr/bin/python3"]
        .into_iter()
        .find(|p| {
            Command::new(p)
                .args(["-c", "import websockets"])
                .status()
                .is_ok_and(|s| s.success())
        })
        .expect("python3 with websockets is needed (apt-get install python3-websockets)");
    let mut child = Command::new(python)
        .args([script, &url, "1", "--cafile"])
        .arg(&cert)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut line = || lines.next().expect("the client ended").unwrap();
    assert_eq!(line(), "connected");
    assert_eq!(line(), "pong");
    assert!(stats_reach(&server, |s| s.logged_in == 1));
    admin(&server, "POST", "/send/9", "über tls".as_bytes());
    assert_eq!(line(), "text 'über tls'");
    server.shutdown().unwrap();
    assert_eq!(line(), "closed 1001 server shutting down");
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

#[test]
fn a_client_without_tls_is_counted_and_closed() {
    let (server, _dir, _cert) = tls_server();
    let mut plain = Client::get(server.subscriber_addr(), "/test/1");
    let answer = plain.read_to_close();
    assert!(!answer.contains("200 OK"), "{answer}");
    assert!(stats_reach(&server, |s| s.tls_failures == 1 && s.connections == 0));
}
