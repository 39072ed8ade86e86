//! The wire contracts between the tools: what one process writes and another
//! reads, as types both ends use (so a second hand-written reader of the
//! same bytes cannot drift from the first).
//!
//! | contract | written by | read by | type | schema |
//! | --- | --- | --- | --- | --- |
//! | `POST /send` body (`id<TAB>message\n`) | msggen | comet-server | [`push_batch_line`], [`parse_batch`] | (line format, `batch.rs`) |
//! | `POST /send/{id}` answer | comet-server | tests | [`SendAnswer`] | `docs/schema/admin-send.json` |
//! | `POST /send` answer | comet-server | msggen | [`BatchAnswer`] | `docs/schema/admin-send-batch.json` |
//! | `GET /check/{id}` answer | comet-server | tests | [`CheckAnswer`] | `docs/schema/admin-check.json` |
//! | `GET /stats` answer | comet-server | experiment | [`StatsSnapshot`] | `docs/schema/admin-stats.json` |
//! | `floodtest --json` | floodtest | experiment | [`FloodSummary`] | `docs/schema/flood-summary.json` |
//! | `msggen --json` | msggen | experiment | [`MsggenSummary`] | `docs/schema/msggen-summary.json` |
//!
//! The schema files are generated from these types by a test of this crate
//! (`cargo test -p c1m-common schema`), which fails when a type and its
//! committed schema differ; each tool's tests validate its real output
//! against the committed file. The types hold data only: filling, merging
//! and printing them stays in the tools.

mod admin;
mod batch;
mod flood_summary;
mod msggen_summary;
#[cfg(test)]
mod schema;
mod stats;

pub use admin::{BatchAnswer, CheckAnswer, SendAnswer};
pub use batch::{parse_batch, parse_id, push_batch_line, BatchLines, UnsendableMessage};
pub use flood_summary::{FloodSummary, Percentiles};
pub use msggen_summary::{GapSummary, GeneratorSummary, MsggenSummary};
pub use stats::StatsSnapshot;
