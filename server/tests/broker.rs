//! `--broker`: groups joined through a real nats-server (started by the
//! test on a free loopback port): delivery across processes, logout,
//! history with group tokens, friends' events and broadcasts across
//! groups, the broker's loss and return, a 3-node cluster.

mod support;

use std::time::Duration;

use support::binary::Binary;
use support::nats::{free_port, Nats};
use support::*;

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body:?}"))
}

/// Waits until the front says it is connected to NATS.
fn connected(server: &Binary) -> bool {
    server.stats_reach(Duration::from_secs(10), |s| {
        s.broker.as_ref().is_some_and(|b| b.connected)
    })
}

#[test]
fn a_send_on_either_group_reaches_both_and_logout_ends_interest() {
    let nats = Nats::start();
    let url = nats.url();
    let a = Binary::start(&["--workers", "2", "--broker", &url]);
    let b = Binary::start(&["--broker", &url, "--reactors", "1"]);
    assert!(connected(&a) && connected(&b));
    let mut on_a = Client::get(a.listen, "/test/1");
    let mut on_b = Client::get(b.listen, "/test/1");
    let mut other = Client::get(b.listen, "/test/2");
    for c in [&mut on_a, &mut on_b, &mut other] {
        c.expect("welcome");
    }
    let (status, body) = a.admin("POST", "/send", b"1\tfrom-a\n2\tto-two\nbad\n");
    assert_eq!(status, 200);
    // Broker mode: accepted once NATS has it; deliveries are not known here.
    assert_eq!(json(&body), json(r#"{"accepted":2,"rejected":1}"#));
    on_a.expect("from-a\r\n");
    on_b.expect("from-a\r\n");
    other.expect("to-two\r\n");
    let (_, one) = b.admin("POST", "/send/1", b"from-b");
    assert_eq!(json(&one), json(r#"{"accepted":1,"rejected":0}"#));
    on_a.expect("from-b\r\n");
    on_b.expect("from-b\r\n");

    // Logout: B's connection of id 1 goes; a message for 1 still reaches
    // A, and B counts it as reaching no connection there.
    drop(on_b);
    assert!(b.stats_reach(Duration::from_secs(5), |s| s.logged_in == 1));
    let dropped_before = b.stats().broker.unwrap().dropped;
    a.admin("POST", "/send", b"1\tafter\n");
    on_a.expect("after\r\n");
    assert!(b.stats_reach(Duration::from_secs(5), |s| {
        s.broker.as_ref().unwrap().dropped == dropped_before + 1
    }));
    let sa = a.stats();
    let broker = sa.broker.unwrap();
    assert_eq!((broker.published, broker.undeliverable), (3, 0));
    // Each group received every message once: NATS delivers once per group.
    assert_eq!(broker.received, 4);
    assert_eq!(b.stats().broker.unwrap().received, 4);
    // Every message reached each connection once.
    assert_eq!(on_a.text().matches("from-a").count(), 1);
}

#[test]
fn history_replays_within_a_group_and_a_foreign_event_id_gets_the_loss_notice() {
    let nats = Nats::start();
    let a = Binary::start(&["--workers", "2", "--history", "10", "--broker", &nats.url()]);
    assert!(connected(&a));
    let mut first = Client::get(a.listen, "/sse/9");
    first.expect("\r\n\r\n");
    a.admin("POST", "/send/9", b"one");
    let text = first.expect("data: one\n");
    // The event id carries the group's token in its high bits.
    let id: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("id: "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(id > 1 << 32, "a token-marked id: {id}");
    drop(first);
    a.admin("POST", "/send/9", b"two");
    a.admin("POST", "/send/9", b"three");
    // Back with its last id, on whichever worker: exactly the gap.
    for _ in 0..6 {
        let mut again = Client::get_with(a.listen, "/sse/9", &format!("Last-Event-ID: {id}\r\n"));
        again.expect("data: three\n");
        assert!(again
            .text()
            .contains(&format!("id: {}\ndata: two\n", id + 1)));
        assert!(!again.text().contains("event: lost"));
    }
    // A number from elsewhere (plain numbering, another group) is never
    // taken for ours.
    let mut foreign = Client::get_with(a.listen, "/sse/9", "Last-Event-ID: 2\r\n");
    foreign.expect(&format!("event: lost\nid: {}\n", id + 2));
    assert!(!foreign.text().contains("data: two"));
    let mut poll = Client::get(a.listen, "/poll/9?seq=1");
    poll.expect(&format!("lost\t{id}-{}\n", id + 2));
}

#[test]
fn when_nats_goes_away_sends_get_503_and_delivery_resumes_once_it_returns() {
    let mut nats = Nats::start();
    let port = nats.port;
    let a = Binary::start(&["--workers", "2", "--broker", &nats.url()]);
    assert!(connected(&a));
    let mut c = Client::get(a.listen, "/test/3");
    c.expect("welcome");
    assert_eq!(a.admin("POST", "/send", b"3\tbefore\n").0, 200);
    c.expect("before\r\n");

    nats.kill();
    assert!(a.stats_reach(Duration::from_secs(10), |s| {
        !s.broker.as_ref().unwrap().connected
    }));
    let (status, body) = a.admin("POST", "/send", b"3\twhile-down\n3\ttoo\n");
    assert_eq!(status, 503, "{body}");
    let down = a.stats();
    assert!(down.broker.as_ref().unwrap().undeliverable >= 2);
    assert_eq!(down.logged_in, 1, "the subscriber stays connected");

    nats = Nats::start_on(port, None, &[]);
    assert!(connected(&a), "reconnected with backoff");
    // Re-subscribed: a message sent now arrives.
    assert!(eventually(Duration::from_secs(10), || a
        .admin("POST", "/send", b"3\tafter\n")
        .0
        == 200));
    c.expect("after\r\n");
    let text = c.text();
    assert!(
        !text.contains("while-down") && !text.contains("too"),
        "{text}"
    );
    assert_eq!(text.matches("before").count(), 1);
    assert_eq!(text.matches("after").count(), 1, "nothing twice: {text}");
    let up = a.stats().broker.unwrap();
    assert!(up.connected && up.reconnects >= 1, "{up:?}");
    assert!(up.last_error.is_some());
    drop(nats);
}

#[test]
fn a_three_node_cluster_carries_a_message_posted_to_either_group_to_both() {
    let ports = [free_port(), free_port(), free_port()];
    let nodes: Vec<Nats> = (0..3)
        .map(|i| {
            let peers: Vec<u16> = ports.iter().copied().filter(|&p| p != ports[i]).collect();
            Nats::cluster_node(ports[i], &peers)
        })
        .collect();
    let a = Binary::start(&["--workers", "2", "--broker", &nodes[0].url()]);
    let b = Binary::start(&["--broker", &nodes[2].url(), "--reactors", "1"]);
    assert!(connected(&a) && connected(&b));
    let mut on_a = Client::get(a.listen, "/test/11");
    let mut on_b = Client::get(b.listen, "/test/11");
    on_a.expect("welcome");
    on_b.expect("welcome");
    // The routes between the nodes come up after the nodes do: probe until
    // one message crosses, then count from there.
    let mut probe = 0;
    assert!(eventually(Duration::from_secs(10), || {
        probe += 1;
        a.admin("POST", "/send", format!("11\tprobe-{probe}\n").as_bytes());
        std::thread::sleep(Duration::from_millis(50));
        let _ = on_b
            .stream
            .set_read_timeout(Some(Duration::from_millis(50)));
        let mut buf = [0u8; 4096];
        if let Ok(n) = std::io::Read::read(&mut on_b.stream, &mut buf) {
            on_b.received.extend_from_slice(&buf[..n]);
        }
        on_b.text().contains("probe-")
    }));
    let _ = on_b.stream.set_read_timeout(Some(Duration::from_secs(5)));
    a.admin("POST", "/send", b"11\tvia-node-1\n");
    b.admin("POST", "/send", b"11\tvia-node-3\n");
    for c in [&mut on_a, &mut on_b] {
        c.expect("via-node-1\r\n");
        c.expect("via-node-3\r\n");
        assert_eq!(c.text().matches("via-node-").count(), 2);
    }
}

/// 1's friends are 2, 3 and 4; 5's only friend is 6.
fn graph_file(dir: &tempfile::TempDir) -> String {
    let path = dir.path().join("friends.csv");
    std::fs::write(&path, "user,friend\n1,2\n1,3\n1,4\n5,6\n").unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn events_and_broadcasts_posted_to_any_group_reach_every_group() {
    let dir = tempfile::tempdir().unwrap();
    let graph = graph_file(&dir);
    let nats = Nats::start();
    let url = nats.url();
    let a = Binary::start(&["--workers", "2", "--broker", &url, "--friends", &graph]);
    let b = Binary::start(&["--broker", &url, "--reactors", "1", "--friends", &graph]);
    // A group without the graph: it cannot fan events out, and says why.
    let c = Binary::start(&["--broker", &url, "--reactors", "1"]);
    assert!(connected(&a) && connected(&b) && connected(&c));
    // 2 and 3 on A, 3 and 4 on B; 9, no one's friend, on C.
    let mut on_a = [
        Client::get(a.listen, "/test/2"),
        Client::get(a.listen, "/sse/3"),
    ];
    let mut on_b = [
        Client::get(b.listen, "/test/3"),
        Client::get(b.listen, "/test/4"),
    ];
    let mut on_c = Client::get(c.listen, "/test/9");
    for client in on_a.iter_mut().chain(&mut on_b).chain([&mut on_c]) {
        client.expect("200 OK");
    }
    for (server, held) in [(&a, 2), (&b, 2), (&c, 1)] {
        assert!(server.stats_reach(Duration::from_secs(5), |s| s.logged_in == held));
    }

    // Known where it was posted: NATS took it, and 1 has 3 friends.
    let (status, one) = a.admin("POST", "/publish/1", b"news-1");
    assert_eq!((status, json(&one)), (200, json(r#"{"id":1,"friends":3}"#)));
    let (status, batch) = b.admin(
        "POST",
        "/publish",
        b"1\tnews-2\n1\tnews-3\n5\tto six\nbad\n",
    );
    assert_eq!(status, 200, "{batch}");
    assert_eq!(
        json(&batch),
        json(r#"{"accepted":3,"rejected":1,"friends":7}"#)
    );
    for client in on_a.iter_mut().chain(&mut on_b) {
        client.expect("news-3");
        // Each once, in the publisher's order.
        let text = client.text();
        let at = |s: &str| text.find(s).unwrap_or_else(|| panic!("{s} in {text:?}"));
        assert!(at("news-1") < at("news-2") && at("news-2") < at("news-3"));
        assert_eq!(text.matches("news-").count(), 3, "{text}");
    }
    // Every group routed the four events through its own graph; 6 is
    // offline everywhere, so the event from 5 reached no one.
    for server in [&a, &b] {
        assert!(server.stats_reach(Duration::from_secs(5), |s| s.events_in == 4));
        let s = server.stats();
        assert_eq!(s.events_unheard, 1);
        assert_eq!(s.broker.unwrap().undeliverable, 0);
    }
    // A and B each delivered 6 (two friends' connections, three events).
    assert!(a.stats_reach(Duration::from_secs(5), |s| s.fanout_out == 6));
    assert!(b.stats_reach(Duration::from_secs(5), |s| s.fanout_out == 6));
    assert!(c.stats_reach(Duration::from_secs(5), |s| {
        s.broker.as_ref().unwrap().undeliverable == 4
    }));
    let error = c.stats().broker.unwrap().last_error.unwrap_or_default();
    assert!(error.contains("--friends"), "{error}");

    // A broadcast posted to C reaches every connection of every group.
    let (status, sent) = c.admin("POST", "/broadcast", b"to everyone");
    assert_eq!((status, json(&sent)), (200, json("{}")));
    for client in on_a.iter_mut().chain(&mut on_b).chain([&mut on_c]) {
        client.expect("to everyone");
    }
    for server in [&a, &b, &c] {
        assert!(server.stats_reach(Duration::from_secs(5), |s| s.broadcasts_in == 1));
    }
    assert!(!on_c.text().contains("news-"));
}
