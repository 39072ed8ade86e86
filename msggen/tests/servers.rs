//! msggen's publishers against the real servers, started here on free
//! loopback ports (`common/daemons.rs`): every message msggen says it sent
//! arrives, once, in sequence, with its latency measured. For nchan and
//! Pushpin the subscribers are floodtest's streams; for NATS and Redis (no
//! HTTP subscribers) a client in the test subscribes and reads the
//! envelopes.

#[path = "common/daemons.rs"]
mod daemons;
#[path = "common/run.rs"]
mod run;

use c1m_common::{scan_envelopes, Header, MsggenSummary};
use daemons::Flood;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::time::Duration;

/// msggen's summary, after checking it exited 0.
fn msggen(args: &str) -> MsggenSummary {
    let (output, summary) = run::msggen_json(args);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    summary
}

/// Each (generator, id)'s sequence numbers arrived 1, 2, 3, ... once
/// each; returns how many.
fn in_sequence(headers: &[Header]) -> u64 {
    let mut last: HashMap<(u64, u64), u64> = HashMap::new();
    for h in headers {
        let seq = last.entry((h.generator, h.id)).or_insert(0);
        assert_eq!(h.seq, *seq + 1, "gap, repeat or reorder at {h}");
        *seq = h.seq;
    }
    last.values().sum()
}

#[test]
fn nchan_delivers_every_message_pipelined() {
    let (_nginx, addr) = daemons::nchan();
    let flood = Flood::hold(&format!("http://{addr}/sub/{{id}}"), "sse", 50);
    let sent = msggen(&format!(
        "--target http://{addr} --publish nchan --pipeline 4 --ids 1-50 --rate 1000 --count 2000"
    ));
    assert_eq!(
        (sent.sent, sent.failed, sent.publish.as_str()),
        (2000, 0, "nchan")
    );
    // Every id has a subscriber: nchan answered 201 to each.
    assert_eq!(sent.dropped, 0);
    let flood = flood.stop_after(2000);
    assert_eq!((flood.messages, flood.lost), (2000, 0));
    assert_eq!(flood.latency_us.count, 2000);
    assert!(flood.latency_us.p50 > 0);
}

#[test]
fn pushpin_delivers_every_message_in_batches() {
    let (_pushpin, http, publish) = daemons::pushpin();
    let flood = Flood::hold(&format!("http://{http}/stream/{{id}}"), "chunked", 50);
    let sent = msggen(&format!(
        "--target http://{publish} --publish pushpin --ids 1-50 --rate 1000 --count 2000"
    ));
    assert_eq!((sent.sent, sent.failed), (2000, 0));
    assert!(
        sent.messages_per_write > 1.0,
        "items batched: {}",
        sent.messages_per_write
    );
    let flood = flood.stop_after(2000);
    assert_eq!((flood.messages, flood.lost), (2000, 0));
    assert_eq!(flood.latency_us.count, 2000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_delivers_every_message_to_a_subscriber() {
    use futures_util::StreamExt;
    let (_nats, addr) = daemons::nats();
    let client = async_nats::connect(addr.to_string()).await.unwrap();
    let mut subscriber = client.subscribe("c1m.>").await.unwrap();
    // The subscription is on the server once a flush returns.
    client.flush().await.unwrap();
    let args = format!("--target nats://{addr} --ids 1-50 --rate 2000 --count 2000");
    let sent = tokio::task::spawn_blocking(move || msggen(&args))
        .await
        .unwrap();
    assert_eq!(
        (sent.sent, sent.failed, sent.publish.as_str()),
        (2000, 0, "nats")
    );
    let mut headers = Vec::new();
    while headers.len() < 2000 {
        let message = tokio::time::timeout(Duration::from_secs(20), subscriber.next())
            .await
            .expect("every message within 20 s")
            .unwrap();
        let id: u64 = message.subject.as_str()["c1m.".len()..].parse().unwrap();
        scan_envelopes(&message.payload, |e| {
            assert_eq!(e.header.id, id, "published to its id's subject");
            headers.push(e.header);
        });
    }
    assert_eq!(in_sequence(&headers), 2000);
}

#[test]
fn redis_delivers_every_message_and_counts_the_unheard() {
    let (_redis, addr) = daemons::redis();
    let mut subscriber = std::net::TcpStream::connect(addr).unwrap();
    subscriber
        .write_all(b"*2\r\n$10\r\nPSUBSCRIBE\r\n$5\r\nc1m.*\r\n")
        .unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = Vec::new();
    // The subscription's confirmation is the readiness signal.
    while !got.windows(10).any(|w| w == b"psubscribe") {
        let n = subscriber.read(&mut buf).unwrap();
        got.extend_from_slice(&buf[..n]);
    }
    let sent = msggen(&format!(
        "--target redis://{addr} --ids 1-100 --rate 2000 --count 2000"
    ));
    assert_eq!(
        (sent.sent, sent.failed, sent.publish.as_str()),
        (2000, 0, "redis")
    );
    assert_eq!(sent.dropped, 0, "the pattern matches every channel");
    subscriber
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut headers = Vec::new();
    let mut pending = Vec::new();
    while headers.len() < 2000 {
        let n = subscriber
            .read(&mut buf)
            .expect("every message within 20 s");
        assert!(n > 0, "redis closed the subscription");
        pending.extend_from_slice(&buf[..n]);
        let used = scan_envelopes(&pending, |e| headers.push(e.header));
        pending.drain(..used);
    }
    assert_eq!(in_sequence(&headers), 2000);
    // Without a subscriber, every PUBLISH answers 0: dropped.
    drop(subscriber);
    let unheard = msggen(&format!(
        "--target redis://{addr} --ids 1-10 --rate 1000 --count 100"
    ));
    assert_eq!((unheard.sent, unheard.dropped), (100, 100));
}
