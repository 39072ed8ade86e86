//! Command-line arguments and the validated [`Config`] the server runs with.
//!
//! `Args` is what clap parses (its doc comments are the `--help` text);
//! [`Args::to_config`] checks the combination before anything is bound, so
//! an impossible configuration is reported with its fix before start-up.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::tls::TlsConfig;

use c1m_common::{parse_count, parse_duration};
use clap::Parser;

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
    /// admin body must arrive within it too. At most 24h.
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
    /// Time allowed for a complete request head (`--header-timeout`).
    pub header_timeout: Duration,
    /// Largest admin request body (`--max-body`).
    pub max_body: usize,
    /// Admin connections served at once (`--max-admin-conns`).
    pub max_admin_conns: usize,
    /// TLS on the subscriber listener (`--tls-cert`, `--tls-key`).
    pub tls: Option<TlsConfig>,
}

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

impl Args {
    /// Checks the arguments and turns them into a [`Config`].
    pub fn to_config(&self) -> anyhow::Result<Config> {
        if self.backlog < 1 {
            anyhow::bail!("--backlog {}: must be at least 1", self.backlog);
        }
        let config = Config {
            reactors: self
                .reactors
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
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
        };
        config.check()?;
        Ok(config)
    }
}

impl Config {
    /// Checks every value, so that an impossible one is reported with its
    /// fix before anything is bound and none can overflow later. Both
    /// [`Args::to_config`] and [`start`](crate::start) call it.
    pub fn check(&self) -> anyhow::Result<()> {
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
}
