//! A python3 child process whose memory and connections a test controls
//! (`testee.py` beside this file says what it answers).

#![allow(dead_code)] // each test file uses part of it

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

pub(crate) struct Testee {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    /// The listener's port (IPv4 127.0.0.1 and IPv6 ::1).
    pub port: u16,
}

impl Testee {
    /// Starts the testee; `marker` is an extra argument that lands in its
    /// command line, for `--pgrep`.
    pub(crate) fn spawn(marker: &str) -> Self {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/testee.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(marker)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting python3 tests/support/testee.py");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let port = line
            .strip_prefix("port ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("testee said {line:?}"));
        Testee {
            child,
            stdin,
            stdout,
            port,
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends one command and returns the answer, once the testee has done it.
    pub(crate) fn ask(&mut self, command: &str) -> String {
        writeln!(self.stdin, "{command}").unwrap();
        self.stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        assert!(line.starts_with("ok"), "{command}: testee said {line:?}");
        line.trim().to_owned()
    }

    /// Kills the testee and reaps it, so its /proc entry is gone.
    pub(crate) fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Testee {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A string no other process on the machine has in its command line.
pub(crate) fn unique_marker(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("memlog-test-{what}-{}-{nanos}", std::process::id())
}

/// The rows of a memlog CSV.
pub(crate) fn read_csv(path: &std::path::Path) -> Vec<c1m_common::MemSample> {
    csv::Reader::from_path(path)
        .unwrap()
        .deserialize()
        .collect::<Result<_, _>>()
        .unwrap()
}
