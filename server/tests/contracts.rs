//! The admin API's JSON answers are the documents `docs/schema/` describes:
//! each real answer validates against its committed schema and reads back
//! as the `c1m_common` type the clients use.

mod support;

use c1m_common::{
    validate_against_schema, BatchAnswer, BroadcastAnswer, CheckAnswer, PublishAnswer,
    PublishBatchAnswer, SendAnswer, StatsSnapshot,
};
use c1m_server::Config;
use support::*;

/// `body` as the schema `file` describes it, read as `T`.
fn document<T: serde::de::DeserializeOwned>(file: &str, (status, body): (u16, String)) -> T {
    assert_eq!(status, 200, "{body}");
    validate_against_schema(file, &body).unwrap_or_else(|e| panic!("{e}"));
    serde_json::from_str(&body).unwrap()
}

#[test]
fn every_json_answer_matches_its_schema_and_type() {
    let server = server(config());
    let mut held = Client::get(server.subscriber_addr(), "/test/7");
    held.expect("c1m welcome, id: 7\n");

    let one: SendAnswer = document(
        "admin-send.json",
        admin(&server, "POST", "/send/7", b"any bytes\n\tat all"),
    );
    assert_eq!(
        one,
        SendAnswer {
            id: 7,
            connections: 1
        }
    );
    held.expect("any bytes\n\tat all");

    let batch: BatchAnswer = document(
        "admin-send-batch.json",
        admin(&server, "POST", "/send", b"7\tone\n8\ttwo\nno tab\n"),
    );
    let expected = BatchAnswer {
        accepted: 2,
        rejected: 1,
        delivered: Some(1),
        dropped: Some(1),
        connections: Some(1),
    };
    assert_eq!(batch, expected);
    held.expect("one");

    let check: CheckAnswer = document("admin-check.json", admin(&server, "GET", "/check/7", b""));
    assert_eq!(
        check,
        CheckAnswer {
            id: 7,
            online: true,
            connections: 1
        }
    );

    let stats: StatsSnapshot = document("admin-stats.json", admin(&server, "GET", "/stats", b""));
    assert_eq!(
        (stats.connections, stats.messages_in, stats.dropped),
        (1, 3, 1)
    );
    assert!(stats.rss_bytes > 0);
    server.shutdown().unwrap();
}

#[test]
fn the_friends_and_broadcast_answers_match_their_schemas_and_types() {
    let server = server(Config {
        friends: Some(graph(&[(1, 2), (1, 3)])),
        ..config()
    });
    let mut two = Client::get(server.subscriber_addr(), "/test/2");
    two.expect("c1m welcome, id: 2\n");

    let one: PublishAnswer = document(
        "admin-publish.json",
        admin(&server, "POST", "/publish/1", b"event"),
    );
    let expected = PublishAnswer {
        id: 1,
        friends: 2,
        online: Some(1),
        connections: Some(1),
    };
    assert_eq!(one, expected);
    let batch: PublishBatchAnswer = document(
        "admin-publish-batch.json",
        admin(&server, "POST", "/publish", b"1\ta\n3\tb\nx\n"),
    );
    let expected = PublishBatchAnswer {
        accepted: 2,
        rejected: 1,
        friends: 3,
        online: Some(1),
        connections: Some(1),
        unheard: Some(1),
    };
    assert_eq!(batch, expected);
    let broadcast: BroadcastAnswer = document(
        "admin-broadcast.json",
        admin(&server, "POST", "/broadcast", b"all"),
    );
    assert_eq!(broadcast.reactors, Some(2));
    two.expect("all");
    let stats: StatsSnapshot = document("admin-stats.json", admin(&server, "GET", "/stats", b""));
    assert_eq!((stats.events_in, stats.events_unheard), (3, 1));
}
