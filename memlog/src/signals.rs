//! Sleeping between samples in a way SIGINT and SIGTERM end cleanly.
//!
//! Both signals are blocked on the sampling thread and collected with
//! `sigtimedwait`, which doubles as the sleep. A signal that arrives during
//! a sample stays pending until the sample is written, then ends the wait
//! at once: no handler, no flag, and no window in which a signal is lost
//! between checking a flag and going to sleep. The tool is single-threaded,
//! so no other thread can take the signal instead.

use std::io;
use std::time::{Duration, Instant};

/// SIGINT and SIGTERM, blocked on this thread for its lifetime.
///
/// They stay blocked after this is dropped: unblocking would deliver a
/// second Ctrl-C still pending and kill the process mid-exit, turning a
/// clean stop (exit 0) into a signal death.
pub struct StopSignals {
    set: libc::sigset_t,
}

impl StopSignals {
    /// Blocks SIGINT and SIGTERM on the calling thread.
    pub fn block() -> io::Result<Self> {
        // SAFETY: sigemptyset/sigaddset initialise `set` in place;
        // pthread_sigmask reads it; a null old-mask pointer is allowed.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGINT);
            libc::sigaddset(&mut set, libc::SIGTERM);
            let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            if rc != 0 {
                return Err(io::Error::from_raw_os_error(rc));
            }
            Ok(StopSignals { set })
        }
    }

    /// Sleeps until `deadline`. Returns true if SIGINT or SIGTERM arrived
    /// (before or during the wait): time to stop.
    pub fn wait_until(&self, deadline: Instant) -> bool {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let timeout = libc::timespec {
                tv_sec: left.as_secs() as libc::time_t,
                tv_nsec: left.subsec_nanos() as libc::c_long,
            };
            // SAFETY: `set` was initialised in `block`; `timeout` is valid;
            // a null siginfo pointer is allowed.
            let rc = unsafe { libc::sigtimedwait(&self.set, std::ptr::null_mut(), &timeout) };
            if rc > 0 {
                return true;
            }
            // EAGAIN: the timeout passed; EINTR: another signal woke us.
            if left == Duration::ZERO || Instant::now() >= deadline {
                return false;
            }
        }
    }
}
