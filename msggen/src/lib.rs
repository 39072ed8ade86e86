//! `msggen`: envelope-wrapped messages to random subscriber ids at a precise
//! rate, through any push server's publish API (comet-server's `POST /send`
//! batches by default; nchan, Pushpin, icomet, Centrifugo, Mercure, NATS,
//! Redis, or an HTTP template); and `msggen graph`, a deterministic
//! power-law friends graph.
//!
//! How a run fits together (each part has its own module):
//!
//! - [`schedule`]: the absolute schedule, message `k` due at `start + k/rate`;
//!   a pure function of elapsed time, so it cannot drift and tests drive it
//!   with a fake clock.
//! - [`ids`]: which id each message goes to (uniform or Zipf), and which
//!   sender owns an id.
//! - [`pacer`]: one OS thread that releases the messages now due (every
//!   `--tick`, 1 ms by default) to the senders' queues ([`queue`]).
//! - [`sender`]: each sender owns a disjoint set of ids (`(id - first) %
//!   senders`) and their sequence numbers, and keeps at most one request
//!   per id in flight, so one id's messages arrive in order on however
//!   many connections it opens. It stamps `sent_us` when it writes, and
//!   retries with backoff.
//! - [`publish`]: the publish APIs (what a request looks like for each
//!   server, what its answer says) and their connections.
//! - [`http`]: the HTTP/1.1 client connection (`c1m_http`), pipelined.
//! - [`failure`]: failure classes, and what a failed attempt said.
//! - [`stats`], [`report`]: counters by failure class, inter-send gaps, live
//!   progress, the CSV intervals and the JSON summary.
//! - [`mod@run`]: wires them together and turns the outcome into an exit code.
//! - [`graph`]: the friends graph (format in `FRIENDS.md`).

#![forbid(unsafe_code)]

mod failure;
mod graph;
mod http;
mod ids;
mod pacer;
mod publish;
mod queue;
mod report;
mod run;
mod schedule;
mod sender;
mod stats;

use c1m_common::{parse_count, parse_duration, IdRange};
use clap::{Args as ClapArgs, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

pub use ids::Dist;
pub use publish::{Kind, PublishArgs, PushpinFormat};
pub use schedule::Rate;

/// Sends envelope-wrapped messages to random subscriber ids at a precise rate
/// through a push server's publish API (comet-server's `POST /send` batches
/// by default), and generates friends graphs (`msggen graph`).
///
/// Every message is `[c1m <id> <generator> <seq> <sent_us> <len>|<payload>]`;
/// sender k of `--senders S` is generator `G*S + k` (G = --generator-id) and
/// owns the ids with `(id - first) % S == k`, so sequence numbers are
/// contiguous per (generator, id) in the order the server receives them.
/// Exit status: 0 when every message was accepted, 1 when the run finished
/// but some failed for good (after retries), 2 on an error.
#[derive(Debug, Parser)]
#[command(
    name = "msggen",
    version,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Args {
    /// The default command's flags (sending).
    #[command(flatten)]
    pub send: SendArgs,
    /// Another command instead of sending.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// msggen's commands besides sending.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Writes a deterministic social graph with a power-law degree
    /// distribution (one `user,friend` line per friendship; see FRIENDS.md).
    Graph(graph::GraphArgs),
}

/// What to send, where, and how fast.
#[derive(Debug, Clone, ClapArgs)]
pub struct SendArgs {
    /// Where to publish: the base URL of the publish API (comet-server's
    /// admin listener, where batches go to `<URL>/send`), `nats://host:port`,
    /// `redis://host:port`, or for `--publish http` the URL template. `-`
    /// writes comet batch lines to standard output instead (the summary
    /// then goes to standard error; the run stops when the reader closes
    /// the pipe).
    #[arg(long, required = true)]
    pub target: Option<String>,
    /// The publish API and what it needs.
    #[command(flatten)]
    pub publish: PublishArgs,
    /// Subscriber ids to send to, inclusive: `1-10000`, `1-1M`.
    #[arg(long, required = true)]
    pub ids: Option<IdRange>,
    /// Messages per second over the whole process (`16666`, `200k`, `0.5`),
    /// or `max` to send as fast as the target accepts.
    #[arg(long, required = true)]
    pub rate: Option<Rate>,
    /// Stop after this many messages (`1M`).
    #[arg(long, value_parser = parse_count)]
    pub count: Option<u64>,
    /// Stop scheduling after this long (`60s`, `10m`); with --count, whichever
    /// comes first.
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Generators, each owning `1/senders` of the ids and its own keep-alive
    /// connections.
    #[arg(long, default_value_t = 4)]
    pub senders: u32,
    /// Most connections open at once over all senders; each sender opens
    /// another when its messages have waited a `--tick` for one, so the
    /// pool grows to what the rate and the answer time need.
    #[arg(long, default_value_t = 256)]
    pub max_conns: u32,
    /// Requests written on a connection before reading their answers (HTTP
    /// pipelining, for servers that allow it such as nginx); 1: none.
    #[arg(long, default_value_t = 1)]
    pub pipeline: u32,
    /// End the run after this many failed attempts in a row over all
    /// senders (a wrong port, a server that is down), with the first
    /// failure and a hint; 0: never.
    #[arg(long, default_value_t = 20)]
    pub stop_after: u64,
    /// How ids are picked: `uniform`, or `zipf:S` (rank 1 = the first id is
    /// the most frequent, as in "a few active users and many idle ones").
    #[arg(long, default_value = "uniform")]
    pub dist: Dist,
    /// Payload bytes per message (printable ASCII), inside the envelope.
    #[arg(long, default_value_t = 32, value_parser = parse_count)]
    pub size: u64,
    /// First generator number G: sender k is generator `G*senders + k`, so
    /// several msggen processes with different G never share a generator.
    #[arg(long, default_value_t = 0)]
    pub generator_id: u64,
    /// Seed of the id sampler (default: from the clock).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Most messages in one batch (`comet`, `pushpin`, `nats`, `redis`).
    #[arg(long, default_value_t = 1000)]
    pub batch_max: u32,
    /// Most body bytes in one batch (the server answers 413 above its limit).
    #[arg(long, default_value = "256k", value_parser = parse_count)]
    pub batch_bytes: u64,
    /// Shortest interval between two releases of due messages, so high
    /// rates go out in batches; when 1/rate is longer, each message is
    /// released on its own at its due time.
    #[arg(long, default_value = "1ms", value_parser = parse_duration)]
    pub tick: Duration,
    /// Retries of a failed batch (reconnecting, backoff 50 ms doubling to 2 s)
    /// before its messages count as failed for good.
    #[arg(long, default_value_t = 5)]
    pub retries: u32,
    /// Limit on connecting and on each request's answer.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// The credential of the publish API: comet-server's bearer token (the
    /// same variable as its `--admin-token`), Centrifugo's API key
    /// (`X-API-Key`), a Mercure publisher JWT, a NATS token or a Redis
    /// password.
    #[arg(long, env = "COMET_ADMIN_TOKEN")]
    pub token: Option<String>,
    /// Interval of progress lines and CSV records.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub report_interval: Duration,
    /// Write one `MsggenInterval` record per report interval here.
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Write the JSON summary here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write `generator,id,last_seq` for every id sent to, so loss can be
    /// audited per (generator, id).
    #[arg(long)]
    pub last_seqs: Option<PathBuf>,
    /// No progress bar even on a terminal (plain lines instead).
    #[arg(long)]
    pub no_progress: bool,
}

/// Runs the tool and returns its exit code (errors are returned for `main`
/// to print).
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Some(Command::Graph(graph_args)) => graph::run(&graph_args),
        None => run::run(&args.send),
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
    fn parses_a_realistic_send_line() {
        let args = Args::try_parse_from([
            "msggen",
            "--target",
            "http://127.0.0.1:8001",
            "--ids",
            "1-1M",
            "--rate",
            "16666",
            "--duration",
            "10m",
            "--senders",
            "8",
            "--dist",
            "zipf:1.1",
            "--size",
            "64",
            "--generator-id",
            "3",
            "--csv",
            "msggen.csv",
            "--json",
            "msggen.json",
            "--report-interval",
            "1s",
        ])
        .unwrap();
        assert!(args.command.is_none());
        let s = args.send;
        assert_eq!(s.ids.unwrap().len(), 1_000_000);
        assert_eq!(s.rate, Some(Rate::PerSecond(16666.0)));
        assert_eq!(s.duration, Some(Duration::from_secs(600)));
        assert_eq!(s.dist, Dist::Zipf(1.1));
        assert_eq!((s.senders, s.size, s.generator_id), (8, 64, 3));
        assert_eq!(s.batch_bytes, 256_000);
    }

    #[test]
    fn parses_a_graph_line_without_send_flags() {
        let args = Args::try_parse_from([
            "msggen",
            "graph",
            "--users",
            "1M",
            "--avg-friends",
            "50",
            "--seed",
            "1",
            "--out",
            "friends.csv",
        ])
        .unwrap();
        match args.command {
            Some(Command::Graph(g)) => {
                assert_eq!((g.users, g.avg_friends, g.seed), (1_000_000, 50.0, 1));
            }
            None => panic!("graph subcommand not parsed"),
        }
    }

    #[test]
    fn send_needs_target_ids_and_rate() {
        assert!(Args::try_parse_from(["msggen", "--ids", "1-10", "--rate", "10"]).is_err());
    }
}
