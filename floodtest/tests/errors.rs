//! Every failure class, counted exactly, never logged per connection.

mod support;

use support::{closed_port, floodtest, Behaviour, Server};

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
}

#[test]
fn non_200_status() {
    let run = against(Behaviour::Status404, &[]);
    assert_eq!(run.code(), 1);
    assert_eq!(failed(&run, "status"), 20);
    assert_eq!(run.summary().opened, 0);
}

#[test]
fn garbage_bytes() {
    let run = against(Behaviour::Garbage, &[]);
    assert_eq!(failed(&run, "protocol"), 20);
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
