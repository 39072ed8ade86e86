//! Keeps `docs/schema/*.json` in step with the types: each file is the
//! JSON Schema `schemars` derives from its type (a dev-dependency, so the
//! tools never build it). A type changed without its schema fails here with
//! the command that rewrites the files.

use super::*;
use schemars::{schema_for, Schema};

/// Set to rewrite the committed schema files from the types.
const UPDATE: &str = "C1M_UPDATE_SCHEMAS";

fn schemas() -> [(&'static str, Schema); 11] {
    [
        ("admin-send.json", schema_for!(SendAnswer)),
        ("admin-send-batch.json", schema_for!(BatchAnswer)),
        ("admin-publish.json", schema_for!(PublishAnswer)),
        ("admin-publish-batch.json", schema_for!(PublishBatchAnswer)),
        ("admin-fanout.json", schema_for!(FanoutAnswer)),
        ("admin-send-each.json", schema_for!(SendEachAnswer)),
        ("admin-broadcast.json", schema_for!(BroadcastAnswer)),
        ("admin-check.json", schema_for!(CheckAnswer)),
        ("admin-stats.json", schema_for!(StatsSnapshot)),
        ("flood-summary.json", schema_for!(FloodSummary)),
        ("msggen-summary.json", schema_for!(MsggenSummary)),
    ]
}

#[test]
fn committed_schemas_match_the_types() {
    let update = std::env::var_os(UPDATE).is_some();
    let mut stale = Vec::new();
    for (file, schema) in schemas() {
        let path = schema_dir().join(file);
        let text = serde_json::to_string_pretty(&schema).unwrap() + "\n";
        if update {
            std::fs::write(&path, &text).unwrap();
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            stale.push(file);
        }
    }
    assert!(
        stale.is_empty(),
        "docs/schema/{{{}}} differ from their types: run `{UPDATE}=1 cargo test -p c1m-common schema` and commit the files",
        stale.join(",")
    );
}
