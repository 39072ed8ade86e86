//! What two or more c1m tools must agree on, and nothing else.
//!
//! - [`envelope`]: the ASCII message envelope `msggen` writes and `floodtest`
//!   finds anywhere in a stream (format in `docs/ENVELOPE.md`).
//! - [`records`]: one serde record type per CSV file kind; `plots` reads the
//!   same types the tools write.
//! - [`parse`]: counts (`10k`, `1M`), id and port ranges, durations, IPv4
//!   lists, ranges and CIDRs, parsed the same way by every tool.
//! - [`fdlimit`]: RLIMIT_NOFILE, and recognising EMFILE/ENFILE.
//! - [`format`]: thousands separators for figures people read.
//! - [`capacity`]: how many connections a set of source addresses, ports,
//!   destinations and descriptors can hold; shared by `floodtest`'s
//!   pre-flight check and `c1m-sysctl`.
//! - [`wire`]: the contracts between processes: the `POST /send` batch
//!   lines, comet-server's admin answers, and the JSON summaries of
//!   `floodtest` and `msggen`, each with a schema under `docs/schema/`.
//!
//! This crate does no network I/O and has no async runtime, so every tool
//! (and the fuzz targets) can depend on it cheaply.

pub mod capacity;
pub mod envelope;
pub mod fdlimit;
pub mod format;
pub mod parse;
pub mod records;
pub mod wire;
