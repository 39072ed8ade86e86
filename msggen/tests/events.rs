//! `msggen --publish comet-events` against the real comet-server, in
//! process, with a small friends graph and floodtest's streams as the
//! friends: every event reaches each online friend's connections once, and
//! msggen's `expected` (the sum of the server's answers) is exactly what
//! floodtest counts as `events` and what the server wrote (`fanout_out`).

#[path = "common/flood.rs"]
mod flood;
#[path = "common/run.rs"]
mod run;

use c1m_server::{Config, FriendsGraph, Server};
use flood::Flood;
use std::collections::HashMap;
use std::sync::Arc;

/// Friendships of users 1-12: 4 has a friend, never online; 10 and 11
/// only each other, offline; 12 has none.
const PAIRS: [(u64, u64); 8] = [
    (1, 2),
    (1, 3),
    (1, 7),
    (2, 3),
    (2, 8),
    (4, 9),
    (5, 6),
    (10, 11),
];

/// comet-server with `graph` (None: without `--friends`).
fn server(graph: Option<&[(u64, u64)]>) -> Server {
    let friends = graph.map(|pairs| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("friends.csv");
        let mut text = String::from("user,friend\n");
        for (u, f) in pairs {
            text.push_str(&format!("{u},{f}\n"));
        }
        std::fs::write(&path, text).unwrap();
        Arc::new(FriendsGraph::load(&path, u64::MAX).unwrap())
    });
    let loopback = "127.0.0.1:0".parse().unwrap();
    let listener = c1m_server::bind(loopback, 256, false).unwrap();
    let admin = c1m_server::bind(loopback, 64, false).unwrap();
    let config = Config {
        reactors: 2,
        friends,
        ..Config::default()
    };
    c1m_server::start(config, listener, admin).unwrap()
}

/// Events msggen sent per publisher, from its `--last-seqs` file.
fn events_by_publisher(path: &std::path::Path) -> HashMap<u64, u64> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("generator,id,last_seq"));
    let mut events = HashMap::new();
    for line in lines {
        let v: Vec<u64> = line.split(',').map(|x| x.parse().unwrap()).collect();
        *events.entry(v[1]).or_insert(0) += v[2];
    }
    events
}

#[test]
fn every_event_reaches_each_online_friends_connections_once() {
    let server = server(Some(&PAIRS));
    // 9 streams over ids 1-6, round robin: 1, 2 and 3 have two each.
    let conns = 9;
    let flood = Flood::hold_with("comet", server.subscriber_addr(), conns, &["--ids", "1-6"]);
    let streams = |id: u64| -> u64 {
        match id {
            1..=3 => 2,
            4..=6 => 1,
            _ => 0,
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let last_seqs = dir.path().join("seqs.csv");
    let (output, sent) = run::msggen_json(&format!(
        "--target http://{} --publish comet-events --ids 1-12 --rate 2000 --count 1200 \
         --senders 2 --last-seqs {}",
        server.admin_addr(),
        last_seqs.display()
    ));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert_eq!(
        (sent.sent, sent.failed, sent.publish.as_str()),
        (1200, 0, "comet-events")
    );

    // What the graph says each publisher's events reach.
    let mut friends: HashMap<u64, Vec<u64>> = HashMap::new();
    for (u, f) in PAIRS {
        friends.entry(u).or_default().push(f);
        friends.entry(f).or_default().push(u);
    }
    let reach = |p: u64| -> u64 {
        friends
            .get(&p)
            .map_or(0, |fs| fs.iter().map(|&f| streams(f)).sum())
    };
    let by_publisher = events_by_publisher(&last_seqs);
    assert_eq!(by_publisher.values().sum::<u64>(), 1200);
    assert!(
        by_publisher.len() >= 10,
        "uniform over 12: {by_publisher:?}"
    );
    let expected: u64 = by_publisher.iter().map(|(&p, &n)| n * reach(p)).sum();
    let unheard: u64 = by_publisher
        .iter()
        .filter(|&(&p, _)| reach(p) == 0)
        .map(|(_, &n)| n)
        .sum();
    assert!(expected > 1200 && unheard > 0, "{expected} {unheard}");
    assert_eq!(
        (sent.expected, sent.unheard, sent.uncertain),
        (Some(expected), Some(unheard), Some(0))
    );
    assert!(
        stdout.contains(&format!("events fanned out to {expected} connections")),
        "{stdout}"
    );

    // Each stream's welcome chunk, then one chunk per event it received.
    let flood = flood.stop_after(expected + u64::from(conns));
    assert_eq!((flood.events, flood.messages), (expected, expected));
    assert_eq!(flood.lost, 0);
    assert_eq!(flood.latency_us.count, expected);
    let stats = server.stats();
    assert_eq!((stats.events_in, stats.fanout_out), (1200, expected));
    assert_eq!(stats.events_unheard, unheard);
    server.shutdown().unwrap();
}

#[test]
fn a_server_without_a_graph_is_named_with_the_fix() {
    let server = server(None);
    let (output, summary) = run::msggen_json(&format!(
        "--target http://{} --publish comet-events --ids 1-10 --rate 1000 --count 100 --stop-after 5",
        server.admin_addr()
    ));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(2), "{stdout}");
    let first = summary.first_error.expect("the 404 is kept");
    assert_eq!(first.status, Some(404));
    assert!(
        first
            .hint
            .as_deref()
            .is_some_and(|h| h.contains("--friends FILE")),
        "{first:?}"
    );
    assert_eq!(summary.expected, Some(0));
    server.shutdown().unwrap();
}
