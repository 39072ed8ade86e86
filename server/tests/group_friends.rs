//! `--friends` with `--workers`: the front holds the graph and fans each
//! event out to the workers that own its publisher's friends; the answers
//! and `/stats` read as one process's would.

mod support;

use std::time::Duration;

use support::binary::{signal, Binary};
use support::*;

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body:?}"))
}

/// 1's friends are 2-6 (owned by workers 2, 0, 1, 2, 0 of 3); 7's only
/// friend is 6; 8 has none.
fn graph_file(dir: &tempfile::TempDir) -> String {
    let mut text = String::from("user,friend\n");
    for (u, f) in [(1, 2), (1, 3), (1, 4), (1, 5), (1, 6), (6, 7)] {
        text.push_str(&format!("{u},{f}\n"));
    }
    let path = dir.path().join("friends.csv");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn events_reach_the_online_friends_on_every_worker_as_from_one_server() {
    let dir = tempfile::tempdir().unwrap();
    let graph = graph_file(&dir);
    let group = Binary::start(&["--workers", "3", "--friends", &graph]);
    // 2, 3, 4 online, 5 twice; 6 offline.
    let mut friends: Vec<Client> = ["/test/2", "/test/3", "/sse/4", "/test/5", "/test/5"]
        .iter()
        .map(|path| Client::get(group.listen, path))
        .collect();
    assert!(group.stats_reach(Duration::from_secs(5), |s| s.logged_in == 5));

    let (status, one) = group.admin("POST", "/publish/1", b"hello friends");
    assert_eq!(status, 200, "{one}");
    assert_eq!(
        json(&one),
        json(r#"{"id":1,"friends":5,"online":4,"connections":5}"#)
    );
    for c in &mut friends {
        c.expect("hello friends");
    }

    let mut batch = String::new();
    for n in 1..=50 {
        batch.push_str(&format!("1\tone-{n:02}\n"));
    }
    batch.push_str("7\tto six, offline\n8\tno friends\nno tab\n");
    let (status, answer) = group.admin("POST", "/publish", batch.as_bytes());
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        json(&answer),
        json(
            r#"{"accepted":52,"rejected":1,"friends":251,"online":200,"connections":250,"unheard":2}"#
        )
    );
    for c in &mut friends {
        c.expect("one-50");
        let text = c.text();
        let mut at = 0;
        for n in 1..=50 {
            let found = text[at..].find(&format!("one-{n:02}")).expect("in order");
            at += found + 1;
        }
        assert!(!text.contains("offline") && !text.contains("no friends"));
    }
    assert!(group.stats_reach(Duration::from_secs(5), |s| s.fanout_out == 255));
    let s = group.stats();
    assert_eq!((s.events_in, s.events_unheard), (53, 2));
    assert_eq!(s.group.unwrap().undeliverable, 0);
    // Each worker delivered to the connections it holds: 2 and 5 (worker
    // 2) hold three, 3 (worker 0) one, 4 (worker 1) one, 51 events each.
    let by_worker: Vec<u64> = s.workers.iter().map(|w| w.stats.fanout_out).collect();
    assert_eq!(by_worker, [51, 51, 153]);
}

#[test]
fn fanout_is_refused_on_every_public_admin_listener() {
    let dir = tempfile::tempdir().unwrap();
    let graph = graph_file(&dir);
    let group = Binary::start(&["--workers", "2", "--friends", &graph]);
    let standalone = Binary::start(&["--friends", &graph]);
    for server in [&group, &standalone] {
        let (status, body) = server.admin("POST", "/fanout", b"2\t2\thi\n");
        assert_eq!(status, 404, "{body}");
        assert!(body.contains("POST /publish"), "{body}");
    }
    assert_eq!(group.stats().fanout_out, 0);
}

#[test]
fn a_stopped_worker_loses_its_share_and_the_others_are_answered() {
    let dir = tempfile::tempdir().unwrap();
    let graph = graph_file(&dir);
    let group = Binary::start(&[
        "--workers",
        "3",
        "--friends",
        &graph,
        "--worker-timeout",
        "300ms",
    ]);
    // 2 (worker 2), 3 (worker 0) and 4 (worker 1) online.
    let mut friends: Vec<Client> = ["/test/2", "/test/3", "/test/4"]
        .iter()
        .map(|path| Client::get(group.listen, path))
        .collect();
    assert!(group.stats_reach(Duration::from_secs(5), |s| s.logged_in == 3));
    let stopped = group.stats().workers[1].pid;
    signal(stopped, libc::SIGSTOP);

    // Worker 1 answers nothing: its share is lost, the rest delivered, and
    // the answers come within the timeout instead of never.
    let started = std::time::Instant::now();
    let (status, one) = group.admin("POST", "/publish/1", b"while stopped");
    assert_eq!(status, 200, "{one}");
    assert_eq!(
        json(&one),
        json(r#"{"id":1,"friends":5,"online":2,"connections":2}"#)
    );
    friends[0].expect("while stopped");
    friends[1].expect("while stopped");
    let (status, sent) = group.admin("POST", "/send", b"3\tdirect\n4\tlost\n");
    assert_eq!(status, 200, "{sent}");
    assert_eq!(json(&sent)["delivered"], 1);
    assert_eq!(json(&sent)["dropped"], 1);
    friends[1].expect("direct");
    let s = group.stats();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let g = s.group.unwrap();
    assert_eq!((g.workers_up, g.undeliverable), (2, 2));
    assert!(!s.workers[1].up);

    // Back: the worker serves its ids again (what it read while stopped it
    // may still deliver: its share was counted lost, not retried).
    signal(stopped, libc::SIGCONT);
    assert!(group.stats_reach(Duration::from_secs(5), |s| {
        s.group.as_ref().unwrap().workers_up == 3
    }));
    let (status, again) = group.admin("POST", "/send/4", b"after");
    assert_eq!(
        (status, json(&again)["connections"].as_u64()),
        (200, Some(1)),
        "{again}"
    );
    friends[2].expect("after");
}
