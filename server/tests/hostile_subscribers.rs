//! Subscribers that misbehave or send hostile bytes: half-closes, requests
//! pipelined behind a long-poll or a stream.

mod support;

use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use c1m_server::Config;
use support::*;

#[test]
fn clients_that_half_close_after_their_request_are_all_logged_out() {
    // Edge-triggered readiness: the request and the FIN often arrive in
    // one readable event, and an event not read to its end is not
    // reported again.
    const PER_ROUND: u64 = 300;
    let server = server(config());
    let addr = server.subscriber_addr();
    for round in 1..=4 {
        let clients: Vec<TcpStream> = (0..PER_ROUND)
            .map(|i| {
                let path = ["/test", "/sse", "/poll"][i as usize % 3];
                let mut s = TcpStream::connect(addr).unwrap();
                s.write_all(format!("GET {path}/{i} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes())
                    .unwrap();
                s.shutdown(Shutdown::Write).unwrap();
                s
            })
            .collect();
        let settled = eventually(Duration::from_secs(10), || {
            let s = stats(&server);
            s.accepted == round * PER_ROUND && s.connections == 0 && s.logged_in == 0
        });
        assert!(settled, "round {round}: {:?}", stats(&server));
        // Held until now, so the server saw only the half-close.
        drop(clients);
    }
    let s = stats(&server);
    assert_eq!(s.logins, s.logouts, "{s:?}");
    let mut c = Client::get(addr, "/test/1");
    c.expect("welcome, id: 1");
}

fn poll(seq: u64) -> String {
    format!("GET /poll/12?seq={seq} HTTP/1.1\r\nHost: t\r\n\r\n")
}

/// The next answer on `c`: its `X-Seq` and its body.
fn answer(c: &mut Client) -> (String, String) {
    let (head, body) = read_response(c);
    let seq = header(&head, "X-Seq").unwrap_or("none").to_owned();
    (seq, String::from_utf8(body).unwrap())
}

#[test]
fn requests_pipelined_behind_a_long_poll_are_answered_in_order() {
    let server = server(Config {
        history: 10,
        ..config()
    });
    let addr = server.subscriber_addr();
    let waiting = || {
        eventually(Duration::from_secs(5), || {
            server.router().connections(12) == 1
        })
    };
    let mut c = Client::raw(addr, format!("{}{}", poll(0), poll(1)).as_bytes());
    assert!(waiting());
    admin(&server, "POST", "/send/12", b"first");
    let (seq, body) = answer(&mut c);
    assert_eq!(seq, "1");
    assert!(body.ends_with("first\n"), "{body:?}");
    // The second request came with the first; it waits for the next message.
    assert!(waiting());
    admin(&server, "POST", "/send/12", b"second");
    let (seq, body) = answer(&mut c);
    assert_eq!(seq, "2");
    assert!(
        body.ends_with("second\n") && !body.contains("first"),
        "{body:?}"
    );

    // Three at once: two answered from the history, one after the other,
    // the third waits.
    c.stream
        .write_all(format!("{}{}{}", poll(0), poll(1), poll(2)).as_bytes())
        .unwrap();
    let (seq, body) = answer(&mut c);
    assert_eq!(seq, "2");
    assert!(
        body.contains("first") && body.contains("second"),
        "{body:?}"
    );
    let (seq, body) = answer(&mut c);
    assert_eq!(seq, "2");
    assert!(
        !body.contains("first") && body.contains("second"),
        "{body:?}"
    );
    assert!(waiting());
    admin(&server, "POST", "/send/12", b"third");
    let (seq, body) = answer(&mut c);
    assert_eq!(seq, "3");
    assert!(
        body.ends_with("third\n") && !body.contains("second"),
        "{body:?}"
    );
    assert!(stats_reach(&server, |s| s.accepted == 1 && s.bad_requests == 0));
}

#[test]
fn bytes_pipelined_behind_a_stream_are_stray() {
    let server = server(config());
    let mut c = Client::raw(
        server.subscriber_addr(),
        b"GET /test/7 HTTP/1.1\r\nHost: t\r\n\r\nGET /test/8 HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    c.expect("welcome, id: 7");
    admin(&server, "POST", "/send/7", b"to-seven");
    c.expect("to-seven");
    assert!(!c.text().contains("welcome, id: 8"));
    assert_eq!(server.router().connections(8), 0);
}
