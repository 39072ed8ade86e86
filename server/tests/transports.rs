//! Every subscriber transport and the admin endpoints, over loopback.

mod support;

use std::time::Duration;

use c1m_server::Config;
use support::*;

#[test]
fn test_stream_welcomes_and_carries_messages_unchanged() {
    let server = server(config());
    let mut c = Client::get(server.subscriber_addr(), "/test/1");
    let head = c.expect("c1m welcome, id: 1\n");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"));
    assert!(head.contains("Content-Type: text/html; charset=utf-8\r\n"));
    assert!(head.contains("Transfer-Encoding: chunked\r\n"));
    let (status, body) = admin(&server, "POST", "/send/1", b"hello <b>world</b>");
    assert_eq!(status, 200);
    assert_eq!(body.trim(), r#"{"id":1,"connections":1}"#);
    c.expect("12\r\nhello <b>world</b>\r\n");
    server.shutdown().unwrap();
    assert!(
        c.read_to_close().ends_with("0\r\n\r\n"),
        "a clean end of the chunked body"
    );
}

#[test]
fn http10_clients_get_close_delimited_streams() {
    let server = server(config());
    let mut c = Client::raw(server.subscriber_addr(), b"GET /test/3 HTTP/1.0\r\n\r\n");
    let head = c.expect("\r\n\r\nc1m welcome, id: 3\n");
    assert!(head.contains("Connection: close\r\n"), "{head:?}");
    assert!(!head.contains("Transfer-Encoding"), "{head:?}");
    admin(&server, "POST", "/send/3", b"plain");
    c.expect("id: 3\nplain");
    server.shutdown().unwrap();
    assert!(
        c.read_to_close().ends_with("id: 3\nplain"),
        "the close, not a chunk terminator, ends the body"
    );
}

#[test]
fn head_is_answered_without_a_body() {
    let server = server(config());
    let mut c = Client::raw(
        server.subscriber_addr(),
        b"HEAD /test/4 HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    let text = c.read_to_close();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"));
    assert!(
        text.ends_with("\r\n\r\n"),
        "nothing after the head: {text:?}"
    );
    assert_eq!(stats(&server).logins, 0);
}

#[test]
fn sse_numbers_events_and_keeps_alive() {
    let server = server(Config {
        sse_keepalive: Duration::from_millis(100),
        ..config()
    });
    let mut c = Client::get(server.subscriber_addr(), "/sse/2");
    c.expect("text/event-stream");
    admin(&server, "POST", "/send/2", b"first");
    admin(&server, "POST", "/send/2", b"two\nlines");
    c.expect("id: 1\ndata: first\n\n");
    c.expect("id: 2\ndata: two\ndata: lines\n\n");
    c.expect(": keep-alive\n\n");
}

#[test]
fn sse_replays_history_and_says_what_was_lost() {
    let server = server(Config {
        history: 3,
        ..config()
    });
    for i in 1..=5 {
        admin(&server, "POST", "/send/7", format!("m{i}").as_bytes());
    }
    let mut c = Client::get_with(server.subscriber_addr(), "/sse/7", "Last-Event-ID: 1\r\n");
    let text = c.expect("id: 5\ndata: m5\n\n");
    assert!(text.contains("event: lost\nid: 2\ndata: messages 2-2 are no longer in the history"));
    assert!(text.contains("id: 3\ndata: m3\n\n"));
    assert!(!text.contains("data: m1"));
    admin(&server, "POST", "/send/7", b"m6");
    c.expect("id: 6\ndata: m6\n\n");
    assert!(stats_reach(&server, |s| s.lost_notices == 1));
}

#[test]
fn sse_without_history_still_reports_a_gap() {
    let server = server(config());
    let mut first = Client::get(server.subscriber_addr(), "/sse/8");
    first.expect("event-stream");
    admin(&server, "POST", "/send/8", b"a");
    admin(&server, "POST", "/send/8", b"b");
    first.expect("id: 2\n");
    let mut again = Client::get_with(server.subscriber_addr(), "/sse/8", "Last-Event-ID: 0\r\n");
    again.expect("event: lost\nid: 2\ndata: messages 1-2");
}

#[test]
fn long_poll_answers_replay_at_once_and_waits_otherwise() {
    let server = server(Config {
        history: 10,
        ..config()
    });
    admin(&server, "POST", "/send/9", b"one");
    admin(&server, "POST", "/send/9", b"two");
    let mut replay = Client::get_with(
        server.subscriber_addr(),
        "/poll/9?seq=1",
        "Connection: close\r\n",
    );
    let (status, body) = status_and_body(&replay.read_to_close());
    assert_eq!((status, body.as_str()), (200, "2\t3\ttwo\n"));
    assert!(replay.text().contains("X-Seq: 2\r\n"));

    let mut waiting = Client::get_with(
        server.subscriber_addr(),
        "/poll/9?seq=2",
        "Connection: close\r\n",
    );
    assert!(eventually(Duration::from_secs(5), || server
        .router()
        .connections(9)
        == 1));
    admin(&server, "POST", "/send/9", b"three");
    let (status, body) = status_and_body(&waiting.read_to_close());
    assert_eq!((status, body.as_str()), (200, "3\t5\tthree\n"));
    assert!(eventually(Duration::from_secs(5), || server
        .router()
        .connections(9)
        == 0));
}

#[test]
fn long_poll_without_history_says_what_it_lost_only_while_the_id_has_a_connection() {
    let server = server(config());
    let addr = server.subscriber_addr();
    let close = "Connection: close\r\n";
    let connections = |n| {
        eventually(Duration::from_secs(5), || {
            server.router().connections(20) == n
        })
    };
    let mut stream = Client::get(addr, "/test/20");
    stream.expect("welcome");
    let mut poll = Client::get_with(addr, "/poll/20?seq=0", close);
    assert!(connections(2));
    admin(&server, "POST", "/send/20", b"a");
    assert_eq!(
        status_and_body(&poll.read_to_close()),
        (200, "1\t1\ta\n".into())
    );
    // Between two polls: the stream keeps the id's numbering, so the next
    // poll is told what it missed.
    admin(&server, "POST", "/send/20", b"b");
    let mut poll = Client::get_with(addr, "/poll/20?seq=1", close);
    let text = poll.read_to_close();
    assert_eq!(status_and_body(&text), (200, "lost\t2-2\n".into()));
    assert!(text.contains("X-Seq: 2\r\n"));
    // With no connection left, a message between polls reaches nobody and
    // the numbering starts again: the loss --help warns about.
    drop(stream);
    assert!(connections(0));
    let (_, body) = admin(&server, "POST", "/send/20", b"c");
    assert!(body.contains(r#""connections":0"#), "{body}");
    let mut poll = Client::get_with(addr, "/poll/20?seq=2", close);
    assert!(connections(1));
    admin(&server, "POST", "/send/20", b"d");
    assert_eq!(
        status_and_body(&poll.read_to_close()),
        (200, "1\t1\td\n".into())
    );
    assert!(stats_reach(&server, |s| s.dropped == 1 && s.lost_notices == 1));
}

#[test]
fn long_poll_keeps_the_connection_for_the_next_request() {
    use std::io::Write;
    let server = server(Config {
        history: 10,
        poll_timeout: Duration::from_millis(300),
        ..config()
    });
    let mut c = Client::get(server.subscriber_addr(), "/poll/12?seq=0");
    assert!(eventually(Duration::from_secs(5), || server
        .router()
        .connections(12)
        == 1));
    admin(&server, "POST", "/send/12", b"first");
    c.expect("Connection: keep-alive\r\n\r\n1\t5\tfirst\n");
    // Same connection, next request: answered from the history at once.
    admin(&server, "POST", "/send/12", b"second");
    c.stream
        .write_all(b"GET /poll/12?seq=1 HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    c.expect("2\t6\tsecond\n");
    // And again: this one times out empty, still on the same connection.
    c.stream
        .write_all(b"GET /poll/12?seq=2 HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    c.received.clear();
    c.expect("Content-Length: 0\r\nConnection: keep-alive\r\n\r\n");
    assert!(stats_reach(&server, |s| s.accepted == 1
        && s.poll_timeouts == 1
        && s.logged_in == 0));
}

#[test]
fn long_poll_times_out_empty() {
    let server = server(Config {
        poll_timeout: Duration::from_millis(200),
        ..config()
    });
    let mut c = Client::get_with(server.subscriber_addr(), "/poll/3", "Connection: close\r\n");
    let text = c.read_to_close();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"));
    assert!(text.contains("Content-Length: 0\r\n"));
    assert!(stats_reach(&server, |s| s.poll_timeouts == 1 && s.logged_in == 0));
}

#[test]
fn heartbeat_sends_numbered_chunks() {
    let server = server(Config {
        heartbeat: Some(Duration::from_millis(50)),
        ..config()
    });
    let mut c = Client::get(server.subscriber_addr(), "/test/3");
    c.expect("Chunk 1 for id 3\n");
    c.expect("Chunk 3 for id 3\n");
    assert!(stats_reach(&server, |s| s.heartbeats >= 3));
}

#[test]
fn admin_check_stats_and_metrics() {
    let server = server(config());
    let mut c = Client::get(server.subscriber_addr(), "/test/11");
    c.expect("welcome");
    let (status, body) = admin(&server, "GET", "/check/11", b"");
    assert_eq!(
        (status, body.trim()),
        (200, r#"{"id":11,"online":true,"connections":1}"#)
    );
    let (_, body) = admin(&server, "GET", "/check/12", b"");
    assert!(body.contains(r#""online":false"#));
    assert!(stats_reach(&server, |s| (
        s.connections,
        s.logged_in,
        s.logins
    ) == (1, 1, 1)));
    assert!(stats(&server).rss_bytes > 0);
    let (status, metrics) = admin(&server, "GET", "/metrics", b"");
    assert_eq!(status, 200);
    assert!(metrics.contains("# TYPE comet_connections gauge\ncomet_connections 1\n"));
    assert!(metrics.contains("# TYPE comet_logins_total counter\ncomet_logins_total 1\n"));
}

#[test]
fn admin_answers_expect_100_continue_before_the_body() {
    use std::io::Write;
    let server = server(config());
    let mut c = Client::raw(
        server.admin_addr(),
        b"POST /send/3 HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 2\r\nConnection: close\r\n\r\n",
    );
    // Without the interim answer this client would never send its body.
    c.expect("HTTP/1.1 100 Continue\r\n\r\n");
    c.stream.write_all(b"hi").unwrap();
    c.received.clear();
    c.expect(r#"{"id":3,"connections":0}"#);
}

#[test]
fn admin_keeps_the_connection_alive_and_checks_the_token() {
    use std::io::{Read, Write};
    let server = server(Config {
        admin_token: Some("s3cret".into()),
        ..config()
    });
    let (status, _) = admin(&server, "GET", "/stats", b"");
    assert_eq!(status, 401);
    // Refused at once: the server does not wait for (or hold) the body of a
    // client without the token.
    let mut s = Client::raw(
        server.admin_addr(),
        b"POST /send HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\n1\tx\n",
    );
    let start = std::time::Instant::now();
    s.expect("missing or wrong bearer token\n");
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(status_and_body(&s.read_to_close()).0, 401);
    let auth = "Authorization: Bearer s3cret\r\n";
    let (status, _) = admin_with(server.admin_addr(), "GET", "/stats", b"", auth);
    assert_eq!(status, 200);
    // Two requests on one connection.
    let mut s = std::net::TcpStream::connect(server.admin_addr()).unwrap();
    let req = format!("POST /send HTTP/1.1\r\nHost: t\r\n{auth}Content-Length: 6\r\n\r\n1\thi\n\n");
    s.write_all(format!("{req}{req}").as_bytes()).unwrap();
    let mut got = Vec::new();
    let mut buf = [0; 4096];
    while got.windows(8).filter(|w| w == b"accepted").count() < 2 {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
}

#[test]
fn stats_json_has_the_documented_fields() {
    // Other tools (experiments, memlog reports) read these names.
    let server = server(config());
    let (_, body) = admin(&server, "GET", "/stats", b"");
    let value: serde_json::Value = serde_json::from_str(&body).unwrap();
    let keys: Vec<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for key in [
        "connections",
        "logged_in",
        "logins",
        "logouts",
        "messages_in",
        "messages_out",
        "dropped",
        "bytes_out",
        "slow_consumer_closes",
        "bad_requests",
        "rss_bytes",
    ] {
        assert!(keys.contains(&key), "/stats lacks {key}: {body}");
    }
}

#[test]
fn two_servers_share_a_port_with_reuse_port() {
    let first = c1m_server::bind("127.0.0.1:0".parse().unwrap(), 16, true).unwrap();
    let second = c1m_server::bind(first.local_addr().unwrap(), 16, true).unwrap();
    assert_eq!(first.local_addr().unwrap(), second.local_addr().unwrap());
    assert!(c1m_server::bind(first.local_addr().unwrap(), 16, false).is_err());
}
