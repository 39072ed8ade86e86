//! Servers as a test starts them: a [`Setup`]'s processes as children of
//! this process, their output in `<dir>/<name>.log`, stopped (SIGTERM, then
//! SIGKILL after 5 s) and reaped on drop, newest first, and the folder of
//! their configs removed.
//!
//! A test that finds a server missing fails naming the package to install
//! (`scripts/test.sh` installs them).

use crate::{configs, Launch, Setup};
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free loopback port (bound, read, released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding 127.0.0.1:0")
}

/// Child processes stopped and reaped on drop, with the temp dir of their
/// configs and logs.
pub struct Daemons {
    children: Vec<(&'static str, Child)>,
    dir: tempfile::TempDir,
}

impl Default for Daemons {
    fn default() -> Self {
        Self::new()
    }
}

impl Daemons {
    /// An empty set with a new temp dir.
    pub fn new() -> Self {
        Self {
            children: Vec::new(),
            dir: tempfile::tempdir().expect("creating a temp dir"),
        }
    }

    /// Writes `setup`'s configs into a new set's folder, starts its
    /// processes and waits until it is ready ([`Setup::ready`]).
    pub fn start(setup: fn(&Path) -> io::Result<Setup>) -> (Self, Setup) {
        let mut d = Self::new();
        let setup = setup(d.dir()).expect("writing the server's config");
        for launch in &setup.launches {
            d.spawn(launch);
        }
        d.wait_until(&format!("{} answering", setup.subscribe), || setup.ready());
        (d, setup)
    }

    /// The folder of the configs and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Starts `launch`, its output in `<dir>/<name>.log`; panics naming
    /// the package when the program is missing.
    pub fn spawn(&mut self, launch: &Launch) {
        let log = std::fs::File::create(self.path(&format!("{}.log", launch.name)))
            .expect("creating a log file");
        let child = Command::new(&launch.program)
            .args(&launch.args)
            .current_dir(self.dir())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("cloning a log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {} ({e}): install it with apt-get install {} (scripts/test.sh does)",
                    launch.program, launch.package
                )
            });
        self.children.push((launch.name, child));
    }

    /// Polls `ready` every 20 ms, failing with the server's log if one of
    /// the processes exits, or naming `what` after 20 s.
    fn wait_until(&mut self, what: &str, ready: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !ready() {
            let exited = self
                .children
                .iter_mut()
                .find_map(|(name, child)| Some((*name, child.try_wait().ok()??)));
            if let Some((name, status)) = exited {
                panic!("{name} exited ({status}): {}", self.log(name));
            }
            assert!(Instant::now() < deadline, "not ready within 20 s: {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What process `name` has written so far.
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(&format!("{name}.log"))).unwrap_or_default()
    }

    /// `file` in the folder.
    pub fn path(&self, file: &str) -> PathBuf {
        self.dir().join(file)
    }

    /// Writes `text` to `file` in the folder and returns its path.
    pub fn write(&self, file: &str, text: &str) -> PathBuf {
        let path = self.path(file);
        std::fs::write(&path, text).expect("writing into the temp dir");
        path
    }
}

impl Drop for Daemons {
    fn drop(&mut self) {
        for (_, child) in self.children.iter_mut().rev() {
            // SAFETY: kill with the pid of a child we have not reaped.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(5);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// nginx with nchan ([`configs::nchan_setup`]): the daemons and the
/// address (`/pub/{id}`, `/sub/{id}`).
pub fn nchan() -> (Daemons, SocketAddr) {
    let (d, setup) = Daemons::start(configs::nchan_setup);
    (d, setup.subscribe)
}

/// Pushpin with its zurl and GRIP origin ([`configs::pushpin_setup`]):
/// the daemons, the subscriber address and the publish address.
pub fn pushpin() -> (Daemons, SocketAddr, SocketAddr) {
    let (d, setup) = Daemons::start(configs::pushpin_setup);
    (d, setup.subscribe, setup.publish)
}

/// nats-server on a free port.
pub fn nats() -> (Daemons, SocketAddr) {
    let (d, setup) = Daemons::start(configs::nats_setup);
    (d, setup.subscribe)
}

/// redis-server on a free port, no persistence.
pub fn redis() -> (Daemons, SocketAddr) {
    let (d, setup) = Daemons::start(configs::redis_setup);
    (d, setup.subscribe)
}
