//! Subscribers that misbehave or send hostile bytes: half-closes, bytes
//! pipelined behind a request.

mod support;

use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

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
