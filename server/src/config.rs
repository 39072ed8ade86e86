//! Command-line arguments and the validated [`Config`] the server runs with.
//!
//! `Args` is what clap parses (its doc comments are the `--help` text);
//! [`Args::to_config`] checks the combination before anything is bound, so
//! an impossible configuration is reported with its fix before start-up.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use c1m_common::{parse_count, parse_duration};
use clap::Parser;

use crate::friends::FriendsGraph;
use crate::request::RequestLimits;
use crate::tls::TlsConfig;

pub use crate::dashboard::{Dashboard, DashboardMode};

/// Reference comet server: chunked, SSE and long-poll subscribers, a sharded
/// router and an admin API, lean at rest.
#[derive(Debug, Clone, Parser)]
#[command(name = "comet-server", version)]
pub struct Args {
    /// Subscriber address (`GET /test/{id}`, `/sse/{id}`, `/poll/{id}?seq=N`).
    #[arg(long, default_value = "0.0.0.0:8000")]
    pub listen: SocketAddr,

    /// Admin address (`POST /send`, `/send/{id}`, `GET /check/{id}`, `/stats`, `/metrics`).
    #[arg(long, default_value = "127.0.0.1:8001")]
    pub admin: SocketAddr,

    /// Bearer token the admin API requires (`Authorization: Bearer TOKEN`); none by default.
    #[arg(long, env = "COMET_ADMIN_TOKEN")]
    pub admin_token: Option<String>,

    /// Subscriber reactor threads (one mio event loop each); default: the number of cores.
    #[arg(long)]
    pub reactors: Option<usize>,

    /// Listen backlog of both listeners.
    #[arg(long, default_value_t = 4096)]
    pub backlog: i32,

    /// Set SO_REUSEPORT on the subscriber listener so several server processes share the port.
    #[arg(long)]
    pub reuse_port: bool,

    /// Largest subscriber id accepted; others get 400.
    #[arg(long, default_value = "18446744073709551615", value_parser = parse_count)]
    pub max_id: u64,

    /// Most subscriber connections held at once; above it a new one gets 503 and is closed.
    #[arg(long, default_value = "1M", value_parser = parse_count)]
    pub max_conns: u64,

    /// Most unsent bytes kept for one connection; a client that lets more pile up is closed
    /// (counted as a slow-consumer close). The admin refuses a message larger than this (413,
    /// or `rejected` in a batch): it would close every reader. At most 1G.
    #[arg(long, default_value = "64k", value_parser = parse_count)]
    pub max_pending: u64,

    /// Messages kept per id, so `/sse` with Last-Event-ID and `/poll?seq=` can replay a gap
    /// (older gaps get an explicit `lost` notice).
    ///
    /// With 0, a long-poll client loses what is sent between two of its polls: while the id has
    /// another connection the next poll says `lost A-B`; with none, those messages are dropped
    /// (counted in `dropped`) and the id's numbering starts again at 1, so the loss is silent.
    /// Long-poll clients that must not lose messages need --history.
    ///
    /// Cost: every id ever sent to keeps a copy of its last N messages while the process lives
    /// (bound the ids with --max-id).
    #[arg(long, default_value = "0", value_parser = parse_count)]
    pub history: u64,

    /// Part 1 mode: every /test and /sse connection receives `Chunk N for id X` at this interval
    /// (at most 24h).
    #[arg(long, value_parser = parse_duration)]
    pub heartbeat: Option<Duration>,

    /// Interval of the SSE keep-alive comment line (at most 24h).
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub sse_keepalive: Duration,

    /// A long-poll with nothing to deliver is answered empty after this long (at most 24h).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub poll_timeout: Duration,

    /// A request whose head is not complete after this long is closed (slowloris); so is an
    /// idle keep-alive connection (a long-poll client between polls, an admin client), and an
    /// admin body must arrive within it too; a subscriber has as long to take a last answer
    /// the socket could not take at once (else it is closed as a slow consumer). At most 24h.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub header_timeout: Duration,

    /// Largest admin request body; larger ones get 413. At most 1G.
    #[arg(long, default_value = "16M", value_parser = parse_count)]
    pub max_body: u64,

    /// Most admin connections served at once; another gets 503 and is closed. Each may buffer
    /// one body of up to --max-body, so this times --max-body bounds the admin's memory. At most
    /// 1M.
    #[arg(long, default_value = "256", value_parser = parse_count)]
    pub max_admin_conns: u64,

    /// Serve the subscriber listener over TLS with this certificate chain (PEM, leaf first):
    /// https:// for every transport, wss:// for /ws. Needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Friends graph to load before serving (the `user,friend` file `msggen graph` writes;
    /// msggen/FRIENDS.md): `POST /publish/{id}` then sends an event to every online friend of
    /// the id. A malformed file, or ids over --max-id, stop the server before it starts.
    #[arg(long, value_name = "FILE")]
    pub friends: Option<PathBuf>,

    /// Presence changes (`online <id>` / `offline <id>` lines) a `GET /presence` reader may
    /// fall behind by; past it the reader is closed (`presence_closes`), never waited for.
    /// Each queued line costs 16 bytes.
    #[arg(long, default_value = "16k", value_parser = parse_count)]
    pub presence_queue: u64,

    /// Most ids one stream may ask for (`/sse/1,2,3`); a request naming more gets 400. Each
    /// id past the first costs its router slot and 8 bytes in the connection's side allocation.
    #[arg(long, default_value = "100", value_parser = parse_count)]
    pub max_ids_per_conn: u64,

    /// Run a group on this machine: this process becomes its front (the one admin address, no
    /// subscriber connection) and starts N worker processes that share --listen with
    /// SO_REUSEPORT, each under its own descriptor limit. Each id has one owner worker (id % N);
    /// a worker that reads a request for an id it does not own hands the connection to the
    /// owner. `auto`: as many as --max-conns needs under RLIMIT_NOFILE.
    #[arg(long, value_parser = parse_workers)]
    pub workers: Option<Workers>,

    /// A group's front waits this long for a worker's answer (it may be waiting for its
    /// reactors to have room) before taking the worker as down: that worker's share of the
    /// request is counted `undeliverable` and the others' answered. At most 24h.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub worker_timeout: Duration,

    /// Join this group to others (on other machines) through NATS:
    /// nats://HOST:PORT[,HOST:PORT...]. A `POST /send` on any group reaches every group; its
    /// answer says `accepted`/`rejected` once NATS has the message, or 503 while NATS is away.
    #[arg(long, value_parser = parse_broker)]
    pub broker: Option<BrokerUrls>,

    /// Subject prefix on the broker: messages travel on `<prefix>.send`.
    #[arg(long, default_value = "c1m", value_parser = parse_prefix)]
    pub broker_prefix: String,

    /// Serve a live web page of the service (`GET /`): on the admin listener (`admin`, the
    /// default), or also on the subscriber listener (`public`). Nothing to install: the page is
    /// in the binary. Its stats stream follows the admin token (the page asks for it).
    #[arg(long, value_enum, num_args = 0..=1, default_missing_value = "admin")]
    pub dashboard: Option<DashboardMode>,

    /// (internal) The admin address of the group's front, which a worker's dashboard names.
    #[arg(long, hide = true)]
    pub dashboard_admin: Option<SocketAddr>,

    /// (internal) This process is worker INDEX of the group whose front has pid --group-id.
    #[arg(long, hide = true, requires = "group_id")]
    pub worker_index: Option<usize>,

    /// (internal) The front's pid, which names the group's private sockets.
    #[arg(long, hide = true)]
    pub group_id: Option<u32>,

    /// (internal) Marks this process's sequence numbers in broker mode (see `Config::seq_token`).
    #[arg(long, hide = true)]
    pub seq_token: Option<u32>,
}

/// How many workers `--workers` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workers {
    /// As many as `--max-conns` needs under RLIMIT_NOFILE.
    Auto,
    /// Exactly this many.
    Count(usize),
}

fn parse_workers(s: &str) -> Result<Workers, String> {
    if s == "auto" {
        return Ok(Workers::Auto);
    }
    match s.parse::<usize>() {
        Ok(n) if (1..=MAX_WORKERS).contains(&n) => Ok(Workers::Count(n)),
        _ => Err(format!(
            "expected `auto` or a count from 1 to {MAX_WORKERS}"
        )),
    }
}

/// Most workers in one group (each is a process; 1M connections need ~53 here).
pub(crate) const MAX_WORKERS: usize = 256;

/// The NATS servers of `--broker`, each `host:port` (the `nats://` scheme is optional).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrls(pub Vec<String>);

fn parse_broker(s: &str) -> Result<BrokerUrls, String> {
    let mut servers = Vec::new();
    for part in s.split(',') {
        let part = part.trim();
        let hostport = part.strip_prefix("nats://").unwrap_or(part);
        let valid = hostport.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
        });
        if !valid || hostport.contains('/') {
            return Err(format!(
                "{part:?}: expected nats://HOST:PORT, several separated by commas"
            ));
        }
        servers.push(format!("nats://{hostport}"));
    }
    Ok(BrokerUrls(servers))
}

fn parse_prefix(s: &str) -> Result<String, String> {
    let token = |t: &str| {
        !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
    };
    if s.split('.').all(token) {
        Ok(s.to_owned())
    } else {
        Err("expected NATS subject tokens of letters, digits, `-` or `_`, separated by dots".into())
    }
}

/// The abstract Unix socket name of worker `index`'s `what` (`handoff`,
/// `admin`) in the group whose front has pid `group`.
pub(crate) fn socket_name(group: u32, index: usize, what: &str) -> String {
    format!("c1m-{group}-{index}.{what}")
}

/// Where a worker sits in its group: every worker computes the same owner
/// for an id, so a connection moves at most once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Membership {
    /// This worker's index, 0..workers.
    pub index: usize,
    /// Workers in the group.
    pub workers: usize,
    /// The front's pid: names the group's abstract Unix sockets.
    pub group: u32,
}

impl Membership {
    /// The worker that serves `id`. `id % N` rather than a fixed shard
    /// count mapped onto workers: N is fixed for the group's life (a crashed
    /// worker comes back under its index), so nothing ever moves between
    /// owners, and `id % N` spreads consecutive ids evenly.
    pub fn owner(&self, id: u64) -> usize {
        (id % self.workers as u64) as usize
    }
}

/// What the server runs with; built from [`Args`] or directly by tests,
/// and checked ([`Config::check`]) either way.
#[derive(Debug, Clone)]
pub struct Config {
    /// Event-loop threads for subscriber connections (`--reactors`).
    pub reactors: usize,
    /// The admin API's bearer token; `None` leaves it open (`--admin-token`).
    pub admin_token: Option<String>,
    /// Largest subscriber id accepted (`--max-id`).
    pub max_id: u64,
    /// Subscriber connections held at once; more get 503 (`--max-conns`).
    pub max_conns: u64,
    /// Unsent bytes a connection may queue before it is closed as too slow
    /// (`--max-pending`).
    pub max_pending: usize,
    /// Messages kept per id for replay (`--history`).
    pub history: usize,
    /// Interval of the Part 1 heartbeat chunks on `/test` and `/sse` (`--heartbeat`).
    pub heartbeat: Option<Duration>,
    /// Interval of SSE keep-alive comments (`--sse-keepalive`).
    pub sse_keepalive: Duration,
    /// How long a long-poll waits before an empty answer (`--poll-timeout`).
    pub poll_timeout: Duration,
    /// Time allowed for a complete request head, and for a last answer to
    /// leave (`--header-timeout`).
    pub header_timeout: Duration,
    /// Largest admin request body (`--max-body`).
    pub max_body: usize,
    /// Admin connections served at once (`--max-admin-conns`).
    pub max_admin_conns: usize,
    /// TLS on the subscriber listener (`--tls-cert`, `--tls-key`).
    pub tls: Option<TlsConfig>,
    /// The friends graph events fan out over (`--friends`); `None`: `POST
    /// /publish` is refused.
    pub friends: Option<Arc<FriendsGraph>>,
    /// Changes a presence reader may have queued (`--presence-queue`).
    pub presence_queue: usize,
    /// Ids one stream may ask for (`--max-ids-per-conn`).
    pub max_ids_per_conn: usize,
    /// Set in a worker of a group (`--workers`): connections for ids another
    /// worker owns are handed to it.
    pub membership: Option<Membership>,
    /// In broker mode, a non-zero token this process puts in the high bits
    /// of every sequence number it gives out (see `router`), so a number
    /// from another group or an earlier run is never taken for one of ours.
    pub seq_token: u32,
    /// The live page (`--dashboard`): where it is served and the addresses
    /// it names (filled in once the listeners are bound).
    pub dashboard: Option<Dashboard>,
}

/// Why `--tls-cert` and `--workers` do not go together, and what to run
/// instead.
const TLS_IN_GROUP: &str = "--tls-cert with --workers: a TLS session cannot be handed to another \
     worker; run one TLS comet-server per process with --reuse-port and --broker, or terminate \
     TLS in front of the group";

/// Largest request head a subscriber or admin client may send (431 above).
pub const MAX_HEAD: usize = 8 * 1024;

impl Default for Config {
    fn default() -> Self {
        Self {
            reactors: 2,
            admin_token: None,
            max_id: u64::MAX,
            max_conns: 1_000_000,
            max_pending: 64 * 1024,
            history: 0,
            heartbeat: None,
            sse_keepalive: Duration::from_secs(15),
            poll_timeout: Duration::from_secs(30),
            header_timeout: Duration::from_secs(10),
            max_body: 16 << 20,
            max_admin_conns: 256,
            tls: None,
            friends: None,
            presence_queue: 16 * 1024,
            max_ids_per_conn: 100,
            membership: None,
            seq_token: 0,
            dashboard: None,
        }
    }
}

/// Longest duration any setting takes. Deadlines and ticks are
/// `Instant + Duration`, which panics on overflow (and would stop a
/// reactor); a day is far beyond any useful timeout or interval.
const MAX_DURATION: Duration = Duration::from_secs(24 * 60 * 60);

/// Largest `--max-pending` and `--max-body` (1G): each sizes buffers (a
/// slow reader holds up to ~4x `--max-pending`, each admin connection one
/// body), and bodies are indexed with `usize` arithmetic.
const MAX_BYTES: usize = 1_000_000_000;

/// Largest `--max-admin-conns` (1M): more admin connections than
/// descriptors a process may hold is meaningless.
const MAX_ADMIN_CONNS: usize = 1_000_000;

/// Most ids per stream: ids of 1 to 7 digits and their commas fill an
/// 8 KiB request head at about this many.
const MAX_IDS_PER_CONN: usize = 4096;

/// Most changes a presence reader may queue (16 bytes each: 256 MiB).
const MAX_PRESENCE_QUEUE: usize = 1 << 24;

impl Args {
    /// Checks the arguments and turns them into a [`Config`].
    pub fn to_config(&self) -> anyhow::Result<Config> {
        if self.backlog < 1 {
            anyhow::bail!("--backlog {}: must be at least 1", self.backlog);
        }
        match self.worker_timeout {
            d if d.is_zero() => anyhow::bail!("--worker-timeout must be longer than 0s"),
            d if d > MAX_DURATION => anyhow::bail!("--worker-timeout {d:?}: at most 24h"),
            _ => {}
        }
        if self.tls_cert.is_some() && (self.workers.is_some() || self.worker_index.is_some()) {
            // A worker hands a connection over as its descriptor; a TLS
            // session's keys and sequence numbers live in this process's
            // memory and cannot follow it.
            anyhow::bail!(TLS_IN_GROUP);
        }
        let membership = match (self.worker_index, self.group_id, self.workers) {
            (Some(index), Some(group), Some(Workers::Count(workers))) if index < workers => {
                Some(Membership {
                    index,
                    workers,
                    group,
                })
            }
            (None, _, _) => None,
            _ => anyhow::bail!("--worker-index is internal: start a group with --workers N"),
        };
        let config = Config {
            reactors: match self.reactors {
                Some(n) => n,
                // A worker is one of many processes sharing the cores: one
                // reactor each, unless asked.
                None if self.worker_index.is_some() => 1,
                None => std::thread::available_parallelism().map_or(1, |n| n.get()),
            },
            admin_token: self.admin_token.clone().filter(|t| !t.is_empty()),
            max_id: self.max_id,
            max_conns: self.max_conns,
            max_pending: usize::try_from(self.max_pending).unwrap_or(usize::MAX),
            history: usize::try_from(self.history).unwrap_or(usize::MAX),
            heartbeat: self.heartbeat,
            sse_keepalive: self.sse_keepalive,
            poll_timeout: self.poll_timeout,
            header_timeout: self.header_timeout,
            max_body: usize::try_from(self.max_body).unwrap_or(usize::MAX),
            max_admin_conns: usize::try_from(self.max_admin_conns).unwrap_or(usize::MAX),
            tls: match (&self.tls_cert, &self.tls_key) {
                (Some(cert), Some(key)) => Some(TlsConfig::from_pem_files(cert, key)?),
                _ => None,
            },
            // Loaded by `run`, after every cheap check has passed.
            friends: None,
            presence_queue: usize::try_from(self.presence_queue).unwrap_or(usize::MAX),
            max_ids_per_conn: usize::try_from(self.max_ids_per_conn).unwrap_or(usize::MAX),
            membership,
            seq_token: self.seq_token.unwrap_or(0),
            dashboard: self.dashboard.map(|mode| Dashboard {
                mode,
                admin: self.dashboard_admin,
                subscriber: None,
            }),
        };
        config.check()?;
        Ok(config)
    }
}

impl Config {
    /// What a subscriber request may name.
    pub(crate) fn request_limits(&self) -> RequestLimits {
        RequestLimits {
            max_id: self.max_id,
            max_ids: self.max_ids_per_conn,
        }
    }

    /// Checks every value, so that an impossible one is reported with its
    /// fix before anything is bound and none can overflow later. Both
    /// [`Args::to_config`] and [`start`](crate::start) call it.
    pub fn check(&self) -> anyhow::Result<()> {
        // A worker's handoff would move the socket without its session.
        if self.tls.is_some() && self.membership.is_some() {
            anyhow::bail!(TLS_IN_GROUP);
        }
        match self.reactors {
            0 => anyhow::bail!("--reactors 0: at least one reactor is needed"),
            n if n > 1024 => anyhow::bail!("--reactors {n}: at most 1024"),
            _ => {}
        }
        if self.max_conns == 0 {
            anyhow::bail!("--max-conns 0: every subscriber would get 503; use at least 1");
        }
        if self.max_pending < 1024 {
            anyhow::bail!(
                "--max-pending {}: use at least 1k, or no message fits",
                self.max_pending
            );
        }
        if self.max_pending > MAX_BYTES {
            anyhow::bail!(
                "--max-pending {}: at most 1G (a slow reader may hold ~4x this)",
                self.max_pending
            );
        }
        if self.history > 1_000_000 {
            anyhow::bail!("--history {}: at most 1M messages per id", self.history);
        }
        let durations = [
            ("--sse-keepalive", Some(self.sse_keepalive)),
            ("--poll-timeout", Some(self.poll_timeout)),
            ("--header-timeout", Some(self.header_timeout)),
            ("--heartbeat", self.heartbeat),
        ];
        for (name, d) in durations {
            match d {
                Some(d) if d.is_zero() => anyhow::bail!("{name} must be longer than 0s"),
                Some(d) if d > MAX_DURATION => anyhow::bail!("{name} {d:?}: at most 24h"),
                _ => {}
            }
        }
        if self.max_admin_conns == 0 {
            anyhow::bail!("--max-admin-conns 0: every admin request would get 503; use at least 1");
        }
        if self.max_admin_conns > MAX_ADMIN_CONNS {
            anyhow::bail!("--max-admin-conns {}: at most 1M", self.max_admin_conns);
        }
        if self.max_body > MAX_BYTES {
            anyhow::bail!(
                "--max-body {}: at most 1G (send a larger batch as several)",
                self.max_body
            );
        }
        if !(1..=MAX_IDS_PER_CONN).contains(&self.max_ids_per_conn) {
            anyhow::bail!(
                "--max-ids-per-conn {}: use 1 to {MAX_IDS_PER_CONN} (a request head of 8 KiB holds no more)",
                self.max_ids_per_conn
            );
        }
        if !(1..=MAX_PRESENCE_QUEUE).contains(&self.presence_queue) {
            anyhow::bail!(
                "--presence-queue {}: use 1 to 16M changes",
                self.presence_queue
            );
        }
        Ok(())
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
            "comet-server",
            "--listen",
            "127.0.0.1:0",
            "--admin",
            "127.0.0.1:0",
            "--reactors",
            "2",
            "--history",
            "100",
            "--heartbeat",
            "10s",
            "--max-id",
            "1M",
            "--max-conns",
            "20k",
        ])
        .unwrap();
        let config = args.to_config().unwrap();
        assert_eq!(config.reactors, 2);
        assert_eq!(config.history, 100);
        assert_eq!(config.heartbeat, Some(Duration::from_secs(10)));
        assert_eq!(config.max_id, 1_000_000);
        assert_eq!(config.max_conns, 20_000);
    }

    #[test]
    fn refuses_impossible_settings() {
        let args = Args::try_parse_from(["comet-server", "--reactors", "0"]).unwrap();
        assert!(args
            .to_config()
            .unwrap_err()
            .to_string()
            .contains("--reactors"));
        let args = Args::try_parse_from(["comet-server", "--poll-timeout", "0s"]).unwrap();
        assert!(args.to_config().is_err());
        let args = Args::try_parse_from(["comet-server", "--max-conns", "0"]).unwrap();
        assert!(args
            .to_config()
            .unwrap_err()
            .to_string()
            .contains("--max-conns"));
    }

    fn refusal(flag: &str, value: &str) -> Option<String> {
        let args = Args::try_parse_from(["comet-server", flag, value]).unwrap();
        args.to_config().err().map(|e| e.to_string())
    }

    #[test]
    fn refuses_values_that_would_overflow_later() {
        for flag in [
            "--sse-keepalive",
            "--heartbeat",
            "--header-timeout",
            "--poll-timeout",
            "--worker-timeout",
        ] {
            assert_eq!(refusal(flag, "24h"), None, "{flag} 24h");
            for huge in ["25h", "100000000000h", "18446744073709551615"] {
                let err = refusal(flag, huge).unwrap_or_else(|| panic!("{flag} {huge} accepted"));
                assert!(
                    err.starts_with(flag) && err.contains("at most 24h"),
                    "{err}"
                );
            }
        }
        for (flag, largest, over) in [
            ("--max-body", "1G", "2G"),
            ("--max-pending", "1G", "18446744073709551615"),
            ("--max-admin-conns", "1M", "2M"),
        ] {
            assert_eq!(refusal(flag, largest), None, "{flag} {largest}");
            let err = refusal(flag, over).unwrap_or_else(|| panic!("{flag} {over} accepted"));
            assert!(
                err.starts_with(flag) && err.contains(&format!("at most {largest}")),
                "{err}"
            );
        }
    }

    #[test]
    fn refuses_tls_in_a_group_with_the_fix() {
        let group = ["--workers", "2"];
        let worker = ["--workers", "2", "--worker-index", "1", "--group-id", "7"];
        for extra in [&group[..], &worker[..]] {
            let mut argv = vec!["comet-server", "--tls-cert", "c.pem", "--tls-key", "k.pem"];
            argv.extend_from_slice(extra);
            // Refused before the (absent) files are read.
            let err = Args::try_parse_from(argv).unwrap().to_config().unwrap_err();
            let err = err.to_string();
            assert!(err.starts_with("--tls-cert with --workers"), "{err}");
            assert!(err.contains("--reuse-port and --broker"), "{err}");
        }
    }
}
