//! `ws://` streams against nchan's WebSocket subscriber (nginx with
//! `libnginx-mod-nchan`), an independent push server: nginx is started on
//! a free loopback port with a generated configuration, floodtest holds
//! its streams, and messages published to nchan's channels arrive with
//! their gaps counted.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const MODULE: &str = "/usr/lib/nginx/modules/ngx_nchan_module.so";

/// nginx in the foreground, one process, everything in a temporary folder.
struct Nginx {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn nginx() -> Nginx {
    assert!(
        std::path::Path::new(MODULE).exists(),
        "nchan is needed: apt-get install nginx libnginx-mod-nchan (scripts/test.sh installs it)"
    );
    let dir = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let d = dir.path().display();
    let conf = format!(
        "load_module {MODULE};
master_process off;
daemon off;
worker_processes 1;
error_log {d}/error.log warn;
pid {d}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  server {{
    listen 127.0.0.1:{port};
    location ~ ^/sub/(\\d+)$ {{
      nchan_subscriber websocket;
      nchan_channel_id $1;
      nchan_websocket_ping_interval 1;
    }}
    location = /pub {{
      nchan_publisher;
      nchan_channel_id $arg_id;
    }}
  }}
}}
"
    );
    let path = dir.path().join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    let child = Command::new("nginx")
        .arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(&path)
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx is needed (apt-get install nginx libnginx-mod-nchan)");
    // Ready once it accepts.
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nginx did not start on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
    Nginx {
        child,
        port,
        _dir: dir,
    }
}

/// Publishes `body` to channel `id`; returns the status line.
fn publish(port: u16, id: u64, body: &[u8]) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let head = format!(
        "POST /pub?id={id} HTTP/1.1\r\nHost: n\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    answer.lines().next().unwrap_or_default().to_owned()
}

#[test]
fn ws_streams_from_nchan_carry_envelopes_and_gaps() {
    let nginx = nginx();
    let url = format!("ws://127.0.0.1:{}/sub/{{id}}", nginx.port);
    let mut held = support::hold(&["--url", &url, "--conns", "20", "--report-interval", "100ms"]);
    assert!(held.ramp_line.contains("open 20/20"), "{}", held.ramp_line);
    for seq in [1, 2, 4] {
        for id in 1..=20 {
            let status = publish(nginx.port, id, &support::envelope(id, seq));
            assert!(status.starts_with("HTTP/1.1 20"), "{status}");
        }
    }
    let stdout = BufReader::new(held.child.stdout.take().unwrap());
    let seen = stdout
        .lines()
        .map(Result::unwrap)
        .find(|l| l.contains("lost 20 "));
    assert!(seen.is_some(), "floodtest ended before counting the gaps");
    held.signal(libc::SIGTERM);
    let (code, summary) = held.wait();
    let s = summary.unwrap();
    assert_eq!(code, Some(0), "{s:?}");
    assert_eq!((s.open, s.messages, s.lost), (20, 60, 20), "{s:?}");
    assert_eq!(s.failed_total, 0, "{s:?}");
}
