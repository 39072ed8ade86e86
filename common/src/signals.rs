//! The stop signals (SIGINT, SIGTERM, ...) every tool ends cleanly on: one
//! handler, a flag the tool's loop polls, and a sleep the signal cuts short.
//!
//! The handler does only async-signal-safe work: it records the first
//! signal in an atomic, writes a byte to a self-pipe (so a waiter in
//! `poll(2)` wakes even if the signal came just before it went to sleep:
//! no lost wake-up), and on a repeated SIGINT either does nothing or calls
//! `_exit`, as the tool chose. Handlers use `SA_RESTART`; both pipe ends are
//! close-on-exec, so child processes inherit neither the pipe nor the
//! handler (exec resets caught signals to their default).
//!
//! Cost at rest: two descriptors and three atomics per process.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::raw::c_int;
use std::sync::atomic::{AtomicI32, Ordering::SeqCst};
use std::sync::OnceLock;
use std::time::Instant;

/// What a stop signal does once one has already been caught.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeat {
    /// Nothing: the clean stop under way finishes.
    Ignore,
    /// Exit at once with this code (`_exit`) on a second SIGINT: the user
    /// at the keyboard does not want to wait for the clean stop. A repeated
    /// SIGTERM (or any other signal) is ignored: repeats of those come from
    /// machinery, not impatience. `PR_SET_PDEATHSIG` fires once for each
    /// thread of a dying multi-threaded parent (the child is reparented to
    /// its sibling threads first), so a runner that is SIGKILLed sends its
    /// children two or more SIGTERMs within microseconds; exiting on the
    /// second lost floodtest's summary.
    Exit(i32),
}

/// The first stop signal caught; 0 while none.
static CAUGHT: AtomicI32 = AtomicI32::new(0);
/// The exit code for a repeated signal; 0 to ignore it.
static REPEAT_EXIT: AtomicI32 = AtomicI32::new(0);
/// The self-pipe's write end; -1 until installed.
static WAKE_FD: AtomicI32 = AtomicI32::new(-1);
/// The self-pipe (read end, write end), created once per process.
static PIPE: OnceLock<(OwnedFd, OwnedFd)> = OnceLock::new();

extern "C" fn on_signal(signal: c_int) {
    if CAUGHT.compare_exchange(0, signal, SeqCst, SeqCst).is_err() {
        let code = REPEAT_EXIT.load(SeqCst);
        if code != 0 && signal == libc::SIGINT {
            // SAFETY: _exit is async-signal-safe and touches no Rust state.
            unsafe { libc::_exit(code) };
        }
    }
    let fd = WAKE_FD.load(SeqCst);
    if fd >= 0 {
        // SAFETY: write(2) is async-signal-safe; the one-byte buffer lives
        // for the call, and a full pipe (O_NONBLOCK) just fails, harmlessly:
        // a byte is already waiting.
        unsafe { libc::write(fd, [1u8].as_ptr().cast(), 1) };
    }
}

/// Proof that the stop signals are caught in this process; its methods
/// read what the handler recorded.
#[derive(Debug, Clone, Copy)]
pub struct StopSignals {
    _installed: (),
}

impl StopSignals {
    /// Catches `signals` from now on; a repeated one does what `repeat`
    /// says. Installing again (another set, another `repeat`) adds to the
    /// first; what was caught stays caught.
    pub fn install(signals: &[c_int], repeat: Repeat) -> io::Result<Self> {
        let (_, write) = match PIPE.get() {
            Some(pipe) => pipe,
            None => {
                let pipe = self_pipe()?;
                // A racing install may have won; either pipe works.
                PIPE.get_or_init(|| pipe)
            }
        };
        WAKE_FD.store(write.as_raw_fd(), SeqCst);
        REPEAT_EXIT.store(
            match repeat {
                Repeat::Ignore => 0,
                Repeat::Exit(code) => code,
            },
            SeqCst,
        );
        for &signal in signals {
            // SAFETY: `on_signal` is async-signal-safe (see the module doc);
            // the sigaction struct is zeroed, then its mask initialised.
            let rc = unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = on_signal as extern "C" fn(c_int) as libc::sighandler_t;
                action.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&mut action.sa_mask);
                libc::sigaction(signal, &action, std::ptr::null_mut())
            };
            if rc != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(StopSignals { _installed: () })
    }

    /// The first stop signal caught so far, if any.
    pub fn caught(&self) -> Option<c_int> {
        match CAUGHT.load(SeqCst) {
            0 => None,
            signal => Some(signal),
        }
    }

    /// Sleeps until `deadline` or a stop signal, whichever comes first
    /// (at once if one was already caught); returns the signal, if any.
    pub fn wait_until(&self, deadline: Instant) -> Option<c_int> {
        self.sleep(Some(deadline))
    }

    /// Sleeps until a stop signal is caught; returns it.
    pub fn wait(&self) -> c_int {
        loop {
            if let Some(signal) = self.sleep(None) {
                return signal;
            }
        }
    }

    fn sleep(&self, deadline: Option<Instant>) -> Option<c_int> {
        let read = PIPE.get().map(|(read, _)| read.as_raw_fd())?;
        loop {
            if let Some(signal) = self.caught() {
                return Some(signal);
            }
            let timeout_ms = match deadline {
                None => -1,
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return None;
                    }
                    // Rounded up, so the wait never ends before the deadline.
                    c_int::try_from(left.as_micros().div_ceil(1000)).unwrap_or(c_int::MAX)
                }
            };
            let mut fd = libc::pollfd {
                fd: read,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd for the duration of the call. The
            // byte stays unread: once a signal is caught every later wait
            // returns at once anyway. EINTR (a signal) loops to the check.
            unsafe { libc::poll(&mut fd, 1, timeout_ms) };
        }
    }
}

/// A close-on-exec pipe whose write end never blocks the handler.
fn self_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    use std::os::fd::FromRawFd;
    let mut fds = [0 as c_int; 2];
    // SAFETY: pipe2 fills the two-element array it is given.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors are fresh and owned by nothing else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    // One test: the caught signal is process-wide state.
    #[test]
    fn a_signal_ends_the_wait_and_stays_caught() {
        let stop = StopSignals::install(&[libc::SIGUSR1], Repeat::Ignore).unwrap();
        assert_eq!(stop.caught(), None);
        let started = Instant::now();
        assert_eq!(stop.wait_until(started + Duration::from_millis(30)), None);
        assert!(started.elapsed() >= Duration::from_millis(30));

        let waiter = std::thread::spawn(move || stop.wait());
        // SAFETY: raise(3) on a signal this process catches.
        assert_eq!(unsafe { libc::raise(libc::SIGUSR1) }, 0);
        assert_eq!(waiter.join().unwrap(), libc::SIGUSR1);
        // A repeat is ignored, and the first signal stays the answer.
        // SAFETY: as above.
        assert_eq!(unsafe { libc::raise(libc::SIGUSR1) }, 0);
        assert_eq!(stop.caught(), Some(libc::SIGUSR1));
        let far = Instant::now() + Duration::from_secs(60);
        assert_eq!(stop.wait_until(far), Some(libc::SIGUSR1));
    }
}
