//! Against an independent server: a small Python streaming server
//! (`fixtures/stream_server.py`), so floodtest is not only tested against
//! servers written alongside it.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use support::floodtest;

struct Python(Child, u16);

impl Drop for Python {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the fixture and waits for its "listening PORT" line.
fn python(mode: &str, messages: u32) -> Python {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/stream_server.py"
    );
    let mut child = Command::new("python3")
        .args([script, mode, &messages.to_string(), "5"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 is needed for this test");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .trim()
        .strip_prefix("listening ")
        .unwrap()
        .parse()
        .unwrap();
    Python(child, port)
}

#[test]
fn chunked_stream_from_python() {
    let server = python("chunked", 3);
    let url = format!("http://127.0.0.1:{}/test/{{id}}", server.1);
    let run = floodtest(&["--url", &url, "--conns", "30", "--duration", "500ms"]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let s = run.summary();
    assert_eq!((s.open, s.chunks, s.messages, s.lost), (30, 90, 90, 0));
    assert_eq!(s.latency_us.count, 90);
}

#[test]
fn sse_stream_from_python() {
    let server = python("sse", 4);
    let url = format!("http://127.0.0.1:{}/sse/{{id}}", server.1);
    let run = floodtest(&[
        "--url",
        &url,
        "--mode",
        "sse",
        "--conns",
        "20",
        "--duration",
        "500ms",
    ]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let s = run.summary();
    assert_eq!((s.open, s.chunks, s.messages, s.lost), (20, 80, 80, 0));
}
