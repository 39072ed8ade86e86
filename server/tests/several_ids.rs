//! One connection logged in under several ids (`/test/1,2,3`), as Part 2's
//! router allows: every message of each, logged out of all on close, the
//! limit enforced, SSE events that name their id.

mod support;

use c1m_server::Config;
use support::*;

fn connections(server: &c1m_server::Server, id: u64) -> u64 {
    let (_, body) = admin(server, "GET", &format!("/check/{id}"), b"");
    let answer: c1m_common::CheckAnswer = serde_json::from_str(&body).unwrap();
    answer.connections
}

#[test]
fn a_stream_of_several_ids_gets_each_ids_messages_once_and_leaves_all_on_close() {
    let server = server(config());
    let mut c = Client::get(server.subscriber_addr(), "/test/11,12,13");
    c.expect("c1m welcome, ids: 11,12,13\n");
    assert_eq!(
        (1..=3)
            .map(|n| connections(&server, 10 + n))
            .collect::<Vec<_>>(),
        [1, 1, 1]
    );
    let (_, answer) = admin(
        &server,
        "POST",
        "/send",
        b"11\tto-11\n13\tto-13\n12\tto-12\n14\tnot-mine\n",
    );
    assert!(answer.contains(r#""delivered":3,"dropped":1"#), "{answer}");
    c.expect("to-12");
    let text = c.text();
    for m in ["to-11", "to-12", "to-13"] {
        assert_eq!(text.matches(m).count(), 1, "{m} once: {text:?}");
    }
    assert!(!text.contains("not-mine"));
    let snap = stats(&server);
    assert_eq!((snap.logged_in, snap.logins), (1, 1), "one connection");
    drop(c);
    assert!(stats_reach(&server, |s| s.logged_in == 0 && s.logouts == 1));
    assert_eq!(
        (1..=3)
            .map(|n| connections(&server, 10 + n))
            .collect::<Vec<_>>(),
        [0, 0, 0],
        "logged out of every id"
    );
}

#[test]
fn sse_events_of_several_ids_name_their_id_and_last_event_id_replays_that_one() {
    let server = server(Config {
        history: 10,
        ..config()
    });
    let addr = server.subscriber_addr();
    let mut c = Client::get(addr, "/sse/5,6");
    c.expect("text/event-stream");
    admin(&server, "POST", "/send", b"5\tfive-1\n6\tsix-1\n6\tsix-2\n");
    // A batch keeps each id's order, not the order across ids.
    c.expect("id: 6:2\ndata: six-2\n\n");
    c.expect("id: 5:1\ndata: five-1\n\n");
    let text = c.text();
    let at = |event: &str| {
        text.find(event)
            .unwrap_or_else(|| panic!("{event:?} in {text:?}"))
    };
    assert!(at("id: 6:1\ndata: six-1\n\n") < at("id: 6:2\n"), "{text:?}");
    drop(c);
    assert!(stats_reach(&server, |s| s.logged_in == 0));
    admin(&server, "POST", "/send", b"6\tsix-3\n5\tfive-2\n");
    // What an EventSource sends back: the last event's id. That id replays;
    // the other goes on live.
    let mut again = Client::get_with(addr, "/sse/5,6", "Last-Event-ID: 6:1\r\n");
    again.expect("id: 6:3\ndata: six-3\n\n");
    assert!(again.text().contains("id: 6:2\ndata: six-2\n\n"));
    assert!(!again.text().contains("five-2"), "5 is live only");
    admin(&server, "POST", "/send/5", b"five-3");
    again.expect("id: 5:3\ndata: five-3\n\n");
    // A plain number cannot say which id it is of.
    let mut wrong = Client::get_with(addr, "/sse/5,6", "Last-Event-ID: 3\r\n");
    assert_eq!(status_and_body(&wrong.read_to_close()).0, 400);
}

#[test]
fn more_ids_than_the_limit_get_400_and_the_server_goes_on() {
    let server = server(Config {
        max_ids_per_conn: 3,
        ..config()
    });
    let addr = server.subscriber_addr();
    for path in ["/test/1,2,3,4", "/sse/1,2,1", "/poll/1,2"] {
        let mut c = Client::get(addr, path);
        let (status, body) = status_and_body(&c.read_to_close());
        assert_eq!(status, 400, "{path}: {body}");
    }
    let mut c = Client::get(addr, "/test/1,2,3");
    c.expect("ids: 1,2,3");
    // The reactor adds its counts after the pass that closed the last one,
    // so the client can see the close first.
    assert!(
        stats_reach(&server, |s| s.bad_requests == 3),
        "{:?}",
        stats(&server)
    );
}

#[test]
fn events_broadcasts_and_presence_see_each_id_of_a_stream() {
    let server = server(Config {
        friends: Some(graph(&[(1, 2), (1, 3)])),
        ..config()
    });
    let addr = server.subscriber_addr();
    let mut presence = Client::get(server.admin_addr(), "/presence");
    presence.expect("chunked\r\n\r\n");
    let mut both = Client::get(addr, "/sse/2,3");
    both.expect("text/event-stream");
    // The ids past the first log in before it (reactor/requests.rs), and
    // the two lines may arrive in separate reads: wait for each (`expect`
    // searches everything received, so their order does not matter).
    presence.expect("online 3\n");
    presence.expect("online 2\n");
    // Each friend's copy is a message to that friend.
    let (_, body) = admin(&server, "POST", "/publish/1", b"hi friends");
    assert!(body.contains(r#""online":2,"connections":2"#), "{body}");
    both.expect("id: 3:1\ndata: hi friends\n\n");
    both.expect("id: 2:1\ndata: hi friends\n\n");
    // A broadcast reaches the connection once, whatever its ids.
    admin(&server, "POST", "/broadcast", b"to all");
    admin(&server, "POST", "/send/2", b"after");
    both.expect("after");
    assert_eq!(both.text().matches("to all").count(), 1);
    assert!(stats_reach(&server, |s| s.broadcast_out == 1 && s.fanout_out == 2));
    drop(both);
    presence.expect("offline 3\n");
    presence.expect("offline 2\n");
}
