//! Every failure class, counted exactly, never logged per connection.

mod support;

use std::time::Duration;
use support::{closed_port, floodtest, floodtest_within, Behaviour, Server};

fn failed(run: &support::Run, class: &str) -> u64 {
    run.summary().failed[class]
}

fn against(behaviour: Behaviour, extra: &[&str]) -> support::Run {
    let server = Server::start(behaviour);
    let url = server.url("/test/{id}");
    let mut args = vec![
        "--url",
        url.as_str(),
        "--conns",
        "20",
        "--duration",
        "300ms",
    ];
    args.extend_from_slice(extra);
    floodtest(&args)
}

#[test]
fn refused() {
    let url = format!("http://127.0.0.1:{}/test/{{id}}", closed_port());
    let run = floodtest(&["--url", &url, "--conns", "20", "--duration", "1s"]);
    assert_eq!(run.code(), 1, "below target: {}", run.stderr());
    assert_eq!(failed(&run, "refused"), 20);
    assert_eq!((run.summary().opened, run.summary().failed_total), (0, 20));
    let first = &run.summary().first_failures["refused"];
    assert!(
        first.starts_with(&format!("{}: Connection refused", &url[7..url.len() - 10])),
        "{first}"
    );
}

#[test]
fn non_200_status_is_counted_by_code_and_its_first_answer_shown() {
    // `status=20` read like HTTP 100-something, and the server's body,
    // which says what it wanted, was never shown.
    let run = against(Behaviour::Status404, &[]);
    assert_eq!(run.code(), 1);
    let s = run.summary();
    assert_eq!((failed(&run, "status"), s.opened), (20, 0));
    assert_eq!(s.status_codes, [("404".to_owned(), 20)].into());
    let shown = "HTTP/1.1 404 Not Found; body \"no such stream; subscribe at /s/{id}\"";
    assert_eq!(s.first_failures["status"], shown);
    let err = run.stderr();
    assert_eq!(
        err.matches(&format!("floodtest: first status failure: {shown}"))
            .count(),
        1,
        "once per class: {err}"
    );
    let out = String::from_utf8_lossy(&run.output.stdout);
    assert!(out.contains("failed 20 (status_404=20)"), "{out}");
}

#[test]
fn garbage_bytes() {
    let run = against(Behaviour::Garbage, &[]);
    assert_eq!(failed(&run, "protocol"), 20);
}

#[test]
fn a_bad_chunk_in_the_same_read_as_the_head_ends_the_ramp() {
    // The head opened the stream and the chunk-size line after it failed,
    // in one read: the attempt used to stay counted as connecting, so the
    // ramp never ended and the run hung.
    let run = against(Behaviour::BadChunkWithHead, &[]);
    let s = run.summary();
    assert_eq!(
        (s.opened, s.closed, failed(&run, "protocol")),
        (20, 20, 20),
        "{s:?}"
    );
    assert!(run.stderr().contains("ramp done"), "{}", run.stderr());
    assert_eq!(run.code(), 1, "{}", run.stderr());
}

#[test]
fn streams_that_all_break_framing_fail_the_check() {
    // Every stream opens, so the peak reaches the target; then each one
    // breaks the chunked framing. That used to exit 0.
    let server = Server::start(Behaviour::BadChunkLater);
    let url = server.url("/test/{id}");
    // Ends when the last stream has failed, long before the hold would.
    let args = ["--url", url.as_str(), "--conns", "20", "--duration", "30s"];
    let run = floodtest_within(&args, Duration::from_secs(20));
    let s = run.summary();
    assert_eq!(
        (s.open, s.held, failed(&run, "protocol")),
        (20, 0, 20),
        "{s:?}"
    );
    assert_eq!(run.code(), 1, "{}", run.stderr());
    let why = s.check_failed.as_deref().unwrap_or_default();
    assert!(
        why.starts_with("0 of the 20 required were still open when the run ended (peak 20); 20 ended early (protocol=20)"),
        "{why}"
    );
    assert!(
        run.stderr()
            .contains("floodtest: check failed: 0 of the 20 required"),
        "{}",
        run.stderr()
    );
}

#[test]
fn reset_mid_stream() {
    let run = against(Behaviour::ResetMidStream, &[]);
    let s = run.summary();
    assert_eq!(failed(&run, "reset"), 20, "{:?}", s.failed);
    assert_eq!((s.opened, s.closed, s.chunks), (20, 20, 20));
}

#[test]
fn closed_by_server_mid_stream() {
    let run = against(Behaviour::CloseMidStream, &[]);
    let s = run.summary();
    assert_eq!(failed(&run, "closed_by_server"), 20, "{:?}", s.failed);
    assert_eq!((s.opened, s.closed), (20, 20));
}

#[test]
fn timeout_without_a_response_head() {
    let run = against(Behaviour::Silent, &["--connect-timeout", "300ms"]);
    assert_eq!(failed(&run, "timeout"), 20);
    assert_eq!(run.code(), 1);
}

#[test]
fn reconnect_retries_with_backoff() {
    // Every stream is closed by the server; with --reconnect each id comes
    // back, so more streams open than there are connections.
    let run = against(
        Behaviour::CloseMidStream,
        &["--reconnect", "--reconnect-backoff", "20ms"],
    );
    let s = run.summary();
    assert!(s.opened > 20, "{s:?}");
    assert!(s.failed["closed_by_server"] > 20, "{s:?}");
    // Every opened stream was closed by the server or by us at the end.
    assert_eq!(s.opened, s.closed);
}

#[test]
fn reconnect_backoff_doubles() {
    // One connection to a closed port, 100 ms first backoff, held ~1 s:
    // attempts at 0, 0.1, 0.3, 0.7 (1.5 if the machine is slow to stop
    // us) s. A backoff that did not double would make ten or more.
    let url = format!("http://127.0.0.1:{}/test/{{id}}", closed_port());
    let run = floodtest(&[
        "--url",
        &url,
        "--conns",
        "1",
        "--reconnect",
        "--reconnect-backoff",
        "100ms",
        "--duration",
        "1s",
    ]);
    let attempts = failed(&run, "refused");
    assert!((3..=5).contains(&attempts), "{attempts} attempts");
}

#[test]
fn reconnects_after_a_server_dies_are_spread_by_jitter() {
    // 200 streams held; the server drops them all at once. Each close is
    // counted by class, and with a 400 ms first backoff the reconnects come
    // back spread over [200, 400] ms after the drop: without jitter all 200
    // arrived within a few ms of 400 ms (a thundering herd).
    let server = Server::start(Behaviour::Chunked(vec![]));
    let url = server.url("/test/{id}");
    let args = ["--url", url.as_str(), "--conns", "200", "--reconnect"];
    let mut held = support::hold(&[&args[..], &["--reconnect-backoff", "400ms"]].concat());
    let dropped = std::time::Instant::now();
    server.drop_all();
    let deadline = dropped + Duration::from_secs(10);
    while server.accepted.lock().unwrap().len() < 400 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut back: Vec<f64> = server.accepted.lock().unwrap()[200..]
        .iter()
        .map(|t| t.duration_since(dropped).as_secs_f64() * 1000.0)
        .collect();
    assert_eq!(back.len(), 200, "every stream came back");
    back.sort_by(f64::total_cmp);
    let (p10, p90) = (back[20], back[180]);
    assert!(back[0] >= 150.0, "none before half the backoff: {back:?}");
    assert!(back[199] <= 1_000.0, "{back:?}");
    assert!(
        p90 - p10 >= 100.0,
        "reconnects bunched: p10 {p10:.0} ms, p90 {p90:.0} ms"
    );
    held.signal(libc::SIGTERM);
    let (code, summary) = held.wait();
    let s = summary.expect("a summary");
    assert_eq!(s.failed["closed_by_server"], 200, "{:?}", s.failed);
    assert_eq!(
        (s.opened, s.failed_total, code),
        (400, 200, Some(0)),
        "{s:?}"
    );
}

/// One connection from the single explicit pair `source_ip:port`.
fn from_one_pair(server: &Server, source_ip: &str, port: u16) -> support::Run {
    floodtest(&[
        "--url",
        &server.url("/test/{id}"),
        "--conns",
        "1",
        "--bind-mode",
        "explicit",
        "--source-ips",
        source_ip,
        "--local-ports",
        &port.to_string(),
        "--duration",
        "200ms",
    ])
}

#[test]
fn addr_in_use_when_every_pair_is_taken() {
    // A listener owns 127.0.6.1:P, so binding that pair fails even with
    // SO_REUSEADDR; the only pair of the run is taken.
    let taken = std::net::TcpListener::bind("127.0.6.1:0").unwrap();
    let server = Server::start(Behaviour::Chunked(vec![1]));
    let run = from_one_pair(&server, "127.0.6.1", taken.local_addr().unwrap().port());
    assert_eq!(failed(&run, "addr_in_use"), 1, "{}", run.stderr());
}

#[test]
fn addr_unavailable_when_the_4_tuple_is_in_use() {
    // An existing connection from 127.0.6.2:P to the server leaves no
    // 4-tuple for a second one from the same pair.
    let server = Server::start(Behaviour::Chunked(vec![1]));
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_reuse_address(true).unwrap();
    let source: std::net::SocketAddr = "127.0.6.2:0".parse().unwrap();
    socket.bind(&source.into()).unwrap();
    let port = socket.local_addr().unwrap().as_socket().unwrap().port();
    let dest: std::net::SocketAddr = format!("127.0.0.1:{}", server.port).parse().unwrap();
    socket.connect(&dest.into()).unwrap();
    let run = from_one_pair(&server, "127.0.6.2", port);
    assert_eq!(failed(&run, "addr_unavailable"), 1, "{}", run.stderr());
    assert_eq!(
        run.stderr().matches("out of source addresses").count(),
        1,
        "reported once with the fix"
    );
}

#[test]
fn fd_exhaustion_is_counted_and_reported_once() {
    // The shell keeps 86 descriptors open across exec, under a limit of 100:
    // the plan allows 36 connections, but only ~10 descriptors are free.
    let server = Server::start(Behaviour::Chunked(vec![1]));
    let script = format!(
        "ulimit -n 100; for fd in $(seq 3 88); do eval \"exec $fd</dev/null\"; done; exec {} --url {} --conns 30 --duration 200ms --json \"$0\"",
        env!("CARGO_BIN_EXE_floodtest"),
        server.url("/test/{id}")
    );
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("s.json");
    let output = std::process::Command::new("bash")
        .arg("-c")
        .arg(&script)
        .arg(&json)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let s = support::read_summary(&json).expect("a summary");
    assert!(s.failed["fd_exhausted"] > 0, "{s:?}\n{stderr}");
    assert_eq!(s.failed["fd_exhausted"] + s.opened, 30, "{s:?}");
    assert_eq!(
        stderr.matches("out of file descriptors").count(),
        1,
        "{stderr}"
    );
    assert_eq!(output.status.code(), Some(1));
}
