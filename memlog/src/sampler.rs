//! One sample: resolve the target processes, sum their memory, take the
//! connection count, read the kernel figures, and return one
//! [`MemSample`].
//!
//! The connection count is the sockets counted through netlink, or, with
//! [`Sampler::read_server_stats`], the server's own `/stats` figure, with
//! the sockets still counted every Nth sample (and the first, and the
//! last) and checked against it.
//!
//! Cost per sample: a socket count dominates at scale (~1 us of CPU per
//! connection with both loopback ends here, see [`crate::sockdiag`]); a
//! `/stats` request is ~0.1-0.5 ms whatever the count; the rest is a few
//! small /proc reads per target process plus, with `--pgrep`, one
//! `cmdline` read per process on the machine.

use crate::cpu::CpuMeter;
use crate::kernel::{self, KernelMem};
use crate::proc::read_mem;
use crate::procnet;
use crate::server_stats::StatsUrl;
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

/// How far a socket count may be from the server's figure before memlog
/// says so: 1% of the server's count, plus this many for connections in
/// flight (in the listen backlog, not yet accepted; being handed between a
/// group's workers; closed by the client, not yet by the server).
const SLACK: u64 = 100;

/// Whether `counted` sockets agree with the server's count read just
/// before (`before`) and just after (`after`) counting them: at 1M a count
/// takes ~1 s, and a ramp adds thousands of connections meanwhile, so the
/// count is checked against the range the server went through.
fn counts_agree(counted: u64, before: u64, after: Option<u64>) -> bool {
    let after = after.unwrap_or(before);
    let (low, high) = (before.min(after), before.max(after));
    let tolerance = high / 100 + SLACK;
    counted.saturating_add(tolerance) >= low && counted <= high.saturating_add(tolerance)
}

/// The server's `/stats`, and how often the sockets are still counted.
struct ServerCount {
    url: StatsUrl,
    /// Count the sockets every this many samples (1: every sample).
    count_every: u64,
}

/// Takes samples of one set of targets and one port.
pub struct Sampler {
    targets: Targets,
    port: u16,
    counter: ConnCounter,
    server: Option<ServerCount>,
    /// Samples taken so far: which ones count the sockets.
    taken: u64,
    cpu: CpuMeter,
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
            server: None,
            taken: 0,
            cpu: CpuMeter::new(),
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

    /// Takes each sample's connection count from the server's `/stats`
    /// at `url`, and counts the sockets only every `count_every` samples
    /// (the first included; [`Sampler::sample_counted`] for the last),
    /// saying once when a count and the server's figure disagree. The
    /// server must answer now: a wrong URL is an error, not a column of
    /// fallbacks.
    pub fn read_server_stats(&mut self, url: StatsUrl, count_every: u64) -> anyhow::Result<()> {
        url.connections().with_context(|| {
            format!("--server-stats {url}: is comet-server's admin listening there?")
        })?;
        self.server = Some(ServerCount {
            url,
            count_every: count_every.max(1),
        });
        Ok(())
    }

    /// Whether the next [`Sampler::sample`] counts the sockets.
    pub fn counts_next(&self) -> bool {
        self.server
            .as_ref()
            .is_none_or(|s| self.taken % s.count_every == 0)
    }

    /// Takes one sample, counting the sockets when it is due. Processes
    /// that vanish during it are left out; errors are only for /proc
    /// itself failing.
    pub fn sample(&mut self) -> anyhow::Result<MemSample> {
        let count = self.counts_next();
        self.take(count)
    }

    /// Takes one sample that counts the sockets whatever the schedule: the
    /// last of a run, so it ends cross-checked.
    pub fn sample_counted(&mut self) -> anyhow::Result<MemSample> {
        self.take(true)
    }

    fn take(&mut self, count: bool) -> anyhow::Result<MemSample> {
        let unix_ms = unix_ms_now();
        // Millisecond resolution, like unix_ms: a readable CSV column.
        let elapsed_s = self.started.elapsed().as_millis() as f64 / 1000.0;
        let pids = self.targets.resolve().context("listing target processes")?;
        let mut sample = MemSample {
            unix_ms,
            elapsed_s,
            ..MemSample::default()
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
        self.count_conns(count, &mut sample)?;
        let KernelMem {
            slab_kb,
            tcp_mem_kb,
            mem_available_kb,
        } = kernel::read(self.page_kb).context("reading kernel memory")?;
        sample.slab_kb = slab_kb;
        sample.tcp_mem_kb = tcp_mem_kb;
        sample.mem_available_kb = mem_available_kb;
        self.taken += 1;
        sample.memlog_cpu_ms = self.cpu.since_last_ms();
        Ok(sample)
    }

    /// Fills `conns`, `server_conns` and `counted_conns`. A failed
    /// `/stats` request is said once, and that sample counts the sockets.
    fn count_conns(&mut self, count: bool, sample: &mut MemSample) -> anyhow::Result<()> {
        let ask = |server: &Option<ServerCount>, warn: &mut Warn| {
            let server = server.as_ref()?;
            server
                .url
                .connections()
                .map_err(|err| warn.once_stats(&err))
                .ok()
        };
        sample.server_conns = ask(&self.server, &mut self.warn);
        if count || sample.server_conns.is_none() {
            let counted = self
                .counter
                .count(self.port, &mut self.warn)
                .context("counting connections")?;
            sample.counted_conns = Some(counted);
            if let Some(before) = sample.server_conns {
                let after = ask(&self.server, &mut self.warn);
                if !counts_agree(counted, before, after) {
                    self.warn
                        .once_disagree(sample.elapsed_s, counted, before, after);
                }
            }
        }
        sample.conns = sample.server_conns.or(sample.counted_conns).unwrap_or(0);
        Ok(())
    }
}

/// Things said once on stderr, however many samples hit them.
#[derive(Debug, Default)]
pub(crate) struct Warn {
    netlink: bool,
    stats: bool,
    disagree: bool,
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

    fn once_stats(&mut self, err: &anyhow::Error) {
        if !std::mem::replace(&mut self.stats, true) {
            say(format_args!(
                "memlog: the server's /stats failed ({err:#}); such samples count the sockets \
                 instead (server_conns is empty there)"
            ));
        }
    }

    /// A count outside the server's figure by more than the tolerance:
    /// --port and --server-stats may name different servers, or the
    /// server miscounts.
    fn once_disagree(&mut self, at_s: f64, counted: u64, before: u64, after: Option<u64>) {
        if std::mem::replace(&mut self.disagree, true) {
            return;
        }
        let server = match after {
            Some(after) if after != before => format!("{before} before the count, {after} after"),
            _ => before.to_string(),
        };
        say(format_args!(
            "memlog: at {at_s:.1} s the sockets counted on the port ({counted}) and the server's \
             /stats ({server}) differ by more than 1% + {SLACK}; conns keeps the server's figure \
             (does --port name the server --server-stats asks?)"
        ));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_agree_within_1_percent_and_the_slack() {
        assert!(counts_agree(10_000, 10_000, Some(10_000)));
        // 1% + 100 either side of the server's range.
        assert!(counts_agree(10_200, 10_000, None));
        assert!(!counts_agree(10_201, 10_000, None));
        assert!(counts_agree(9_800, 10_000, None));
        assert!(!counts_agree(9_799, 10_000, None));
        assert!(!counts_agree(0, 150, None) && counts_agree(0, 100, None));
        // A ramp during a long count: anything the server went through.
        assert!(counts_agree(505_000, 500_000, Some(510_000)));
        assert!(counts_agree(505_000, 510_000, Some(500_000)));
        assert!(!counts_agree(530_000, 500_000, Some(510_000)));
        assert!(counts_agree(u64::MAX, u64::MAX, None));
    }
}
