//! Ending cleanly on SIGTERM, with the summary written.

mod support;

use support::{Behaviour, Server};

#[test]
fn sigterm_ends_the_hold_with_a_summary() {
    let server = Server::start(Behaviour::Chunked(vec![1]));
    let mut held = support::hold(&["--url", &server.url("/test/{id}"), "--conns", "50"]);
    assert!(held.ramp_line.contains("open 50/50"), "{}", held.ramp_line);
    held.signal(libc::SIGTERM);
    let (code, summary) = held.wait();
    assert_eq!(code, Some(0));
    let s = summary.unwrap();
    assert_eq!((s.open, s.closed, s.messages), (50, 50, 50));
    assert_eq!(s.incomplete, None);
}

#[test]
fn time_to_the_head_and_to_the_first_byte_are_told_apart() {
    // The head comes at once, the first chunk 200 ms later: the TCP
    // connect alone (all connect_us measured) says nothing of either.
    let server = Server::start(Behaviour::SlowFirstChunk);
    let run = support::floodtest(&[
        "--url",
        &server.url("/test/{id}"),
        "--conns",
        "20",
        "--duration",
        "500ms",
    ]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let s = run.summary();
    assert_eq!(
        (s.connect_us.count, s.head_us.count, s.first_byte_us.count),
        (20, 20, 20)
    );
    assert!(s.head_us.max < 150_000, "{:?}", s.head_us);
    assert!(s.first_byte_us.p50 >= 200_000, "{:?}", s.first_byte_us);
    assert!(s.connect_us.p50 <= s.head_us.p50, "{s:?}");
    let out = String::from_utf8_lossy(&run.output.stdout);
    assert!(
        out.contains("from connect() to: TCP established p50 "),
        "{out}"
    );
    assert!(out.contains(", first body byte p50 2"), "{out}");
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

#[test]
fn off_a_terminal_prints_the_seeds_stats_line() {
    // A welcome chunk and one message chunk per stream.
    let server = Server::start(Behaviour::Chunked(vec![1]));
    let url = server.url("/test/{id}");
    let run = support::floodtest(&[
        "--url",
        &url,
        "--conns",
        "20",
        "--duration",
        "500ms",
        "--report-interval",
        "100ms",
    ]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let out = String::from_utf8_lossy(&run.output.stdout);
    let lines: Vec<&str> = out.lines().filter(|l| l.contains("Stats: {")).collect();
    // Stats: {Active, Closed, Chunks}: while held, then after our close.
    assert!(
        lines.iter().any(|l| l.ends_with("Stats: {20,0,40}")),
        "{out}"
    );
    assert!(lines.last().unwrap().ends_with("Stats: {0,20,40}"), "{out}");
    assert!(lines.iter().all(|l| l.contains(" open ")), "{out}");
}
