//! `floodtest agent` and `floodtest --agents`: several agents on this
//! machine (separate processes, each with its own source addresses) and a
//! controller, meeting at a real nats-server, against the real
//! comet-server in-process.
//!
//! The merged summary must be the sum of the agents' own, its percentiles
//! those of the merged histograms (rebuilt here from the per-agent buckets
//! in the JSON); a lost agent makes the run incomplete and names it; an
//! agent whose controller vanishes closes its connections; a controller or
//! agent of another protocol version is refused.

mod support;

use c1m_common::unix_us_now;
use c1m_common::{encode_envelope, push_batch_line, FloodSummary, Header};
use hdrhistogram::Histogram;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// One `floodtest agent` process, killed on drop; its stderr lines are
/// read in a thread so the test can wait for one.
struct Agent {
    child: Child,
    said: Said,
}

impl Agent {
    /// Starts agent `name` binding `source_ips` and waits until it waits
    /// for work (it has subscribed and announced itself).
    fn start(broker: &str, name: &str, source_ips: &str) -> Agent {
        let mut child = Command::new(env!("CARGO_BIN_EXE_floodtest"))
            .args(["agent", "--broker", broker, "--name", name])
            .args(["--source-ips", source_ips])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let said = Said::read(child.stderr.take().unwrap());
        let mut agent = Agent { child, said };
        agent.wait_for("waiting for work", Duration::from_secs(10));
        agent
    }

    /// The first stderr line containing `text` within `bound`.
    fn wait_for(&mut self, text: &str, bound: Duration) -> String {
        self.said.wait_for("agent", text, bound).pop().unwrap()
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A process's stderr lines, read in a thread.
struct Said {
    lines: mpsc::Receiver<String>,
}

impl Said {
    fn read(stderr: ChildStderr) -> Said {
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Said { lines }
    }

    /// Lines up to the first containing `text`, within `bound`; `who`
    /// names the process when it says no such line.
    fn wait_for(&self, who: &str, text: &str, bound: Duration) -> Vec<String> {
        let deadline = Instant::now() + bound;
        let mut seen = Vec::new();
        while let Ok(line) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            let found = line.contains(text);
            seen.push(line);
            if found {
                return seen;
            }
        }
        panic!("{who} said no {text:?} within {bound:?}; it said: {seen:#?}");
    }
}

/// The controller, with `--json` into a temp dir.
struct Controller {
    child: Child,
    said: Said,
    json: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Controller {
    fn start(args: &[&str]) -> Controller {
        let dir = tempfile::tempdir().unwrap();
        let json = dir.path().join("merged.json");
        let mut child = Command::new(env!("CARGO_BIN_EXE_floodtest"))
            .args(args)
            .arg("--json")
            .arg(&json)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let said = Said::read(child.stderr.take().unwrap());
        Controller {
            child,
            said,
            json,
            _dir: dir,
        }
    }

    /// Waits for a stderr line containing `text`; all lines seen so far.
    fn wait_for(&mut self, text: &str, bound: Duration) -> Vec<String> {
        self.said.wait_for("the controller", text, bound)
    }

    /// Waits (bounded) for the exit: the code, the rest of stderr and the
    /// summary (validated against the schema), if one was written.
    fn finish(mut self, bound: Duration) -> (Option<i32>, String, Option<FloodSummary>) {
        let deadline = Instant::now() + bound;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                panic!("the controller did not end within {bound:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        // To the end of its stderr (the reader ends at EOF): nothing the
        // controller said last is missed.
        let rest: Vec<String> = self.said.lines.iter().collect();
        (
            status.code(),
            rest.join("\n"),
            support::read_summary(&self.json),
        )
    }
}

fn comet_server() -> c1m_server::Server {
    let _ = c1m_common::raise_nofile_to_hard();
    let listener = c1m_server::bind("127.0.0.1:0".parse().unwrap(), 4096, false).unwrap();
    let admin = c1m_server::bind("127.0.0.1:0".parse().unwrap(), 64, false).unwrap();
    c1m_server::start(c1m_server::Config::default(), listener, admin).unwrap()
}

/// Sends message `seq` to every id in `ids`; returns how many were
/// delivered.
fn send_to_all(server: &c1m_server::Server, ids: std::ops::RangeInclusive<u64>, seq: u64) -> u64 {
    let mut body = Vec::new();
    for id in ids {
        let header = Header {
            id,
            generator: 9,
            seq,
            sent_us: unix_us_now(),
        };
        push_batch_line(&mut body, id, |out| encode_envelope(&header, b"hi", out)).unwrap();
    }
    let answer: c1m_common::BatchAnswer =
        serde_json::from_str(&support::admin_post(server.admin_addr(), "/send", &body)).unwrap();
    answer
        .delivered
        .expect("a single server says how many it delivered")
}

fn rebuild(buckets: &[(u64, u64)]) -> Histogram<u64> {
    let mut h = Histogram::<u64>::new_with_bounds(1, 100_000_000, 3).unwrap();
    for &(value, count) in buckets {
        h.record_n(value, count).unwrap();
    }
    h
}

#[test]
fn three_agents_hold_one_run_and_the_merge_is_exact() {
    let (_nats, nats) = c1m_pushsrv::nats();
    let broker = format!("nats://{nats}");
    let server = comet_server();
    let agents: Vec<Agent> = (0..3)
        .map(|k| Agent::start(&broker, &format!("a{k}"), &format!("127.0.7.{}", k + 1)))
        .collect();
    let url = format!("http://{}/test/{{id}}", server.subscriber_addr());
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("merged.csv");
    let mut controller = Controller::start(&[
        "--agents",
        "3",
        "--broker",
        &broker,
        "--url",
        &url,
        "--conns",
        "900",
        "--bind-mode",
        "noport",
        "--duration",
        "3s",
        "--report-interval",
        "200ms",
        "--csv",
        csv.to_str().unwrap(),
    ]);
    let seen = controller.wait_for("ramp done", Duration::from_secs(30));
    let plan = seen.iter().find(|l| l.contains("over 3 agents")).unwrap();
    assert!(
        plan.contains("a0 (") && plan.contains("300 from 127.0.7.1"),
        "{plan}"
    );
    // Every id has exactly one stream: the agents' slices are disjoint.
    assert_eq!(send_to_all(&server, 1..=900, 1), 900);
    assert_eq!(send_to_all(&server, 1..=900, 3), 900);
    let (code, stderr, summary) = controller.finish(Duration::from_secs(60));
    assert_eq!(code, Some(0), "{stderr}");
    let s = summary.expect("the merged summary was written");
    assert_eq!(s.incomplete, None);
    let names: Vec<&str> = s.agents.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["a0", "a1", "a2"]);

    // The merged counters are the sums of the agents' own summaries.
    let sum = |f: fn(&FloodSummary) -> u64| s.agents.iter().map(|a| f(&a.summary)).sum::<u64>();
    assert_eq!(s.target, sum(|p| p.target));
    assert_eq!((s.opened, sum(|p| p.opened)), (900, 900));
    assert_eq!(s.held, sum(|p| p.held));
    assert_eq!(s.closed, sum(|p| p.closed));
    assert_eq!(s.failed_total, sum(|p| p.failed_total));
    assert_eq!(s.chunks, sum(|p| p.chunks));
    assert_eq!(s.bytes, sum(|p| p.bytes));
    assert_eq!((s.messages, sum(|p| p.messages)), (1800, 1800));
    assert_eq!((s.lost, sum(|p| p.lost)), (900, 900));
    assert_eq!(s.latency_us.count, sum(|p| p.latency_us.count));
    for a in &s.agents {
        assert_eq!((a.summary.opened, a.summary.held), (300, 300), "{}", a.name);
    }

    // The merged percentiles are those of the merged histograms.
    let mut latency = rebuild(&[]);
    let mut connect = rebuild(&[]);
    for a in &s.agents {
        let own = rebuild(&a.histograms.latency_us);
        assert_eq!(own.value_at_quantile(0.99), a.summary.latency_us.p99);
        latency.add(&own).unwrap();
        connect.add(rebuild(&a.histograms.connect_us)).unwrap();
    }
    assert_eq!(latency.len(), 1800);
    assert_eq!(s.latency_us.p99, latency.value_at_quantile(0.99));
    assert_eq!(s.latency_us.p50, latency.value_at_quantile(0.5));
    assert_eq!(s.latency_us.max, latency.max());
    assert_eq!(s.connect_us.p99, connect.value_at_quantile(0.99));

    // One merged CSV, its last record counting all 900.
    let last: c1m_common::FloodInterval = csv::Reader::from_path(&csv)
        .unwrap()
        .deserialize()
        .last()
        .unwrap()
        .unwrap();
    assert_eq!(last.opened, 900);
    drop(agents);
}

#[test]
fn a_lost_agent_ends_the_run_incomplete_and_agents_give_up_a_vanished_controller() {
    let (_nats, nats) = c1m_pushsrv::nats();
    let broker = format!("nats://{nats}");
    let server = comet_server();
    let url = format!("http://{}/test/{{id}}", server.subscriber_addr());
    let mut b0 = Agent::start(&broker, "b0", "127.0.8.1");
    let mut b1 = Agent::start(&broker, "b1", "127.0.8.2");
    let flags = [
        "--broker",
        &broker,
        "--url",
        &url,
        "--conns",
        "400",
        "--bind-mode",
        "noport",
        "--duration",
        "60s",
        "--report-interval",
        "200ms",
        "--agent-timeout",
        "2s",
    ];
    let mut controller = Controller::start(&[&["--agents", "b0,b1"][..], &flags].concat());
    controller.wait_for("ramp done", Duration::from_secs(30));
    b1.kill();
    let (code, stderr, summary) = controller.finish(Duration::from_secs(30));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("run incomplete: agent b1 lost"), "{stderr}");
    let s = summary.expect("the summary is written for an incomplete run");
    assert!(
        s.incomplete.as_deref().unwrap().contains("agent b1 lost"),
        "{s:?}"
    );
    // b0's figures are kept, b1's connections counted closed.
    assert_eq!(s.agents.len(), 1);
    assert_eq!(
        (s.agents[0].name.as_str(), s.agents[0].summary.opened),
        ("b0", 200)
    );
    assert_eq!((s.open, s.opened, s.closed), (400, 400, 400));
    b0.wait_for("ends: stopped by the controller", Duration::from_secs(10));

    // b0 again, with a controller that dies: b0 closes its 200 after 2 s.
    let b2 = Agent::start(&broker, "b2", "127.0.8.3");
    let mut controller = Controller::start(&[&["--agents", "b0,b2"][..], &flags].concat());
    controller.wait_for("ramp done", Duration::from_secs(30));
    let open = server.stats().connections;
    assert!(open >= 400, "{open}");
    let killed = Instant::now();
    controller.child.kill().unwrap();
    let _ = controller.child.wait();
    b0.wait_for("no word from the controller", Duration::from_secs(10));
    let waited = killed.elapsed();
    assert!(
        waited >= Duration::from_millis(1500),
        "gave up after {waited:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.stats().connections > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(server.stats().connections, 0, "the agents closed theirs");
    drop(b2);
}

/// A client speaking the NATS protocol by hand, standing in for a floodtest
/// of another version.
struct RawNats {
    stream: TcpStream,
}

impl RawNats {
    fn connect(addr: std::net::SocketAddr) -> RawNats {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut info = [0u8; 4096];
        let _ = stream.read(&mut info).unwrap();
        stream
            .write_all(b"CONNECT {\"verbose\":false}\r\n")
            .unwrap();
        RawNats { stream }
    }

    /// Reads until a message on `subject` arrives.
    fn wait_msg(&mut self, subject: &str) {
        let want = format!("MSG {subject} ");
        let mut seen = Vec::new();
        let mut byte = [0u8; 1];
        while !String::from_utf8_lossy(&seen).contains(&want) {
            self.stream.read_exact(&mut byte).unwrap();
            seen.push(byte[0]);
        }
    }

    fn publish(&mut self, subject: &str, payload: &str) {
        let msg = format!("PUB {subject} {}\r\n{payload}\r\nPING\r\n", payload.len());
        self.stream.write_all(msg.as_bytes()).unwrap();
        // The PONG says the server has the message.
        let mut reply = Vec::new();
        let mut byte = [0u8; 1];
        while !reply.ends_with(b"PONG\r\n") {
            self.stream.read_exact(&mut byte).unwrap();
            reply.push(byte[0]);
        }
    }
}

#[test]
fn other_versions_are_refused_and_missing_or_unable_agents_are_named() {
    let (_nats, nats) = c1m_pushsrv::nats();
    let broker = format!("nats://{nats}");
    let mut agent = Agent::start(&broker, "c0", "127.0.9.1");

    // A controller of protocol 99 looking for agents: the agent refuses it.
    let mut raw = RawNats::connect(nats);
    raw.publish(
        "c1m.flood.discover",
        r#"{"protocol":99,"body":{"kind":"discover"}}"#,
    );
    let line = agent.wait_for("refusing a controller", Duration::from_secs(10));
    assert!(
        line.contains("speaks agent protocol 99, this floodtest speaks 1"),
        "{line}"
    );

    // Named agents that never come: the error names them, with the fix.
    let url = "http://127.0.0.1:9/test/{id}";
    let base = [
        "--broker",
        &broker,
        "--url",
        url,
        "--conns",
        "10",
        "--agents-wait",
        "1s",
    ];
    let c = Controller::start(&[&base[..], &["--agents", "c0,c9"]].concat());
    let (code, stderr, _) = c.finish(Duration::from_secs(20));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("missing c9 (announced: c0)"), "{stderr}");
    assert!(
        stderr.contains("fix: start `floodtest agent --broker"),
        "{stderr}"
    );

    // More than the agents' addresses can hold: refused with each one's figure.
    let c = Controller::start(&[&base[..], &["--agents", "1", "--conns", "100k"]].concat());
    let (code, stderr, _) = c.finish(Duration::from_secs(20));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot open 100000 connections over 1 agents: c0 1 source IP(s)"),
        "{stderr}"
    );

    // A share the agent cannot plan (its CA file is not there): nothing starts.
    let tls = [
        "--url",
        "https://127.0.0.1:9/test/{id}",
        "--ca",
        "/nonexistent/ca.pem",
    ];
    let c = Controller::start(&[&base[..], &["--agents", "1"], &tls[..]].concat());
    let (code, stderr, _) = c.finish(Duration::from_secs(20));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("agent c0 cannot take its share (10 connections); nothing was started"),
        "{stderr}"
    );
    assert!(stderr.contains("/nonexistent/ca.pem"), "{stderr}");

    // An agent of protocol 99 announcing itself: the controller refuses it.
    let mut raw = RawNats::connect(nats);
    raw.stream
        .write_all(b"SUB c1m.flood.discover 1\r\n")
        .unwrap();
    let c = Controller::start(&[&base[..], &["--agents", "2"]].concat());
    // Its discover comes once it listens for announces.
    raw.wait_msg("c1m.flood.discover");
    raw.publish(
        "c1m.flood.announce",
        r#"{"protocol":99,"body":{"kind":"announce","name":"old"}}"#,
    );
    let (code, stderr, _) = c.finish(Duration::from_secs(20));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("agent old speaks agent protocol 99, this floodtest speaks 1"),
        "{stderr}"
    );
}
