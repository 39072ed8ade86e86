//! A worker of a `comet-server --workers` group killed under floodtest's
//! load: the front restarts it under its index and counts it, and floodtest
//! counts the closes of exactly the connections that worker held.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::bin_dir;
use serde_json::Value;

fn stats(admin: SocketAddr) -> Value {
    let mut s = TcpStream::connect(admin).unwrap();
    s.write_all(b"GET /stats HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    serde_json::from_str(text.split_once("\r\n\r\n").unwrap().1).unwrap()
}

fn wait(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    cond()
}

#[test]
fn a_killed_worker_is_restarted_and_floodtest_counts_its_clients_closes() {
    const CONNS: u64 = 200;
    let _ = c1m_common::raise_nofile_to_hard();
    let mut server = Command::new(bin_dir().join("comet-server"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--admin",
            "127.0.0.1:0",
            "--workers",
            "2",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let words: Vec<&str> = line.split_whitespace().collect();
    let (listen, admin): (SocketAddr, SocketAddr) =
        (words[3].parse().unwrap(), words[5].parse().unwrap());
    let out = tempfile::tempdir().unwrap();
    let summary = out.path().join("flood.json");
    let mut flood = Command::new(bin_dir().join("floodtest"))
        .args(["--url", &format!("http://{listen}/test/{{id}}")])
        .args([
            "--conns",
            &CONNS.to_string(),
            "--ids",
            "1-200",
            "--rate",
            "2000",
        ])
        .args(["--duration", "8s", "--report-interval", "1s"])
        .arg("--json")
        .arg(&summary)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait(Duration::from_secs(20), || stats(admin)["logged_in"]
        == CONNS));
    let victim = stats(admin)["workers"][0]["pid"].as_u64().unwrap() as i32;
    // SAFETY: kill(2) with the pid of a worker of the group this test started.
    assert_eq!(unsafe { libc::kill(victim, libc::SIGKILL) }, 0);
    assert!(wait(Duration::from_secs(10), || {
        let s = stats(admin);
        s["group"]["restarts"] == 1 && s["group"]["workers_up"] == 2
    }));
    let s = stats(admin);
    assert_eq!(s["workers"][0]["restarts"], 1);
    assert_ne!(s["workers"][0]["pid"].as_u64(), Some(victim as u64));
    assert_eq!(s["logged_in"], CONNS / 2, "worker 1's clients stayed");
    let status = flood.wait().unwrap();
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    // Worker 0 owned the even ids: 100 connections, each closed under floodtest.
    let failed = &report["failed"];
    let lost_streams =
        failed["closed_by_server"].as_u64().unwrap() + failed["reset"].as_u64().unwrap();
    assert_eq!(lost_streams, CONNS / 2, "{report}");
    assert_eq!(report["opened"], CONNS, "{report}");
    assert!(status.code().is_some());
    // SAFETY: kill(2) with the pid of the front this test started.
    unsafe { libc::kill(server.id() as i32, libc::SIGTERM) };
    assert!(server.wait().unwrap().success());
}
