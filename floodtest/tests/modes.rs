//! Each `--mode` against an in-test server: what is counted, and latency
//! and gap accounting from envelopes.

mod support;

use c1m_common::{envelope_len, Header};
use support::{floodtest, Behaviour, Server};

#[test]
fn chunked_counts_chunks_messages_and_exact_gaps() {
    // Sequence 3 -> 6 loses 4 and 5 on every connection.
    let server = Server::start(Behaviour::Chunked(vec![1, 2, 3, 6, 7]));
    let run = floodtest(&[
        "--url",
        &server.url("/test/{id}"),
        "--conns",
        "100",
        "--duration",
        "300ms",
    ]);
    let s = run.summary();
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert_eq!((s.open, s.opened, s.closed), (100, 100, 100));
    assert_eq!(s.chunks, 100 * 6, "a welcome chunk and five envelopes each");
    assert_eq!(s.messages, 500);
    assert_eq!(s.lost, 200);
    assert_eq!(s.latency_us.count, 500);
    assert!(s.latency_us.max < 10_000_000, "{:?}", s.latency_us);
    assert_eq!(s.connect_us.count, 100);
    assert_eq!(s.failed_total, 0);
}

#[test]
fn sse_counts_events_not_comments() {
    let server = Server::start(Behaviour::Sse(vec![1, 2, 4]));
    let run = floodtest(&[
        "--url",
        &server.url("/sse/{id}"),
        "--mode",
        "sse",
        "--conns",
        "50",
        "--duration",
        "300ms",
    ]);
    let s = run.summary();
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert_eq!(s.chunks, 50 * 3);
    assert_eq!((s.messages, s.lost), (150, 50));
}

#[test]
fn raw_counts_every_body_byte() {
    let server = Server::start(Behaviour::Raw(vec![1, 2]));
    let run = floodtest(&[
        "--url",
        &server.url("/raw/{id}"),
        "--mode",
        "raw",
        "--conns",
        "40",
        "--duration",
        "300ms",
    ]);
    let s = run.summary();
    assert_eq!(run.code(), 0, "{}", run.stderr());
    // Envelope lengths depend on the id and on sent_us (16 digits today).
    let now = c1m_common::unix_us_now();
    let expected: usize = (1..=40u64)
        .flat_map(|id| {
            [1, 2].map(|seq| {
                envelope_len(
                    &Header {
                        id,
                        generator: 7,
                        seq,
                        sent_us: now,
                    },
                    5,
                )
            })
        })
        .sum();
    assert_eq!(s.bytes, expected as u64);
    assert_eq!((s.messages, s.lost), (80, 0));
    assert!(
        s.chunks >= 40,
        "at least one read per connection: {}",
        s.chunks
    );
}

#[test]
fn ids_come_from_the_id_range() {
    // The server echoes the id in each envelope; a gap-free run over ids
    // 501-520 proves the requests asked for them (a bad id would be 0).
    let server = Server::start(Behaviour::Chunked(vec![1]));
    let run = floodtest(&[
        "--url",
        &server.url("/test/{id}"),
        "--conns",
        "20",
        "--ids",
        "501-520",
        "--duration",
        "200ms",
    ]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert_eq!(run.summary().messages, 20);
}

#[test]
fn header_goes_into_every_request() {
    let server = Server::start(Behaviour::NeedsHeader("Authorization: Bearer s3cret"));
    let url = server.url("/test/{id}");
    let base = [
        "--url",
        url.as_str(),
        "--conns",
        "20",
        "--duration",
        "200ms",
    ];
    let refused = floodtest(&base);
    assert_eq!(refused.summary().status_codes["401"], 20);
    let run = floodtest(&[&base[..], &["--header", "Authorization: Bearer s3cret"]].concat());
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert_eq!((run.summary().opened, run.summary().failed_total), (20, 0));
    let reserved = floodtest(&[&base[..], &["--header", "Host: elsewhere"]].concat());
    assert_eq!(reserved.code(), 2);
    assert!(
        reserved
            .stderr()
            .contains("--header Host: floodtest writes Host itself"),
        "{}",
        reserved.stderr()
    );
}
