//! `--workers`: a front and its worker processes serving as one server,
//! each id served by its owner, connections handed over between workers.

mod support;

use std::time::Duration;

use support::binary::{signal, Binary};
use support::*;

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body:?}"))
}

#[test]
fn a_group_serves_every_id_from_its_owner_and_answers_as_one_server() {
    const N: u64 = 60;
    let mut group = Binary::start(&["--workers", "3"]);
    let mut clients: Vec<Client> = (0..N)
        .map(|id| Client::get(group.listen, &format!("/test/{id}")))
        .collect();
    for (id, c) in clients.iter_mut().enumerate() {
        c.expect(&format!("welcome, id: {id}\n"));
    }
    assert!(group.stats_reach(Duration::from_secs(5), |s| s.logged_in == N));

    let mut batch: String = (0..N).map(|id| format!("{id}\tm{id}\n")).collect();
    batch.push_str("100\tnobody\nno tab\n");
    let (status, body) = group.admin("POST", "/send", batch.as_bytes());
    assert_eq!(status, 200);
    assert_eq!(
        json(&body),
        json(r#"{"accepted":61,"rejected":1,"delivered":60,"dropped":1,"connections":60}"#)
    );
    for (id, c) in clients.iter_mut().enumerate() {
        c.expect(&format!("m{id}\r\n"));
    }
    let (_, one) = group.admin("POST", "/send/7", b"single");
    assert_eq!(json(&one), json(r#"{"id":7,"connections":1}"#));
    clients[7].expect("single\r\n");
    let (_, check) = group.admin("GET", "/check/8", b"");
    assert_eq!(
        json(&check),
        json(r#"{"id":8,"online":true,"connections":1}"#)
    );

    let s = group.stats();
    let g = s.group.clone().unwrap();
    assert_eq!((g.workers, g.workers_up, g.restarts), (3, 3, 0));
    // Every worker holds exactly the ids it owns.
    for w in &s.workers {
        assert_eq!(w.stats.logged_in, N / 3, "worker {}", w.index);
    }
    assert_eq!(s.accepted, N);
    assert_eq!(s.handed_off, s.handed_in);
    // 60 connections spread by the kernel over 3 workers: about 40 land on
    // a worker that does not own their id.
    assert!(s.handed_off > 0 && g.handoffs == s.handed_off, "{s:?}");
    assert_eq!(s.messages_out, N + 1);
    let (_, metrics) = group.admin("GET", "/metrics", b"");
    assert!(
        metrics.contains("comet_worker_logged_in{worker=\"2\"} 20\n"),
        "{metrics}"
    );
    assert!(metrics.contains("comet_logged_in 60\n"));

    assert!(group.stop(), "the front exits 0");
    for c in &mut clients {
        assert!(
            c.read_to_close().ends_with("0\r\n\r\n"),
            "streams end cleanly"
        );
    }
}

#[test]
fn concurrent_publishers_are_each_told_exactly_what_their_own_lines_reached() {
    // Ids 0-29 online, 0-9 with two connections; 30-39 offline. The
    // front's lanes carry several publishers' lines in one worker request
    // and must still answer each publisher for its own lines.
    let group = Binary::start(&["--workers", "3"]);
    let mut clients: Vec<Client> = (0..40u64)
        .filter(|&id| id < 30)
        .chain(0..10)
        .map(|id| Client::get(group.listen, &format!("/test/{id}")))
        .collect();
    for c in &mut clients {
        c.expect("welcome");
    }
    assert!(group.stats_reach(Duration::from_secs(5), |s| s.logged_in == 40));
    let reached = |id: u64| match id {
        0..10 => 2,
        10..30 => 1,
        _ => 0,
    };
    const PUBLISHERS: u64 = 8;
    const REQUESTS: u64 = 25;
    let lines_of =
        |p: u64, r: u64| -> Vec<u64> { (0..5).map(|k| (p * 7 + r * 3 + k * 11) % 40).collect() };
    std::thread::scope(|scope| {
        for p in 0..PUBLISHERS {
            let group = &group;
            scope.spawn(move || {
                for r in 0..REQUESTS {
                    let ids = lines_of(p, r);
                    let body: String = ids.iter().map(|id| format!("{id}\tp{p}r{r}\n")).collect();
                    let (status, answer) = group.admin("POST", "/send", body.as_bytes());
                    assert_eq!(status, 200, "{answer}");
                    let online = ids.iter().filter(|&&id| reached(id) > 0).count();
                    let connections: u64 = ids.iter().map(|&id| reached(id)).sum();
                    let want = serde_json::json!({
                        "accepted": 5, "rejected": 0, "delivered": online,
                        "dropped": 5 - online, "connections": connections,
                    });
                    assert_eq!(json(&answer), want, "publisher {p} request {r}");
                }
            });
        }
    });
    let lines: Vec<u64> = (0..PUBLISHERS)
        .flat_map(|p| (0..REQUESTS).flat_map(move |r| lines_of(p, r)))
        .collect();
    let connections: u64 = lines.iter().map(|&id| reached(id)).sum();
    assert!(group.stats_reach(Duration::from_secs(5), |s| s.messages_out == connections));
    let s = group.stats();
    assert_eq!(s.messages_in, lines.len() as u64);
    let g = s.group.unwrap();
    assert_eq!(g.undeliverable, 0);
    // At most one request per worker per publisher request (fewer when
    // lines queued behind one in flight).
    let parts = PUBLISHERS * REQUESTS * 3;
    assert!(g.worker_sends > 0 && g.worker_sends <= parts, "{g:?}");
}

#[test]
fn a_message_a_line_cannot_carry_still_reaches_its_id_through_a_group() {
    let group = Binary::start(&["--workers", "2"]);
    let mut c = Client::get(group.listen, "/test/3");
    c.expect("welcome");
    assert!(group.stats_reach(Duration::from_secs(5), |s| s.logged_in == 1));
    let (status, body) = group.admin("POST", "/send/3", b"two\nlines");
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body), json(r#"{"id":3,"connections":1}"#));
    c.expect("two\nlines\r\n");
}

#[test]
fn send_each_is_refused_on_every_public_admin_listener() {
    let group = Binary::start(&["--workers", "2"]);
    let standalone = Binary::start(&[]);
    for server in [&group, &standalone] {
        let (status, body) = server.admin("POST", "/send-each", b"2\thi\n");
        assert_eq!(status, 404, "{body}");
        assert!(body.contains("POST /send"), "{body}");
    }
    assert_eq!(group.stats().messages_in, 0);
}

#[test]
fn a_reconnecting_client_gets_its_gap_from_whichever_worker_it_lands_on() {
    let group = Binary::start(&["--workers", "2", "--history", "10"]);
    let (_, _) = group.admin("POST", "/send/5", b"first");
    let mut last = 1;
    // Each reconnection lands on either worker (the kernel's hash); the
    // owner serves it, so the replay is exact every time.
    for round in 2..14 {
        let (_, _) = group.admin("POST", "/send/5", format!("m{round}").as_bytes());
        let mut c = Client::get_with(
            group.listen,
            "/sse/5",
            &format!("Last-Event-ID: {last}\r\n"),
        );
        c.expect(&format!("id: {round}\ndata: m{round}\n\n"));
        assert!(!c.text().contains("event: lost"), "{}", c.text());
        assert_eq!(
            c.text().matches("data: ").count(),
            1,
            "only the gap: {}",
            c.text()
        );
        last = round;
    }
    let s = group.stats();
    assert_eq!(s.lost_notices, 0);
    // 12 connections on 2 workers: all on the owner has odds of 1 in 4,096.
    assert!(s.handed_off > 0, "{:?}", s);
}

#[test]
fn a_worker_that_dies_is_restarted_under_its_index_and_counted() {
    const N: u64 = 20;
    let group = Binary::start(&["--workers", "2"]);
    let mut clients: Vec<Client> = (0..N)
        .map(|id| Client::get(group.listen, &format!("/test/{id}")))
        .collect();
    for c in &mut clients {
        c.expect("welcome");
    }
    assert!(group.stats_reach(Duration::from_secs(5), |s| s.logged_in == N));
    let victim = group.stats().workers[0].pid;
    signal(victim, libc::SIGKILL);
    // Its clients (the even ids) see their connection close; the others stay.
    for (id, c) in clients.iter_mut().enumerate() {
        if id % 2 == 0 {
            c.read_to_close();
        }
    }
    assert!(group.stats_reach(Duration::from_secs(10), |s| {
        let g = s.group.clone().unwrap();
        g.restarts == 1 && g.workers_up == 2 && s.workers[0].pid != victim
    }));
    let s = group.stats();
    assert_eq!(s.workers[0].restarts, 1);
    assert_eq!(s.logged_in, N / 2, "the odd ids stayed");
    // The restarted worker serves its ids again.
    let mut again = Client::get(group.listen, "/test/4");
    again.expect("welcome");
    assert!(group.stats_reach(Duration::from_secs(5), |s| s.logged_in == N / 2 + 1));
    let (_, body) = group.admin("POST", "/send", b"4\tback\n5\tstill\n");
    assert_eq!(json(&body)["delivered"], 2);
    again.expect("back\r\n");
    clients[5].expect("still\r\n");
}

/// The changes a presence reader has received, in order.
fn presence_lines(reader: &Client) -> Vec<String> {
    reader
        .text()
        .lines()
        .filter(|l| l.starts_with("online ") || l.starts_with("offline "))
        .map(str::to_owned)
        .collect()
}

#[test]
fn presence_at_the_front_relays_every_worker_and_closes_readers_when_one_dies() {
    let group = Binary::start(&["--workers", "2"]);
    let mut reader = Client::get(group.admin, "/presence");
    // The head comes once every worker's stream is open: nothing after it
    // is missed.
    reader.expect("chunked\r\n\r\n");
    let mut one = Client::get(group.listen, "/test/1");
    let mut two = Client::get(group.listen, "/test/2");
    one.expect("welcome");
    two.expect("welcome");
    let mut two_again = Client::get(group.listen, "/sse/2");
    two_again.expect("event-stream");
    drop(two);
    assert!(group.stats_reach(Duration::from_secs(5), |s| s.logouts == 1));
    drop(one);
    reader.expect("offline 1\n");
    let mut lines = presence_lines(&reader);
    // Worker 1's lines (id 1) keep their order; worker 0's (id 2) come
    // beside them.
    let at = |l: &str| lines.iter().position(|x| x == l).unwrap();
    assert!(at("online 1") < at("offline 1"), "{lines:?}");
    lines.sort();
    assert_eq!(lines, ["offline 1", "online 1", "online 2"]);
    // The group has one reader; each worker's is the front's relay.
    let s = group.stats();
    assert_eq!(s.presence_readers, 1);
    assert!(s.workers.iter().all(|w| w.stats.presence_readers == 1));

    // The last reader gone, the next change closes the relay.
    drop(reader);
    let mut three = Client::get(group.listen, "/test/3");
    three.expect("welcome");
    let mut four = Client::get(group.listen, "/test/4");
    four.expect("welcome");
    assert!(group.stats_reach(Duration::from_secs(5), |s| {
        s.presence_readers == 0 && s.workers.iter().all(|w| w.stats.presence_readers == 0)
    }));

    // A worker dies: its lines are lost, so the reader is closed, counted.
    let mut reader = Client::get(group.admin, "/presence");
    reader.expect("chunked\r\n\r\n");
    signal(group.stats().workers[0].pid, libc::SIGKILL);
    reader.read_to_close();
    assert!(group.stats_reach(Duration::from_secs(10), |s| {
        let g = s.group.as_ref().unwrap();
        s.presence_closes == 1 && s.presence_readers == 0 && g.restarts == 1 && g.workers_up == 2
    }));
    // A new reader relays the restarted worker too.
    let mut reader = Client::get(group.admin, "/presence");
    reader.expect("chunked\r\n\r\n");
    let mut six = Client::get(group.listen, "/test/6");
    six.expect("welcome");
    reader.expect("online 6\n");
    drop(six);
    reader.expect("offline 6\n");
    assert_eq!(presence_lines(&reader), ["online 6", "offline 6"]);
}
