//! `--preset` against the real servers (`c1m_pushsrv` starts nginx+nchan
//! and Pushpin on free loopback ports): floodtest given only the preset and
//! the server's address receives every message msggen publishes through
//! the same server, with its latency, none lost.

mod support;

use c1m_common::{validate_against_schema, MsggenSummary};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const CONNS: u64 = 100;
const MESSAGES: u64 = 2000;

/// msggen, built beside floodtest once per test process. Built before any
/// stream is held: the build can take ~45 s (its features differ from the
/// test build's), and streams held idle that long were closed by Pushpin,
/// which lost their messages (seen on 2 December).
fn msggen_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        c1m_pushsrv::sibling_bin(
            env!("CARGO"),
            env!("CARGO_MANIFEST_DIR"),
            env!("CARGO_BIN_EXE_floodtest"),
            "c1m-msggen",
            "msggen",
        )
    })
}

/// msggen with `line` plus `--json`; its summary, after checking it exited 0.
fn msggen(line: &str) -> MsggenSummary {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("msggen.json");
    let out = Command::new(msggen_bin())
        .args(line.split_whitespace())
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&json).unwrap();
    validate_against_schema("msggen-summary.json", &text).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Holds `CONNS` streams with `preset` at `addr`, has `publish` run, waits
/// (at most 30 s) until floodtest's interval lines count every message's
/// event or chunk, stops it and checks what arrived.
fn every_message_arrives(preset: &str, addr: &str, publish: impl FnOnce()) {
    msggen_bin();
    let conns = CONNS.to_string();
    let mut held = support::hold(&[
        "--preset",
        preset,
        "--target",
        addr,
        "--conns",
        &conns,
        "--report-interval",
        "100ms",
    ]);
    assert!(
        held.ramp_line.contains(&format!("open {CONNS}/{CONNS}")),
        "{}",
        held.ramp_line
    );
    publish();
    let deadline = Instant::now() + Duration::from_secs(30);
    let stdout = BufReader::new(held.child.stdout.take().unwrap());
    for line in stdout.lines().map_while(Result::ok) {
        // `... | Stats: {active,closed,chunks}`: chunks or SSE events so far.
        let seen = line
            .rsplit(',')
            .next()
            .and_then(|c| c.trim_end_matches('}').parse::<u64>().ok());
        if seen.is_some_and(|n| n >= MESSAGES) || Instant::now() > deadline {
            break;
        }
    }
    held.signal(libc::SIGTERM);
    let (code, summary) = held.wait();
    let s = summary.expect("floodtest wrote its summary");
    assert_eq!(code, Some(0), "{s:?}");
    assert_eq!((s.open, s.failed_total), (CONNS, 0), "{s:?}");
    assert_eq!((s.messages, s.lost), (MESSAGES, 0), "{s:?}");
    assert_eq!(s.latency_us.count, MESSAGES);
    assert!(
        s.latency_us.p50 > 0 && s.latency_us.p50 <= s.latency_us.max,
        "{s:?}"
    );
}

#[test]
fn the_nchan_preset_receives_what_msggen_publishes_through_nchan() {
    let (_nginx, addr) = c1m_pushsrv::nchan();
    every_message_arrives("nchan", &addr.to_string(), || {
        let sent = msggen(&format!(
            "--target http://{addr} --publish nchan --ids 1-{CONNS} --rate 2000 --count {MESSAGES}"
        ));
        // nchan answered 201 (a subscriber was there) to every message.
        assert_eq!((sent.sent, sent.failed, sent.dropped), (MESSAGES, 0, 0));
    });
}

#[test]
fn the_pushpin_preset_receives_what_msggen_publishes_through_pushpin() {
    let (_pushpin, http, publish) = c1m_pushsrv::pushpin();
    every_message_arrives("pushpin", &http.to_string(), || {
        let sent = msggen(&format!(
            "--target http://{publish} --publish pushpin --ids 1-{CONNS} --rate 2000 --count {MESSAGES}"
        ));
        assert_eq!((sent.sent, sent.failed), (MESSAGES, 0));
    });
}
