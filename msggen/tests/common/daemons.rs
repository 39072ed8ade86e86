//! The real push servers the publisher tests run against (nginx with
//! nchan, Pushpin with its own zurl, nats-server, redis-server), each
//! started on free loopback ports with a config generated in a temp dir
//! and stopped on drop; and floodtest, the subscriber side.
//!
//! The servers are Debian packages that `scripts/test.sh` installs when
//! missing; a test that finds one missing fails naming the package.

#![allow(dead_code)] // Each test binary uses a different part.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A free loopback port (bound, read, released).
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Child processes stopped (SIGTERM, then SIGKILL) and reaped on drop,
/// newest first, with the temp dir of their configs.
pub(crate) struct Daemons {
    children: Vec<(String, Child)>,
    pub(crate) dir: tempfile::TempDir,
}

impl Daemons {
    pub(crate) fn new() -> Self {
        Self {
            children: Vec::new(),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// Starts `program` with `args`, its output in `<dir>/<name>.log`.
    pub(crate) fn spawn(&mut self, name: &str, program: &str, args: &[&str], package: &str) {
        let log = std::fs::File::create(self.dir.path().join(format!("{name}.log"))).unwrap();
        let child = Command::new(program)
            .args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {program} ({e}): install it with apt-get install {package} (scripts/test.sh does)")
            });
        self.children.push((name.to_owned(), child));
    }

    /// Waits until `addr` accepts a connection (the readiness signal of
    /// every server here), failing with the server's log after 20 s.
    pub(crate) fn wait_ready(&mut self, addr: SocketAddr) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(addr).is_err() {
            let exited = self
                .children
                .iter_mut()
                .find_map(|(name, child)| Some((name.clone(), child.try_wait().unwrap()?)));
            if let Some((name, status)) = exited {
                panic!("{name} exited ({status}): {}", self.log(&name));
            }
            assert!(Instant::now() < deadline, "nothing listens on {addr}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub(crate) fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{name}.log"))).unwrap_or_default()
    }

    pub(crate) fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    pub(crate) fn write(&self, file: &str, text: &str) -> PathBuf {
        let path = self.path(file);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for Daemons {
    fn drop(&mut self) {
        for (_, child) in self.children.iter_mut().rev() {
            // SAFETY: kill with the pid of a child we have not reaped.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(5);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// nginx with nchan: `POST /pub/{id}` publishes, `GET /sub/{id}`
/// subscribes (EventSource, or chunked with `TE: chunked`). Returns the
/// daemons and the listening address.
pub(crate) fn nchan() -> (Daemons, SocketAddr) {
    let mut d = Daemons::new();
    let port = free_port();
    let dir = d.dir.path().display().to_string();
    let conf = format!(
        "daemon off;\nworker_processes 1;\npid {dir}/nginx.pid;\nerror_log {dir}/error.log warn;\n\
         load_module /usr/lib/nginx/modules/ngx_nchan_module.so;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {dir}/body;\n  proxy_temp_path {dir}/proxy;\n\
         fastcgi_temp_path {dir}/fastcgi;\n  uwsgi_temp_path {dir}/uwsgi;\n  scgi_temp_path {dir}/scgi;\n\
         server {{\n    listen 127.0.0.1:{port};\n\
         location ~ ^/pub/(.+)$ {{ nchan_publisher; nchan_channel_id $1; nchan_message_buffer_length 10; }}\n\
         location ~ ^/sub/(.+)$ {{ nchan_subscriber; nchan_channel_id $1; nchan_subscriber_first_message newest; }}\n\
         }}\n}}\n"
    );
    let path = d.write("nginx.conf", &conf);
    let path = path.display().to_string();
    d.spawn(
        "nginx",
        "/usr/sbin/nginx",
        &["-c", &path, "-p", &dir, "-e", &format!("{dir}/error.log")],
        "nginx-light libnginx-mod-nchan",
    );
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    d.wait_ready(addr);
    (d, addr)
}

/// Pushpin in front of a small GRIP origin (a thread answering every
/// `GET /{id}` with `Grip-Hold: stream`, `Grip-Channel: {id}`), with a zurl
/// of its own: the packaged setup expects a system zurl at
/// `/var/run/zurl`, and zurl's packaged config denies `127.*` origins, so
/// the proxy could never reach a loopback origin. Returns the daemons, the
/// subscriber address and the publish address.
pub(crate) fn pushpin() -> (Daemons, SocketAddr, SocketAddr) {
    let mut d = Daemons::new();
    let origin = grip_origin();
    let (http_port, publish_port) = (free_port(), free_port());
    let run = d.path("run");
    std::fs::create_dir_all(&run).unwrap();
    let run = run.display().to_string();
    let zurl = d.write(
        "zurl.conf",
        &format!(
            "[General]\nin_spec=ipc://{run}/zurl-in\nin_stream_spec=ipc://{run}/zurl-in-stream\n\
             out_spec=ipc://{run}/zurl-out\ndefpolicy=allow\nallow=\ndeny=\nmax_open_requests=2000\n\
             buffer_size=200000\ntimeout=600\n"
        ),
    );
    let routes = d.write("routes", &format!("* 127.0.0.1:{}\n", origin.port()));
    let dir = d.dir.path().display().to_string();
    let conf = d.write(
        "pushpin.conf",
        &format!(
            "[global]\ninclude={{libdir}}/internal.conf\nrundir={run}\nipc_prefix=c1m-\nport_offset=0\n\
             [runner]\nservices=condure,pushpin-proxy,pushpin-handler\nhttp_port=127.0.0.1:{http_port}\n\
             logdir={dir}\nlog_level=2\nclient_maxconn=20000\ncondure_bin=condure\n\
             [proxy]\nroutesfile={}\nzurl_out_specs=ipc://{run}/zurl-in\n\
             zurl_out_stream_specs=ipc://{run}/zurl-in-stream\nzurl_in_specs=ipc://{run}/zurl-out\n\
             sig_key=changeme\nupdates_check=off\n\
             [handler]\npush_in_spec=ipc://{run}/push-in\npush_in_sub_specs=ipc://{run}/push-in-sub\n\
             push_in_http_addr=127.0.0.1\npush_in_http_port={publish_port}\nstats_spec=ipc://{run}/stats\n\
             command_spec=ipc://{run}/command\nmessage_rate=100000\nmessage_hwm=100000\n",
            routes.display()
        ),
    );
    d.spawn(
        "zurl",
        "zurl",
        &[&format!("--config={}", zurl.display())],
        "zurl",
    );
    d.spawn(
        "pushpin",
        "pushpin",
        &[&format!("--config={}", conf.display())],
        "pushpin",
    );
    let http = SocketAddr::from(([127, 0, 0, 1], http_port));
    let publish = SocketAddr::from(([127, 0, 0, 1], publish_port));
    d.wait_ready(http);
    d.wait_ready(publish);
    (d, http, publish)
}

/// The GRIP origin: one thread per request, each answered with hold
/// instructions; lives as long as the test process.
fn grip_origin() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut stream = stream;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let channel = line
                        .split_whitespace()
                        .nth(1)
                        .and_then(|p| p.rsplit('/').next())
                        .unwrap_or("")
                        .to_owned();
                    // The rest of the head.
                    loop {
                        let mut field = String::new();
                        if reader.read_line(&mut field).unwrap_or(0) == 0 {
                            return;
                        }
                        if field == "\r\n" {
                            break;
                        }
                    }
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nGrip-Hold: stream\r\n\
                         Grip-Channel: {channel}\r\nContent-Length: 0\r\n\r\n"
                    );
                    if stream.write_all(answer.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// nats-server on a free port.
pub(crate) fn nats() -> (Daemons, SocketAddr) {
    let mut d = Daemons::new();
    let port = free_port().to_string();
    d.spawn(
        "nats-server",
        "nats-server",
        &["-a", "127.0.0.1", "-p", &port],
        "nats-server",
    );
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    d.wait_ready(addr);
    (d, addr)
}

/// redis-server on a free port, no persistence.
pub(crate) fn redis() -> (Daemons, SocketAddr) {
    let mut d = Daemons::new();
    let port = free_port().to_string();
    let dir = d.dir.path().display().to_string();
    d.spawn(
        "redis-server",
        "redis-server",
        &[
            "--bind",
            "127.0.0.1",
            "--port",
            &port,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            &dir,
        ],
        "redis-server",
    );
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    d.wait_ready(addr);
    (d, addr)
}

/// The floodtest binary, built into this test's target folder and profile
/// on first use (another package's binary, which `cargo test -p
/// c1m-msggen` does not build).
pub(crate) fn floodtest_bin() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let exe = PathBuf::from(env!("CARGO_BIN_EXE_msggen"));
        let dir = exe.parent().unwrap().to_path_buf();
        let release = dir.file_name().is_some_and(|n| n == "release");
        let mut cargo = Command::new(env!("CARGO"));
        cargo
            .arg("build")
            .arg("--target-dir")
            .arg(dir.parent().unwrap())
            .args(["-p", "c1m-floodtest"]);
        if release {
            cargo.arg("--release");
        }
        let command = format!("{cargo:?}");
        let status = cargo
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .unwrap_or_else(|e| panic!("could not run {command}: {e}"));
        assert!(status.success(), "building floodtest failed: {command}");
        dir.join("floodtest")
    })
}

/// A floodtest holding `conns` streams of `url`; its summary is read once
/// it is stopped.
pub(crate) struct Flood {
    child: Child,
    stdout: std::io::Lines<BufReader<std::process::ChildStdout>>,
    json: PathBuf,
    _dir: tempfile::TempDir,
}

impl Flood {
    /// Starts floodtest and returns once its ramp is done.
    pub(crate) fn hold(url: &str, mode: &str, conns: u32) -> Self {
        Self::hold_with(url, mode, conns, &[])
    }

    /// The same with more floodtest arguments (`--ids 1-6`).
    pub(crate) fn hold_with(url: &str, mode: &str, conns: u32, extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let json = dir.path().join("flood.json");
        let mut child = Command::new(floodtest_bin())
            .args(["--url", url, "--mode", mode, "--conns", &conns.to_string()])
            .args(extra)
            .args(["--duration", "60s", "--report-interval", "200ms", "--json"])
            .arg(&json)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let mut lines = stderr.lines();
        let ramp = lines
            .by_ref()
            .map_while(Result::ok)
            .find(|l| l.contains("ramp done"));
        let ramp = ramp.expect("floodtest ended before its ramp was done");
        assert!(ramp.contains(&format!("open {conns}/{conns}")), "{ramp}");
        // The rest of stderr is drained so floodtest never blocks on it.
        std::thread::spawn(move || lines.for_each(drop));
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        Self {
            child,
            stdout,
            json,
            _dir: dir,
        }
    }

    /// Waits (at most 30 s) until floodtest's interval lines count at least
    /// `chunks` chunks or events in all (`Stats: {active,closed,chunks}`),
    /// then stops it and returns its summary.
    pub(crate) fn stop_after(mut self, chunks: u64) -> c1m_common::FloodSummary {
        let deadline = Instant::now() + Duration::from_secs(30);
        for line in self.stdout.by_ref().map_while(Result::ok) {
            let seen = line
                .rsplit(',')
                .next()
                .and_then(|c| c.trim_end_matches('}').trim().parse::<u64>().ok());
            if seen.is_some_and(|n| n >= chunks) || Instant::now() > deadline {
                break;
            }
        }
        // SAFETY: kill with the pid of a child we have not reaped.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let _ = self.child.wait();
        let text = std::fs::read_to_string(&self.json).expect("floodtest wrote no summary");
        c1m_common::validate_against_schema("flood-summary.json", &text).unwrap();
        serde_json::from_str(&text).unwrap()
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
