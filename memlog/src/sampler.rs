//! One sample: resolve the target processes, sum their memory, count the
//! connections on the port, read the kernel figures, and return one
//! [`MemSample`].
//!
//! Cost per sample: the connection count dominates at scale (see
//! [`crate::sockdiag`]); the rest is a few small /proc reads per target
//! process plus, with `--pgrep`, one `cmdline` read per process on the
//! machine.

use crate::kernel::{self, KernelMem};
use crate::proc::read_mem;
use crate::procnet;
use crate::sockdiag::SockDiag;
use crate::targets::Targets;
use anyhow::Context;
use c1m_common::{unix_ms_now, MemSample};
use std::io;
use std::time::Instant;

/// How connections are counted.
pub(crate) enum ConnCounter {
    /// Netlink sock_diag: the kernel filters, we count headers.
    Netlink(SockDiag),
    /// /proc/net/tcp{,6}: where netlink is unavailable.
    ProcNet,
}

impl ConnCounter {
    /// Netlink if it answers a first request, else /proc (saying so once).
    pub(crate) fn open(port: u16, warn: &mut Warn) -> Self {
        let tried = SockDiag::open().and_then(|mut diag| {
            diag.count_established(port)?;
            Ok(diag)
        });
        match tried {
            Ok(diag) => ConnCounter::Netlink(diag),
            Err(err) => {
                warn.once_netlink(&err);
                ConnCounter::ProcNet
            }
        }
    }

    /// ESTABLISHED TCP sockets (IPv4 and IPv6) accepted on `port`. A
    /// netlink failure mid-run switches to /proc for good.
    pub(crate) fn count(&mut self, port: u16, warn: &mut Warn) -> io::Result<u64> {
        if let ConnCounter::Netlink(diag) = self {
            match diag.count_established(port) {
                Ok(n) => return Ok(n),
                Err(err) => {
                    warn.once_netlink(&err);
                    *self = ConnCounter::ProcNet;
                }
            }
        }
        procnet::count_established(port)
    }
}

/// Takes samples of one set of targets and one port.
pub struct Sampler {
    targets: Targets,
    port: u16,
    counter: ConnCounter,
    page_kb: u64,
    started: Instant,
    warn: Warn,
}

impl Sampler {
    /// Opens the connection counter; `elapsed_s` counts from here.
    pub fn new(targets: Targets, port: u16) -> Self {
        let mut warn = Warn::default();
        let counter = ConnCounter::open(port, &mut warn);
        Sampler {
            targets,
            port,
            counter,
            page_kb: kernel::page_kb(),
            started: Instant::now(),
            warn,
        }
    }

    /// When `elapsed_s` is zero: the schedule of samples counts from here.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Whether connections are counted through netlink (else /proc).
    pub fn uses_netlink(&self) -> bool {
        matches!(self.counter, ConnCounter::Netlink(_))
    }

    /// Takes one sample. Processes that vanish during it are left out;
    /// errors are only for /proc itself failing.
    pub fn sample(&mut self) -> anyhow::Result<MemSample> {
        let unix_ms = unix_ms_now();
        // Millisecond resolution, like unix_ms: a readable CSV column.
        let elapsed_s = self.started.elapsed().as_millis() as f64 / 1000.0;
        let pids = self.targets.resolve().context("listing target processes")?;
        let mut sample = MemSample {
            unix_ms,
            elapsed_s,
            rss_kb: 0,
            pss_kb: 0,
            vsz_kb: 0,
            procs: 0,
            conns: 0,
            slab_kb: 0,
            tcp_mem_kb: 0,
            mem_available_kb: 0,
        };
        for pid in pids {
            let Some(mem) = read_mem(pid).with_context(|| format!("reading /proc/{pid}"))? else {
                continue;
            };
            if !mem.pss_exact {
                self.warn.once_pss(pid);
            }
            sample.rss_kb += mem.rss_kb;
            sample.pss_kb += mem.pss_kb;
            sample.vsz_kb += mem.vsz_kb;
            sample.procs += 1;
        }
        if sample.procs == 0 {
            self.warn.once_no_procs(&self.targets);
        }
        sample.conns = self
            .counter
            .count(self.port, &mut self.warn)
            .context("counting connections")?;
        let KernelMem {
            slab_kb,
            tcp_mem_kb,
            mem_available_kb,
        } = kernel::read(self.page_kb).context("reading kernel memory")?;
        sample.slab_kb = slab_kb;
        sample.tcp_mem_kb = tcp_mem_kb;
        sample.mem_available_kb = mem_available_kb;
        Ok(sample)
    }
}

/// Things said once on stderr, however many samples hit them.
#[derive(Debug, Default)]
pub(crate) struct Warn {
    netlink: bool,
    pss: bool,
    no_procs: bool,
}

impl Warn {
    fn once_netlink(&mut self, err: &io::Error) {
        if !std::mem::replace(&mut self.netlink, true) {
            say(format_args!(
                "memlog: netlink sock_diag unavailable ({err}); counting connections from \
                 /proc/net/tcp and /proc/net/tcp6, which reads every socket's line each sample"
            ));
        }
    }

    /// A typo in --pgrep would otherwise show only as zeros in the CSV.
    fn once_no_procs(&mut self, targets: &Targets) {
        if std::mem::replace(&mut self.no_procs, true) {
            return;
        }
        match targets {
            Targets::Pattern { needle, .. } => say(format_args!(
                "memlog: no process matches {:?} (yet); memory is recorded as 0 until one does",
                String::from_utf8_lossy(needle)
            )),
            Targets::Pids(_) => say(format_args!(
                "memlog: every --pid has exited; memory is recorded as 0 from now on"
            )),
        }
    }

    fn once_pss(&mut self, pid: u32) {
        if !std::mem::replace(&mut self.pss, true) {
            say(format_args!(
                "memlog: cannot read /proc/{pid}/smaps_rollup (needs the target's user or root, \
                 kernel 4.14+); pss_kb is reported as rss_kb for such processes"
            ));
        }
    }
}

/// Prints a warning on its own line: on a terminal the live line may be
/// showing (it is erased only after the sample), so clear it first.
fn say(message: std::fmt::Arguments<'_>) {
    use std::io::{IsTerminal, Write};
    let mut err = io::stderr().lock();
    let clear = if err.is_terminal() { "\r\x1b[K" } else { "" };
    let _ = writeln!(err, "{clear}{message}");
}
