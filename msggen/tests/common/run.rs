//! Runs the msggen binary with a `--json` summary, which is checked
//! against `docs/schema/msggen-summary.json` and read as the
//! `MsggenSummary` that `experiment` reads.

use c1m_common::{validate_against_schema, MsggenSummary};
use std::process::{Command, Output};

/// msggen with the whitespace-separated `args` plus `--json`: its output
/// and its summary.
pub(crate) fn msggen_json(args: &str) -> (Output, MsggenSummary) {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("msggen.json");
    let output = Command::new(env!("CARGO_BIN_EXE_msggen"))
        .args(args.split_whitespace())
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    let text = std::fs::read_to_string(&json)
        .unwrap_or_else(|_| panic!("no summary: {}", String::from_utf8_lossy(&output.stderr)));
    validate_against_schema("msggen-summary.json", &text).unwrap_or_else(|e| panic!("{e}"));
    (output, serde_json::from_str(&text).unwrap())
}
