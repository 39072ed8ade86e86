//! The runner against the real tools over loopback: a small preset end to
//! end, checked against the CSVs its report was made from, and the cleanup
//! when a child is killed, when the runner is interrupted, and when the
//! runner itself is killed. The tools' JSON summaries and the servers'
//! `/stats` answers the runner keeps are checked against `docs/schema/`.

mod common;

use c1m_common::StatsSnapshot;
use c1m_common::{thousands, validate_against_schema};
use c1m_common::{FloodInterval, FloodSummary, MemSample, MsggenInterval, MsggenSummary};
use c1m_experiments::read_csv;
use common::{alive, figure, pid_in, step_pids, wait_gone, wait_row, Runner};
use serde::de::DeserializeOwned;
use std::path::Path;
use std::time::Duration;

const START: Duration = Duration::from_secs(60);

/// The JSON document at `path`, checked against `docs/schema/{schema}`.
fn document<T: DeserializeOwned>(path: &Path, schema: &str) -> T {
    let text = std::fs::read_to_string(path).unwrap();
    validate_against_schema(schema, &text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn flood_summary(dir: &Path) -> FloodSummary {
    document(&dir.join("flood.json"), "flood-summary.json")
}

fn msggen_summary(dir: &Path) -> MsggenSummary {
    document(&dir.join("msggen.json"), "msggen-summary.json")
}

/// Runs `experiment PRESET --scale S --rate R --duration D` into a fresh
/// folder, expects it to complete (exit 0), and gives the folder (kept
/// while the first value lives) and its report.
fn completed_run(args: &[&str]) -> (tempfile::TempDir, std::path::PathBuf, String) {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("run");
    let mut line = args.to_vec();
    line.extend(["--out", dir.to_str().unwrap()]);
    let mut runner = Runner::start(&line);
    assert_eq!(
        runner.wait_exit(Duration::from_secs(120)),
        Some(0),
        "saw {:?}",
        runner.seen
    );
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(report.contains("**Complete.**"), "{report}");
    (out, dir, report)
}

#[test]
fn small_preset_end_to_end_matches_its_csvs() {
    let (_out, dir, report) = completed_run(&[
        "c10k",
        "--scale",
        "0.1",
        "--rate",
        "1000",
        "--duration",
        "3s",
    ]);

    // Peak connections is the most memlog saw, and the whole target.
    let mem: Vec<MemSample> = read_csv(&dir.join("mem.csv")).unwrap();
    let peak = mem.iter().map(|s| s.conns).max().unwrap();
    // At least the target: memlog counts every ESTABLISHED socket with the
    // server's local port, and a parallel test's client may hold the same
    // port number on a socket of its own.
    assert!((1_000..1_010).contains(&peak), "{peak}");
    assert_eq!(
        figure(&report, "peak connections (server, ESTABLISHED)"),
        thousands(peak)
    );
    assert_eq!(mem[0].conns, 0, "the baseline sample precedes the flood");

    // Server bytes per connection: the median over the plateau samples.
    let plateau: Vec<f64> = mem
        .iter()
        .filter(|s| s.conns as f64 >= peak as f64 * 0.99)
        .map(|s| (s.rss_kb as f64 - mem[0].rss_kb as f64) * 1024.0 / s.conns as f64)
        .collect();
    assert!(plateau.len() >= 4, "3 s held at 4 samples a second");
    let per_conn = c1m_experiments::median(plateau).unwrap();
    let shown = figure(&report, "server user-space bytes per connection");
    let bytes = c1m_experiments::per_conn(per_conn);
    let bytes = bytes.split(" (").next().unwrap();
    assert!(
        shown.starts_with(&format!("{bytes} ± ")),
        "{shown} for {bytes}"
    );

    // Messages: sent from msggen's summary, delivered and lost from
    // floodtest's, and the flood CSV agrees with its summary.
    let (msggen, flood) = (msggen_summary(&dir), flood_summary(&dir));
    let sent = msggen.sent;
    assert!(sent >= 4_000, "1,667 msg/s for 3 s sent only {sent}");
    assert_eq!(figure(&report, "messages sent (msggen)"), thousands(sent));
    let delivered = flood.messages;
    assert_eq!(
        figure(&report, "messages delivered (floodtest)"),
        thousands(delivered)
    );
    assert_eq!(delivered, sent, "every id is connected: nothing is dropped");
    assert_eq!(figure(&report, "messages lost (sequence gaps)"), "0");
    let rows: Vec<FloodInterval> = read_csv(&dir.join("flood.csv")).unwrap();
    assert_eq!(rows.iter().map(|r| r.open).max(), Some(1_000));

    // Charts drawn and embedded, logs captured, nothing left running.
    for png in ["mem.png", "per-conn.png", "flood.png"] {
        assert!(
            std::fs::metadata(dir.join(png)).unwrap().len() > 1_000,
            "{png}"
        );
        assert!(report.contains(&format!("]({png})")), "{png} not embedded");
    }
    assert!(std::fs::read_to_string(dir.join("comet-server.stdout"))
        .unwrap()
        .starts_with("comet-server listening on 127.0.0.1:"));
    let pids = step_pids(&report);
    assert!(pids.len() >= 5, "{pids:?}");
    assert!(pids.iter().all(|&p| !alive(p)), "{pids:?}");
}

#[test]
fn a_killed_server_stops_the_rest_and_leaves_an_incomplete_report() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("run");
    let mut runner = Runner::start(&[
        "part1",
        "--scale",
        "0.05",
        "--rate",
        "1000",
        "--duration",
        "60s",
        "--out",
        dir.to_str().unwrap(),
    ]);
    let server = pid_in(&runner.wait_line("comet-server ready", START));
    runner.wait_line("connections open", START);
    // Killed once memlog has seen the connections, so they are measured.
    wait_row(&dir.join("mem.csv"), START, |s: &MemSample| s.conns == 500);
    let children = runner.children();
    assert!(
        children.len() >= 3,
        "server, memlog and floodtest run: {children:?}"
    );
    // SAFETY: kill on a pid this test just read from its own child.
    assert_eq!(unsafe { libc::kill(server as i32, libc::SIGKILL) }, 0);

    assert_eq!(runner.wait_exit(Duration::from_secs(60)), Some(2));
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(
        report.contains("**Incomplete:** comet-server ended unexpectedly (killed by SIGKILL)"),
        "{report}"
    );
    // What was measured before is still there.
    let mem: Vec<MemSample> = read_csv(&dir.join("mem.csv")).unwrap();
    let peak = mem.iter().map(|s| s.conns).max().unwrap();
    assert!(peak >= 500);
    assert_eq!(
        figure(&report, "peak connections (server, ESTABLISHED)"),
        thousands(peak)
    );
    let pids = step_pids(&report);
    assert!(pids.contains(&server));
    assert_eq!(
        wait_gone(&children, Duration::from_secs(5)),
        Vec::<u32>::new()
    );
    assert_eq!(wait_gone(&pids, Duration::from_secs(5)), Vec::<u32>::new());
}

#[test]
fn part3_fans_friends_events_out_beside_the_messages_and_counts_them() {
    // 2,000 connections over 17 source IPs; 33 msg/s and 1 event/s (the
    // preset's 33/s scaled, at least 1; each to the publisher's ~50
    // friends, all online) for 4 s.
    let (_out, dir, report) = completed_run(&[
        "part3",
        "--scale",
        "0.002",
        "--rate",
        "2000",
        "--duration",
        "4s",
    ]);
    let graph = std::fs::read_to_string(dir.join("friends.csv")).unwrap();
    assert!(graph.lines().count() > 40_000, "2,000 users x 50 friends");
    let events: MsggenSummary = document(&dir.join("msggen-events.json"), "msggen-summary.json");
    let flood = flood_summary(&dir);
    let expected = events.expected.unwrap();
    assert!(events.sent >= 3 && expected > events.sent, "{events:?}");
    assert_eq!(flood.events, expected, "every queued delivery arrived");
    assert_eq!(
        figure(
            &report,
            "friends' events: deliveries queued / received / lost"
        ),
        format!("{} / {} / 0", thousands(expected), thousands(expected))
    );
    // The direct messages still add up beside them (floodtest's
    // `messages` counts both kinds of envelope).
    let sent = msggen_summary(&dir).sent;
    assert_eq!(flood.messages - flood.events, sent);
    assert_eq!(
        figure(&report, "messages delivered (floodtest)"),
        thousands(sent)
    );
    assert_eq!(flood.lost, 0);
}

#[test]
fn ctrl_c_stops_every_child_and_still_writes_the_summaries() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("run");
    let mut runner = Runner::start(&[
        "part2",
        "--scale",
        "0.05",
        "--rate",
        "1000",
        "--duration",
        "60s",
        "--out",
        dir.to_str().unwrap(),
    ]);
    runner.wait_line("sending", START);
    // Interrupted once msggen is under way (its first interval written).
    wait_row(&dir.join("msggen.csv"), START, |r: &MsggenInterval| {
        r.sent > 0
    });
    let children = runner.children();
    assert_eq!(
        children.len(),
        5,
        "server, memlog, the client's memlog, floodtest, msggen: {children:?}"
    );
    assert_eq!(
        // SAFETY: kill on our own child's pid.
        unsafe { libc::kill(runner.child.id() as i32, libc::SIGINT) },
        0
    );

    assert_eq!(runner.wait_exit(Duration::from_secs(60)), Some(2));
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(
        report.contains("**Incomplete:** interrupted by SIGINT"),
        "{report}"
    );
    // The children got SIGTERM and wrote their summaries.
    assert!(flood_summary(&dir).open >= 500);
    assert!(msggen_summary(&dir).stopped_by_signal);
    assert!(report.contains("| msggen |"));
    assert_eq!(
        wait_gone(&children, Duration::from_secs(5)),
        Vec::<u32>::new()
    );
}

#[test]
fn a_killed_runner_takes_its_children_with_it() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("run");
    let mut runner = Runner::start(&[
        "part1",
        "--scale",
        "0.05",
        "--rate",
        "1000",
        "--duration",
        "60s",
        "--out",
        dir.to_str().unwrap(),
    ]);
    runner.wait_line("connections open", START);
    wait_row(&dir.join("flood.csv"), START, |r: &FloodInterval| {
        r.open == 500
    });
    let children = runner.children();
    assert_eq!(
        children.len(),
        4,
        "server, memlog, the client's memlog, floodtest: {children:?}"
    );
    runner.child.kill().unwrap();
    runner.child.wait().unwrap();
    // PR_SET_PDEATHSIG delivers SIGTERM to each child, once per thread of
    // the runner (the child is reparented to each sibling thread in turn);
    // floodtest ignores the repeats and still writes its summary.
    assert_eq!(
        wait_gone(&children, Duration::from_secs(15)),
        Vec::<u32>::new()
    );
    assert!(!dir.join("report.md").exists());
    assert!(flood_summary(&dir).open >= 500);
}

#[test]
fn a_failing_limit_stops_before_the_server_with_the_table() {
    // The real tools, but a c1m-sysctl that reports a failing limit.
    let bins = tempfile::tempdir().unwrap();
    for tool in c1m_experiments::Tool::ALL {
        let link = bins.path().join(tool.binary());
        if tool == c1m_experiments::Tool::Sysctl {
            std::fs::write(
                &link,
                "#!/bin/sh\necho 'RLIMIT_NOFILE (hard)  1,024  1,064  FAIL  fix: raise LimitNOFILE='\nexit 1\n",
            )
            .unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&link, std::fs::Permissions::from_mode(0o755)).unwrap();
        } else {
            std::os::unix::fs::symlink(common::bin_dir().join(tool.binary()), &link).unwrap();
        }
    }
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("run");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_experiment"))
        .args([
            "part1",
            "--scale",
            "0.1",
            "--settle",
            "0s",
            "--out",
            dir.to_str().unwrap(),
            "--bin-dir",
        ])
        .arg(bins.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(status.status.code(), Some(1));
    // After the table, the command to run again once the limit is lifted.
    let stderr = String::from_utf8_lossy(&status.stderr);
    assert!(
        stderr.contains("experiment: once the limits are lifted, run this again: experiment part1 --scale 0.1 --settle 0s"),
        "{stderr}"
    );
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(
        report.contains("**Check failed:** c1m-sysctl check: a limit blocks 1,000 connections"),
        "{report}"
    );
    assert!(
        report.contains("fix: raise LimitNOFILE="),
        "the table is in the report"
    );
    assert!(
        !dir.join("comet-server.stdout").exists(),
        "nothing started after the check"
    );
}

#[test]
fn a_group_of_workers_serves_the_run_and_the_report_sums_them() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("run");
    let mut runner = Runner::start(&[
        "part2",
        "--scale",
        "0.1",
        "--rate",
        "1000",
        "--duration",
        "2s",
        "--workers",
        "2",
        "--out",
        dir.to_str().unwrap(),
    ]);
    runner.wait_line("and 2 workers (admin", START);
    assert_eq!(
        runner.wait_exit(Duration::from_secs(120)),
        Some(0),
        "saw {:?}",
        runner.seen
    );
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(
        report.contains("| server processes | 2 workers and their front"),
        "{report}"
    );
    // The front answered for the group: the sum, and each worker its ids,
    // in the schema of /stats.
    let text = std::fs::read_to_string(dir.join("server-stats.json")).unwrap();
    validate_against_schema("admin-stats.json", &text).unwrap_or_else(|e| panic!("{e}"));
    let stats: StatsSnapshot = serde_json::from_str(&text).unwrap();
    assert_eq!(stats.connections, 1_000, "{text}");
    let held: Vec<u64> = stats.workers.iter().map(|w| w.stats.connections).collect();
    assert_eq!(held, [500, 500], "ids 1-1000, each worker owns half");
    // Messages to random ids reached connections on both workers.
    assert!(stats.workers.iter().all(|w| w.stats.messages_out > 0));
    // memlog followed the front and both workers.
    let mem: Vec<MemSample> = read_csv(&dir.join("mem.csv")).unwrap();
    assert!(mem.iter().all(|s| s.procs == 3), "{:?}", mem[0]);
    let peak = mem.iter().map(|s| s.conns).max().unwrap();
    assert!((1_000..1_010).contains(&peak), "{peak}");
}
