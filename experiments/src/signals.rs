//! Signal names for messages ("interrupted by SIGINT", "killed by
//! SIGKILL"). Ctrl-C, SIGTERM and SIGHUP to the runner are caught by
//! [`c1m_common::StopSignals`] and polled by the supervision loop, so the
//! runner stops its children in order and still writes the report instead
//! of dying with them running.

/// The conventional name of a signal number, for messages.
pub(crate) fn name(signal: i32) -> String {
    match signal {
        libc::SIGINT => "SIGINT".into(),
        libc::SIGTERM => "SIGTERM".into(),
        libc::SIGHUP => "SIGHUP".into(),
        libc::SIGKILL => "SIGKILL".into(),
        libc::SIGSEGV => "SIGSEGV".into(),
        libc::SIGABRT => "SIGABRT".into(),
        s => format!("signal {s}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_signals() {
        assert_eq!(name(libc::SIGINT), "SIGINT");
        assert_eq!(name(libc::SIGKILL), "SIGKILL");
        assert_eq!(name(64), "signal 64");
    }
}
