//! The wire contracts between the tools: what one process writes and another
//! reads, as types both ends use (so a second hand-written reader of the
//! same bytes cannot drift from the first).
//!
//! | contract | written by | read by | type | schema |
//! | --- | --- | --- | --- | --- |
//! | `POST /send` body (`id<TAB>message\n`) | msggen | comet-server | [`push_batch_line`], [`parse_batch`] | (line format, `batch.rs`) |
//! | `POST /send/{id}` answer | comet-server | tests | [`SendAnswer`] | `docs/schema/admin-send.json` |
//! | `POST /send` answer | comet-server | msggen | [`BatchAnswer`] | `docs/schema/admin-send-batch.json` |
//! | `POST /publish` body (`publisher<TAB>event\n`) | msggen --publish comet-events | comet-server | [`push_batch_line`], [`parse_batch`] | (line format, `batch.rs`) |
//! | `POST /publish/{id}` answer | comet-server | tests | [`PublishAnswer`] | `docs/schema/admin-publish.json` |
//! | `POST /publish` answer | comet-server | msggen --publish comet-events | [`PublishBatchAnswer`] | `docs/schema/admin-publish-batch.json` |
//! | `POST /fanout` body (per event: the worker's ids, the event) | a group's front | its workers | [`push_fanout_line`], [`parse_fanout`] | (line format, `fanout.rs`) |
//! | `POST /fanout` answer | a group's worker | its front | [`FanoutAnswer`] | `docs/schema/admin-fanout.json` |
//! | `POST /broadcast` answer | comet-server | tests, benches | [`BroadcastAnswer`] | `docs/schema/admin-broadcast.json` |
//! | `GET /check/{id}` answer | comet-server | tests | [`CheckAnswer`] | `docs/schema/admin-check.json` |
//! | `GET /stats` answer | comet-server | experiment | [`StatsSnapshot`] | `docs/schema/admin-stats.json` |
//! | `floodtest --json` | floodtest | experiment | [`FloodSummary`] | `docs/schema/flood-summary.json` |
//! | `msggen --json` | msggen | experiment | [`MsggenSummary`] | `docs/schema/msggen-summary.json` |
//! | `c1m-sysctl check --json` | c1m-sysctl | experiment | sysctl's `CheckReport` | `docs/schema/sysctl-check.json` (by hand) |
//!
//! The schema files are generated from these types by a test of this crate
//! (`cargo test -p c1m-common schema`), which fails when a type and its
//! committed schema differ; each tool's tests validate its real output
//! against the committed file with [`validate_against_schema`] (feature
//! `schema-check`, for tests only). The types hold data only: filling, merging
//! and printing them stays in the tools.

mod admin;
mod batch;
mod fanout;
mod flood_summary;
mod msggen_summary;
#[cfg(test)]
mod schema;
#[cfg(feature = "schema-check")]
mod schema_check;
mod stats;

pub use admin::{
    BatchAnswer, BroadcastAnswer, CheckAnswer, FanoutAnswer, PublishAnswer, PublishBatchAnswer,
    SendAnswer, SendEachAnswer,
};
pub use batch::{parse_batch, push_batch_line, BatchLines, UnsendableMessage};
pub use fanout::{parse_fanout, push_fanout_line, MalformedFanout};
pub use flood_summary::{AgentSummary, FloodSummary, HistogramBuckets, Percentiles};
pub use msggen_summary::{FirstError, GapSummary, GeneratorSummary, MsggenSummary};
#[cfg(feature = "schema-check")]
pub use schema_check::validate_against_schema;
pub use stats::{BrokerState, GroupCounters, StatsSnapshot, WorkerStats};

/// The folder of the committed schema files, `docs/schema/`.
#[cfg(any(test, feature = "schema-check"))]
fn schema_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/schema")
}
