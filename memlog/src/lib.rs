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
//!   /proc/net/tcp fallback; [`server_stats`]: the server's own count
//!   (`--server-stats`), cheap at any scale, cross-checked by a socket
//!   count every `--count-every` samples.
//! - [`cpu`]: memlog's own CPU per sample.
//! - [`kernel`]: /proc/meminfo and /proc/net/sockstat.
//! - [`sampler`]: one sample from all of the above.
//! - [`output`]: CSV, the seed line, the live line.
//!
//! Samples are taken on a fixed schedule (start + k x interval); a sample
//! that overruns skips the slots it missed rather than drifting.

mod bytecode;
mod cpu;
mod kernel;
mod output;
mod proc;
mod procnet;
mod sampler;
mod server_stats;
mod sockdiag;
mod targets;

pub use procnet::count_established;
pub use sampler::Sampler;
pub use server_stats::StatsUrl;
pub use sockdiag::SockDiag;
pub use targets::Targets;

use anyhow::{bail, Context};
use c1m_common::MemSample;
use c1m_common::{count_within, parse_duration};
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
/// --port (IPv4 and IPv6, counted through netlink sock_diag, or the
/// server's own count with --server-stats), the kernel's Slab, TCP buffer
/// memory and MemAvailable, and memlog's own CPU. Ends after --duration, or
/// on Ctrl-C/SIGTERM once the current sample is written.
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
    /// costs ~1 s of CPU on a small VM: at that scale use --server-stats with
    /// --count-every 10, or 5s or more.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub interval: Duration,

    /// comet-server's admin `/stats` URL (`http://127.0.0.1:8001/stats`; a
    /// group's front sums its workers): each sample's `conns` is the
    /// server's own count, a request of ~0.1-0.5 ms, instead of counting
    /// the sockets (~1 us each). The sockets are still counted every
    /// --count-every samples to check it.
    #[arg(long, value_name = "URL", value_parser = StatsUrl::parse)]
    pub server_stats: Option<StatsUrl>,

    /// With --server-stats: count the sockets every Nth sample (and the
    /// first and the last) to cross-check the server's figure. 1 (the
    /// default) counts every sample.
    #[arg(long, value_name = "N", requires = "server_stats", value_parser = count_every)]
    pub count_every: Option<u64>,

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

/// `--count-every`: 1 to a million samples.
fn count_every(input: &str) -> Result<u64, String> {
    count_within(input, 1, 1_000_000)
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
    let counter = if sampler.uses_netlink() {
        "netlink sock_diag"
    } else {
        "/proc/net/tcp"
    };
    let count_every = args.count_every.unwrap_or(1);
    let conns = match args.server_stats.clone() {
        Some(url) => {
            let what = format!(
                "connections from {url}, ESTABLISHED ones on :{} counted ({counter}) every {} samples",
                args.port,
                count_every
            );
            sampler.read_server_stats(url, count_every)?;
            what
        }
        None => format!("ESTABLISHED connections on :{} ({counter})", args.port),
    };
    // One line for logs and people: what is measured, how, and where to.
    eprintln!(
        "memlog: sampling {which} and {conns} every {} ms into {}",
        args.interval.as_millis(),
        args.out.display()
    );
    let mut live = LiveLine::new();
    let started = sampler.started();
    let interval_ns = args.interval.as_nanos();
    let mut slot = 0u128;
    let mut warned_slow = false;
    let mut last_counted;
    loop {
        // The last slot of a --duration run counts the sockets, so the
        // run ends cross-checked (a slow sample can still skip past it:
        // then the sample after the loop does).
        let last = args
            .duration
            .is_some_and(|d| offset_of(slot + 1, interval_ns) > d);
        let sample_started = Instant::now();
        let sample = if last {
            sampler.sample_counted()?
        } else {
            sampler.sample()?
        };
        let took = sample_started.elapsed();
        live.erase();
        if took > args.interval / 2 && !std::mem::replace(&mut warned_slow, true) {
            warn_slow(&args, took, &sample);
        }
        last_counted = sample.counted_conns.is_some();
        csv.write(&sample)?;
        if args.format == Format::Seed && !print_seed(&sample)? {
            break; // stdout closed (`memlog ... | head`): nobody is reading
        }
        live.show(&sample);
        // The next slot still ahead; slots missed by a slow sample are skipped.
        let since_start = started.elapsed();
        slot = slot.max(since_start.as_nanos() / interval_ns) + 1;
        let offset = offset_of(slot, interval_ns);
        if args.duration.is_some_and(|d| offset > d) {
            break;
        }
        if stop.wait_until(started + offset).is_some() {
            break;
        }
    }
    if !last_counted {
        // Stopped by a signal (or a slow sample skipped the last slot)
        // between counts: one more sample, counted, ends the file.
        let sample = sampler.sample_counted()?;
        csv.write(&sample)?;
        if args.format == Format::Seed {
            print_seed(&sample)?;
        }
        live.show(&sample);
    }
    live.finish();
    Ok(ExitCode::SUCCESS)
}

/// When slot `slot` starts, from the first sample. u64 nanoseconds last 584
/// years: far past any --duration.
fn offset_of(slot: u128, interval_ns: u128) -> Duration {
    Duration::from_nanos(u64::try_from(slot * interval_ns).unwrap_or(u64::MAX))
}

/// Said once: a sample took over half the interval, so the schedule skips
/// the slots it overran.
fn warn_slow(args: &Args, took: Duration, sample: &MemSample) {
    // At ~10^6 sockets the kernel's walk for the connection count costs
    // hundreds of ms (see benches/sample_cost.sh).
    let fix = match (&args.server_stats, sample.counted_conns) {
        (Some(_), Some(_)) => {
            "slots it overran are skipped; a larger --count-every makes such \
                               samples rarer"
        }
        (Some(_), None) => "the server's /stats was slow to answer",
        (None, _) => "use a longer --interval, or --server-stats with --count-every",
    };
    eprintln!(
        "memlog: one sample took {} ms, over half the {} ms interval ({} connections{}); {fix}",
        took.as_millis(),
        args.interval.as_millis(),
        sample.conns,
        if sample.counted_conns.is_some() {
            " counted"
        } else {
            ""
        },
    );
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
        assert_eq!((pids.server_stats, pids.count_every), (None, None));

        let at_1m = Args::try_parse_from([
            "memlog",
            "--pid",
            "10",
            "--server-stats",
            "http://127.0.0.1:8001/stats",
            "--count-every",
            "10",
        ])
        .unwrap();
        let url = at_1m.server_stats.unwrap();
        assert_eq!(url.to_string(), "http://127.0.0.1:8001/stats");
        assert_eq!(at_1m.count_every, Some(10));
    }

    #[test]
    fn count_every_is_refused_without_server_stats() {
        let err = Args::try_parse_from(["memlog", "--pid", "1", "--count-every", "10"])
            .unwrap_err()
            .to_string();
        // clap's message names the missing flag: the fix.
        assert!(
            err.contains("required arguments were not provided"),
            "{err}"
        );
        assert!(err.contains("--server-stats <URL>"), "{err}");
        for bad in ["0", "x", "2000000"] {
            assert!(
                Args::try_parse_from([
                    "memlog",
                    "--pid",
                    "1",
                    "--server-stats",
                    "http://127.0.0.1:9/stats",
                    "--count-every",
                    bad
                ])
                .is_err(),
                "--count-every {bad}"
            );
        }
        let err = Args::try_parse_from(["memlog", "--pid", "1", "--server-stats", "127.0.0.1:9"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("expected comet-server's admin URL"), "{err}");
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
