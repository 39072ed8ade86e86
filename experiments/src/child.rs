//! One supervised child process: started in its own process group with a
//! parent-death signal, its stdout and stderr written to files in the
//! output folder, and stopped with SIGTERM then SIGKILL.
//!
//! Why both guards:
//! - Its own process group keeps a terminal's Ctrl-C away from the child
//!   (the runner decides the order things stop in), and lets the runner
//!   signal the child together with any processes it started itself
//!   (`floodtest --procs` workers) with one `killpg`.
//! - `PR_SET_PDEATHSIG(SIGTERM)` ends the child if the runner dies without
//!   a chance to clean up (SIGKILL, a crash). The kernel sends it when the
//!   *thread* that forked exits, so children are spawned from the main
//!   thread only. SIGTERM rather than SIGKILL so the tools still flush
//!   their CSV and summary.
//!
//! Exit is detected with `waitid(WNOWAIT)`, which leaves the child a zombie:
//! while it is one its pid (the group id) cannot be reused, so a last
//! SIGKILL to the group for stragglers cannot hit an unrelated process. Only
//! then is it reaped.

use anyhow::Context;
use std::fs::File;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How often a waiting loop looks at its children again.
pub(crate) const POLL: Duration = Duration::from_millis(25);

/// A running (or finished) child process.
#[derive(Debug)]
pub(crate) struct Child {
    name: String,
    child: std::process::Child,
    status: Option<ExitStatus>,
    /// The command line, for the report and error messages.
    pub(crate) command: String,
    pub(crate) stdout: PathBuf,
    pub(crate) stderr: PathBuf,
}

impl Child {
    /// Starts `program args`, writing its output to `<dir>/<name>.stdout`
    /// and `<dir>/<name>.stderr`.
    pub(crate) fn spawn(
        name: &str,
        program: &Path,
        args: &[String],
        dir: &Path,
    ) -> anyhow::Result<Child> {
        let stdout = dir.join(format!("{name}.stdout"));
        let stderr = dir.join(format!("{name}.stderr"));
        let out =
            File::create(&stdout).with_context(|| format!("creating {}", stdout.display()))?;
        let err =
            File::create(&stderr).with_context(|| format!("creating {}", stderr.display()))?;
        let parent = std::process::id() as libc::pid_t;
        let mut command = Command::new(program);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        // SAFETY: only async-signal-safe calls (prctl, getppid, _exit)
        // between fork and exec.
        unsafe {
            command.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The runner died before prctl took effect: no signal
                // will come, so leave now.
                if libc::getppid() != parent {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
        let child = command
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?;
        Ok(Child {
            name: name.to_owned(),
            child,
            status: None,
            command: shell_words(program, args),
            stdout,
            stderr,
        })
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status if the child has ended (reaping it), `None` while it
    /// runs.
    pub(crate) fn poll(&mut self) -> anyhow::Result<Option<ExitStatus>> {
        if self.status.is_some() {
            return Ok(self.status);
        }
        // SAFETY: waitid on our own child with a zeroed siginfo out-param.
        let exited = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let rc = libc::waitid(
                libc::P_PID,
                self.child.id(),
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            );
            if rc != 0 {
                return Err(std::io::Error::last_os_error())
                    .with_context(|| format!("waiting for {}", self.name));
            }
            info.si_pid() != 0
        };
        if !exited {
            return Ok(None);
        }
        // Anything the child left in its group goes with it.
        self.signal_group(libc::SIGKILL);
        let status = self
            .child
            .wait()
            .with_context(|| format!("reaping {}", self.name))?;
        self.status = Some(status);
        Ok(Some(status))
    }

    /// Stops the child's process group: SIGTERM, then SIGKILL if it has not
    /// ended within `grace`. Returns how it ended.
    pub(crate) fn stop(&mut self, grace: Duration) -> anyhow::Result<ExitStatus> {
        if let Some(status) = self.poll()? {
            return Ok(status);
        }
        self.signal_group(libc::SIGTERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Some(status) = self.poll()? {
                return Ok(status);
            }
            std::thread::sleep(POLL);
        }
        self.signal_group(libc::SIGKILL);
        loop {
            if let Some(status) = self.poll()? {
                return Ok(status);
            }
            std::thread::sleep(POLL);
        }
    }

    fn signal_group(&self, signal: i32) {
        // ESRCH (the group is already gone) is the normal case at the end.
        // SAFETY: killpg has no memory-safety preconditions.
        unsafe {
            libc::killpg(self.child.id() as libc::pid_t, signal);
        }
    }
}

/// `status` in words: "exit 0", "exit 2", "killed by SIGKILL".
pub(crate) fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit {code}"),
        (None, Some(signal)) => format!("killed by {}", crate::signals::name(signal)),
        (None, None) => "ended".into(),
    }
}

/// The command line as a person would type it, for the report.
pub(crate) fn shell_words(program: &Path, args: &[String]) -> String {
    let name = program
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut words = vec![name];
    for a in args {
        let plain = !a.is_empty()
            && a.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_./:=,@%+".contains(&b));
        words.push(if plain { a.clone() } else { format!("'{a}'") });
    }
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(dir: &Path, script: &str) -> Child {
        Child::spawn(
            "sh",
            Path::new("/bin/sh"),
            &["-c".to_owned(), script.to_owned()],
            dir,
        )
        .unwrap()
    }

    #[test]
    fn captures_output_and_exit_status() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = sh(dir.path(), "echo out; echo err >&2; exit 3");
        let status = loop {
            if let Some(s) = c.poll().unwrap() {
                break s;
            }
            std::thread::sleep(POLL);
        };
        assert_eq!(describe(status), "exit 3");
        assert_eq!(std::fs::read_to_string(&c.stdout).unwrap(), "out\n");
        assert_eq!(std::fs::read_to_string(&c.stderr).unwrap(), "err\n");
    }

    #[test]
    fn stop_reaches_the_whole_group_and_escalates() {
        let dir = tempfile::tempdir().unwrap();
        // The shell ignores SIGTERM and has a grandchild: only SIGKILL to
        // the group ends both.
        let mut c = sh(dir.path(), "trap '' TERM; sleep 30 & echo $! ; wait");
        let pgid = c.pid();
        let grandchild: u32 = loop {
            let text = std::fs::read_to_string(&c.stdout).unwrap();
            if let Some(line) = text.lines().next() {
                break line.trim().parse().unwrap();
            }
            std::thread::sleep(POLL);
        };
        let status = c.stop(Duration::from_millis(200)).unwrap();
        assert_eq!(describe(status), "killed by SIGKILL");
        // The grandchild is not ours to reap; it must be gone or a zombie
        // of init within a moment.
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && alive(grandchild) {
            std::thread::sleep(POLL);
        }
        assert!(
            !alive(grandchild),
            "grandchild {grandchild} of group {pgid} survived"
        );
    }

    fn alive(pid: u32) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(stat) => !stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z'),
            Err(_) => false,
        }
    }

    #[test]
    fn quotes_words_that_need_it() {
        let args = [
            "--url".to_owned(),
            "http://127.0.0.1:80/test/{id}".to_owned(),
        ];
        assert_eq!(
            shell_words(Path::new("/x/floodtest"), &args),
            "floodtest --url 'http://127.0.0.1:80/test/{id}'"
        );
    }
}
