//! The command line. Doc comments are the `--help` text.

use crate::preset::Preset;
use crate::stream::Mode;
use crate::target::Target;
use c1m_common::BindMode;
use c1m_common::{count_within, duration_within, parse_count, parse_duration, MAX_DURATION};
use c1m_common::{HeaderField, IdRange, Ipv4List, PortRange};
use clap::Parser;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// Opens and holds many long-lived HTTP streams (chunked, SSE or raw),
/// past 64K per source IP and past the per-process descriptor limit, and
/// measures delivery latency and lost messages from the envelopes in them.
///
/// Exit status: 0 when --conns (or --min-open) connections were open at the
/// peak and still open when the run ended, and no stream broke HTTP
/// framing; 1 when not (it says what failed); 2 on a refused configuration
/// or an error, or when a child process died (the summary is still
/// written, marked `incomplete`).
///
/// Over several client machines: start `floodtest agent --broker
/// nats://HOST:PORT` on each (`floodtest agent --help`), then run this with
/// `--agents N --broker nats://HOST:PORT`.
#[derive(Debug, Clone, Parser)]
// A flag given twice takes its last value: an agent appends its share
// (`--conns`, `--first-index`, `--ids`, `--source-ips`) to the controller's
// flags. Repeatable flags (`--header`) still add up.
#[command(name = "floodtest", version, args_override_self = true)]
pub struct Args {
    /// URL template; `{id}` becomes each connection's id. The port may be a
    /// range (`127.0.0.1:8100-8199`) to spread over many listeners.
    /// `http://` and `https://` hold HTTP streams, `ws://` and `wss://`
    /// WebSockets. With
    /// `--preset`, a URL without a path is the server's base and the preset
    /// adds the path [default: http://127.0.0.1:8000/test/{id}].
    #[arg(long, value_parser = parse_target)]
    pub url: Option<Target>,

    /// The server as HOST:PORT[-PORT], for `--preset` (or comet-server's
    /// `/test/{id}` without one); the same as `--url http://HOST:PORT`.
    #[arg(long, value_name = "HOST:PORT", conflicts_with = "url")]
    pub target: Option<String>,

    /// A push server's subscriber request: comet, nchan (`/sub/{id}`, SSE),
    /// pushpin (`/stream/{id}` on the origin, chunked), icomet
    /// (`/stream?cname={id}`, raw), centrifugo (unidirectional SSE with its
    /// connect command), mercure (`/.well-known/mercure?topic={id}`, SSE).
    /// A `--url` path or `--mode` given as well wins.
    #[arg(long, value_name = "SERVER", value_parser = parse_preset)]
    pub preset: Option<&'static Preset>,

    /// The WebSocket subprotocol to ask for (`Sec-WebSocket-Protocol`); a
    /// server that chooses another fails the handshake.
    #[arg(long, value_name = "NAME")]
    pub ws_subprotocol: Option<String>,

    /// The largest WebSocket message (and frame) taken from a server; a
    /// larger one fails the stream with a 1009 Close (at most 4G - 1).
    #[arg(long, default_value = "1M", value_parser = parse_ws_bound)]
    pub ws_max_message: u32,

    /// Trust the CA certificates in this PEM file for `https://` and
    /// `wss://` [default: the system's roots].
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,

    /// Accept any server certificate (test certificates); the session is
    /// still encrypted, but not authenticated.
    #[arg(long)]
    pub insecure: bool,

    /// Connections to open and hold (10000, 10k, 1M; at most 1G).
    #[arg(short = 'n', long, default_value = "10k", value_parser = parse_conns)]
    pub conns: u64,

    /// Subscriber ids, given to connections in order and reused round
    /// robin if there are fewer ids than connections [default: 1-<conns>].
    #[arg(long)]
    pub ids: Option<IdRange>,

    /// A header every request carries, `NAME:VALUE` (repeatable), such as
    /// `--header 'Authorization: Bearer s3cret'` for a server that wants
    /// one. `User-Agent` or `Accept` replaces floodtest's own; `Host`,
    /// `Content-Length`, `Transfer-Encoding`, `Connection` and the WebSocket
    /// handshake's fields are refused.
    #[arg(long = "header", value_name = "NAME:VALUE")]
    pub headers: Vec<HeaderField>,

    /// What to count in each stream: chunks, SSE events, or reads and bytes
    /// (a WebSocket counts messages, whatever the mode).
    /// Envelopes are found in every mode [default: chunked, or the
    /// preset's].
    #[arg(long, value_enum)]
    pub mode: Option<Mode>,

    /// Source addresses: list, range or CIDR (127.0.1.1-127.0.1.17,
    /// 127.1.0.0/24). Unused in `--bind-mode kernel`.
    #[arg(long, default_value = "127.0.0.1")]
    pub source_ips: Ipv4List,

    /// How source (IP, port) pairs are chosen: `explicit` binds pairs over
    /// --local-ports itself (past 64K per IP, one pair per destination),
    /// `noport` binds the IP and lets connect() pick the port, `kernel` does
    /// not bind.
    #[arg(long, value_enum, default_value_t = BindModeArg::Kernel)]
    pub bind_mode: BindModeArg,

    /// Local ports for `--bind-mode explicit`.
    #[arg(long, default_value = "1024-65535")]
    pub local_ports: PortRange,

    /// Processes to run: `auto` starts as many as the descriptor limit
    /// requires, or a number.
    #[arg(long, default_value = "auto")]
    pub procs: Procs,

    /// Worker threads per process, 1 to 1024 [default: cores / processes,
    /// at least 1].
    #[arg(long, value_parser = parse_workers)]
    pub workers: Option<usize>,

    /// New connections per second, over all processes, at least 1
    /// [default: unlimited].
    #[arg(long, value_parser = parse_rate)]
    pub rate: Option<u64>,

    /// Most connection attempts in flight at once, over all processes.
    /// More does not connect faster on loopback (measured: 200 and 2,000
    /// both ~12K/s here) but makes each connect wait longer. 1 to 1M.
    #[arg(long, default_value = "256", value_parser = parse_max_connecting)]
    pub max_connecting: u64,

    /// Stop opening after every this many connections (icomet's pause) and
    /// wait for Enter on a terminal, or for --pause-secs.
    #[arg(long, value_parser = parse_pause_every)]
    pub pause_every: Option<u64>,

    /// How long each --pause-every pause lasts instead of waiting for Enter
    /// (1ms to 24h).
    #[arg(long, value_parser = parse_timer)]
    pub pause_secs: Option<Duration>,

    /// Hold the connections this long once all are open, then close them and
    /// report [default: until Ctrl-C].
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,

    /// Give up on an attempt with no response head after this long (1ms to
    /// 24h).
    #[arg(long, default_value = "10s", value_parser = parse_timer)]
    pub connect_timeout: Duration,

    /// Reconnect a connection that fails or is closed, after a backoff that
    /// starts at --reconnect-backoff and doubles up to 30 s, each wait drawn
    /// between half the backoff and all of it (jitter: connections dropped
    /// together do not all come back at once).
    #[arg(long)]
    pub reconnect: bool,

    /// First reconnect backoff (1ms to 30s).
    #[arg(long, default_value = "100ms", value_parser = parse_backoff)]
    pub reconnect_backoff: Duration,

    /// Off a terminal, print a line this often (100ms to 24h).
    #[arg(long, default_value = "10s", value_parser = parse_report_interval)]
    pub report_interval: Duration,

    /// Write one record per report interval to this CSV file.
    #[arg(long)]
    pub csv: Option<PathBuf>,

    /// Write the final summary to this JSON file.
    #[arg(long)]
    pub json: Option<PathBuf>,

    /// Exit 1 unless at least this many connections were open at once, and
    /// still open when the hold ended (at most --conns) [default: --conns].
    #[arg(long, value_parser = parse_count)]
    pub min_open: Option<u64>,

    /// Run on agents instead of this machine: a number of them (the first
    /// that announce themselves, by name) or their names (`a,b,c`). Each
    /// gets a disjoint slice of the connections and ids; the summary, CSV
    /// and JSON are merged, with a breakdown per agent. Needs --broker.
    #[arg(long, value_name = "N|NAME,NAME", requires = "broker")]
    pub agents: Option<crate::agents::Wanted>,

    /// The NATS server agents and controller meet at (`nats://HOST:PORT`).
    #[arg(long, value_name = "URL")]
    pub broker: Option<String>,

    /// How long to wait for the --agents to announce themselves (1ms to
    /// 24h).
    #[arg(long, default_value = "30s", value_parser = parse_timer)]
    pub agents_wait: Duration,

    /// An agent that has not reported for this long is lost (the run ends,
    /// incomplete); an agent that has not heard from its controller for
    /// this long closes its connections (1s to 24h).
    #[arg(long, default_value = "10s", value_parser = parse_agent_timeout)]
    pub agent_timeout: Duration,

    /// Internal: the index of this run's first connection (an agent's slice
    /// of a controller's run).
    #[arg(long, hide = true, default_value = "0", value_parser = parse_first_index)]
    pub first_index: u64,

    /// Internal: run as child K of N started by --procs.
    #[arg(long, hide = true)]
    pub child: Option<ChildSlot>,
}

fn parse_target(s: &str) -> Result<Target, String> {
    s.parse()
}

fn parse_preset(s: &str) -> Result<&'static Preset, String> {
    s.parse()
}

fn parse_ws_bound(s: &str) -> Result<u32, String> {
    // A frame's length is compared as a u32 by the decoder.
    count_within(s, 1, u64::from(u32::MAX)).map(|n| n as u32)
}

/// The most connections one run may ask for: a thousand times the million
/// the tool is about, and inside the `u32` a connection record keeps as
/// its index.
pub(crate) const MAX_CONNS: u64 = 1_000_000_000;

fn parse_conns(s: &str) -> Result<u64, String> {
    count_within(s, 1, MAX_CONNS)
}

fn parse_rate(s: &str) -> Result<u64, String> {
    // 0 would never release a connection: the ramp would wait for ever.
    count_within(s, 1, MAX_CONNS).map_err(|e| format!("{e} (leave --rate out for no limit)"))
}

fn parse_max_connecting(s: &str) -> Result<u64, String> {
    // 0 would never start a connection.
    count_within(s, 1, 1_000_000)
}

fn parse_pause_every(s: &str) -> Result<u64, String> {
    count_within(s, 1, MAX_CONNS)
}

fn parse_workers(s: &str) -> Result<usize, String> {
    count_within(s, 1, 1024).map(|n| n as usize)
}

/// Timeouts and pauses: deadlines are `Instant + Duration` and microsecond
/// `u64`s, so they are kept inside [`MAX_DURATION`].
fn parse_timer(s: &str) -> Result<Duration, String> {
    duration_within(s, Duration::from_millis(1), MAX_DURATION)
}

fn parse_backoff(s: &str) -> Result<Duration, String> {
    // The backoff doubles up to 30 s; a first step past it would be cut.
    duration_within(s, Duration::from_millis(1), crate::worker::MAX_BACKOFF)
}

fn parse_report_interval(s: &str) -> Result<Duration, String> {
    // The controller looks every 100 ms: a shorter interval cannot be kept.
    duration_within(s, crate::drive::TICK, MAX_DURATION)
}

fn parse_first_index(s: &str) -> Result<u64, String> {
    match s.parse::<u64>() {
        Ok(n) if n < MAX_CONNS => Ok(n),
        _ => Err(format!(
            "{s:?}: expected a connection index below {MAX_CONNS}"
        )),
    }
}

fn parse_agent_timeout(s: &str) -> Result<Duration, String> {
    // Reports come every second at most: a shorter silence is not a loss.
    duration_within(s, Duration::from_secs(1), MAX_DURATION)
}

/// `--bind-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BindModeArg {
    Explicit,
    Noport,
    Kernel,
}

impl From<BindModeArg> for BindMode {
    fn from(m: BindModeArg) -> Self {
        match m {
            BindModeArg::Explicit => BindMode::Explicit,
            BindModeArg::Noport => BindMode::NoPort,
            BindModeArg::Kernel => BindMode::Kernel,
        }
    }
}

/// `--procs auto|N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Procs {
    Auto,
    Exactly(u64),
}

impl FromStr for Procs {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Procs::Auto),
            n => match n.parse::<u64>() {
                Ok(n) if n >= 1 => Ok(Procs::Exactly(n)),
                _ => Err(format!(
                    "{s:?}: expected auto or a number of processes (1 or more)"
                )),
            },
        }
    }
}

/// `--child K/N`: this process is child K (0-based) of N.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChildSlot {
    pub index: u64,
    pub of: u64,
}

impl FromStr for ChildSlot {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let err = || format!("{s:?}: expected K/N with K < N");
        let (k, n) = s.split_once('/').ok_or_else(err)?;
        let (index, of): (u64, u64) =
            (k.parse().map_err(|_| err())?, n.parse().map_err(|_| err())?);
        if index >= of {
            return Err(err());
        }
        Ok(ChildSlot { index, of })
    }
}

impl std::fmt::Display for ChildSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.of)
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
    fn parses_the_part3_command_line() {
        let a = Args::try_parse_from([
            "floodtest",
            "--url",
            "http://127.0.0.1:8000/test/{id}",
            "--conns",
            "1M",
            "--source-ips",
            "127.0.1.1-127.0.1.17",
            "--bind-mode",
            "explicit",
            "--procs",
            "auto",
            "--rate",
            "10k",
            "--pause-every",
            "100k",
            "--pause-secs",
            "5s",
            "--duration",
            "10m",
            "--csv",
            "flood.csv",
            "--json",
            "flood.json",
            "--header",
            "Authorization: Bearer s3cret",
            "--header",
            "X-Tenant:7",
        ])
        .unwrap();
        assert_eq!(a.headers.len(), 2);
        assert_eq!(
            (a.headers[1].name.as_str(), a.headers[1].value.as_str()),
            ("X-Tenant", "7")
        );
        assert_eq!(a.conns, 1_000_000);
        assert_eq!(a.source_ips.len(), 17);
        assert_eq!(BindMode::from(a.bind_mode), BindMode::Explicit);
        assert_eq!(a.procs, Procs::Auto);
        assert_eq!(a.rate, Some(10_000));
        assert_eq!(a.duration, Some(Duration::from_secs(600)));
        let ws = Args::try_parse_from([
            "floodtest",
            "--url",
            "wss://localhost:8443/ws/{id}",
            "--header",
            "Authorization: Bearer s3cret",
            "--ws-subprotocol",
            "chat",
            "--ca",
            "ca.pem",
            "--ws-max-message",
            "64k",
        ])
        .unwrap();
        assert_eq!(
            (ws.headers[0].name.as_str(), ws.headers[0].value.as_str()),
            ("Authorization", "Bearer s3cret")
        );
        assert_eq!(ws.ws_max_message, 64_000);
        assert!(parse_ws_bound("5G").is_err());
        assert_eq!("3".parse::<Procs>(), Ok(Procs::Exactly(3)));
        assert!("0".parse::<Procs>().is_err());
        assert_eq!(
            "2/5".parse::<ChildSlot>(),
            Ok(ChildSlot { index: 2, of: 5 })
        );
        assert!("5/5".parse::<ChildSlot>().is_err());
    }

    /// Why `line` is refused at parse time.
    fn refusal(line: &[&str]) -> String {
        let argv = std::iter::once("floodtest").chain(line.iter().copied());
        Args::try_parse_from(argv).unwrap_err().to_string()
    }

    #[test]
    fn values_that_feed_arithmetic_are_bounded_at_parse_time() {
        // --rate 0 never released a connection (the ramp waited for ever),
        // --connect-timeout 0s timed every attempt out at once, a huge
        // --pause-secs overflowed Instant + Duration in the controller.
        let err = refusal(&["--rate", "0"]);
        assert!(
            err.contains("must be at least 1 (leave --rate out for no limit)"),
            "{err}"
        );
        let err = refusal(&["--connect-timeout", "0s"]);
        assert!(err.contains("must be longer than 0s"), "{err}");
        let err = refusal(&[
            "--pause-every",
            "10",
            "--pause-secs",
            "18446744073709551615",
        ]);
        assert!(err.contains("must be at most 24h"), "{err}");
        for line in [
            &["--max-connecting", "0"][..],
            &["--pause-every", "0"],
            &["--workers", "0"],
            &["--conns", "0"],
            &["--conns", "2G"],
            &["--reconnect-backoff", "0s"],
            &["--reconnect-backoff", "1m"],
            &["--report-interval", "0s"],
            &["--connect-timeout", "1000000h"],
        ] {
            let err = refusal(line);
            assert!(err.contains("must be"), "{line:?}: {err}");
        }
        let ok = Args::try_parse_from(["floodtest", "--rate", "1", "--connect-timeout", "24h"]);
        assert!(ok.is_ok());
    }
}
