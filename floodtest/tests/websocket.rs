//! `ws://` streams: against an independent server (Python's `websockets`:
//! fragmented messages, pings every 50 ms that must be answered, its
//! closing handshake), against comet-server's `/ws` (envelopes, gaps and
//! latency as over HTTP), and the handshake's checks.

mod support;

use std::io::{BufRead, BufReader};

use support::{floodtest, ws_server};

#[test]
fn fragmented_messages_pings_and_the_close_from_python() {
    let server = ws_server(&["3", "100", "--fragment", "--close", "1001"]);
    let url = format!("ws://127.0.0.1:{}/ws/{{id}}", server.1);
    let run = floodtest(&[
        "--url",
        &url,
        "--conns",
        "20",
        "--duration",
        "3s",
        // The server closes every stream after its messages: none is held
        // to the end, which is the point here, not a failure.
        "--min-open",
        "0",
    ]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let s = run.summary();
    // Every connection answered ~6 pings, or the server would have closed
    // it with 1011 before its third message.
    assert_eq!(
        (s.open, s.chunks, s.messages, s.lost),
        (20, 60, 60, 0),
        "{s:?}"
    );
    assert_eq!(s.latency_us.count, 60);
    assert_eq!(s.close_codes.get("1001"), Some(&20), "{s:?}");
    assert_eq!(s.failed["closed_by_server"], 20);
    assert_eq!(s.failed["protocol"], 0);
}

#[test]
fn a_subprotocol_the_server_does_not_choose_is_still_held_and_a_wrong_one_refused() {
    let server = ws_server(&["1", "10", "--subprotocol", "chat"]);
    let url = format!("ws://127.0.0.1:{}/ws/{{id}}", server.1);
    let run = floodtest(&[
        "--url",
        &url,
        "--conns",
        "5",
        "--duration",
        "500ms",
        "--ws-subprotocol",
        "chat",
    ]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert_eq!(run.summary().messages, 5);
    // Asked for nothing, the server still names its protocol: websockets
    // refuses that client with a 400 (a bad status).
    let run = floodtest(&[
        "--url",
        &url,
        "--conns",
        "5",
        "--duration",
        "500ms",
        "--min-open",
        "0",
    ]);
    let s = run.summary();
    assert_eq!(
        s.open + s.failed["status"] + s.failed["handshake"],
        5,
        "{s:?}"
    );
}

#[test]
fn ws_streams_through_comet_server_carry_envelopes_and_gaps() {
    let listener = c1m_server::bind("127.0.0.1:0".parse().unwrap(), 1024, false).unwrap();
    let admin = c1m_server::bind("127.0.0.1:0".parse().unwrap(), 64, false).unwrap();
    let server = c1m_server::start(c1m_server::Config::default(), listener, admin).unwrap();
    let url = format!("ws://{}/ws/{{id}}", server.subscriber_addr());
    let mut held = support::hold(&["--url", &url, "--conns", "50", "--report-interval", "100ms"]);
    assert!(held.ramp_line.contains("open 50/50"), "{}", held.ramp_line);
    let mut batch = Vec::new();
    for seq in [1, 2, 4] {
        for id in 1..=50 {
            let envelope = support::envelope(id, seq);
            c1m_common::push_batch_line(&mut batch, id, |out| out.extend_from_slice(&envelope))
                .unwrap();
        }
    }
    let answer = support::admin_post(server.admin_addr(), "/send", &batch);
    assert!(answer.contains("\"delivered\":150"), "{answer}");
    let stdout = BufReader::new(held.child.stdout.take().unwrap());
    let seen = stdout
        .lines()
        .map(Result::unwrap)
        .find(|l| l.contains("lost 50 "));
    assert!(seen.is_some(), "floodtest ended before counting the gaps");
    server.shutdown().unwrap();
    let (code, summary) = held.wait();
    let s = summary.unwrap();
    // The shutdown closes every stream: a run that sees the closes before
    // it stops did not hold them, and says so (exit 1).
    support::closed_by_the_shutdown(code, &s);
    assert_eq!((s.messages, s.lost, s.chunks), (150, 50, 150), "{s:?}");
    assert_eq!(
        s.close_codes.get("1001"),
        Some(&50),
        "the server's shutdown close"
    );
}
