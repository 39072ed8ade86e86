//! A process's memory from `/proc/PID/statm`, and the page size it counts
//! in: the one reader behind the server's `/stats` RSS, floodtest's
//! per-connection memory and memlog's virtual size (memlog adds PSS from
//! `smaps_rollup` on top).
//!
//! Cost: one small file read per call; `statm` is O(1) for the kernel,
//! unlike `smaps_rollup`, which walks the page tables.

use std::io;

/// The kernel's page size in bytes (statm and sockstat count pages); 4096
/// if `sysconf` cannot say.
pub fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).ok().filter(|&s| s > 0).unwrap_or(4096)
}

/// Which process to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pid {
    /// The calling process (`/proc/self`).
    Current,
    /// Another process by id.
    Of(u32),
}

/// The virtual and resident size of a process, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Statm {
    /// Virtual size (VSZ): everything mapped, touched or not.
    pub vsz_bytes: u64,
    /// Resident set size (RSS): pages in RAM, shared ones counted in full.
    pub rss_bytes: u64,
}

/// Reads `/proc/PID/statm`. `Ok(None)` when the process is gone, or is a
/// zombie or kernel thread (no address space to measure).
pub fn statm(pid: Pid) -> io::Result<Option<Statm>> {
    let path = match pid {
        Pid::Current => "/proc/self/statm".to_string(),
        Pid::Of(pid) => format!("/proc/{pid}/statm"),
    };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if is_gone(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    let page = page_size();
    Ok(parse_statm(&text)
        .filter(|&(size, _)| size > 0)
        .map(|(size, resident)| Statm {
            vsz_bytes: size * page,
            rss_bytes: resident * page,
        }))
}

/// The resident set size of `pid` in bytes; `None` if it cannot be read.
pub fn rss_bytes(pid: Pid) -> Option<u64> {
    Some(statm(pid).ok()??.rss_bytes)
}

/// The memory the kernel says is available for new allocations
/// (`MemAvailable` in `/proc/meminfo`), bytes; `None` if it cannot be read.
/// Tools that size a large structure from their input check it first, so
/// they refuse instead of being killed for memory.
pub fn mem_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb.saturating_mul(1024))
}

/// Asks the kernel to back `region` with transparent huge pages
/// (`madvise(MADV_HUGEPAGE)`, which this machine's `madvise` THP mode
/// needs): for a large array read or written at random, one TLB entry then
/// covers 2 MiB instead of 4 KiB. Only the whole pages inside `region` are
/// advised; a refusal (no THP) changes nothing, so it is ignored.
pub fn advise_huge_pages<T>(region: &[T]) {
    const HUGE: usize = 2 << 20;
    let start = region.as_ptr() as usize;
    let end = start + std::mem::size_of_val(region);
    let first = start.next_multiple_of(HUGE);
    if first >= end || end - first < HUGE {
        return;
    }
    let len = (end - first) / HUGE * HUGE;
    // SAFETY: the range lies inside `region`, which is mapped; the advice
    // changes how the kernel backs the pages, never their contents.
    unsafe {
        libc::madvise(first as *mut libc::c_void, len, libc::MADV_HUGEPAGE);
    }
}

/// Lowers the calling thread's nice value by `step` (a higher priority).
/// Linux nice is per thread: the process's other threads, and children
/// started from them, keep theirs. Needs root or CAP_SYS_NICE.
pub fn raise_thread_priority(step: i32) -> io::Result<()> {
    // SAFETY: gettid, getpriority and setpriority take and return plain
    // integers; they name this thread only.
    unsafe {
        let tid = libc::gettid() as libc::id_t;
        let now = libc::getpriority(libc::PRIO_PROCESS, tid);
        if libc::setpriority(libc::PRIO_PROCESS, tid, now - step) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Whether a /proc read failed because the process exited: ENOENT when the
/// entry was removed, ESRCH when it died while the file was open.
pub fn is_gone(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ESRCH)
}

/// `size resident shared text lib data dt`, in pages.
fn parse_statm(text: &str) -> Option<(u64, u64)> {
    let mut fields = text.split_ascii_whitespace();
    Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn this_thread_nice() -> i32 {
        // SAFETY: plain integers, this thread only.
        unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) }
    }

    #[test]
    fn a_raised_priority_is_the_calling_threads_alone() {
        let before = this_thread_nice();
        let raised = std::thread::spawn(move || {
            let outcome = raise_thread_priority(1);
            (outcome.map_err(|e| e.kind()), this_thread_nice())
        })
        .join()
        .unwrap();
        match raised {
            (Ok(()), nice) => assert_eq!(nice, before - 1),
            // Without CAP_SYS_NICE the kernel refuses, and says so.
            (Err(kind), nice) => {
                assert_eq!(kind, io::ErrorKind::PermissionDenied);
                assert_eq!(nice, before);
            }
        }
        assert_eq!(this_thread_nice(), before, "the other threads keep theirs");
    }

    #[test]
    fn parses_statm() {
        assert_eq!(parse_statm("2000 442 400 1 0 100 0\n"), Some((2000, 442)));
        assert_eq!(parse_statm("2000"), None);
    }

    #[test]
    fn reads_this_process() {
        assert!(page_size().is_power_of_two());
        let me = statm(Pid::Current).unwrap().unwrap();
        assert!(me.rss_bytes > 0 && me.vsz_bytes >= me.rss_bytes);
        assert_eq!(me.rss_bytes % page_size(), 0);
        let by_pid = rss_bytes(Pid::Of(std::process::id())).unwrap();
        assert!(by_pid > 0);
    }

    #[test]
    fn a_missing_process_is_gone_not_an_error() {
        // Above the largest possible pid_max (4,194,304).
        assert_eq!(statm(Pid::Of(4_194_305)).unwrap(), None);
        assert_eq!(rss_bytes(Pid::Of(4_194_305)), None);
    }
}
