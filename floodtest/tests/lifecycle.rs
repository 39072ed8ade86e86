//! Ending cleanly on SIGTERM, with the summary written.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use support::{Behaviour, Reap, Server};

#[test]
fn sigterm_ends_the_hold_with_a_summary() {
    let server = Server::start(Behaviour::Chunked(vec![1]));
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("s.json");
    // The duration only bounds a failed test: SIGTERM ends the hold.
    let mut child = Reap(
        Command::new(env!("CARGO_BIN_EXE_floodtest"))
            .args(["--url", &server.url("/test/{id}"), "--conns", "50"])
            .args(["--duration", "60s", "--json"])
            .arg(&json)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // The readiness signal: the notice that the ramp is done.
    let stderr = BufReader::new(child.0.stderr.take().unwrap());
    let mut seen = Vec::new();
    for line in stderr.lines() {
        let line = line.unwrap();
        let done = line.contains("ramp done");
        seen.push(line);
        if done {
            break;
        }
    }
    assert!(seen.last().unwrap().contains("open 50/50"), "{seen:?}");
    // SAFETY: kill with a valid pid and signal number.
    assert_eq!(
        unsafe { libc::kill(child.0.id() as libc::pid_t, libc::SIGTERM) },
        0
    );
    let status = child.0.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let s: c1m_floodtest::summary::Summary =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!((s.open, s.closed, s.messages), (50, 50, 50));
}

#[test]
fn pause_every_holds_then_goes_on() {
    let server = Server::start(Behaviour::Chunked(vec![1]));
    let run = support::with_pauses(&server, "100", "40", &["--workers", "1"]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let err = run.stderr();
    assert!(err.contains("paused at 40 open"), "{err}");
    assert!(err.contains("paused at 80 open"), "{err}");
    assert_eq!(run.summary().open, 100);
}

#[test]
fn pause_with_uneven_workers_does_not_stall() {
    // Slices of 51 and 50 with a step of 50 each: the second worker has
    // started everything exactly when the first reaches its step.
    let server = Server::start(Behaviour::Chunked(vec![1]));
    let run = support::with_pauses(&server, "101", "100", &["--workers", "2"]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert!(
        run.stderr().contains("paused at 100 open"),
        "{}",
        run.stderr()
    );
    assert_eq!(run.summary().open, 101);
}

#[test]
fn rate_paces_new_connections() {
    // 100 connections at 200/s take about half a second (less the 2-token
    // burst); unpaced they take a few milliseconds.
    let server = Server::start(Behaviour::Chunked(vec![1]));
    let url = server.url("/test/{id}");
    let run = support::floodtest(&[
        "--url",
        &url,
        "--conns",
        "100",
        "--rate",
        "200",
        "--duration",
        "100ms",
    ]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let s = run.summary();
    assert!(s.ramp_secs >= 0.45, "{s:?}");
    assert!(s.connect_rate <= 222.0, "{s:?}");
}
