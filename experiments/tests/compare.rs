//! `experiment compare` end to end at a small scale: comet-server and
//! nginx+nchan (started by the runner from the Debian binaries) each hold
//! 300 streams for 3 s at 500 msg/s, and the side-by-side table says what
//! each subfolder's files say.

mod common;

use c1m_common::{thousands, FloodSummary, MsggenSummary};
use c1m_experiments::{per_conn, read_figures};
use common::Runner;
use std::path::Path;
use std::time::Duration;

fn json<T: serde::de::DeserializeOwned>(path: &Path) -> T {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The cells of the table row labelled `label`, one per server.
fn row<'a>(report: &'a str, label: &str) -> Vec<&'a str> {
    let line = report
        .lines()
        .find(|l| l.starts_with(&format!("| {label} |")))
        .unwrap_or_else(|| panic!("no row {label:?} in\n{report}"));
    line.split('|')
        .map(str::trim)
        .skip(2)
        .filter(|c| !c.is_empty())
        .collect()
}

/// `850 µs` or `1.25 ms`, as the reports write latencies.
fn micros(us: u64) -> String {
    if us < 1_000 {
        format!("{us} µs")
    } else {
        format!("{:.2} ms", us as f64 / 1000.0)
    }
}

#[test]
fn comet_and_nchan_side_by_side_match_their_own_files() {
    if let Some(why) = c1m_pushsrv::Server::Nchan.missing() {
        panic!("{why} (scripts/test.sh installs it)");
    }
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("cmp");
    let mut runner = Runner::start(&[
        "compare",
        "c10k",
        "--targets",
        "comet,nchan",
        "--scale",
        "0.03",
        "--rate",
        "1000",
        "--duration",
        "3s",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(
        runner.wait_exit(Duration::from_secs(240)),
        Some(0),
        "saw {:?}",
        runner.seen
    );
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    let header = report
        .lines()
        .find(|l| l.starts_with("| | comet ("))
        .expect("the table's head");
    assert!(header.contains("| nchan (nginx/"), "{header}");
    assert_eq!(row(&report, "run"), ["complete", "complete"]);

    let mut delivered = Vec::new();
    for (i, target) in ["comet", "nchan"].into_iter().enumerate() {
        let sub = dir.join(target);
        let own = std::fs::read_to_string(sub.join("report.md")).unwrap();
        assert!(own.contains("**Complete.**"), "{own}");
        let flood: FloodSummary = json(&sub.join("flood.json"));
        let msggen: MsggenSummary = json(&sub.join("msggen.json"));
        assert_eq!((flood.open, flood.lost), (300, 0), "{target}: {flood:?}");
        assert_eq!(flood.messages, msggen.sent - msggen.dropped, "{target}");
        let cell = |label: &str| row(&report, label)[i].to_owned();
        assert!(
            cell("messages sent").starts_with(&thousands(msggen.sent)),
            "{target}"
        );
        assert!(
            cell("messages delivered").starts_with(&thousands(flood.messages)),
            "{target}"
        );
        assert!(cell("lost").starts_with('0'), "{target}");
        assert!(
            cell("latency p50").starts_with(&micros(flood.latency_us.p50)),
            "{target}"
        );
        assert!(
            cell("latency p99.9").starts_with(&micros(flood.latency_us.p999)),
            "{target}"
        );
        let figures = read_figures(&sub).unwrap();
        let server = figures
            .memory
            .and_then(|m| m.server)
            .expect("a server figure");
        assert!(
            cell("server bytes per connection (RSS)").starts_with(&per_conn(server.bytes)),
            "{target}"
        );
        delivered.push(flood.messages as f64);
    }
    // nchan's cells carry their ratio to comet-server's.
    let ratio = format!("({:.2}x)", delivered[1] / delivered[0]);
    assert!(
        row(&report, "messages delivered")[1].ends_with(&ratio),
        "{report}"
    );
    for png in ["mem.png", "per-conn.png", "flood.png"] {
        assert!(dir.join(png).is_file(), "{png} drawn");
    }
}
