//! A real `nats-server` (Debian package `nats-server`; `scripts/test.sh`
//! installs it) on a free loopback port, started for one test and stopped
//! when dropped; optionally one node of a cluster with routes to others.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// One nats-server process.
pub(crate) struct Nats {
    child: Option<Child>,
    /// Client port.
    pub(crate) port: u16,
    /// Cluster (route) port, when it is a cluster node.
    pub(crate) cluster_port: Option<u16>,
}

/// A loopback port free now.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Nats {
    /// A standalone server on a free port.
    pub(crate) fn start() -> Nats {
        Self::start_on(free_port(), None, &[])
    }

    /// A node of cluster `c1m-test` listening for routes on
    /// `cluster_port`, with routes to `peers` (their cluster ports).
    pub(crate) fn cluster_node(cluster_port: u16, peers: &[u16]) -> Nats {
        Self::start_on(free_port(), Some(cluster_port), peers)
    }

    /// Starts on `port` (again, after [`Nats::stop`], to simulate a
    /// restart) and waits for "Server is ready".
    pub(crate) fn start_on(port: u16, cluster_port: Option<u16>, peers: &[u16]) -> Nats {
        let mut cmd = Command::new("nats-server");
        cmd.args(["-a", "127.0.0.1", "-p", &port.to_string()]);
        if let Some(cluster) = cluster_port {
            cmd.args([
                "--cluster_name",
                "c1m-test",
                "--cluster",
                &format!("nats://127.0.0.1:{cluster}"),
            ]);
            if !peers.is_empty() {
                let routes: Vec<String> = peers
                    .iter()
                    .map(|p| format!("nats://127.0.0.1:{p}"))
                    .collect();
                cmd.args(["--routes", &routes.join(",")]);
            }
        }
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect(
                "nats-server is not installed: apt-get install nats-server (scripts/test.sh does)",
            );
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("Server is ready") {
                    let _ = tx.send(());
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(10))
            .expect("nats-server did not say it was ready within 10 s");
        Nats {
            child: Some(child),
            port,
            cluster_port,
        }
    }

    /// The `--broker` URL of this server.
    pub(crate) fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills it (SIGKILL: a crash, not a clean stop).
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.kill();
    }
}
