//! Memory of one process from /proc: RSS and PSS from
//! `/proc/PID/smaps_rollup`, virtual size from `/proc/PID/statm` (read by
//! [`c1m_common::statm`], which the server and floodtest use for RSS).
//!
//! PSS splits every shared page between the processes mapping it, so
//! summing PSS over many worker processes (SO_REUSEPORT servers, forked
//! workers) counts shared code and libraries once; summing RSS counts them
//! once per process.
//!
//! Cost: `smaps_rollup` makes the kernel walk the process's page tables
//! (about 1 ms per GB resident, holding its mmap read lock briefly);
//! `statm` is O(1). A process may exit at any moment: a vanished entry
//! reads as "gone" (`Ok(None)`), never as an error.

pub(crate) use c1m_common::is_gone;
use c1m_common::Pid;
use std::fs;
use std::io;

/// Memory of one process, in KB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct ProcMem {
    pub(crate) rss_kb: u64,
    pub(crate) pss_kb: u64,
    pub(crate) vsz_kb: u64,
    /// Whether PSS came from smaps_rollup. When that file cannot be read
    /// (another user's process without ptrace rights, or a kernel before
    /// 4.14) PSS is reported as RSS, an upper bound.
    pub(crate) pss_exact: bool,
}

/// Reads the memory of `pid`. `Ok(None)` when the process is gone, or is a
/// zombie or kernel thread (no address space to measure).
pub(crate) fn read_mem(pid: u32) -> io::Result<Option<ProcMem>> {
    let Some(statm) = c1m_common::statm(Pid::Of(pid))? else {
        return Ok(None);
    };
    let vsz_kb = statm.vsz_bytes / 1024;
    match fs::read_to_string(format!("/proc/{pid}/smaps_rollup")) {
        Ok(text) => match parse_rollup(&text) {
            Some((rss_kb, pss_kb)) => Ok(Some(ProcMem {
                rss_kb,
                pss_kb,
                vsz_kb,
                pss_exact: true,
            })),
            // Empty rollup: the process became a zombie in between.
            None => Ok(None),
        },
        Err(e) if is_gone(&e) => Ok(None),
        Err(_) => {
            let rss_kb = statm.rss_bytes / 1024;
            Ok(Some(ProcMem {
                rss_kb,
                pss_kb: rss_kb,
                vsz_kb,
                pss_exact: false,
            }))
        }
    }
}

/// The start time of `pid` in clock ticks since boot (field 22 of
/// `/proc/PID/stat`): with the pid, it names one process even after the
/// pid is reused.
pub(crate) fn start_time(pid: u32) -> io::Result<Option<u64>> {
    let Some(stat) = read_or_gone(&format!("/proc/{pid}/stat"))? else {
        return Ok(None);
    };
    Ok(stat_field(&stat, 22).and_then(|f| f.parse().ok()))
}

/// The parent pid of `pid` (field 4 of `/proc/PID/stat`).
pub(crate) fn parent(pid: u32) -> io::Result<Option<u32>> {
    let Some(stat) = read_or_gone(&format!("/proc/{pid}/stat"))? else {
        return Ok(None);
    };
    Ok(stat_field(&stat, 4).and_then(|f| f.parse().ok()))
}

/// Field `n` (1-based, as in proc(5)) of a stat line. The command name
/// (field 2) may hold spaces and parentheses, so fields are counted from
/// its last `)`.
fn stat_field(stat: &str, n: usize) -> Option<&str> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    after_comm.split_ascii_whitespace().nth(n.checked_sub(3)?)
}

/// Reads a /proc file; `Ok(None)` if the process is gone.
pub(crate) fn read_or_gone(path: &str) -> io::Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if is_gone(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// `Rss:` and `Pss:` (KB) from smaps_rollup.
fn parse_rollup(text: &str) -> Option<(u64, u64)> {
    let value = |key: &str| {
        text.lines().find_map(|line| {
            line.strip_prefix(key)?
                .split_ascii_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
        })
    };
    Some((value("Rss:")?, value("Pss:")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rollup() {
        let rollup = "5639bab7b000-7ffce2618000 ---p 00000000 00:00 0    [rollup]\nRss:                1768 kB\nPss:                 328 kB\nPss_Dirty:           112 kB\n";
        assert_eq!(parse_rollup(rollup), Some((1768, 328)));
        assert_eq!(parse_rollup(""), None);
    }

    #[test]
    fn stat_fields_survive_odd_command_names() {
        let stat = "4242 (a) b (c) S 17 4242 4242 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 98765 0 0";
        assert_eq!(stat_field(stat, 3), Some("S"));
        assert_eq!(stat_field(stat, 4), Some("17"));
        assert_eq!(stat_field(stat, 22), Some("98765"));
    }

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        let mem = read_mem(me).unwrap().unwrap();
        assert!(mem.rss_kb > 0 && mem.pss_kb > 0 && mem.vsz_kb >= mem.rss_kb);
        assert!(start_time(me).unwrap().unwrap() > 0);
        assert!(parent(me).unwrap().is_some());
    }

    #[test]
    fn a_missing_process_is_gone_not_an_error() {
        // Above the largest possible pid_max (4,194,304).
        let pid = 4_194_305;
        assert_eq!(read_mem(pid).unwrap(), None);
        assert_eq!(start_time(pid).unwrap(), None);
    }
}
