//! Shared by the end-to-end tests: the real tool binaries, a runner child
//! whose progress lines can be awaited, and checks on /proc.
//!
//! The tools are other packages' binaries, which `cargo test -p
//! c1m-experiments` does not build. So the first test to need them runs
//! `cargo build -p <each tool package>` into the same target folder and
//! profile as this test (found from the `experiment` binary's path): a no-op
//! when they are fresh, a real build when they are missing or stale, and a
//! clear failure naming the command when they cannot be built.

#![allow(dead_code)]

use c1m_experiments::Tool;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The folder holding `experiment` and, once built, every tool.
pub(crate) fn bin_dir() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let exe = PathBuf::from(env!("CARGO_BIN_EXE_experiment"));
        let dir = exe.parent().expect("experiment has a folder").to_path_buf();
        let profile_dir = dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("debug")
            .to_owned();
        let target_dir = dir.parent().expect("profile folder has a parent");
        let mut cargo = Command::new(env!("CARGO"));
        cargo.arg("build").arg("--target-dir").arg(target_dir);
        if profile_dir == "release" {
            cargo.arg("--release");
        }
        for tool in Tool::ALL {
            cargo.args(["-p", tool.package()]);
        }
        let command = format!("{cargo:?}");
        let status = cargo
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .unwrap_or_else(|e| panic!("could not run {command}: {e}"));
        assert!(
            status.success(),
            "building the tools failed ({status}); build them with {command}"
        );
        for tool in Tool::ALL {
            assert!(
                dir.join(tool.binary()).is_file(),
                "{} missing in {}",
                tool.binary(),
                dir.display()
            );
        }
        dir
    })
}

/// A running `experiment`, its stdout lines arriving on a channel.
pub(crate) struct Runner {
    pub child: Child,
    lines: mpsc::Receiver<String>,
    pub seen: Vec<String>,
}

impl Runner {
    pub(crate) fn start(args: &[&str]) -> Runner {
        let mut child = Command::new(env!("CARGO_BIN_EXE_experiment"))
            .args(args)
            .arg("--bin-dir")
            .arg(bin_dir())
            // Tests run beside other tests: waiting for a quiet machine
            // would only make them slow (the wait has its unit tests).
            .args(["--settle", "0s"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting experiment");
        let stdout: ChildStdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                eprintln!("experiment> {line}");
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Runner {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a stdout line containing `needle` and returns it.
    pub(crate) fn wait_line(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => {
                    let _ = self.child.kill();
                    panic!(
                        "no line with {needle:?} within {timeout:?}; saw {:?}",
                        self.seen
                    );
                }
            }
        }
    }

    /// Waits for the runner to exit and returns its exit code.
    pub(crate) fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                panic!("experiment did not exit within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The runner's direct children now.
    pub(crate) fn children(&self) -> Vec<u32> {
        let pid = self.child.id();
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }
}

/// The pid in `... pid N)` of the runner's server readiness line.
pub(crate) fn pid_in(line: &str) -> u32 {
    line.rsplit("pid ")
        .next()
        .and_then(|rest| rest.trim_end_matches(')').parse().ok())
        .unwrap_or_else(|| panic!("no pid in {line:?}"))
}

/// Whether `pid` is a live (not zombie) process.
pub(crate) fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
        Err(_) => false,
    }
}

/// Waits up to `timeout` for every pid to be gone; returns those left.
pub(crate) fn wait_gone(pids: &[u32], timeout: Duration) -> Vec<u32> {
    let deadline = Instant::now() + timeout;
    loop {
        let left: Vec<u32> = pids.iter().copied().filter(|&p| alive(p)).collect();
        if left.is_empty() || Instant::now() >= deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The pids of the report's steps table.
pub(crate) fn step_pids(report: &str) -> Vec<u32> {
    report
        .lines()
        .skip_while(|l| !l.starts_with("## Steps"))
        .filter(|l| l.starts_with("| ") && !l.starts_with("| step") && !l.starts_with("| ---"))
        .filter_map(|l| l.split('|').nth(2)?.trim().parse().ok())
        .collect()
}

/// The "this run" cell of the figures row starting with `label`.
pub(crate) fn figure(report: &str, label: &str) -> String {
    let line = report
        .lines()
        .find(|l| l.starts_with(&format!("| {label} |")))
        .unwrap_or_else(|| panic!("no row {label:?} in the report"));
    line.split('|').nth(2).unwrap().trim().to_owned()
}

/// Waits until a row of the CSV at `path` satisfies `pred` (the tools
/// flush a row per interval, so this is their progress signal).
pub(crate) fn wait_row<T: serde::de::DeserializeOwned>(
    path: &Path,
    timeout: Duration,
    pred: impl Fn(&T) -> bool,
) {
    let deadline = Instant::now() + timeout;
    loop {
        let rows: Vec<T> = c1m_experiments::read_csv(path).unwrap_or_default();
        if rows.iter().any(&pred) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no matching row in {} within {timeout:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
