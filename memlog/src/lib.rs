//! `memlog`: samples the memory of server processes (RSS, PSS, VSZ), the
//! ESTABLISHED connections on their port, and the kernel's memory (slab,
//! TCP pages, MemAvailable) into a CSV of [`MemSample`] rows, one per
//! interval, as Part 2's `mochimem.log` one-liner did, but exact across
//! many worker processes and cheap at a million sockets.
//!
//! - [`targets`]: which processes (`--pid`, or `--pgrep` re-resolved every
//!   sample).
//! - [`proc`]: one process's memory from /proc.
//! - [`sockdiag`]: the connection count through netlink sock_diag, with
//!   the kernel-side filters in [`bytecode`]; [`procnet`]: the
//!   /proc/net/tcp fallback.
//! - [`kernel`]: /proc/meminfo and /proc/net/sockstat.
//! - [`sampler`]: one sample from all of the above.
//! - [`output`]: CSV, the seed line, the live line.
//!
//! Samples are taken on a fixed schedule (start + k x interval); a sample
//! that overruns skips the slots it missed rather than drifting.

mod bytecode;
mod kernel;
mod output;
mod proc;
mod procnet;
mod sampler;
mod sockdiag;
mod targets;

pub use procnet::count_established;
pub use sampler::Sampler;
pub use sockdiag::SockDiag;
pub use targets::Targets;

use anyhow::{bail, Context};
use c1m_common::parse_duration;
use c1m_common::MemSample;
use c1m_common::{Repeat, StopSignals};
use clap::{ArgGroup, Parser, ValueEnum};
use output::{seed_line, CsvOut, LiveLine};
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Samples memory (RSS, PSS, kernel) and connection counts of server
/// processes into CSV.
///
/// One row per interval: RSS, PSS and VSZ summed over the target processes,
/// how many there are, ESTABLISHED TCP connections the server accepted on
/// --port (IPv4 and IPv6, counted through netlink sock_diag), and the kernel's Slab, TCP buffer
/// memory and MemAvailable. Ends after --duration, or on Ctrl-C/SIGTERM
/// once the current sample is written.
#[derive(Debug, Parser)]
#[command(name = "memlog", version)]
#[command(group(ArgGroup::new("target").required(true).args(["pid", "pgrep"])))]
pub struct Args {
    /// Process ids to measure (`--pid 1 2` or `--pid 1 --pid 2`); each must
    /// exist at start. A process that exits is left out of later samples.
    #[arg(long, value_name = "PID", num_args = 1..)]
    pub pid: Vec<u32>,

    /// Measure every process whose command line contains PATTERN (a fixed
    /// string, like `pgrep -f`), looked up again every sample; memlog and
    /// its parent processes never match.
    #[arg(long, value_name = "PATTERN")]
    pub pgrep: Option<String>,

    /// The server's listening port: ESTABLISHED sockets accepted on it are
    /// counted (local port PORT on an address a listener on PORT uses).
    #[arg(long, default_value_t = 8000, value_parser = clap::value_parser!(u16).range(1..))]
    pub port: u16,

    /// Time between samples (`1s`, `500ms`, `1m`; at most `24h`). Counting ~1M connections
    /// costs ~1 s of CPU on a small VM: use 5s or more at that scale.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub interval: Duration,

    /// CSV file to write (created or truncated; flushed every sample).
    #[arg(long, default_value = "mem.csv")]
    pub out: PathBuf,

    /// Stop by itself after this long (`10m`, `24h`); samples are taken at
    /// 0, interval, 2 x interval, ... up to it. Default: until Ctrl-C.
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,

    /// `seed` also prints Part 2's mochimem.log line per sample on stdout:
    /// date, epoch, RSS KB, connections, tab-separated.
    #[arg(long, value_enum, default_value_t = Format::Csv)]
    pub format: Format,
}

/// What goes to stdout besides the CSV file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// The CSV file only.
    Csv,
    /// The CSV file, and `date<TAB>epoch<TAB>rss_kb<TAB>conns` on stdout.
    Seed,
}

/// The longest --interval: a day, which keeps the schedule's arithmetic
/// (instants, offsets) far from overflowing.
const MAX_INTERVAL: Duration = Duration::from_secs(24 * 3600);

/// Runs memlog until --duration, SIGINT or SIGTERM. Errors (a missing
/// --pid, an unwritable --out, /proc failing) are for exit code 2.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.interval.is_zero() {
        bail!("--interval must be more than zero (for example 1s or 500ms)");
    }
    if args.interval > MAX_INTERVAL {
        bail!(
            "--interval {:?} is over a day: sample at least daily (--interval 24h)",
            args.interval
        );
    }
    let targets = match &args.pgrep {
        Some(pattern) => Targets::pattern(pattern)?,
        None => Targets::pids(&args.pid)?,
    };
    let mut csv = CsvOut::create(&args.out)?;
    let stop = StopSignals::install(&[libc::SIGINT, libc::SIGTERM], Repeat::Ignore)
        .context("installing the SIGINT/SIGTERM handlers")?;
    let which = match &args.pgrep {
        Some(pattern) => format!("processes matching {pattern:?}"),
        None => {
            let pids: Vec<String> = args.pid.iter().map(u32::to_string).collect();
            format!("pid {}", pids.join(" "))
        }
    };
    let mut sampler = Sampler::new(targets, args.port);
    // One line for logs and people: what is measured, how, and where to.
    eprintln!(
        "memlog: sampling {which} and ESTABLISHED connections on :{} ({}) every {} ms into {}",
        args.port,
        if sampler.uses_netlink() {
            "netlink sock_diag"
        } else {
            "/proc/net/tcp"
        },
        args.interval.as_millis(),
        args.out.display()
    );
    let mut live = LiveLine::new();
    let started = sampler.started();
    let mut slot = 0u128;
    let mut warned_slow = false;
    loop {
        let sample_started = Instant::now();
        let sample = sampler.sample()?;
        let took = sample_started.elapsed();
        live.erase();
        if took > args.interval / 2 && !std::mem::replace(&mut warned_slow, true) {
            // At ~10^6 sockets the kernel's walk for the connection count
            // costs hundreds of ms (see benches/sample_cost.sh).
            eprintln!(
                "memlog: one sample took {} ms, over half the {} ms interval \
                 ({} connections counted); use a longer --interval",
                took.as_millis(),
                args.interval.as_millis(),
                sample.conns
            );
        }
        csv.write(&sample)?;
        if args.format == Format::Seed && !print_seed(&sample)? {
            break; // stdout closed (`memlog ... | head`): nobody is reading
        }
        live.show(&sample);
        // The next slot still ahead; slots missed by a slow sample are skipped.
        let since_start = started.elapsed();
        let interval_ns = args.interval.as_nanos();
        slot = slot.max(since_start.as_nanos() / interval_ns) + 1;
        // u64 nanoseconds last 584 years: far past any --duration.
        let offset = Duration::from_nanos(u64::try_from(slot * interval_ns).unwrap_or(u64::MAX));
        if args.duration.is_some_and(|d| offset > d) {
            break;
        }
        if stop.wait_until(started + offset).is_some() {
            break;
        }
    }
    live.finish();
    Ok(ExitCode::SUCCESS)
}

/// Prints the seed line; false when stdout is a closed pipe.
fn print_seed(sample: &MemSample) -> anyhow::Result<bool> {
    let mut out = io::stdout().lock();
    match writeln!(out, "{}", seed_line(sample)).and_then(|()| out.flush()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e).context("writing to stdout"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn args_are_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn parses_a_realistic_command_line() {
        let args = Args::try_parse_from([
            "memlog",
            "--pgrep",
            "comet-server",
            "--port",
            "8000",
            "--interval",
            "1s",
            "--out",
            "mem.csv",
            "--duration",
            "10m",
            "--format",
            "seed",
        ])
        .unwrap();
        assert_eq!(args.pgrep.as_deref(), Some("comet-server"));
        assert_eq!(args.interval, Duration::from_secs(1));
        assert_eq!(args.duration, Some(Duration::from_secs(600)));
        assert_eq!(args.format, Format::Seed);

        let pids = Args::try_parse_from(["memlog", "--pid", "10", "11", "--pid", "12"]).unwrap();
        assert_eq!(pids.pid, vec![10, 11, 12]);
        assert_eq!(pids.port, 8000);
        assert_eq!(pids.out, PathBuf::from("mem.csv"));
    }

    #[test]
    fn refuses_missing_or_conflicting_targets() {
        assert!(Args::try_parse_from(["memlog"]).is_err());
        assert!(Args::try_parse_from(["memlog", "--pid", "1", "--pgrep", "x"]).is_err());
        assert!(Args::try_parse_from(["memlog", "--pid", "1", "--port", "0"]).is_err());
        assert!(Args::try_parse_from(["memlog", "--pid", "1", "--interval", "x"]).is_err());
        // Refused before any file or process is touched.
        for (interval, says) in [("0s", "more than zero"), ("2d", "over a day")] {
            let args =
                Args::try_parse_from(["memlog", "--pid", "1", "--interval", interval]).unwrap();
            let err = run(args).unwrap_err().to_string();
            assert!(err.contains(says), "{interval}: {err}");
        }
    }
}
