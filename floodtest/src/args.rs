//! The command line. Doc comments are the `--help` text.

use crate::stream::Mode;
use crate::target::Target;
use c1m_common::BindMode;
use c1m_common::{parse_count, parse_duration, IdRange, Ipv4List, PortRange};
use clap::Parser;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// Opens and holds many long-lived HTTP streams (chunked, SSE or raw),
/// past 64K per source IP and past the per-process descriptor limit, and
/// measures delivery latency and lost messages from the envelopes in them.
///
/// Exit status: 0 when the peak open connections reached --conns (or
/// --min-open), 1 when not, 2 on a refused configuration or an error, or
/// when a child process died (the summary is still written, marked
/// `incomplete`).
#[derive(Debug, Clone, Parser)]
#[command(name = "floodtest", version)]
pub struct Args {
    /// URL template; `{id}` becomes each connection's id. The port may be a
    /// range (`127.0.0.1:8100-8199`) to spread over many listeners.
    /// `http://` and `https://` hold HTTP streams, `ws://` and `wss://`
    /// WebSockets.
    #[arg(long, default_value = "http://127.0.0.1:8000/test/{id}", value_parser = parse_target)]
    pub url: Target,

    /// A header field every request carries, `Name: value` (an
    /// `Authorization` token, an `Origin`); repeat for more.
    #[arg(long = "header", value_name = "NAME: VALUE", value_parser = parse_header)]
    pub headers: Vec<(String, String)>,

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

    /// Connections to open and hold (10000, 10k, 1M).
    #[arg(short = 'n', long, default_value = "10k", value_parser = parse_count)]
    pub conns: u64,

    /// Subscriber ids, given to connections in order and reused round
    /// robin if there are fewer ids than connections [default: 1-<conns>].
    #[arg(long)]
    pub ids: Option<IdRange>,

    /// What to count in each stream: chunks, SSE events, or reads and bytes
    /// (a WebSocket counts messages, whatever the mode). Envelopes are
    /// found in every mode.
    #[arg(long, value_enum, default_value_t = Mode::Chunked)]
    pub mode: Mode,

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

    /// Worker threads per process [default: cores / processes, at least 1].
    #[arg(long)]
    pub workers: Option<usize>,

    /// New connections per second, over all processes [default: unlimited].
    #[arg(long, value_parser = parse_count)]
    pub rate: Option<u64>,

    /// Most connection attempts in flight at once, over all processes.
    /// More does not connect faster on loopback (measured: 200 and 2,000
    /// both ~12K/s here) but makes each connect wait longer.
    #[arg(long, default_value = "256", value_parser = parse_count)]
    pub max_connecting: u64,

    /// Stop opening after every this many connections (icomet's pause) and
    /// wait for Enter on a terminal, or for --pause-secs.
    #[arg(long, value_parser = parse_count)]
    pub pause_every: Option<u64>,

    /// How long each --pause-every pause lasts instead of waiting for Enter.
    #[arg(long, value_parser = parse_duration)]
    pub pause_secs: Option<Duration>,

    /// Hold the connections this long once all are open, then close them and
    /// report [default: until Ctrl-C].
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,

    /// Give up on an attempt with no response head after this long.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub connect_timeout: Duration,

    /// Reconnect a connection that fails or is closed, after a backoff that
    /// starts at --reconnect-backoff and doubles up to 30 s.
    #[arg(long)]
    pub reconnect: bool,

    /// First reconnect backoff.
    #[arg(long, default_value = "100ms", value_parser = parse_duration)]
    pub reconnect_backoff: Duration,

    /// Off a terminal, print a line this often.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub report_interval: Duration,

    /// Write one record per report interval to this CSV file.
    #[arg(long)]
    pub csv: Option<PathBuf>,

    /// Write the final summary to this JSON file.
    #[arg(long)]
    pub json: Option<PathBuf>,

    /// Exit 1 unless at least this many connections were open at once
    /// [default: --conns].
    #[arg(long, value_parser = parse_count)]
    pub min_open: Option<u64>,

    /// Internal: run as child K of N started by --procs.
    #[arg(long, hide = true)]
    pub child: Option<ChildSlot>,
}

fn parse_target(s: &str) -> Result<Target, String> {
    s.parse()
}

/// `Name: value`, a field name of token characters and a value without
/// CR, LF or NUL (which would end the head or smuggle another field).
fn parse_header(s: &str) -> Result<(String, String), String> {
    let (name, value) = s
        .split_once(':')
        .ok_or_else(|| format!("{s:?}: expected NAME: VALUE"))?;
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(token) {
        return Err(format!("{name:?} is not a header field name"));
    }
    let value = value.trim();
    if value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
        return Err(format!("the value of {name} holds a CR, LF or NUL"));
    }
    Ok((name.to_owned(), value.to_owned()))
}

fn parse_ws_bound(s: &str) -> Result<u32, String> {
    let n = parse_count(s).map_err(|e| e.to_string())?;
    u32::try_from(n)
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("{s:?}: between 1 and 4G - 1"))
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
        ])
        .unwrap();
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
            ws.headers,
            [("Authorization".to_owned(), "Bearer s3cret".to_owned())]
        );
        assert_eq!(ws.ws_max_message, 64_000);
        assert!(parse_header("X-A b: c").is_err());
        assert!(parse_header("X: a\r\nY: b").is_err());
        assert!(parse_ws_bound("5G").is_err());
        assert_eq!("3".parse::<Procs>(), Ok(Procs::Exactly(3)));
        assert!("0".parse::<Procs>().is_err());
        assert_eq!(
            "2/5".parse::<ChildSlot>(),
            Ok(ChildSlot { index: 2, of: 5 })
        );
        assert!("5/5".parse::<ChildSlot>().is_err());
    }
}
