//! File-descriptor limits: every socket is a descriptor, so RLIMIT_NOFILE is
//! the first wall a connection test hits.
//!
//! Tools call [`raise_nofile_to_hard`] at start-up (the soft limit is often 1,024
//! while the hard limit is far higher) and use [`is_exhaustion`] to turn
//! EMFILE/ENFILE into one clear message instead of a storm of errors.

use std::io;

/// The (soft, hard) RLIMIT_NOFILE of this process.
pub fn nofile_limits() -> io::Result<(u64, u64)> {
    rlimit::getrlimit(rlimit::Resource::NOFILE)
}

/// Raises the soft RLIMIT_NOFILE to the hard limit and returns the new soft
/// limit. Raising the hard limit needs CAP_SYS_RESOURCE and is not tried.
pub fn raise_nofile_to_hard() -> io::Result<u64> {
    let (soft, hard) = nofile_limits()?;
    if soft < hard {
        rlimit::setrlimit(rlimit::Resource::NOFILE, hard, hard)?;
    }
    Ok(hard.max(soft))
}

/// Which descriptor table ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exhaustion {
    /// EMFILE: this process reached its RLIMIT_NOFILE.
    Process,
    /// ENFILE: the whole system reached `fs.file-max`.
    System,
}

/// Whether `err` means no descriptor could be had, and which limit it hit.
pub fn is_exhaustion(err: &io::Error) -> Option<Exhaustion> {
    match err.raw_os_error() {
        Some(libc::EMFILE) => Some(Exhaustion::Process),
        Some(libc::ENFILE) => Some(Exhaustion::System),
        _ => None,
    }
}

impl Exhaustion {
    /// One line saying what ran out and how to lift it.
    pub fn fix(self) -> &'static str {
        match self {
            Exhaustion::Process => {
                "out of file descriptors (EMFILE): this process reached RLIMIT_NOFILE; \
                 raise it with `ulimit -n` / LimitNOFILE= (needs CAP_SYS_RESOURCE above the hard limit) \
                 or split the load over more processes (--procs)"
            }
            Exhaustion::System => {
                "out of file descriptors system-wide (ENFILE): raise fs.file-max \
                 (`c1m-sysctl apply` or `sysctl -w fs.file-max=...`)"
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raising_reaches_the_hard_limit() {
        let (_, hard) = nofile_limits().unwrap();
        assert_eq!(raise_nofile_to_hard().unwrap(), hard);
        assert_eq!(nofile_limits().unwrap().0, hard);
    }

    #[test]
    fn recognises_exhaustion() {
        let emfile = io::Error::from_raw_os_error(libc::EMFILE);
        let enfile = io::Error::from_raw_os_error(libc::ENFILE);
        let refused = io::Error::from_raw_os_error(libc::ECONNREFUSED);
        assert_eq!(is_exhaustion(&emfile), Some(Exhaustion::Process));
        assert_eq!(is_exhaustion(&enfile), Some(Exhaustion::System));
        assert_eq!(is_exhaustion(&refused), None);
        assert!(Exhaustion::Process.fix().contains("--procs"));
    }
}
