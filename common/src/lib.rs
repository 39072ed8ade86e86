//! What two or more c1m tools must agree on, and nothing else. The modules
//! are private; this list is the crate's surface.
//!
//! - The message envelope ([`Header`], [`encode_envelope`],
//!   [`decode_envelope`], [`scan_envelopes`]): the ASCII frame `msggen`
//!   writes and `floodtest` finds anywhere in a stream (format in
//!   `docs/ENVELOPE.md`).
//! - CSV records ([`MemSample`], [`FloodInterval`], [`MsggenInterval`]): one
//!   serde record type per CSV file kind; `plots` reads the same types the
//!   tools write.
//! - Parsers ([`parse_count`], [`parse_duration`], [`IdRange`],
//!   [`PortRange`], [`Ipv4List`]): counts (`10k`, `1M`), id and port ranges,
//!   durations, IPv4 lists, ranges and CIDRs, parsed the same way by every
//!   tool; bounded forms ([`duration_within`], [`count_within`]) for the
//!   arguments that feed arithmetic, so none can overflow or hang later.
//! - Descriptor limits ([`raise_nofile_to_hard`], [`is_exhaustion`]):
//!   RLIMIT_NOFILE, and recognising EMFILE/ENFILE.
//! - Capacity ([`AddressPlan`], [`conns_per_process`], [`MemoryEstimate`],
//!   ...): how many connections a set of source addresses, ports,
//!   destinations and descriptors can hold; shared by `floodtest`'s
//!   pre-flight check and `c1m-sysctl`.
//! - A process's memory ([`rss_bytes`], [`statm`], [`page_size`]) and the
//!   machine's ([`mem_available`]) from `/proc`, and what one connection
//!   costs from memlog samples ([`Costs`]: the one method of every
//!   bytes-per-connection figure, with its uncertainty).
//! - The friends file ([`read_friends`], [`push_friendship`],
//!   [`FRIENDS_HEADER`]): the graph `msggen graph` writes and comet-server's
//!   `--friends` reads (format in `msggen/FRIENDS.md`).
//! - Stop signals ([`StopSignals`]): SIGINT/SIGTERM as a flag and a sleep
//!   they cut short, the same in every tool.
//! - [`thousands`]: thousands separators for figures people read.
//! - Wire contracts between processes (module `wire`): the `POST /send`
//!   batch lines ([`push_batch_line`], [`parse_batch`]), comet-server's
//!   admin answers ([`SendAnswer`], [`BatchAnswer`], [`CheckAnswer`],
//!   [`StatsSnapshot`], its counters listed once in [`server_counters!`]),
//!   and the JSON summaries ([`FloodSummary`], [`MsggenSummary`]), each
//!   document with a JSON Schema under `docs/schema/`.
//!
//! This crate does no network I/O and has no async runtime, so every tool
//! (and the fuzz targets) can depend on it cheaply.

mod bounds;
mod capacity;
mod envelope;
mod fdlimit;
mod format;
mod friends;
mod parse;
mod per_conn;
mod process;
mod records;
mod signals;
mod wire;

pub use bounds::{count_within, duration_within, MAX_DURATION};
pub use capacity::{
    conns_per_process, fds_per_process, kernel_bytes, procs_needed, AddressPlan, BindMode,
    MemoryEstimate, Role, DEFAULT_USER_BYTES_PER_CONN, FD_RESERVE, KERNEL_BYTES_PER_SOCKET,
};
pub use envelope::{
    decode_envelope, encode_envelope, encode_event, envelope_len, scan_envelopes, Envelope,
    EnvelopeError, EnvelopeKind, Header, MAX_ENVELOPE_HEADER, MAX_ENVELOPE_PAYLOAD,
};
pub use fdlimit::{is_exhaustion, nofile_limits, raise_nofile_to_hard, Exhaustion};
pub use format::thousands;
pub use friends::{
    push_friendship, read_friends, FriendsError, FriendsFile, IdLimit, LineProblem, FRIENDS_HEADER,
};
pub use parse::{
    parse_count, parse_duration, HeaderField, IdRange, Ipv4List, ParseError, PortRange,
};
pub use per_conn::{kernel_kb, Cost, Costs, PLATEAU};
pub use process::{
    advise_huge_pages, is_gone, mem_available, page_size, raise_thread_priority, rss_bytes, statm,
    Pid, Statm,
};
pub use records::{unix_ms_now, unix_us_now, FloodInterval, MemSample, MsggenInterval};
pub use signals::{Repeat, StopSignals};
#[cfg(feature = "schema-check")]
pub use wire::validate_against_schema;
pub use wire::{
    parse_batch, parse_fanout, push_batch_line, push_fanout_line, AgentSummary, BatchAnswer,
    BatchLines, BroadcastAnswer, BrokerState, CheckAnswer, FanoutAnswer, FirstError, FloodSummary,
    GapSummary, GeneratorSummary, GroupCounters, HistogramBuckets, MalformedFanout, MsggenSummary,
    Percentiles, PublishAnswer, PublishBatchAnswer, SendAnswer, SendEachAnswer, StatsSnapshot,
    UnsendableMessage, WorkerStats,
};
