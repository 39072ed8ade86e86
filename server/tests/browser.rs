//! The dashboard in a real browser: headless Chromium, driven over the
//! DevTools protocol (JSON commands on a WebSocket) by the small client
//! below. The page asks for the admin token, shows the live panel, follows
//! an id on the subscriber port and shows a message sent through the admin
//! API with its delivery latency; the screenshot is kept as an artifact
//! (`target/tmp/dashboard.png`).
//!
//! Chromium comes from Debian (`scripts/test.sh` installs it); where it is
//! missing the test says so loudly and passes without running.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use c1m_server::{Config, Dashboard, DashboardMode};
use serde_json::{json, Value};
use support::binary::Binary;
use support::*;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

/// The flags that work on this machine (no sandbox as root, no network
/// beyond the page's own).
const FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
    "--window-size=1280,1300",
];

/// How long any one step in the page may take.
const STEP: Duration = Duration::from_secs(20);

/// The browser, or `None` after saying loudly that the test is skipped.
fn chromium() -> Option<PathBuf> {
    let path =
        std::env::var_os("C1M_CHROMIUM").map_or_else(|| "/usr/bin/chromium".into(), PathBuf::from);
    if !path.exists() {
        eprintln!(
            "\n*** SKIPPED the dashboard's browser test: no Chromium at {} \
             (scripts/test.sh installs Debian's `chromium`; C1M_CHROMIUM names another) ***\n",
            path.display()
        );
        return None;
    }
    Some(path)
}

/// A Chromium process in its own process group and profile, killed (the
/// group) and removed when dropped.
struct Browser {
    child: Child,
    profile: PathBuf,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The group holds the renderer and helper processes it started.
        // SAFETY: kill(2) on the group this test created; no memory involved.
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// One page target, spoken to over its DevTools WebSocket.
struct Page {
    socket: WebSocket<MaybeTlsStream<TcpStream>>,
    next_id: u64,
}

/// Chromium ends with this test's process even when the test is killed
/// (its helpers follow the browser process).
trait DieWithParent {
    fn die_with_parent(&mut self) -> &mut Self;
}

impl DieWithParent for Command {
    fn die_with_parent(&mut self) -> &mut Self {
        // SAFETY: prctl(2) is async-signal-safe; nothing is allocated
        // between fork and exec.
        unsafe {
            self.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            })
        }
    }
}

impl Browser {
    /// Starts Chromium on `url`; returns it with its page.
    fn open(binary: &Path, url: &str) -> (Browser, Page) {
        // One profile per browser: the tests of this file run at once.
        static OPENED: AtomicUsize = AtomicUsize::new(0);
        let n = OPENED.fetch_add(1, Relaxed);
        let profile = std::env::temp_dir().join(format!("c1m-chromium-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&profile);
        std::fs::create_dir_all(&profile).unwrap();
        let mut child = Command::new(binary)
            .args(FLAGS)
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .die_with_parent()
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let browser = Browser { child, profile };
        // Chromium says where its DevTools listen on stderr; the rest of
        // its stderr is read on and dropped so it never blocks on the pipe.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    let _ = tx.send(url.to_owned());
                }
            }
        });
        let endpoint = rx
            .recv_timeout(STEP)
            .expect("chromium printed no DevTools address");
        let port = endpoint
            .strip_prefix("ws://127.0.0.1:")
            .and_then(|rest| rest.split('/').next())
            .expect("a loopback DevTools address");
        let mut target = None;
        assert!(
            eventually(STEP, || {
                target = page_target(port);
                target.is_some()
            }),
            "no page target in chromium"
        );
        let (socket, _) = tungstenite::connect(target.unwrap()).unwrap();
        if let MaybeTlsStream::Plain(s) = socket.get_ref() {
            s.set_read_timeout(Some(STEP * 2)).unwrap();
        }
        let mut page = Page { socket, next_id: 1 };
        page.call(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": 1280, "height": 1300, "deviceScaleFactor": 1, "mobile": false }),
        );
        (browser, page)
    }
}

/// The WebSocket address of the first page target (`GET /json/list`).
/// Chromium keeps the connection open after its answer: the body is read
/// by its `Content-Length`.
fn page_target(port: &str) -> Option<String> {
    let mut s = TcpStream::connect(format!("127.0.0.1:{port}")).ok()?;
    s.set_read_timeout(Some(STEP)).ok()?;
    let request = format!("GET /json/list HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n");
    s.write_all(request.as_bytes()).ok()?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 16384];
    let body = loop {
        let n = s.read(&mut buf).ok().filter(|&n| n > 0)?;
        answer.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&answer);
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            continue;
        };
        let length: usize = head.lines().find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().ok())
        })??;
        if body.len() >= length {
            break body[..length].to_owned();
        }
    };
    let targets: Value = serde_json::from_str(&body).ok()?;
    targets
        .as_array()?
        .iter()
        .find(|t| t["type"] == "page")
        .and_then(|t| t["webSocketDebuggerUrl"].as_str().map(str::to_owned))
}

impl Page {
    /// Sends a command and returns its result (events in between are
    /// skipped: nothing here subscribes to any).
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.try_call(method, &params)
            .unwrap_or_else(|error| panic!("{method}: {error}"))
    }

    /// [`Page::call`], with the protocol's error as the `Err`.
    fn try_call(&mut self, method: &str, params: &Value) -> Result<Value, Value> {
        let id = self.next_id;
        self.next_id += 1;
        let command = json!({ "id": id, "method": method, "params": params });
        self.socket
            .send(Message::text(command.to_string()))
            .unwrap();
        loop {
            let message = self.socket.read().expect("the DevTools socket");
            let Message::Text(text) = message else {
                continue;
            };
            let answer: Value = serde_json::from_str(&text).unwrap();
            if answer["id"] == id {
                return match answer.get("error") {
                    Some(error) => Err(error.clone()),
                    None => Ok(answer["result"].clone()),
                };
            }
        }
    }

    /// Evaluates `expression` in the page (awaiting a promise) and returns
    /// its value; an exception in the page fails the test with its text.
    fn eval(&mut self, expression: &str) -> Value {
        let params =
            json!({ "expression": expression, "returnByValue": true, "awaitPromise": true });
        // While the first page loads, the context an evaluation started in
        // may be replaced; it is evaluated again in the new one.
        let deadline = std::time::Instant::now() + STEP;
        let result = loop {
            match self.try_call("Runtime.evaluate", &params) {
                Ok(result) => break result,
                Err(error)
                    if std::time::Instant::now() < deadline
                        && error["message"]
                            .as_str()
                            .is_some_and(|m| m.contains("context was destroyed")) => {}
                Err(error) => panic!("{expression}: {error}"),
            }
        };
        if let Some(thrown) = result.get("exceptionDetails") {
            panic!("{expression}: {}", thrown["exception"]["description"]);
        }
        result["result"]["value"].clone()
    }

    /// Waits in the page until `condition` is truthy (checked every 50 ms,
    /// at most [`STEP`]) and returns its value.
    fn wait_for(&mut self, condition: &str) -> Value {
        let limit = STEP.as_millis();
        let wrapped = format!(
            "new Promise((done, fail) => {{ const start = Date.now(); const check = () => {{ \
             let v; try {{ v = ({condition}); }} catch (e) {{ v = null; }} \
             if (v) done(v); else if (Date.now() - start > {limit}) fail(new Error('timed out waiting for: ' + {quoted} \
             + ' (state: ' + document.getElementById('state').textContent + ')')); else setTimeout(check, 50); }}; check(); }})",
            quoted = serde_json::to_string(condition).unwrap(),
        );
        self.eval(&wrapped)
    }

    /// Saves a PNG of the page as a test artifact under the target dir.
    fn save_screenshot(&mut self, name: &str) {
        let shot = self.call("Page.captureScreenshot", json!({ "format": "png" }));
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        assert!(
            png.starts_with(b"\x89PNG") && png.len() > 20_000,
            "{} bytes",
            png.len()
        );
        let artifact = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
        std::fs::write(&artifact, &png).unwrap();
        eprintln!("dashboard screenshot: {}", artifact.display());
    }

    fn text_of(&mut self, id: &str) -> String {
        let value = self.eval(&format!("document.getElementById('{id}').textContent"));
        value.as_str().unwrap_or_default().to_owned()
    }
}

fn now_us() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros()
}

#[test]
fn the_dashboard_follows_the_service_and_an_id_in_a_browser() {
    let Some(binary) = chromium() else {
        return;
    };
    let token = "Authorization: Bearer s3cret\r\n";
    let server = server(Config {
        admin_token: Some("s3cret".into()),
        dashboard: Some(Dashboard {
            mode: DashboardMode::Admin,
            admin: None,
            subscriber: None,
        }),
        ..config()
    });
    let url = format!("http://{}/", server.admin_addr());
    let (_browser, mut page) = Browser::open(&binary, &url);

    // The admin has a token: the page asks for it, then goes live.
    page.wait_for("!document.getElementById('token-form').hidden");
    page.eval("document.getElementById('token').value = 's3cret'; document.getElementById('token-form').requestSubmit()");
    page.wait_for("document.getElementById('state').classList.contains('live')");
    assert_eq!(page.text_of("connections"), "0");

    // Subscribing opens a connection on the subscriber port: the panel shows it.
    page.eval("document.getElementById('sub-id').value = '7'; document.getElementById('sub-form').requestSubmit()");
    page.wait_for("document.getElementById('sub-state').textContent === 'subscribed to 7'");
    page.wait_for("document.getElementById('connections').textContent === '1'");
    assert_eq!(page.text_of("logged_in"), "1");

    // A message through the admin API arrives with its latency.
    let message = format!("[c1m 7 1 1 {} 9|from rust]", now_us());
    let (status, body) = admin_with(
        server.admin_addr(),
        "POST",
        "/send/7",
        message.as_bytes(),
        token,
    );
    assert_eq!((status, body.trim()), (200, r#"{"id":7,"connections":1}"#));
    let row = page.wait_for(
        "(() => { const r = document.querySelector('#messages tr[data-latency-ms]'); \
         return r && { latency: Number(r.dataset.latencyMs), text: r.lastChild.textContent, seq: r.children[1].textContent }; })()",
    );
    assert_eq!(row["text"], message.as_str(), "{row}");
    assert_eq!(row["seq"], "1", "{row}");
    let latency = row["latency"].as_f64().unwrap();
    assert!((0.0..5000.0).contains(&latency), "latency {latency} ms");

    // The page's own send box posts with the token it was given.
    page.eval("document.getElementById('send-text').value = 'typed'; document.getElementById('send-form').requestSubmit()");
    page.wait_for("document.getElementById('send-state').textContent.startsWith('200')");
    page.wait_for("document.querySelectorAll('#messages tr[data-latency-ms]').length === 2");
    assert!(page.text_of("messages").contains("|typed]"));

    // The charts have points: messages/s and this page's p99.
    page.wait_for("series.p99.some((v) => v != null) && series.outRate.some((v) => v > 0)");
    let (_, stats) = admin_with(server.admin_addr(), "GET", "/stats", b"", token);
    let stats: c1m_common::StatsSnapshot = serde_json::from_str(&stats).unwrap();
    assert_eq!((stats.messages_in, stats.messages_out), (2, 2));

    page.save_screenshot("dashboard.png");
}

#[test]
fn a_groups_dashboard_shows_the_sum_and_every_worker() {
    let Some(binary) = chromium() else {
        return;
    };
    let group = Binary::start(&["--workers", "2", "--dashboard"]);
    let mut subscribers: Vec<Client> = (0..3)
        .map(|id| Client::get(group.listen, &format!("/sse/{id}")))
        .collect();
    for subscriber in &mut subscribers {
        subscriber.expect("text/event-stream");
    }
    let (_browser, mut page) = Browser::open(&binary, &format!("http://{}/", group.admin));
    page.wait_for(
        "document.querySelectorAll('#workers tbody tr').length === 2 \
         && document.getElementById('connections').textContent === '3'",
    );
    let rows = page.eval(
        "[...document.querySelectorAll('#workers tbody tr')].map((r) => [...r.children].map((c) => c.textContent))",
    );
    // Worker 0 owns ids 0 and 2, worker 1 id 1 (id % 2).
    assert_eq!(
        (
            rows[0][0].as_str(),
            rows[0][2].as_str(),
            rows[0][4].as_str()
        ),
        (Some("0"), Some("yes"), Some("2")),
        "{rows}"
    );
    assert_eq!(
        (
            rows[1][0].as_str(),
            rows[1][2].as_str(),
            rows[1][4].as_str()
        ),
        (Some("1"), Some("yes"), Some("1")),
        "{rows}"
    );
    page.save_screenshot("dashboard-group.png");
}
