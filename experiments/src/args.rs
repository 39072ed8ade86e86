//! The command lines: `experiment PRESET [options]` runs one server,
//! `experiment compare PRESET --targets ...` several in turn. Doc comments
//! are the `--help` text; every value that feeds arithmetic is bounded
//! here, at parse time.

use crate::target::{External, TargetKind};
use c1m_common::parse_count;
use clap::Parser;
use std::path::PathBuf;
use std::time::Duration;

/// Runs a seed experiment end to end (limits check, the server, memlog,
/// floodtest, msggen, plots) and writes report.md with its figures beside
/// the seed's.
///
/// Presets: part1 (10,000 connections, a chunk every 10 s, memory per
/// connection), part2 (10,000 connections, 1,000 msg/s to random ids, memory
/// over time), c10k (ramp to 10,000, then 16,666 msg/s, delivery latency).
/// part3 (1M and 16,666 msg/s to random ids) and icomet (ramp to 1M pausing
/// every 100K) run a group of worker processes (`comet-server --workers N`)
/// when one process cannot hold the connections.
///
/// `experiment compare PRESET --targets comet,nchan,pushpin` runs the preset
/// against each server in turn and writes one report side by side.
#[derive(Debug, Clone, Parser)]
#[command(name = "experiment", version)]
pub struct Args {
    /// The experiment: part1, part2, c10k, part3, icomet
    pub preset: String,
    /// What every run takes.
    #[command(flatten)]
    pub options: RunOptions,
    /// comet-server worker processes (`comet-server --workers N`: one front,
    /// N workers sharing the port, each id served by one of them) [default:
    /// as many as the connections need under RLIMIT_NOFILE; 1 runs a plain
    /// server]
    #[arg(long, value_parser = parse_count)]
    pub workers: Option<u64>,
    /// A NATS the user runs, nats://HOST:PORT[,...]: the server joins it
    /// (`comet-server --broker`), so the run's groups can span machines
    #[arg(long)]
    pub broker: Option<String>,
    /// The server to measure: comet (comet-server), nchan (nginx with
    /// nchan) or pushpin, started here on free loopback ports (nchan and
    /// pushpin from their Debian packages), or external (one you run:
    /// --subscribe-url, --publish-url, --server-pid or --pgrep)
    #[arg(long, value_enum, default_value_t = TargetKind::Comet)]
    pub target: TargetKind,
    /// Where an external server is.
    #[command(flatten)]
    pub external: External,
}

/// Runs one preset against several push servers in turn, on the same
/// machine, each in its own subfolder, and writes one report.md with the
/// figures side by side (and each one's ratio to comet-server's) and the
/// charts overlaid.
#[derive(Debug, Clone, Parser)]
#[command(name = "experiment compare", version)]
pub struct CompareArgs {
    /// The experiment: part1, part2, c10k, part3, icomet
    pub preset: String,
    /// The servers, in the order they run: comet, nchan, pushpin
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "comet,nchan,pushpin"
    )]
    pub targets: Vec<TargetKind>,
    /// What every run takes.
    #[command(flatten)]
    pub options: RunOptions,
}

/// What every run takes, alone or in a comparison.
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct RunOptions {
    /// Multiplies the preset's connections and rates (0.1 runs a tenth)
    #[arg(long, default_value = "1", value_parser = parse_scale)]
    pub scale: f64,
    /// New connections per second while ramping up, at least 1 [default:
    /// the preset's, scaled]
    #[arg(long, value_parser = parse_rate)]
    pub rate: Option<u64>,
    /// Messages per second msggen sends while the connections are held
    /// (presets that send messages), 1 to 10M [default: the preset's,
    /// scaled]
    #[arg(long, value_parser = parse_msg_rate)]
    pub msg_rate: Option<u64>,
    /// How often msggen releases the messages due (its `--tick`), 10us to
    /// 1s: at 16,666 msg/s its 1 ms default sends them in bursts of ~17,
    /// which a server answers one after another, and the burst's wait is
    /// most of the median delivery latency; a shorter tick spreads them
    /// [default: msggen's, 1ms]
    #[arg(long, value_parser = parse_msg_tick)]
    pub msg_tick: Option<Duration>,
    /// How long to hold the load once every connection is open, e.g. 30s,
    /// 24h; 1s to 30 days [default: the preset's]
    #[arg(long, value_parser = parse_hold)]
    pub duration: Option<Duration>,
    /// Before starting, wait at most this long for the machine to settle
    /// (the build before the run done, no more runnable tasks than half the
    /// cores); 0s to 10m, 0s skips
    #[arg(long, default_value = "30s", value_parser = parse_settle)]
    pub settle: Duration,
    /// Output folder [default: results/<preset>-<UTC start time>]
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Folder holding comet-server, floodtest, msggen, memlog, plots and
    /// c1m-sysctl [default: the folder of this executable]
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
    /// Run the client side on floodtest agents (`floodtest agent --broker
    /// URL` on each client machine): how many, or their names (a,b,c);
    /// the run's floodtest becomes their controller (`floodtest --agents`)
    #[arg(long, value_name = "N|NAME,NAME", requires = "agents_broker")]
    pub agents: Option<String>,
    /// The NATS the agents and their controller meet at (nats://HOST:PORT)
    #[arg(long, value_name = "URL", requires = "agents")]
    pub agents_broker: Option<String>,
}

fn parse_rate(s: &str) -> Result<u64, String> {
    // 0 would never open a connection; the flood would wait for ever.
    c1m_common::count_within(s, 1, 1_000_000_000)
}

fn parse_msg_rate(s: &str) -> Result<u64, String> {
    // 0 would be a hold with no messages: a preset without them says so.
    c1m_common::count_within(s, 1, 10_000_000)
}

fn parse_msg_tick(s: &str) -> Result<Duration, String> {
    // msggen refuses a tick over 1s; under ~10us its pacer only spins.
    c1m_common::duration_within(s, Duration::from_micros(10), Duration::from_secs(1))
}

fn parse_hold(s: &str) -> Result<Duration, String> {
    // Deadlines add the hold to Instants and other durations: a bound far
    // past any experiment keeps them from overflowing.
    c1m_common::duration_within(s, Duration::from_secs(1), MAX_HOLD)
}

fn parse_settle(s: &str) -> Result<Duration, String> {
    c1m_common::duration_within(s, Duration::ZERO, Duration::from_secs(600))
}

/// The longest hold: a month (Part 2 ran for a day).
const MAX_HOLD: Duration = Duration::from_secs(30 * 24 * 60 * 60);

fn parse_scale(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(f) if f.is_finite() && f > 0.0 => Ok(f),
        _ => Err(format!(
            "{s:?}: expected a positive number such as 0.1 or 2"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use std::path::Path;

    #[test]
    fn args_are_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn parses_a_realistic_command_line() {
        let args = Args::try_parse_from([
            "experiment",
            "part2",
            "--scale",
            "0.5",
            "--rate",
            "2k",
            "--duration",
            "24h",
            "--out",
            "results/day",
            "--bin-dir",
            "target/release",
        ])
        .unwrap();
        assert_eq!(args.preset, "part2");
        assert_eq!(args.options.scale, 0.5);
        assert_eq!(args.options.rate, Some(2_000));
        assert_eq!(args.options.duration, Some(Duration::from_secs(86_400)));
        assert_eq!(args.options.out.as_deref(), Some(Path::new("results/day")));
        assert!(Args::try_parse_from(["experiment", "c10k", "--scale", "0"]).is_err());
        assert!(Args::try_parse_from(["experiment"]).is_err());
        assert_eq!(args.options.settle, Duration::from_secs(30));
        let agents = Args::try_parse_from([
            "experiment",
            "part3",
            "--agents",
            "3",
            "--agents-broker",
            "nats://10.0.0.5:4222",
        ])
        .unwrap();
        assert_eq!(agents.options.agents.as_deref(), Some("3"));
        // The agents and their controller need a place to meet.
        let err = Args::try_parse_from(["experiment", "part3", "--agents", "3"]).unwrap_err();
        assert!(err.to_string().contains("--agents-broker"), "{err}");
    }

    #[test]
    fn values_that_feed_arithmetic_are_bounded_at_parse_time() {
        // --rate 0 went to floodtest, whose ramp then never ended; a huge
        // --duration overflowed the hold's deadline (hold + start-up time).
        let refusal = |flag: &str, value: &str| {
            Args::try_parse_from(["experiment", "c10k", flag, value])
                .unwrap_err()
                .to_string()
        };
        assert!(refusal("--rate", "0").contains("must be at least 1"));
        assert!(refusal("--msg-rate", "0").contains("must be at least 1"));
        assert!(refusal("--msg-rate", "20M").contains("must be at most"));
        assert!(refusal("--msg-tick", "2s").contains("must be at most"));
        assert!(refusal("--msg-tick", "1us").contains("at least 10us"));
        assert!(refusal("--duration", "18446744073709551615").contains("must be at most 720h"));
        assert!(refusal("--duration", "0s").contains("must be at least 1s"));
        assert!(refusal("--settle", "1h").contains("must be at most 600s"));
        let ok =
            Args::try_parse_from(["experiment", "part2", "--duration", "24h", "--settle", "0s"]);
        assert!(ok.is_ok());
    }

    #[test]
    fn parses_a_comparison_and_a_target() {
        let c = CompareArgs::try_parse_from([
            "experiment compare",
            "c10k",
            "--targets",
            "comet,nchan",
            "--scale",
            "0.1",
        ])
        .unwrap();
        assert_eq!(c.targets, [TargetKind::Comet, TargetKind::Nchan]);
        assert_eq!(c.options.scale, 0.1);
        CompareArgs::command().debug_assert();
        let a = Args::try_parse_from([
            "experiment",
            "c10k",
            "--target",
            "external",
            "--subscribe-url",
            "http://127.0.0.1:9/s/{id}",
            "--publish",
            "nchan",
            "--publish-url",
            "http://127.0.0.1:9",
            "--pgrep",
            "nginx",
        ])
        .unwrap();
        assert_eq!(a.target, TargetKind::External);
        assert_eq!(a.external.pgrep.as_deref(), Some("nginx"));
        assert!(Args::try_parse_from(["experiment", "c10k", "--target", "nginx"]).is_err());
    }
}
