//! Part 3's subscription manager over loopback: events to a publisher's
//! online friends (`POST /publish`), broadcast, and the presence stream.

mod support;

use std::io::{Read, Write};
use std::time::Duration;

use c1m_server::{Config, Server};
use support::*;

/// 1's friends are 2, 3 and 4; 2 and 3 are friends; 5 has none.
fn friends_server() -> Server {
    server(Config {
        friends: Some(graph(&[(1, 2), (1, 3), (1, 4), (2, 3)])),
        ..config()
    })
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{body:?}: {e}"))
}

#[test]
fn an_event_reaches_every_connection_of_the_online_friends_only() {
    let server = friends_server();
    let addr = server.subscriber_addr();
    let mut twos = [Client::get(addr, "/test/2"), Client::get(addr, "/test/2")];
    let mut three = Client::get(addr, "/sse/3");
    let mut publisher = Client::get(addr, "/test/1");
    for c in &mut twos {
        c.expect("welcome");
    }
    three.expect("text/event-stream");
    publisher.expect("welcome");
    // 4 is offline: nothing is kept for it.
    let (status, body) = admin(&server, "POST", "/publish/1", b"hello friends");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        json(&body),
        json(r#"{"id":1,"friends":3,"online":2,"connections":3}"#)
    );
    for c in &mut twos {
        c.expect("d\r\nhello friends\r\n");
    }
    // The event is a message to 3: it takes 3's next sequence number.
    three.expect("id: 1\ndata: hello friends\n\n");
    assert!(stats_reach(&server, |s| (
        s.events_in,
        s.fanout_out,
        s.messages_out
    ) == (1, 3, 3)));
    // The publisher is not its own friend.
    let (_, body) = admin(&server, "POST", "/send/1", b"direct");
    assert!(body.contains(r#""connections":1"#), "{body}");
    assert!(publisher.expect("direct").contains("welcome"));
    assert!(!publisher.text().contains("hello friends"));
    // 4 connects later: the event was not kept for it.
    let mut four = Client::get(addr, "/sse/4");
    four.expect("text/event-stream");
    admin(&server, "POST", "/send/4", b"later");
    assert!(!four.expect("data: later").contains("hello friends"));
}

#[test]
fn an_event_from_a_user_without_friends_reaches_nobody() {
    let server = friends_server();
    let mut two = Client::get(server.subscriber_addr(), "/test/2");
    two.expect("welcome");
    for (id, friends) in [(5, 0), (999, 0), (4, 1)] {
        let (status, body) = admin(&server, "POST", &format!("/publish/{id}"), b"x");
        assert_eq!(status, 200);
        let answer = json(&body);
        assert_eq!(answer["friends"], friends, "{id}: {body}");
        assert_eq!(
            (answer["online"].as_u64(), answer["connections"].as_u64()),
            (Some(0), Some(0))
        );
    }
    assert!(stats_reach(&server, |s| (
        s.events_in,
        s.events_unheard,
        s.fanout_out
    ) == (3, 3, 0)));
}

#[test]
fn a_batch_of_events_keeps_each_publishers_order() {
    let server = friends_server();
    let addr = server.subscriber_addr();
    let mut two = Client::get(addr, "/test/2");
    let mut three = Client::get(addr, "/test/3");
    two.expect("welcome");
    three.expect("welcome");
    let mut body = String::new();
    for n in 1..=50 {
        body.push_str(&format!("1\tone-{n:02}\n3\tthree-{n:02}\n"));
    }
    body.push_str("no tab\n");
    let (status, answer) = admin(&server, "POST", "/publish", body.as_bytes());
    assert_eq!(status, 200, "{answer}");
    // 1 has 3 friends and reaches 2 and 3 (4 is offline); 3 has 2 and
    // reaches 2 (1 is offline).
    assert_eq!(
        json(&answer),
        json(
            r#"{"accepted":100,"rejected":1,"friends":250,"online":150,"connections":150,"unheard":0}"#
        )
    );
    two.expect("three-50");
    three.expect("one-50");
    let text = two.text();
    let order = |prefix: &str| {
        let mut at = 0;
        for n in 1..=50 {
            let found = text[at..].find(&format!("{prefix}-{n:02}")).unwrap();
            at += found + 1;
        }
    };
    order("one");
    order("three");
    assert!(
        !three.text().contains("three-"),
        "no one is their own friend"
    );
}

#[test]
fn publish_needs_a_graph() {
    let server = server(config());
    let (status, body) = admin(&server, "POST", "/publish/1", b"x");
    assert_eq!(status, 404);
    assert!(body.contains("--friends"), "{body}");
}

#[test]
fn a_broadcast_reaches_every_connection_once() {
    let server = server(Config {
        history: 4,
        ..config()
    });
    let addr = server.subscriber_addr();
    let mut test = Client::get(addr, "/test/1");
    let mut test_again = Client::get(addr, "/test/1");
    let mut sse = Client::get(addr, "/sse/2");
    let mut poll = Client::get_with(addr, "/poll/3?seq=0", "Connection: close\r\n");
    test.expect("welcome");
    test_again.expect("welcome");
    sse.expect("text/event-stream");
    assert!(stats_reach(&server, |s| s.logged_in == 4));
    let (status, body) = admin(&server, "POST", "/broadcast", b"to everyone");
    assert_eq!(status, 200, "{body}");
    for c in [&mut test, &mut test_again] {
        c.expect("b\r\nto everyone\r\n");
    }
    // No id: a broadcast is not in any id's numbering.
    assert!(!sse.expect("data: to everyone\n\n").contains("id:"));
    let answer = poll.read_to_close();
    assert!(
        answer.ends_with("\r\n\r\nbroadcast\t11\tto everyone\n"),
        "{answer:?}"
    );
    assert!(!answer.contains("X-Seq"), "{answer:?}");
    assert!(stats_reach(&server, |s| (s.broadcasts_in, s.broadcast_out) == (1, 4)));
    // After it, the ids' numbering goes on as before.
    admin(&server, "POST", "/send/2", b"next");
    admin(&server, "POST", "/send/1", b"next");
    sse.expect("id: 1\ndata: next");
    for c in [&mut test, &mut test_again] {
        c.expect("next");
        assert_eq!(c.text().matches("to everyone").count(), 1);
    }
}

/// Opens `GET /presence`; returns once the stream has started (the reader
/// is subscribed before its head is written).
fn presence(server: &Server, recv_buffer: Option<usize>) -> Client {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size).unwrap();
    }
    socket.connect(&server.admin_addr().into()).unwrap();
    let mut stream: std::net::TcpStream = socket.into();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
        .write_all(b"GET /presence HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut client = Client {
        stream,
        received: Vec::new(),
    };
    if recv_buffer.is_none() {
        client.expect("Transfer-Encoding: chunked\r\n\r\n");
    }
    client
}

#[test]
fn presence_says_when_an_id_gets_its_first_connection_and_loses_its_last() {
    let server = server(config());
    let addr = server.subscriber_addr();
    let mut reader = presence(&server, None);
    let mut first = Client::get(addr, "/test/7");
    first.expect("welcome");
    reader.expect("online 7\n");
    let mut second = Client::get(addr, "/sse/7");
    second.expect("event-stream");
    drop(first);
    assert!(stats_reach(&server, |s| s.logouts == 1));
    let mut other = Client::get(addr, "/test/8");
    other.expect("welcome");
    reader.expect("online 8\n");
    drop(second);
    reader.expect("offline 7\n");
    let lines: Vec<String> = reader
        .text()
        .lines()
        .filter(|l| l.starts_with("online") || l.starts_with("offline"))
        .map(str::to_owned)
        .collect();
    assert_eq!(lines, ["online 7", "online 8", "offline 7"]);
    assert_eq!(stats(&server).presence_readers, 1);
    drop(reader);
    assert!(stats_reach(&server, |s| s.presence_readers == 0));
}

#[test]
fn a_presence_reader_that_falls_behind_is_closed_and_logins_go_on() {
    let server = server(Config {
        presence_queue: 64,
        ..config()
    });
    let addr = server.subscriber_addr();
    // It never reads, with a small receive buffer.
    let mut slow = presence(&server, Some(2048));
    assert!(stats_reach(&server, |s| s.presence_readers == 1));
    // Rounds of 200 logins and logouts, until the kernel's buffers and the
    // reader's queue of 64 are full.
    let mut rounds = 0;
    while stats(&server).presence_closes == 0 {
        let mut clients: Vec<Client> = (0..200)
            .map(|n| Client::get(addr, &format!("/test/{n}")))
            .collect();
        for c in &mut clients {
            c.expect("welcome");
        }
        drop(clients);
        rounds += 1;
        assert!(rounds < 200, "the reader was never cut off");
    }
    assert!(stats_reach(&server, |s| s.presence_readers == 0));
    // Its connection is closed: reading drains what was sent, then ends.
    let mut sink = Vec::new();
    let _ = slow.stream.read_to_end(&mut sink);
    // Logins still work, and still nothing waits for a reader.
    let mut c = Client::get(addr, "/test/1");
    c.expect("welcome");
    assert_eq!(stats(&server).presence_closes, 1);
}

#[test]
fn a_presence_stream_ends_cleanly_when_the_server_stops() {
    let server = server(config());
    let mut reader = presence(&server, None);
    let mut c = Client::get(server.subscriber_addr(), "/test/3");
    c.expect("welcome");
    reader.expect("online 3\n");
    server.shutdown().unwrap();
    let text = reader.read_to_close();
    assert!(text.ends_with("0\r\n\r\n"), "{text:?}");
}

/// The binary refuses a bad graph before it listens, naming the line.
#[test]
fn the_binary_refuses_a_malformed_graph_before_it_serves() {
    let dir = tempfile::tempdir().unwrap();
    for (text, needle) in [
        ("user,friend\n1,2\n1,2\n", "line 3: 1,2 after 1,2"),
        ("user,friend\n1,2\n3,x\n", "line 3: expected `user,friend`"),
        (
            "user,friend\n1,2\n1,50\n",
            "line 3: id 50 is over 10, the server's --max-id",
        ),
        ("friends\n", "line 1: expected the header"),
    ] {
        let path = dir.path().join("friends.csv");
        std::fs::write(&path, text).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_comet-server"))
            .args([
                "--listen",
                "127.0.0.1:0",
                "--admin",
                "127.0.0.1:0",
                "--max-id",
                "10",
            ])
            .arg("--friends")
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{text:?}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(
            stderr.starts_with("comet-server: loading --friends ") && stderr.contains(needle),
            "{stderr}"
        );
        assert!(out.stdout.is_empty(), "it never listened");
    }
}

#[test]
fn events_and_broadcasts_no_transport_can_carry_are_refused() {
    let server = friends_server();
    for path in ["/publish/1", "/broadcast"] {
        let (status, body) = admin(&server, "POST", path, b"a\rid: 9");
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body.contains("CR"), "{body}");
    }
    let (status, body) = admin(&server, "POST", "/publish", b"1\tfine\n2\tbad\rline\n");
    assert_eq!(status, 200);
    let answer = json(&body);
    assert_eq!(
        (answer["accepted"].as_u64(), answer["rejected"].as_u64()),
        (Some(1), Some(1))
    );
}
