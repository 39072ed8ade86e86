//! `https://` and `wss://` streams, with certificates made when the test
//! runs (rcgen; no key is committed): against comet-server's TLS listener
//! (verified with `--ca`, or `--insecure`), against Python's `ssl` under
//! `websockets` (an independent TLS stack), and a certificate nobody
//! trusts counted as a `tls` failure.

mod support;

use std::io::{BufRead, BufReader};

use support::floodtest;

/// A self-signed certificate for localhost and 127.0.0.1 in a temporary
/// folder: (folder, cert path, key path, cert PEM, key PEM).
fn certificate() -> (tempfile::TempDir, String, String, String, String) {
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let made = rcgen::generate_simple_self_signed(names).unwrap();
    let (cert, key) = (made.cert.pem(), made.key_pair.serialize_pem());
    let dir = tempfile::tempdir().unwrap();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, &cert).unwrap();
    std::fs::write(&key_path, &key).unwrap();
    let path = |p: std::path::PathBuf| p.to_str().unwrap().to_owned();
    (dir, path(cert_path), path(key_path), cert, key)
}

fn tls_comet(cert: &str, key: &str) -> c1m_server::Server {
    let tls = c1m_server::TlsConfig::from_pem(cert.as_bytes(), key.as_bytes()).unwrap();
    let listener = c1m_server::bind("127.0.0.1:0".parse().unwrap(), 1024, false).unwrap();
    let admin = c1m_server::bind("127.0.0.1:0".parse().unwrap(), 64, false).unwrap();
    let config = c1m_server::Config {
        tls: Some(tls),
        ..c1m_server::Config::default()
    };
    c1m_server::start(config, listener, admin).unwrap()
}

#[test]
fn wss_streams_through_comet_server_verified_with_ca() {
    let (_dir, cert_path, _, cert, key) = certificate();
    let server = tls_comet(&cert, &key);
    let url = format!(
        "wss://localhost:{}/ws/{{id}}",
        server.subscriber_addr().port()
    );
    let mut held = support::hold(&[
        "--url",
        &url,
        "--conns",
        "30",
        "--ca",
        &cert_path,
        "--report-interval",
        "100ms",
    ]);
    assert!(held.ramp_line.contains("open 30/30"), "{}", held.ramp_line);
    let mut batch = Vec::new();
    for seq in [1, 2, 4] {
        for id in 1..=30 {
            let envelope = support::envelope(id, seq);
            c1m_common::push_batch_line(&mut batch, id, |out| out.extend_from_slice(&envelope))
                .unwrap();
        }
    }
    support::admin_post(server.admin_addr(), "/send", &batch);
    let stdout = BufReader::new(held.child.stdout.take().unwrap());
    let seen = stdout
        .lines()
        .map(Result::unwrap)
        .find(|l| l.contains("lost 30 "));
    assert!(seen.is_some(), "floodtest ended before counting the gaps");
    server.shutdown().unwrap();
    let (code, summary) = held.wait();
    let s = summary.unwrap();
    // The shutdown closes every stream: a run that sees the closes before
    // it stops did not hold them, and says so (exit 1).
    support::closed_by_the_shutdown(code, &s);
    assert_eq!((s.messages, s.lost), (90, 30), "{s:?}");
    assert_eq!(s.close_codes.get("1001"), Some(&30), "{s:?}");
    assert_eq!(s.failed["tls"], 0);
}

#[test]
fn https_chunked_streams_with_insecure_and_an_untrusted_certificate_fails_as_tls() {
    let (_dir, _, _, cert, key) = certificate();
    let server = tls_comet(&cert, &key);
    let url = format!(
        "https://127.0.0.1:{}/test/{{id}}",
        server.subscriber_addr().port()
    );
    let run = floodtest(&[
        "--url",
        &url,
        "--conns",
        "20",
        "--duration",
        "300ms",
        "--insecure",
    ]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let s = run.summary();
    assert_eq!((s.open, s.chunks), (20, 20), "a welcome chunk each: {s:?}");
    // Without --insecure or --ca, the system's roots do not know it.
    let run = floodtest(&[
        "--url",
        &url,
        "--conns",
        "5",
        "--duration",
        "300ms",
        "--min-open",
        "0",
    ]);
    let s = run.summary();
    assert_eq!((s.open, s.failed["tls"]), (0, 5), "{s:?}");
}

#[test]
fn wss_streams_from_python_ssl() {
    let (_dir, cert_path, key_path, _, _) = certificate();
    let server = support::ws_server(&["2", "50", "--cert", &cert_path, "--key", &key_path]);
    let url = format!("wss://localhost:{}/ws/{{id}}", server.1);
    let run = floodtest(&[
        "--url",
        &url,
        "--conns",
        "10",
        "--duration",
        "1s",
        "--ca",
        &cert_path,
    ]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let s = run.summary();
    assert_eq!((s.open, s.messages, s.lost), (10, 20, 0), "{s:?}");
    assert_eq!(s.failed_total, 0, "{s:?}");
}
