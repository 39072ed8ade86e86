//! End to end against the real comet-server (in-process, port 0): messages
//! posted to its `POST /send` batch endpoint arrive on floodtest's streams,
//! and floodtest's message, loss and latency figures match what was sent;
//! its `--json` summary matches `docs/schema/flood-summary.json` (checked
//! where `support` reads it).

mod support;

use c1m_common::unix_us_now;
use c1m_common::{encode_envelope, push_batch_line, Header};
use std::io::{BufRead, BufReader};

const CONNS: u64 = 200;
/// Sent to every id, in this order; 3 is skipped, so each stream loses one.
const SEQS: [u64; 3] = [1, 2, 4];

#[test]
fn delivery_latency_and_gaps_through_comet_server() {
    let listener = c1m_server::bind("127.0.0.1:0".parse().unwrap(), 1024, false).unwrap();
    let admin = c1m_server::bind("127.0.0.1:0".parse().unwrap(), 64, false).unwrap();
    let server = c1m_server::start(c1m_server::Config::default(), listener, admin).unwrap();
    let url = format!("http://{}/test/{{id}}", server.subscriber_addr());
    let conns = CONNS.to_string();
    let mut held = support::hold(&[
        "--url",
        &url,
        "--conns",
        &conns,
        "--report-interval",
        "100ms",
    ]);
    assert!(held.ramp_line.contains(&format!("open {CONNS}/{CONNS}")));

    let sent_before = unix_us_now();
    let mut body = Vec::new();
    for seq in SEQS {
        for id in 1..=CONNS {
            let header = Header {
                id,
                generator: 3,
                seq,
                sent_us: unix_us_now(),
            };
            push_batch_line(&mut body, id, |out| {
                encode_envelope(&header, b"payload", out)
            })
            .unwrap();
        }
    }
    let answer = support::admin_post(server.admin_addr(), "/send", &body);
    let delivered = CONNS * SEQS.len() as u64;
    assert!(
        answer.contains(&format!("\"delivered\":{delivered}")),
        "{answer}"
    );

    // Every stream's last message (seq 4) reveals its gap, and comes after
    // seq 1 and 2 on the same stream: once all gaps are counted, all
    // messages have arrived.
    let lost = format!("lost {CONNS} ");
    let stdout = BufReader::new(held.child.stdout.take().unwrap());
    // Reading stops here and the pipe closes: floodtest must carry on
    // (no panic on a closed stdout) and still write its summary.
    let seen = stdout
        .lines()
        .map(Result::unwrap)
        .find(|l| l.contains(&lost));
    assert!(seen.is_some(), "floodtest ended before counting {lost}");
    let waited_us = unix_us_now() - sent_before;
    held.signal(libc::SIGTERM);
    let (code, summary) = held.wait();
    assert_eq!(code, Some(0));
    let s = summary.unwrap();
    assert_eq!((s.messages, s.lost), (delivered, CONNS), "{s:?}");
    assert_eq!(s.latency_us.count, delivered);
    // Each latency is receive time - sent_us, so none exceeds the time from
    // the first envelope's stamp to the moment the last was seen.
    assert!(s.latency_us.max <= waited_us, "{s:?} waited {waited_us}us");
    assert!(s.latency_us.p50 <= s.latency_us.p99 && s.latency_us.p99 <= s.latency_us.max);
    assert_eq!((s.open, s.closed), (CONNS, CONNS));
    server.shutdown().unwrap();
}

/// Events fanned out by comet-server's friends graph: floodtest counts every
/// one, and its count is exactly the sum of the `connections` the server's
/// `/publish` answers reported and the server's own `fanout_out`.
#[test]
fn fanned_out_events_are_counted_exactly_against_the_publish_answers() {
    const USERS: u64 = 100;
    // A ring, and user 1 friends with everyone.
    let mut graph = b"user,friend\n".to_vec();
    for u in 1..USERS {
        c1m_common::push_friendship(&mut graph, u, u + 1);
        if u == 1 {
            for f in 3..=USERS {
                c1m_common::push_friendship(&mut graph, 1, f);
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("friends.csv");
    std::fs::write(&path, graph).unwrap();
    let friends = c1m_server::FriendsGraph::load(&path, u64::MAX).unwrap();
    let config = c1m_server::Config {
        friends: Some(std::sync::Arc::new(friends)),
        ..c1m_server::Config::default()
    };
    let listener = c1m_server::bind("127.0.0.1:0".parse().unwrap(), 1024, false).unwrap();
    let admin = c1m_server::bind("127.0.0.1:0".parse().unwrap(), 64, false).unwrap();
    let server = c1m_server::start(config, listener, admin).unwrap();
    let url = format!("http://{}/test/{{id}}", server.subscriber_addr());
    let users = USERS.to_string();
    let mut held = support::hold(&[
        "--url",
        &url,
        "--conns",
        &users,
        "--report-interval",
        "100ms",
    ]);

    let mut expected = 0;
    for round in 1..=3 {
        let mut body = Vec::new();
        for publisher in 1..=USERS {
            let header = Header {
                id: publisher,
                generator: 5,
                seq: round,
                sent_us: unix_us_now(),
            };
            push_batch_line(&mut body, publisher, |out| {
                c1m_common::encode_event(&header, b"event", out)
            })
            .unwrap();
        }
        let answer: c1m_common::PublishBatchAnswer =
            serde_json::from_str(&support::admin_post(server.admin_addr(), "/publish", &body))
                .unwrap();
        assert_eq!((answer.accepted, answer.unheard), (USERS, Some(0)));
        expected += answer
            .connections
            .expect("one process says what it reached");
    }
    // Everyone is online: each friendship is two deliveries a round.
    let friendships = (USERS - 1) + (USERS - 2);
    assert_eq!(expected, 3 * 2 * friendships);
    // A /test stream counts one chunk per envelope after its welcome.
    let stdout = BufReader::new(held.child.stdout.take().unwrap());
    let all_in = format!("Stats: {{{USERS},0,{}}}", USERS + expected);
    let seen = stdout
        .lines()
        .map(Result::unwrap)
        .find(|l| l.contains(&all_in));
    assert!(seen.is_some(), "floodtest never counted {all_in}");
    held.signal(libc::SIGTERM);
    let (code, summary) = held.wait();
    assert_eq!(code, Some(0));
    let s = summary.unwrap();
    assert_eq!(
        (s.messages, s.events, s.lost),
        (expected, expected, 0),
        "{s:?}"
    );
    assert_eq!(server.stats().fanout_out, expected);
    server.shutdown().unwrap();
}
