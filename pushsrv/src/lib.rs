//! The other push servers c1m measures against comet-server: nginx with
//! nchan, Pushpin (with a zurl of its own and a small GRIP origin),
//! nats-server and redis-server, from their Debian packages, each with a
//! config generated into a folder and listening on free loopback ports.
//!
//! One place for what both sides need: the tests start them through
//! [`Daemons`] (stopped and reaped on drop), and `experiment --target nchan`
//! or `pushpin` starts the same [`Setup`]'s [`Launch`]es under its own
//! supervisor so memlog can follow them. Nothing here runs until asked;
//! a Pushpin setup leaves one thread (its GRIP origin) for the life of the
//! process.

mod configs;
mod daemons;
mod origin;
mod ready;
mod sibling;

pub use configs::{nats_setup, nchan_setup, pushpin_setup, redis_setup};
pub use daemons::{free_port, nats, nchan, pushpin, redis, Daemons};
pub use sibling::sibling_bin;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

/// One process of a server: what to run and which package has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// A short name, for its log file (`<name>.log`) and the messages.
    pub name: &'static str,
    /// The program (an absolute path or a name on `PATH`).
    pub program: String,
    /// Its arguments (the generated config's path among them).
    pub args: Vec<String>,
    /// The Debian package(s) to install when it is missing.
    pub package: &'static str,
    /// Processes it starts itself once running (nginx's worker, Pushpin's
    /// condure, proxy and handler): a runner that follows the server's
    /// memory waits for them.
    pub forks: usize,
}

/// A server ready to start: its processes (in start order) and where it
/// listens once it runs.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The processes, in start order.
    pub launches: Vec<Launch>,
    /// Where subscribers connect (for NATS and Redis, the one port).
    pub subscribe: SocketAddr,
    /// Where publishers send (for nginx+nchan and NATS/Redis the same port).
    pub publish: SocketAddr,
    /// A path whose `GET` through `subscribe` is answered 200 only once the
    /// whole server is up ([`Setup::ready`]); none where listening is proof.
    pub probe: Option<&'static str>,
}

/// The Debian binaries a server needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    /// nginx (`nginx-light`) with the nchan module (`libnginx-mod-nchan`).
    Nchan,
    /// Pushpin, with condure and zurl.
    Pushpin,
}

/// nchan is a module nginx loads from here (`libnginx-mod-nchan`).
pub(crate) const NCHAN_MODULE: &str = "/usr/lib/nginx/modules/ngx_nchan_module.so";
pub(crate) const NGINX: &str = "/usr/sbin/nginx";

impl Server {
    /// Why this machine cannot run `self`, with the fix, or `None` when
    /// every binary it needs is there.
    pub fn missing(self) -> Option<String> {
        let (needs, package): (&[&str], &str) = match self {
            Server::Nchan => (&[NGINX, NCHAN_MODULE], "nginx-light libnginx-mod-nchan"),
            Server::Pushpin => (&["pushpin", "condure", "zurl"], "pushpin zurl"),
        };
        let absent: Vec<&str> = needs.iter().copied().filter(|p| !found(p)).collect();
        (!absent.is_empty()).then(|| {
            format!(
                "{} not found on this machine; fix: apt-get install {package}",
                absent.join(", ")
            )
        })
    }

    /// The server's name and version as its binary says it (`nginx -v`,
    /// `pushpin --version`), e.g. `nginx/1.22.1 with nchan 1.3.6`.
    pub fn version(self) -> Option<String> {
        match self {
            Server::Nchan => {
                let nginx = first_line(NGINX, "-v")?;
                let nginx = nginx.rsplit(' ').next().unwrap_or(&nginx).to_owned();
                Some(match package_version("libnginx-mod-nchan") {
                    Some(v) => format!("{nginx} with nchan {v}"),
                    None => format!("{nginx} with nchan"),
                })
            }
            Server::Pushpin => first_line("pushpin", "--version"),
        }
    }
}

/// Whether `program` exists: a path as given, a name on `PATH`.
fn found(program: &str) -> bool {
    if program.contains('/') {
        return Path::new(program).exists();
    }
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// The first line `program arg` prints (on stdout or stderr: nginx -v
/// writes to stderr).
fn first_line(program: &str, arg: &str) -> Option<String> {
    let out = Command::new(program).arg(arg).output().ok()?;
    let text = if out.stdout.is_empty() {
        out.stderr
    } else {
        out.stdout
    };
    let text = String::from_utf8_lossy(&text);
    text.lines().next().map(|l| l.trim().to_owned())
}

/// An installed Debian package's version, upstream part only.
fn package_version(package: &str) -> Option<String> {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f", "${Version}", package])
        .output()
        .ok()?;
    let v = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let upstream = v.split_once(':').map_or(v.as_str(), |(_, v)| v);
    let upstream = upstream.split('-').next().unwrap_or(upstream);
    (out.status.success() && !upstream.is_empty()).then(|| upstream.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_binary_is_named_with_its_package() {
        assert!(found("sh"));
        assert!(!found("/nonexistent/c1m-nginx"));
        assert!(!found("c1m-no-such-program"));
        // The machine's own state decides which; either way the message holds the fix.
        if let Some(why) = Server::Nchan.missing() {
            assert!(
                why.contains("apt-get install nginx-light libnginx-mod-nchan"),
                "{why}"
            );
        }
    }
}
