//! Router semantics, bad input, overload and slow consumers, over loopback.

mod support;

use std::io::Write;
use std::time::Duration;

use c1m_server::Config;
use support::*;

#[test]
fn every_connection_of_an_id_receives_and_offline_ids_are_dropped() {
    let server = server(config());
    let mut clients: Vec<Client> = (0..3)
        .map(|_| Client::get(server.subscriber_addr(), "/test/5"))
        .collect();
    for c in &mut clients {
        c.expect("welcome");
    }
    let (_, body) = admin(&server, "POST", "/send", b"5\tto-five\n6\tto-nobody\n");
    assert_eq!(
        body.trim(),
        r#"{"accepted":2,"rejected":0,"delivered":1,"dropped":1,"connections":3}"#
    );
    for c in &mut clients {
        c.expect("7\r\nto-five\r\n");
    }
    assert!(stats_reach(&server, |s| (
        s.messages_in,
        s.messages_out,
        s.dropped
    ) == (2, 3, 1)));
}

#[test]
fn a_client_closing_is_logged_out_promptly() {
    let server = server(config());
    let mut c = Client::get(server.subscriber_addr(), "/test/21");
    c.expect("welcome");
    assert_eq!(stats(&server).logged_in, 1);
    drop(c);
    assert!(eventually(Duration::from_secs(2), || {
        let s = stats(&server);
        s.logged_in == 0 && s.connections == 0 && s.logouts == 1
    }));
    let (_, body) = admin(&server, "POST", "/send/21", b"late");
    assert!(body.contains(r#""connections":0"#));
}

fn expect_refusal(server: &c1m_server::Server, request: &[u8], status: u16) {
    let mut c = Client::raw(server.subscriber_addr(), request);
    let text = c.read_to_close();
    assert_eq!(status_and_body(&text).0, status, "{text:?}");
    assert!(text.contains("Connection: close\r\n"));
}

fn still_serves(server: &c1m_server::Server) {
    let mut c = Client::get(server.subscriber_addr(), "/test/1");
    c.expect("c1m welcome, id: 1");
}

#[test]
fn bad_requests_get_their_status_and_the_server_goes_on() {
    let server = server(Config {
        max_id: 1000,
        ..config()
    });
    expect_refusal(&server, b"GET /test/x HTTP/1.1\r\nHost: t\r\n\r\n", 400);
    expect_refusal(&server, b"GET /test/1001 HTTP/1.1\r\nHost: t\r\n\r\n", 400);
    expect_refusal(&server, b"\x00\x01garbage\r\n\r\n", 400);
    expect_refusal(&server, b"GET /elsewhere HTTP/1.1\r\nHost: t\r\n\r\n", 404);
    expect_refusal(&server, b"DELETE /test/1 HTTP/1.1\r\nHost: t\r\n\r\n", 405);
    let big = format!(
        "GET /test/1 HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "y".repeat(9000)
    );
    expect_refusal(&server, big.as_bytes(), 431);
    // A head sent in pieces is still understood.
    let mut c = Client::raw(server.subscriber_addr(), b"GET /test/2 HT");
    std::thread::sleep(Duration::from_millis(50));
    c.stream.write_all(b"TP/1.1\r\nHost: t\r\n\r\n").unwrap();
    c.expect("welcome, id: 2");
    assert!(stats_reach(&server, |s| s.bad_requests == 6));
    still_serves(&server);
}

#[test]
fn admin_refuses_large_bodies_and_unknown_paths() {
    let server = server(Config {
        max_body: 1024,
        ..config()
    });
    let (status, _) = admin(&server, "POST", "/send", &vec![b'x'; 2048]);
    assert_eq!(status, 413);
    assert_eq!(admin(&server, "GET", "/nothing", b"").0, 404);
    assert_eq!(admin(&server, "DELETE", "/stats", b"").0, 405);
    assert_eq!(admin(&server, "POST", "/send/notanumber", b"x").0, 400);
    assert_eq!(admin(&server, "GET", "/stats", b"").0, 200);
}

#[test]
fn a_message_over_max_pending_is_refused_not_sent_to_close_its_readers() {
    let server = server(Config {
        max_pending: 1024,
        ..config()
    });
    let mut reader = Client::get(server.subscriber_addr(), "/test/5");
    reader.expect("welcome");
    let big = vec![b'b'; 2048];
    let (status, body) = admin(&server, "POST", "/send/5", &big);
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("--max-pending"), "{body}");
    // In a batch the oversized line is refused and the rest delivered.
    let mut batch = b"5\t".to_vec();
    batch.extend_from_slice(&big);
    batch.extend_from_slice(b"\n5\tsmall\n");
    let (status, body) = admin(&server, "POST", "/send", &batch);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"accepted\":1"), "{body}");
    assert!(body.contains("\"rejected\":1"), "{body}");
    reader.expect("small");
    assert_eq!(
        stats(&server).slow_consumer_closes,
        0,
        "the reader was never at risk"
    );
}

#[test]
fn a_slow_request_head_is_closed() {
    let server = server(Config {
        header_timeout: Duration::from_millis(200),
        ..config()
    });
    let mut c = Client::raw(
        server.subscriber_addr(),
        b"GET /test/1 HTTP/1.1\r\nX-Slow: ",
    );
    let start = std::time::Instant::now();
    assert_eq!(c.read_to_close(), "");
    assert!(start.elapsed() < Duration::from_secs(3));
    assert!(stats_reach(&server, |s| s.header_timeouts == 1));
    still_serves(&server);
}

#[test]
fn connections_above_max_conns_get_503() {
    let server = server(Config {
        max_conns: 2,
        ..config()
    });
    let mut a = Client::get(server.subscriber_addr(), "/test/1");
    let mut b = Client::get(server.subscriber_addr(), "/test/2");
    a.expect("welcome");
    b.expect("welcome");
    let mut c = Client::get(server.subscriber_addr(), "/test/3");
    assert_eq!(status_and_body(&c.read_to_close()).0, 503);
    assert!(stats_reach(&server, |s| s.over_capacity == 1));
    drop(a);
    assert!(eventually(Duration::from_secs(2), || stats(&server)
        .connections
        == 1));
    let mut d = Client::get(server.subscriber_addr(), "/test/4");
    d.expect("welcome");
}

#[test]
fn admin_connections_above_max_admin_conns_get_503() {
    let server = server(Config {
        max_admin_conns: 1,
        ..config()
    });
    // A keep-alive client that has asked once and holds its connection.
    let mut held = Client::raw(
        server.admin_addr(),
        b"GET /stats HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    held.expect("\"connections\"");
    let (status, body) = admin(&server, "GET", "/stats", b"");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("--max-admin-conns"), "{body}");
    drop(held);
    assert!(eventually(Duration::from_secs(2), || admin(
        &server, "GET", "/stats", b""
    )
    .0 == 200));
}

#[test]
fn a_slow_consumer_is_closed_and_others_keep_receiving() {
    let server = server(Config {
        max_pending: 64 * 1024,
        ..config()
    });
    // The slow client never reads; a small receive buffer fills fast.
    let slow = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    slow.set_recv_buffer_size(4096).unwrap();
    slow.connect(&server.subscriber_addr().into()).unwrap();
    let mut slow: std::net::TcpStream = slow.into();
    slow.write_all(b"GET /test/30 HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut fast = Client::get(server.subscriber_addr(), "/test/31");
    fast.expect("welcome");
    assert!(eventually(Duration::from_secs(2), || server
        .router()
        .connections(30)
        == 1));

    let message = "z".repeat(4000);
    let batch: String = (0..50)
        .flat_map(|_| [format!("30\t{message}\n"), format!("31\t{message}\n")])
        .collect();
    // The kernel buffers up to ~4 MiB for the slow socket before the
    // server has to keep anything; 200 KB a round passes that in ~25 rounds.
    for _round in 0..100 {
        admin(&server, "POST", "/send", batch.as_bytes());
        // The fast reader keeps up: it sees every message of the round.
        fast.expect_count(&format!("\r\n{message}\r\n"), 50);
        fast.received.clear();
        if stats(&server).slow_consumer_closes == 1 {
            break;
        }
    }
    let snap = stats(&server);
    assert_eq!(snap.slow_consumer_closes, 1);
    assert_eq!(server.router().connections(30), 0);
    assert_eq!(server.router().connections(31), 1);
    drop(slow);
}

#[test]
fn a_stream_client_sending_bytes_even_slowly_is_closed_and_others_are_not() {
    let server = server(config());
    let mut quiet = Client::get(server.subscriber_addr(), "/test/51");
    quiet.expect("welcome");
    let mut noisy = Client::get(server.subscriber_addr(), "/test/50");
    noisy.expect("welcome");
    // A few stray bytes are discarded.
    noisy.stream.write_all(b"ping\r\n").unwrap();
    admin(&server, "POST", "/send/50", b"still-here");
    noisy.expect("still-here");
    // A trickle, each piece its own readiness event, is counted over the
    // connection's life: past 8 KiB it is closed.
    for _ in 0..200 {
        if noisy.stream.write_all(&[b'x'; 100]).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    noisy.read_to_close();
    assert!(stats_reach(&server, |s| s.stray_closes == 1 && s.logged_in == 1));
    assert_eq!(server.router().connections(50), 0);
    admin(&server, "POST", "/send/51", b"fine");
    quiet.expect("fine");
}

/// Everything an endpoint answers to `request` before it closes.
fn raw_answer(addr: std::net::SocketAddr, request: &[u8]) -> String {
    Client::raw(addr, request).read_to_close()
}

#[test]
fn subscriber_requests_with_a_body_or_without_one_host_are_refused() {
    let server = server(config());
    let sub = server.subscriber_addr();
    // A body on a GET would be read as the next request (a CL.0 desync):
    // refused and closed, so the smuggled request is never served.
    let smuggled = b"GET /test/1 HTTP/1.1\r\nHost: t\r\nContent-Length: 34\r\n\r\n\
                     GET /test/2 HTTP/1.1\r\nHost: t\r\n\r\n";
    let answer = raw_answer(sub, smuggled);
    assert_eq!(status_and_body(&answer).0, 400, "{answer:?}");
    assert!(!answer.contains("welcome"), "{answer:?}");
    for request in [
        &b"GET /test/1 HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"[..],
        b"HEAD /test/1 HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\nx",
        b"GET /test/1 HTTP/1.1\r\nHost: t\r\nContent-Length: abc\r\n\r\n",
        b"GET /test/1 HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n",
        b"GET /test/1 HTTP/1.1\r\n\r\n",
        b"GET /test/1 HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    ] {
        expect_refusal(&server, request, 400);
    }
    assert!(stats_reach(&server, |s| s.bad_requests == 7 && s.logins == 0));
    // HTTP/1.0 may leave Host out, and `Content-Length: 0` is no body.
    let mut old = Client::raw(sub, b"GET /test/3 HTTP/1.0\r\n\r\n");
    old.expect("welcome, id: 3");
    let mut empty = Client::raw(
        sub,
        b"GET /test/4 HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
    );
    empty.expect("welcome, id: 4");
}

#[test]
fn a_405_names_the_methods_its_path_takes() {
    let server = server(config());
    let subscriber = raw_answer(
        server.subscriber_addr(),
        b"POST /test/1 HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    assert!(subscriber.starts_with("HTTP/1.1 405 "), "{subscriber:?}");
    assert!(
        subscriber.contains("\r\nAllow: GET, HEAD\r\n"),
        "{subscriber:?}"
    );
    for (request, allow) in [
        (&b"GET /send HTTP/1.1\r\nHost: t\r\n\r\n"[..], "POST"),
        (b"GET /send/3 HTTP/1.1\r\nHost: t\r\n\r\n", "POST"),
        (b"DELETE /stats HTTP/1.1\r\nHost: t\r\n\r\n", "GET"),
        (
            b"POST /check/3 HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
            "GET",
        ),
    ] {
        let answer = raw_answer(server.admin_addr(), request);
        assert!(answer.starts_with("HTTP/1.1 405 "), "{answer:?}");
        assert!(
            answer.contains(&format!("\r\nAllow: {allow}\r\n")),
            "{answer:?}"
        );
    }
}

#[test]
fn admin_refuses_transfer_codings_it_cannot_read() {
    let server = server(config());
    let admin = server.admin_addr();
    for (coding, status) in [
        ("chunked", 411),
        ("gzip", 400),
        ("chunked, gzip", 400),
        ("gzip, chunked", 501),
    ] {
        let request =
            format!("POST /send HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: {coding}\r\n\r\n");
        let answer = raw_answer(admin, request.as_bytes());
        assert_eq!(status_and_body(&answer).0, status, "{coding}: {answer:?}");
    }
    let both = b"POST /send HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_eq!(status_and_body(&raw_answer(admin, both)).0, 400);
    let hostless = raw_answer(admin, b"GET /stats HTTP/1.1\r\n\r\n");
    assert_eq!(status_and_body(&hostless).0, 400, "{hostless:?}");
    assert_eq!(support::admin(&server, "GET", "/stats", b"").0, 200);
}

#[test]
fn an_empty_message_does_not_end_a_chunked_stream() {
    let server = server(config());
    let mut c = Client::get(server.subscriber_addr(), "/test/8");
    c.expect("welcome");
    assert_eq!(admin(&server, "POST", "/send/8", b"").0, 200);
    assert_eq!(admin(&server, "POST", "/send", b"8\t\n").0, 200);
    assert_eq!(admin(&server, "POST", "/send/8", b"after").0, 200);
    let text = c.expect("5\r\nafter\r\n");
    // A zero-size chunk is the last chunk: nothing may follow it.
    assert!(!text.contains("\r\n0\r\n\r\n"), "{text:?}");
}
