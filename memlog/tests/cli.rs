//! The real `memlog` binary: exit codes, the CSV it leaves, the seed lines,
//! and a clean stop on SIGTERM.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{read_csv, unique_marker, Testee};

fn memlog() -> Command {
    Command::new(env!("CARGO_BIN_EXE_memlog"))
}

#[test]
fn a_timed_run_writes_csv_and_seed_lines() {
    let marker = unique_marker("cli");
    let mut child = Testee::spawn(&marker);
    child.ask("open 25");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("mem.csv");
    let run = memlog()
        .args(["--pgrep", &marker, "--port", &child.port.to_string()])
        .args([
            "--interval",
            "200ms",
            "--duration",
            "600ms",
            "--format",
            "seed",
        ])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        !stderr.contains(['\r', '\x1b']),
        "no live line off a terminal: {stderr:?}"
    );

    let rows = read_csv(&out);
    // Samples at 0, 200, 400 and 600 ms; a sample slower than 200 ms (a
    // very busy machine) skips slots, so fewer, never more, and none late.
    assert!((1..=4).contains(&rows.len()), "{} rows", rows.len());
    for r in &rows {
        assert!(r.procs == 1 && r.conns == 25 && r.rss_kb > 0, "{r:?}");
    }
    assert!(rows.last().unwrap().elapsed_s < 1.0);

    let stdout = String::from_utf8(run.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), rows.len(), "one seed line per sample");
    for (line, row) in lines.iter().zip(&rows) {
        let fields: Vec<&str> = line.split('\t').collect();
        assert_eq!(fields.len(), 4, "{line:?}");
        assert_eq!(fields[1], (row.unix_ms / 1000).to_string());
        assert_eq!(fields[2], row.rss_kb.to_string());
        assert_eq!(fields[3], "25");
        // `date`'s form: weekday, month, day, time, zone, year.
        assert_eq!(fields[0].split_whitespace().count(), 6, "{:?}", fields[0]);
    }
}

#[test]
fn sigterm_ends_a_run_cleanly_with_its_data() {
    let child = Testee::spawn("sigterm");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("mem.csv");
    let mut run = memlog()
        .args([
            "--pid",
            &child.pid().to_string(),
            "--port",
            &child.port.to_string(),
        ])
        .args(["--interval", "30s", "--format", "seed"])
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // The first seed line says the first sample is written.
    let mut first = String::new();
    BufReader::new(run.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.ends_with("\t0\n"), "{first:?}");
    let asked = Instant::now();
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(run.id() as i32, libc::SIGTERM) }, 0);
    let status = run.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "stopped without waiting out the interval"
    );
    assert_eq!(read_csv(&out).len(), 1);
}

#[test]
fn errors_exit_2_with_a_clear_message() {
    let bad_pid = memlog()
        .args(["--pid", "4194305", "--out", "/dev/null"])
        .output()
        .unwrap();
    assert_eq!(bad_pid.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&bad_pid.stderr),
        "memlog: no process with pid 4194305\n"
    );

    let me = std::process::id().to_string();
    let bad_out = memlog()
        .args(["--pid", &me, "--out", "/nonexistent-dir/mem.csv"])
        .output()
        .unwrap();
    assert_eq!(bad_out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad_out.stderr);
    assert!(
        err.starts_with("memlog: creating /nonexistent-dir/mem.csv: "),
        "{err}"
    );

    let zero = memlog()
        .args(["--pid", &me, "--interval", "0s"])
        .output()
        .unwrap();
    assert_eq!(zero.status.code(), Some(2));
}
