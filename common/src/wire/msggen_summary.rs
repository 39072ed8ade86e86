//! What `msggen --json` writes at the end of a run (schema:
//! `docs/schema/msggen-summary.json`). `msggen` fills it from its counters
//! and its senders' accounts; `experiment` and audits of loss read it.
//!
//! A reader ignores fields it does not know, and a field added later is
//! `#[serde(default)]`, so an older summary still reads.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The run's configuration and figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct MsggenSummary {
    /// `--target` as given (a URL, or `-` for standard output).
    pub target: String,
    /// The publish API (`--publish`): `comet`, `comet-each`, `comet-events`, `nchan`,
    /// `pushpin`, `icomet`, `centrifugo`, `mercure`, `nats`, `redis`, `http`.
    #[serde(default = "comet")]
    pub publish: String,
    /// `--ids` as given.
    pub ids: String,
    /// `--dist` as given.
    pub dist: String,
    /// The rate asked for, messages per second; null for `--rate max`.
    pub rate_target: Option<f64>,
    /// Sender connections (`--senders`).
    pub senders: u32,
    /// Payload bytes per message (`--size`).
    pub size: u64,
    /// Messages the pacer released (sent + failed + unsent).
    pub released: u64,
    /// Messages the target accepted.
    pub sent: u64,
    /// Of those, how many the target said reached no connection.
    pub dropped: u64,
    /// Released but never written, because the run was stopped by a signal.
    pub unsent: u64,
    /// Events (`--publish comet-events`; null for messages): connection
    /// deliveries comet-server said it queued, the sum of `connections`
    /// over its `POST /publish` answers. `expected` minus floodtest's
    /// `events` is the fan-out loss, exact over a run where no subscriber
    /// closed early and `uncertain` is 0 (`docs/ENVELOPE.md`).
    #[serde(default)]
    pub expected: Option<u64>,
    /// Events whose publisher had no friend online (null for messages).
    #[serde(default)]
    pub unheard: Option<u64>,
    /// Events in attempts that failed after their request may have reached
    /// the server (reset, closed, timeout, bad response): they may have been
    /// fanned out without being counted in `expected`, and a retry may
    /// fan them out twice (null for messages).
    #[serde(default)]
    pub uncertain: Option<u64>,
    /// Events accepted by a server whose answer did not say what they
    /// reached (comet-server with `--broker`: other groups' friends are not
    /// known where the event was posted); not in `expected` (null for
    /// messages).
    #[serde(default)]
    pub unreported: Option<u64>,
    /// Messages that failed for good.
    pub failed: u64,
    /// `failed` by class of the last failure; only classes that occurred.
    pub failed_by_class: BTreeMap<String, u64>,
    /// Failed attempts (including ones a retry then fixed), by class.
    pub errors_by_class: BTreeMap<String, u64>,
    /// `failed` of HTTP answers by status code (`"404": 20`).
    #[serde(default)]
    pub failed_by_status: BTreeMap<String, u64>,
    /// `errors_by_class` of HTTP answers by status code.
    #[serde(default)]
    pub errors_by_status: BTreeMap<String, u64>,
    /// The first failed attempt of the run, with a hint when msggen knows
    /// the likely cause; null when nothing failed.
    #[serde(default)]
    pub first_error: Option<FirstError>,
    /// Why the run ended before its schedule (too many failed attempts in
    /// a row); null when it ran to its end or a signal stopped it.
    #[serde(default)]
    pub stopped_early: Option<String>,
    /// Attempts repeated after a failure.
    pub retries: u64,
    /// From the start of the schedule to the end of the run.
    pub duration_s: f64,
    /// From the start of the schedule to the last batch written.
    pub send_span_s: f64,
    /// `sent / (send_span_s + 1/rate_target)` (N messages fill N slots of
    /// 1/rate); `sent / send_span_s` with `--rate max`.
    pub achieved_rate: f64,
    /// Batch writes (retries included).
    pub writes: u64,
    /// Messages per batch write.
    pub messages_per_write: f64,
    /// Gaps between consecutive batch writes on one connection, microseconds.
    pub gap_us: GapSummary,
    /// Time from writing a round of requests to reading its last answer,
    /// microseconds.
    #[serde(default)]
    pub answer_us: GapSummary,
    /// Most connections open at once, over every sender.
    #[serde(default)]
    pub connections: u64,
    /// Connections opened, reconnects included.
    #[serde(default)]
    pub connects: u64,
    /// True when SIGINT or SIGTERM ended the run early.
    pub stopped_by_signal: bool,
    /// Per generator: sequence numbers given, sent, failed (audit of loss).
    pub generators: Vec<GeneratorSummary>,
}

fn comet() -> String {
    "comet".to_owned()
}

/// A failed attempt, as the user needs to see it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct FirstError {
    /// The failure class (`refused`, `status_4xx`, ...).
    pub class: String,
    /// The HTTP status, when the target answered with one.
    pub status: Option<u16>,
    /// The start of the answer's body, or the error's text.
    pub detail: String,
    /// The likely cause and its fix, when msggen knows one.
    pub hint: Option<String>,
}

/// One generator's account: with the last sequence number per id (the
/// `--last-seqs` file) a reader can tell lost messages from unsent ones.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct GeneratorSummary {
    /// The generator id in the envelopes.
    pub generator: u64,
    /// Messages given a sequence number (= the sum of last seqs).
    pub numbered: u64,
    /// Of those, messages the target accepted.
    pub sent: u64,
    /// Of those, messages that failed for good (their numbers are gaps).
    pub failed: u64,
    /// Ids this generator sent at least one message to.
    pub ids_used: u64,
    /// The highest sequence number of any id.
    pub max_seq: u64,
}

/// Percentiles of a histogram of microseconds (gaps, answer times; all 0
/// when it is empty).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct GapSummary {
    /// Gaps recorded.
    pub count: u64,
    /// Mean gap.
    pub mean: f64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest gap.
    pub max: u64,
}
