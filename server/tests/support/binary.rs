//! The `comet-server` binary as a child process (a group's front must be
//! the binary: it starts its workers by re-executing itself), stopped with
//! SIGTERM when dropped.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use c1m_common::StatsSnapshot as GroupSnapshot;

use super::{admin_with, eventually};

/// A running comet-server (a front with workers, or a standalone one).
pub(crate) struct Binary {
    child: Option<Child>,
    pub(crate) listen: SocketAddr,
    pub(crate) admin: SocketAddr,
}

impl Binary {
    /// Starts `comet-server --listen 127.0.0.1:0 --admin 127.0.0.1:0 ARGS`
    /// and waits for its readiness line.
    pub(crate) fn start(args: &[&str]) -> Binary {
        let _ = c1m_common::raise_nofile_to_hard();
        let mut child = Command::new(env!("CARGO_BIN_EXE_comet-server"))
            .args(["--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("no readiness line within 30 s");
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(
            words.get(..3),
            Some(&["comet-server", "listening", "on"][..]),
            "{line:?}"
        );
        Binary {
            listen: words[3].parse().unwrap(),
            admin: words[5].parse().unwrap(),
            child: Some(child),
        }
    }

    /// `GET /stats`, as a group's (a standalone server's reads the same),
    /// checked against its committed schema.
    pub(crate) fn stats(&self) -> GroupSnapshot {
        let (status, body) = admin_with(self.admin, "GET", "/stats", b"", "");
        assert_eq!(status, 200, "{body}");
        c1m_common::validate_against_schema("admin-stats.json", &body)
            .unwrap_or_else(|e| panic!("{e}"));
        serde_json::from_str(&body).unwrap()
    }

    /// Waits until `/stats` satisfies `cond`.
    pub(crate) fn stats_reach(
        &self,
        limit: Duration,
        cond: impl Fn(&GroupSnapshot) -> bool,
    ) -> bool {
        eventually(limit, || cond(&self.stats()))
    }

    /// Sends one admin request; (status, body).
    pub(crate) fn admin(&self, method: &str, path: &str, body: &[u8]) -> (u16, String) {
        admin_with(self.admin, method, path, body, "")
    }

    /// SIGTERM and the exit status's success.
    pub(crate) fn stop(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return false;
        };
        signal(child.id(), libc::SIGTERM);
        child.wait().map(|s| s.success()).unwrap_or(false)
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Sends `sig` to `pid`.
pub(crate) fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) with a pid this test started and a valid signal.
    unsafe {
        libc::kill(pid as i32, sig);
    }
}
