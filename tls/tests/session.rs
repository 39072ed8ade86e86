//! A server session and a client session talking over an in-memory socket
//! pair: the handshake, data both ways in records that arrive in pieces, a
//! socket that takes little, both kinds of close, garbage, and what a
//! session holds at rest.

mod support;

use std::io;

use c1m_tls::{is_tls_error, ClientSession, Records, ServerSession, Session, MAX_RECORD_PLAINTEXT};
use rustls::client::UnbufferedClientConnection;
use rustls::pki_types::ServerName;
use rustls::server::UnbufferedServerConnection;
use support::certs::configs;
use support::pipe::{pair, End};

struct Peer<S> {
    session: S,
    end: End,
    got: Vec<u8>,
    closed: bool,
}

fn sessions() -> (Peer<ServerSession>, Peer<ClientSession>) {
    let (server_config, client_config) = configs();
    let (server_end, client_end) = pair();
    let server =
        ServerSession::new(UnbufferedServerConnection::new(server_config).expect("server"));
    let name = ServerName::try_from("localhost").expect("name");
    let client =
        ClientSession::new(UnbufferedClientConnection::new(client_config, name).expect("client"));
    (peer(server, server_end), peer(client, client_end))
}

fn peer<S>(session: S, end: End) -> Peer<S> {
    Peer {
        session,
        end,
        got: Vec::new(),
        closed: false,
    }
}

/// Reads until the socket would block (or the peer closed).
fn read_all<C: Records>(peer: &mut Peer<Session<C>>) {
    let mut buf = vec![0u8; MAX_RECORD_PLAINTEXT];
    while !peer.closed {
        match peer.session.read(&mut peer.end, &mut buf) {
            Ok(0) => peer.closed = true,
            Ok(n) => peer.got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("read failed: {e}"),
        }
    }
    peer.session.flush(&mut peer.end).expect("flush");
}

/// Lets both sides run until neither has anything to read or write.
fn settle(server: &mut Peer<ServerSession>, client: &mut Peer<ClientSession>) {
    for _ in 0..10_000 {
        let before = (
            server.end.unread(),
            client.end.unread(),
            server.got.len(),
            client.got.len(),
        );
        read_all(server);
        read_all(client);
        let after = (
            server.end.unread(),
            client.end.unread(),
            server.got.len(),
            client.got.len(),
        );
        if before == after
            && server.end.unread() == 0
            && client.end.unread() == 0
            && !server.session.wants_write()
            && !client.session.wants_write()
        {
            return;
        }
    }
    panic!("the sessions did not settle");
}

const REQUEST: &[u8] = b"GET /test/1 HTTP/1.1\r\nHost: localhost\r\n\r\n";

/// A session pair once the client's REQUEST (given before the handshake)
/// has been carried across: the handshake done, the request read.
fn requested() -> (Peer<ServerSession>, Peer<ClientSession>) {
    let (mut server, mut client) = sessions();
    client
        .session
        .write(&mut client.end, REQUEST)
        .expect("request");
    settle(&mut server, &mut client);
    (server, client)
}

#[test]
fn a_request_given_before_the_handshake_is_sent_after_it_and_answered() {
    let (mut server, mut client) = requested();
    assert_eq!(server.got, REQUEST);
    server
        .session
        .write(&mut server.end, b"HTTP/1.1 200 OK\r\n\r\n")
        .expect("answer");
    settle(&mut server, &mut client);
    assert_eq!(client.got, b"HTTP/1.1 200 OK\r\n\r\n");
    assert_eq!(
        server.session.connection().alpn_protocol(),
        Some(&b"http/1.1"[..]),
        "ALPN negotiated"
    );
}

#[test]
fn at_rest_a_session_holds_no_buffer() {
    let (mut server, mut client) = requested();
    server
        .session
        .write(&mut server.end, &[b'x'; 40_000])
        .expect("answer");
    settle(&mut server, &mut client);
    assert_eq!(client.got.len(), 40_000);
    assert_eq!(server.session.buffered(), 0, "{:?}", server.session);
    assert_eq!(client.session.buffered(), 0, "{:?}", client.session);
}

#[test]
fn records_arriving_a_few_bytes_at_a_time_are_put_together() {
    let (mut server, mut client) = sessions();
    server.end.chunk = 7;
    client.end.chunk = 3;
    client
        .session
        .write(&mut client.end, REQUEST)
        .expect("request");
    settle(&mut server, &mut client);
    assert_eq!(server.got, REQUEST);
    let message: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    server
        .session
        .write(&mut server.end, &message)
        .expect("message");
    settle(&mut server, &mut client);
    assert_eq!(
        client.got, message,
        "100,000 bytes over several records, in 3-byte reads"
    );
}

#[test]
fn what_a_full_socket_does_not_take_waits_for_flush() {
    let (mut server, mut client) = requested();
    // The client's end takes 1,000 unread bytes at most.
    server.end.capacity = 1_000;
    server
        .session
        .write(&mut server.end, &[7u8; 50_000])
        .expect("taken whole");
    assert!(server.session.wants_write(), "the rest waits");
    assert_eq!(client.end.unread(), 1_000);
    let mut rounds = 0;
    while server.session.wants_write() {
        read_all(&mut client);
        server.session.flush(&mut server.end).expect("flush");
        rounds += 1;
        assert!(rounds < 1_000, "flush made no progress");
    }
    settle(&mut server, &mut client);
    assert_eq!(client.got, vec![7u8; 50_000]);
}

#[test]
fn close_notify_reads_as_the_end() {
    let (mut server, mut client) = requested();
    server
        .session
        .write(&mut server.end, b"last")
        .expect("last");
    server.session.close().expect("close");
    server.session.flush(&mut server.end).expect("flush");
    settle(&mut server, &mut client);
    assert_eq!(client.got, b"last");
    assert!(client.closed, "the client read 0 after close_notify");
    assert!(!server.closed);
}

#[test]
fn a_socket_closed_without_close_notify_reads_as_the_end() {
    let (mut server, mut client) = requested();
    client.end.shutdown();
    settle(&mut server, &mut client);
    assert!(server.closed);
}

#[test]
fn garbage_is_a_tls_error_and_the_peer_gets_an_alert() {
    let (mut server, mut client) = sessions();
    use std::io::Write;
    client
        .end
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("garbage");
    let mut buf = vec![0u8; MAX_RECORD_PLAINTEXT];
    let err = server
        .session
        .read(&mut server.end, &mut buf)
        .expect_err("refused");
    assert!(is_tls_error(&err), "{err}");
    // An alert record (content type 21) is what the peer gets.
    assert_eq!(client.end.peek(), Some(21));
    let err = server
        .session
        .read(&mut server.end, &mut buf)
        .expect_err("still refused");
    assert!(is_tls_error(&err), "a failed session stays failed: {err}");
}

#[test]
fn a_record_larger_than_the_read_buffer_comes_over_several_reads() {
    let (mut server, mut client) = requested();
    let message: Vec<u8> = (0..40_000u32).map(|i| (i % 253) as u8).collect();
    server
        .session
        .write(&mut server.end, &message)
        .expect("message");
    let mut got = Vec::new();
    let mut small = [0u8; 1000];
    for _ in 0..1_000 {
        match client.session.read(&mut client.end, &mut small) {
            Ok(n) if n > 0 => got.extend_from_slice(&small[..n]),
            Ok(_) => panic!("not closed"),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("read: {e}"),
        }
    }
    assert_eq!(got, message, "in 1,000-byte reads");
    assert_eq!(client.session.buffered(), 0, "nothing left over");
}
