//! Tiny loopback servers for the integration tests, one behaviour each, and
//! a helper that runs the real `floodtest` binary and reads its summary.
#![allow(dead_code)]

use c1m_common::unix_us_now;
use c1m_common::FloodSummary as Summary;
use c1m_common::{encode_envelope, validate_against_schema, Header};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};

/// What the server does with each connection.
#[derive(Debug, Clone)]
pub(crate) enum Behaviour {
    /// A chunked stream: a welcome chunk, then one envelope chunk per seq.
    Chunked(Vec<u64>),
    /// An SSE stream (chunked): a comment, then one event per seq.
    Sse(Vec<u64>),
    /// A body without length or chunking: the envelopes back to back.
    Raw(Vec<u64>),
    /// `404 Not Found`, with a body saying what was wanted.
    Status404,
    /// Bytes that are not HTTP.
    Garbage,
    /// Head and one chunk, then a reset (SO_LINGER 0).
    ResetMidStream,
    /// Head and one chunk, then a normal close.
    CloseMidStream,
    /// Accepts and never answers.
    Silent,
    /// The `200` head and a chunk-size line that is not hex, in one write.
    BadChunkWithHead,
    /// The head and one chunk, then, a moment later, a bad chunk-size line.
    BadChunkLater,
    /// The head at once, the first chunk 200 ms later, then held.
    SlowFirstChunk,
    /// A chunked stream for a request carrying this header line, `401`
    /// for any other.
    NeedsHeader(&'static str),
}

pub(crate) struct Server {
    pub port: u16,
    /// The peer address of every accepted connection.
    pub peers: Arc<Mutex<Vec<SocketAddr>>>,
    /// When each connection was accepted, in order.
    pub accepted: Arc<Mutex<Vec<std::time::Instant>>>,
    /// A handle on every accepted connection, for [`Server::drop_all`].
    open: Arc<Mutex<Vec<TcpStream>>>,
}

/// The envelope for connection `id`, sequence `seq`.
pub(crate) fn envelope(id: u64, seq: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let h = Header {
        id,
        generator: 7,
        seq,
        sent_us: unix_us_now(),
    };
    encode_envelope(&h, b"hello", &mut out);
    out
}

fn chunk(out: &mut Vec<u8>, body: &[u8]) {
    out.extend_from_slice(format!("{:x}\r\n", body.len()).as_bytes());
    out.extend_from_slice(body);
    out.extend_from_slice(b"\r\n");
}

const CHUNKED_HEAD: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n";

/// Reads the request head; returns the id at the end of the path and the
/// header lines (without their CRLF).
fn read_request(stream: &TcpStream) -> Option<(u64, Vec<String>)> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let id = line
        .split_whitespace()
        .nth(1)?
        .rsplit('/')
        .next()?
        .parse()
        .unwrap_or(0);
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).ok()? == 0 || header == "\r\n" {
            return Some((id, headers));
        }
        headers.push(header.trim_end().to_owned());
    }
}

fn serve(mut stream: TcpStream, behaviour: &Behaviour) -> std::io::Result<()> {
    let (id, headers) = read_request(&stream).unwrap_or_default();
    let behaviour = match behaviour {
        Behaviour::NeedsHeader(line) if headers.iter().any(|h| h == line) => {
            &Behaviour::Chunked(vec![])
        }
        other => other,
    };
    let mut out = Vec::new();
    match behaviour {
        Behaviour::Chunked(seqs) => {
            out.extend_from_slice(CHUNKED_HEAD);
            chunk(
                &mut out,
                format!("Welcome to Mochiweb, Id: {id}\n").as_bytes(),
            );
            for &seq in seqs {
                chunk(&mut out, &envelope(id, seq));
            }
        }
        Behaviour::Sse(seqs) => {
            out.extend_from_slice(CHUNKED_HEAD);
            chunk(&mut out, b": welcome\n\n");
            for &seq in seqs {
                let mut event = format!("id: {seq}\ndata: ").into_bytes();
                event.extend_from_slice(&envelope(id, seq));
                event.extend_from_slice(b"\n\n");
                chunk(&mut out, &event);
            }
        }
        Behaviour::Raw(seqs) => {
            out.extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n");
            for &seq in seqs {
                out.extend_from_slice(&envelope(id, seq));
            }
        }
        Behaviour::Status404 => {
            let body = "no such stream; subscribe at /s/{id}";
            let head = format!(
                "HTTP/1.1 404 Not Found\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            out.extend_from_slice(head.as_bytes());
            out.extend_from_slice(body.as_bytes());
        }
        Behaviour::Garbage => out.extend_from_slice(b"\x00\x01garbage that is not http\r\n\r\n"),
        Behaviour::ResetMidStream | Behaviour::CloseMidStream => {
            out.extend_from_slice(CHUNKED_HEAD);
            chunk(&mut out, b"one chunk");
        }
        Behaviour::Silent => {}
        Behaviour::BadChunkWithHead => {
            out.extend_from_slice(CHUNKED_HEAD);
            out.extend_from_slice(b"zz\r\nnot a chunk\r\n");
        }
        Behaviour::BadChunkLater => {
            out.extend_from_slice(CHUNKED_HEAD);
            chunk(&mut out, b"one chunk");
        }
        Behaviour::NeedsHeader(_) => {
            out.extend_from_slice(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n")
        }
        Behaviour::SlowFirstChunk => {
            stream.write_all(CHUNKED_HEAD)?;
            std::thread::sleep(std::time::Duration::from_millis(200));
            chunk(&mut out, b"late");
        }
    }
    stream.write_all(&out)?;
    if let Behaviour::BadChunkLater = behaviour {
        std::thread::sleep(std::time::Duration::from_millis(300));
        stream.write_all(b"zz\r\n")?;
    }
    match behaviour {
        Behaviour::ResetMidStream => {
            socket2::SockRef::from(&stream).set_linger(Some(std::time::Duration::ZERO))?;
            return Ok(());
        }
        Behaviour::CloseMidStream => return Ok(()),
        _ => {}
    }
    // Hold the stream until the client closes it.
    let mut sink = [0u8; 256];
    while stream.read(&mut sink)? > 0 {}
    Ok(())
}

impl Server {
    /// Starts a server on 127.0.0.1, port 0, one thread per connection.
    pub(crate) fn start(behaviour: Behaviour) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let peers = Arc::new(Mutex::new(Vec::new()));
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let open = Arc::new(Mutex::new(Vec::new()));
        let (seen, times, handles) = (peers.clone(), accepted.clone(), open.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                times.lock().unwrap().push(std::time::Instant::now());
                seen.lock().unwrap().push(stream.peer_addr().unwrap());
                // Only streams that are held: a second handle would keep
                // the others from closing (or resetting) when they should.
                let held = matches!(
                    behaviour,
                    Behaviour::Chunked(_)
                        | Behaviour::Sse(_)
                        | Behaviour::Raw(_)
                        | Behaviour::SlowFirstChunk
                );
                if let Some(handle) = held.then(|| stream.try_clone().ok()).flatten() {
                    handles.lock().unwrap().push(handle);
                }
                let behaviour = behaviour.clone();
                std::thread::Builder::new()
                    .stack_size(64 * 1024)
                    .spawn(move || {
                        let _ = serve(stream, &behaviour);
                    })
                    .unwrap();
            }
        });
        Server {
            port,
            peers,
            accepted,
            open,
        }
    }

    /// Closes every connection accepted so far at once, as a server that
    /// dies does (its kernel sends each client a FIN); the listener stays,
    /// as a restarted server's would.
    pub(crate) fn drop_all(&self) {
        for stream in self.open.lock().unwrap().drain(..) {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

/// A port with nothing listening on it.
pub(crate) fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A `floodtest` holding its connections until a signal ends it; killed on
/// drop, so a failing test leaves nothing running.
pub(crate) struct Held {
    pub child: std::process::Child,
    /// The `ramp done` notice: the readiness signal waited for.
    pub ramp_line: String,
    /// The rest of its stderr, after the ramp notice.
    pub stderr: std::io::Lines<BufReader<std::process::ChildStderr>>,
    pub json: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

/// Starts `floodtest` with `args` plus `--json` and returns once its ramp is
/// done. A 60 s `--duration` only bounds a failing test.
pub(crate) fn hold(args: &[&str]) -> Held {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("summary.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_floodtest"))
        .args(args)
        .args(["--duration", "60s", "--json"])
        .arg(&json)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let ramp_line = stderr
        .by_ref()
        .map(Result::unwrap)
        .find(|l| l.contains("ramp done"));
    let mut held = Held {
        child,
        ramp_line: String::new(),
        stderr,
        json,
        _dir: dir,
    };
    held.ramp_line = ramp_line.expect("floodtest ended before its ramp was done");
    held
}

impl Held {
    pub(crate) fn signal(&self, signal: libc::c_int) {
        assert_eq!(
            // SAFETY: kill with a valid pid and signal number.
            unsafe { libc::kill(self.child.id() as libc::pid_t, signal) },
            0
        );
    }

    /// Waits for the exit; returns its code and the summary, if written.
    pub(crate) fn wait(&mut self) -> (Option<i32>, Option<Summary>) {
        let code = self.child.wait().unwrap().code();
        (code, read_summary(&self.json))
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A finished `floodtest` run.
pub(crate) struct Run {
    pub output: Output,
    pub summary: Option<Summary>,
}

impl Run {
    pub(crate) fn code(&self) -> i32 {
        self.output.status.code().unwrap_or(-1)
    }

    pub(crate) fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    pub(crate) fn summary(&self) -> &Summary {
        self.summary.as_ref().unwrap_or_else(|| {
            panic!(
                "no summary; exit {}, stderr:\n{}",
                self.code(),
                self.stderr()
            )
        })
    }
}

/// Runs `floodtest` with `args` plus `--json` into a temporary file,
/// killed if it outlives two minutes (no test of it takes that long).
pub(crate) fn floodtest(args: &[&str]) -> Run {
    floodtest_within(args, std::time::Duration::from_secs(120))
}

/// Runs `floodtest` with `args` plus `--json`, killed if it has not ended
/// within `bound`: a run that hangs fails its test instead of the suite.
pub(crate) fn floodtest_within(args: &[&str], bound: std::time::Duration) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("summary.json");
    let child = Command::new(env!("CARGO_BIN_EXE_floodtest"))
        .args(args)
        .arg("--json")
        .arg(&json)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (done, waited) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    let output = match waited.recv_timeout(bound) {
        Ok(output) => output.unwrap(),
        Err(_) => {
            // SAFETY: kill with a pid we started and a valid signal.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            let output = waited.recv().unwrap().unwrap();
            panic!(
                "floodtest {args:?} still running after {bound:?}; stderr:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
    };
    let summary = read_summary(&json);
    Run { output, summary }
}

/// The `--json` summary; `None` if it was not written (the file is created
/// empty at the start, so a run that died early leaves it empty). Every
/// summary a test reads is checked against `docs/schema/flood-summary.json`.
pub(crate) fn read_summary(path: &std::path::Path) -> Option<Summary> {
    let text = std::fs::read_to_string(path).ok()?;
    (!text.is_empty()).then(|| {
        validate_against_schema("flood-summary.json", &text).unwrap_or_else(|e| panic!("{e}"));
        serde_json::from_str(&text).unwrap()
    })
}

/// A run that pauses every `pause_every` connections for 100 ms.
pub(crate) fn with_pauses(server: &Server, conns: &str, pause_every: &str, extra: &[&str]) -> Run {
    let url = server.url("/test/{id}");
    let mut args = vec![
        "--url",
        url.as_str(),
        "--conns",
        conns,
        "--pause-every",
        pause_every,
        "--pause-secs",
        "100ms",
        "--duration",
        "100ms",
    ];
    args.extend_from_slice(extra);
    floodtest(&args)
}

/// The exit of a run whose server shut down under it: 0 if it stopped
/// before seeing the closes, else 1 with the check naming them.
pub(crate) fn closed_by_the_shutdown(code: Option<i32>, s: &Summary) {
    match &s.check_failed {
        None => assert_eq!(code, Some(0), "{s:?}"),
        Some(why) => {
            assert_eq!(code, Some(1), "{s:?}");
            assert!(why.contains("closed_by_server="), "{why}");
        }
    }
}

/// Posts `body` to `path` on the admin listener; returns the JSON body.
pub(crate) fn admin_post(admin: SocketAddr, path: &str, body: &[u8]) -> String {
    let mut s = TcpStream::connect(admin).unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {admin}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    answer.split_once("\r\n\r\n").unwrap().1.to_owned()
}

/// A Python that has the `websockets` module (Debian's `python3-websockets`
/// is in /usr/bin's Python, which may not be the first on PATH).
pub(crate) fn python() -> &'static str {
    ["python3", "/usr/bin/python3"]
        .into_iter()
        .find(|p| {
            Command::new(p)
                .args(["-c", "import websockets"])
                .status()
                .is_ok_and(|s| s.success())
        })
        .expect("python3 with websockets is needed (apt-get install python3-websockets; scripts/test.sh installs it)")
}

/// The fixture server, killed on drop.
pub(crate) struct PyServer(Child, pub(crate) u16);

impl Drop for PyServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `fixtures/ws_server.py` with `args`; waits for its port.
pub(crate) fn ws_server(args: &[&str]) -> PyServer {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/ws_server.py");
    let mut child = Command::new(python())
        .arg(script)
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
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
    PyServer(child, port)
}
