//! The `memlog` binary reading a real comet-server's `/stats`
//! (`--server-stats`), in-process here, against its own socket count: the
//! two agree, the counted samples are the ones `--count-every` names, and
//! a count that disagrees with the server is said once.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Output};
use support::{read_csv, Testee};

fn comet_server() -> c1m_server::Server {
    let listener = c1m_server::bind("127.0.0.1:0".parse().unwrap(), 1024, false).unwrap();
    let admin = c1m_server::bind("127.0.0.1:0".parse().unwrap(), 64, false).unwrap();
    c1m_server::start(c1m_server::Config::default(), listener, admin).unwrap()
}

/// `n` `/test` streams, each open once its answer's head has arrived, so
/// the server holds them all.
fn subscribe(addr: SocketAddr, n: u64) -> Vec<TcpStream> {
    (1..=n)
        .map(|id| {
            let mut s = TcpStream::connect(addr).unwrap();
            write!(s, "GET /test/{id} HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                assert_eq!(s.read(&mut byte).unwrap(), 1, "stream {id} closed");
                head.push(byte[0]);
            }
            assert!(head.starts_with(b"HTTP/1.1 200"), "{head:?}");
            s
        })
        .collect()
}

/// memlog on this process (the in-process server's), every 100 ms for
/// `duration`, the connection count from `admin`'s `/stats`.
fn memlog(port: u16, admin: SocketAddr, extra: &[&str], out: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_memlog"))
        .args(["--pid", &std::process::id().to_string()])
        .args(["--port", &port.to_string()])
        .args(["--server-stats", &format!("http://{admin}/stats")])
        .args(["--interval", "100ms"])
        .args(extra)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

#[test]
fn the_servers_count_and_the_socket_count_agree() {
    let server = comet_server();
    let _streams = subscribe(server.subscriber_addr(), 300);
    assert_eq!(server.stats().connections, 300);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("mem.csv");
    let run = memlog(
        server.subscriber_addr().port(),
        server.admin_addr(),
        &["--count-every", "3", "--duration", "1s"],
        &out,
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(
        stderr.contains("counted (netlink sock_diag) every 3 samples"),
        "{stderr}"
    );
    assert!(!stderr.contains("differ"), "{stderr}");

    let rows = read_csv(&out);
    // Up to 11 slots in 1 s; a busy machine's slow sample skips some.
    assert!(rows.len() >= 3, "{} rows", rows.len());
    let last = rows.len() - 1;
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(
            (r.conns, r.server_conns),
            (300, Some(300)),
            "row {i}: {r:?}"
        );
        // The first, every third and the last count the sockets.
        let counted = i % 3 == 0 || i == last;
        let expected = counted.then_some(300);
        assert_eq!(
            r.counted_conns,
            expected,
            "row {i} of {}: {r:?}",
            rows.len()
        );
        assert!(r.memlog_cpu_ms >= 0.0 && r.memlog_cpu_ms < 1000.0, "{r:?}");
        assert_eq!(r.procs, 1);
    }
    assert!(
        rows[0].memlog_cpu_ms > 0.0,
        "starting up and the first sample cost something: {:?}",
        rows[0]
    );
    server.shutdown().unwrap();
}

#[test]
fn a_count_the_server_does_not_agree_with_is_said_once() {
    let server = comet_server();
    // 150 sockets on another port than the server's: the count sees them,
    // the server's /stats does not (0), beyond 1% + 100.
    let mut other = Testee::spawn("stats-disagree");
    assert_eq!(other.ask("open 150"), "ok 150");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("mem.csv");
    let run = memlog(
        other.port,
        server.admin_addr(),
        &["--duration", "300ms"],
        &out,
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    let said = "the sockets counted on the port (150) and the server's /stats (0) differ";
    assert_eq!(stderr.matches(said).count(), 1, "{stderr}");
    let rows = read_csv(&out);
    assert!(rows.len() >= 2, "{} rows", rows.len());
    for r in &rows {
        // Every sample counted (--count-every 1); conns is the server's.
        assert_eq!(
            (r.conns, r.server_conns, r.counted_conns),
            (0, Some(0), Some(150)),
            "{r:?}"
        );
    }
    server.shutdown().unwrap();
}

#[test]
fn a_server_stats_url_nobody_answers_is_an_error_before_sampling() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let admin = closed.local_addr().unwrap();
    drop(closed);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("mem.csv");
    let run = memlog(8000, admin, &["--duration", "1s"], &out);
    assert_eq!(run.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.starts_with(&format!(
            "memlog: --server-stats http://{admin}/stats: is comet-server's admin listening there?: \
             GET http://{admin}/stats: connecting to {admin}: "
        )),
        "{stderr}"
    );
    let written = std::fs::read_to_string(&out).unwrap_or_default();
    assert_eq!(written.lines().count(), 0, "no sample: {written:?}");
}

#[test]
fn an_admin_url_that_is_not_stats_is_an_error_naming_what_it_answered() {
    let server = comet_server();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("mem.csv");
    let admin = server.admin_addr();
    for (path, says) in [
        ("/no-such-page", "HTTP/1.1 404"),
        // 200, but Prometheus text: not the stats document.
        ("/metrics", "is not comet-server's /stats: \"# HELP"),
    ] {
        let run = Command::new(env!("CARGO_BIN_EXE_memlog"))
            .args(["--pid", &std::process::id().to_string()])
            .args(["--server-stats", &format!("http://{admin}{path}")])
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert_eq!(run.status.code(), Some(2), "{path}");
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(
            stderr.starts_with(&format!("memlog: --server-stats http://{admin}{path}: ")),
            "{stderr}"
        );
        assert!(stderr.contains(says), "{path}: {stderr}");
    }
    server.shutdown().unwrap();
}
