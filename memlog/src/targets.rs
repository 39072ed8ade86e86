//! Which processes a sample measures: fixed pids (`--pid`), or every
//! process whose command line contains a pattern (`--pgrep`), looked up
//! again at every sample so workers that start, exit or restart are
//! followed.
//!
//! `--pgrep PATTERN` matches like `pgrep -f` with a fixed string: PATTERN
//! must occur in the command line (arguments joined by spaces). A fixed
//! string rather than a regex because server command lines are matched by
//! a distinctive piece (`comet-server`, `-sname n1`) and a substring has no
//! quoting surprises. Kernel threads and zombies (empty command line) never
//! match. memlog itself and its ancestors never match either: the shell or
//! `experiment` that started `memlog --pgrep comet-server` has that very
//! string in its own command line, the classic `pgrep -f` pitfall.
//!
//! Cost: with `--pgrep`, one directory listing of /proc and one small
//! `cmdline` read per process on the machine, per sample (~10 µs each).
//! With `--pid`, one `stat` read per pid to check it is still the same
//! process (pids are reused).

use crate::proc::{is_gone, parent, start_time};
use anyhow::{bail, Context};
use std::fs;
use std::io;

/// The processes to measure.
#[derive(Debug, Clone)]
pub enum Targets {
    /// Fixed processes, each named by pid and start time so a reused pid
    /// is not mistaken for the original.
    Pids(Vec<(u32, u64)>),
    /// Every process whose command line contains `needle`, except those in
    /// `excluded` (memlog and its ancestors).
    Pattern {
        /// The bytes to find in `/proc/PID/cmdline`.
        needle: Vec<u8>,
        /// Pids never counted.
        excluded: Vec<u32>,
    },
}

impl Targets {
    /// Fixed pids; each must exist now.
    pub fn pids(pids: &[u32]) -> anyhow::Result<Self> {
        let mut named = Vec::with_capacity(pids.len());
        for &pid in pids {
            match start_time(pid).with_context(|| format!("reading /proc/{pid}/stat"))? {
                Some(started) => named.push((pid, started)),
                None => bail!("no process with pid {pid}"),
            }
        }
        Ok(Targets::Pids(named))
    }

    /// Processes matching `pattern`, resolved at every sample.
    pub fn pattern(pattern: &str) -> anyhow::Result<Self> {
        if pattern.is_empty() {
            bail!("--pgrep needs a non-empty pattern");
        }
        Ok(Targets::Pattern {
            needle: pattern.as_bytes().to_vec(),
            excluded: self_and_ancestors().context("reading memlog's own ancestry in /proc")?,
        })
    }

    /// The pids to measure now. Processes that vanish while being looked at
    /// are left out.
    pub fn resolve(&self) -> io::Result<Vec<u32>> {
        match self {
            Targets::Pids(named) => {
                let mut alive = Vec::with_capacity(named.len());
                for &(pid, started) in named {
                    if start_time(pid)? == Some(started) {
                        alive.push(pid);
                    }
                }
                Ok(alive)
            }
            Targets::Pattern { needle, excluded } => {
                let mut found = Vec::new();
                for pid in all_pids()? {
                    if excluded.contains(&pid) {
                        continue;
                    }
                    match fs::read(format!("/proc/{pid}/cmdline")) {
                        Ok(cmdline) if command_line_matches(&cmdline, needle) => found.push(pid),
                        Ok(_) => {}
                        Err(e) if is_gone(&e) => {}
                        // Another user's process under `hidepid=1`: not
                        // ours to measure, and no reason to stop sampling.
                        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(found)
            }
        }
    }
}

/// Whether a raw `/proc/PID/cmdline` (arguments separated by NUL) contains
/// `needle` once the NULs are read as spaces.
fn command_line_matches(cmdline: &[u8], needle: &[u8]) -> bool {
    if cmdline.is_empty() || needle.is_empty() || needle.len() > cmdline.len() {
        return false;
    }
    let byte = |b: u8| if b == 0 { b' ' } else { b };
    cmdline
        .windows(needle.len())
        .any(|w| w.iter().zip(needle).all(|(&a, &b)| byte(a) == b))
}

/// Every pid listed in /proc (thread-group leaders: threads live under
/// /proc/PID/task and are not listed).
fn all_pids() -> io::Result<Vec<u32>> {
    let mut pids = Vec::new();
    for entry in fs::read_dir("/proc")? {
        let entry = entry?;
        if let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) {
            pids.push(pid);
        }
    }
    Ok(pids)
}

/// memlog's pid and those of its ancestors up to init.
fn self_and_ancestors() -> io::Result<Vec<u32>> {
    let mut chain = vec![std::process::id()];
    while let Some(&pid) = chain.last() {
        match parent(pid)? {
            Some(ppid) if ppid > 0 && !chain.contains(&ppid) => chain.push(ppid),
            _ => break,
        }
    }
    Ok(chain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_across_argument_boundaries() {
        let cmdline = b"erl\0-sname\0n1\0-pa\0ebin\0";
        assert!(command_line_matches(cmdline, b"name n1"));
        assert!(command_line_matches(cmdline, b"erl"));
        assert!(!command_line_matches(cmdline, b"n2"));
        assert!(!command_line_matches(b"", b"erl"));
    }

    #[test]
    fn never_matches_memlog_or_its_ancestors() {
        let me = std::process::id();
        let exe = std::env::current_exe().unwrap();
        let own = exe.file_name().unwrap().to_str().unwrap();
        let targets = Targets::pattern(own).unwrap();
        assert!(!targets.resolve().unwrap().contains(&me));
        let Targets::Pattern { excluded, .. } = &targets else {
            unreachable!()
        };
        assert!(excluded.len() >= 2, "own pid and at least a parent");
    }

    #[test]
    fn a_missing_pid_is_refused_at_start() {
        let err = Targets::pids(&[4_194_305]).unwrap_err();
        assert_eq!(err.to_string(), "no process with pid 4194305");
        let me = Targets::pids(&[std::process::id()]).unwrap();
        assert_eq!(me.resolve().unwrap(), vec![std::process::id()]);
        assert!(Targets::pattern("").is_err());
    }
}
