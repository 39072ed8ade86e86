//! floodtest as the subscriber side of the publisher tests: the real push
//! servers they publish through are started by `c1m_pushsrv`.

#![allow(dead_code)] // Each test binary uses a different part.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The floodtest binary, built into this test's target folder and profile
/// on first use (another package's binary, which `cargo test -p
/// c1m-msggen` does not build).
pub(crate) fn floodtest_bin() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        c1m_pushsrv::sibling_bin(
            env!("CARGO"),
            env!("CARGO_MANIFEST_DIR"),
            env!("CARGO_BIN_EXE_msggen"),
            "c1m-floodtest",
            "floodtest",
        )
    })
}

/// A floodtest holding `conns` streams of a server (`--preset` and
/// `--target`); its summary is read once it is stopped.
pub(crate) struct Flood {
    child: Child,
    stdout: std::io::Lines<BufReader<std::process::ChildStdout>>,
    json: PathBuf,
    _dir: tempfile::TempDir,
}

impl Flood {
    /// Starts floodtest and returns once its ramp is done.
    pub(crate) fn hold(preset: &str, addr: std::net::SocketAddr, conns: u32) -> Self {
        Self::hold_with(preset, addr, conns, &[])
    }

    /// The same with more floodtest arguments (`--ids 1-6`).
    pub(crate) fn hold_with(
        preset: &str,
        addr: std::net::SocketAddr,
        conns: u32,
        extra: &[&str],
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let json = dir.path().join("flood.json");
        let mut child = Command::new(floodtest_bin())
            .args(["--preset", preset, "--target", &addr.to_string()])
            .args(["--conns", &conns.to_string()])
            .args(extra)
            .args(["--duration", "60s", "--report-interval", "200ms", "--json"])
            .arg(&json)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let mut lines = stderr.lines();
        let ramp = lines
            .by_ref()
            .map_while(Result::ok)
            .find(|l| l.contains("ramp done"));
        let ramp = ramp.expect("floodtest ended before its ramp was done");
        assert!(ramp.contains(&format!("open {conns}/{conns}")), "{ramp}");
        // The rest of stderr is drained so floodtest never blocks on it.
        std::thread::spawn(move || lines.for_each(drop));
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        Self {
            child,
            stdout,
            json,
            _dir: dir,
        }
    }

    /// Waits (at most 30 s) until floodtest's interval lines count at least
    /// `chunks` chunks or events in all (`Stats: {active,closed,chunks}`),
    /// then stops it and returns its summary.
    pub(crate) fn stop_after(mut self, chunks: u64) -> c1m_common::FloodSummary {
        let deadline = Instant::now() + Duration::from_secs(30);
        for line in self.stdout.by_ref().map_while(Result::ok) {
            let seen = line
                .rsplit(',')
                .next()
                .and_then(|c| c.trim_end_matches('}').trim().parse::<u64>().ok());
            if seen.is_some_and(|n| n >= chunks) || Instant::now() > deadline {
                break;
            }
        }
        // SAFETY: kill with the pid of a child we have not reaped.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let _ = self.child.wait();
        let text = std::fs::read_to_string(&self.json).expect("floodtest wrote no summary");
        c1m_common::validate_against_schema("flood-summary.json", &text).unwrap();
        serde_json::from_str(&text).unwrap()
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
