//! The `msggen` binary against an in-test counting server: what arrives
//! (envelopes, contiguous sequences, rate) and what happens when the target
//! refuses, fails or is down (counts by class, exit codes). Every `--json`
//! summary is validated against `docs/schema/msggen-summary.json` and read
//! as the `MsggenSummary` that `experiment` reads.

#[path = "common/sink.rs"]
mod sink;

use c1m_common::{validate_against_schema, MsggenSummary};
use sink::{Behavior, SinkState};
use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use tokio::net::TcpListener;

struct Run {
    output: Output,
    summary: MsggenSummary,
}

impl Run {
    fn code(&self) -> i32 {
        self.output.status.code().unwrap_or(-1)
    }
    fn assert_exit(&self, code: i32) {
        assert_eq!(
            self.code(),
            code,
            "{}",
            String::from_utf8_lossy(&self.output.stderr)
        );
    }
    /// Messages that failed for good as `class`.
    fn failed(&self, class: &str) -> u64 {
        self.summary
            .failed_by_class
            .get(class)
            .copied()
            .unwrap_or(0)
    }
    /// Failed attempts of `class`.
    fn errors(&self, class: &str) -> u64 {
        self.summary
            .errors_by_class
            .get(class)
            .copied()
            .unwrap_or(0)
    }
}

/// The `--json` summary at `path`, checked against its schema.
fn read_summary(path: &Path) -> MsggenSummary {
    let text = std::fs::read_to_string(path).unwrap();
    validate_against_schema("msggen-summary.json", &text).unwrap_or_else(|e| panic!("{e}"));
    serde_json::from_str(&text).unwrap()
}

/// Checks that every (generator, id)'s messages arrived numbered 1, 2, 3,
/// ... and returns the last sequence number of each.
fn contiguous_seqs(state: &SinkState) -> HashMap<(u64, u64), u64> {
    let mut last = HashMap::new();
    for (h, _, _) in state.envelopes.lock().unwrap().iter() {
        let seq = last.entry((h.generator, h.id)).or_insert(0);
        assert_eq!(h.seq, *seq + 1, "gap or reorder at {h}");
        *seq = h.seq;
    }
    last
}

/// A sink with `behavior`, and msggen run against it with `args` (where
/// `{url}` stands for the sink's address).
async fn against(behavior: Behavior, args: &str) -> (Run, Arc<SinkState>) {
    let dir = tempfile::tempdir().unwrap();
    let (url, state) = sink(behavior).await;
    let run = msggen(dir.path(), &args.replace("{url}", &url)).await;
    (run, state)
}

async fn sink(behavior: Behavior) -> (String, Arc<SinkState>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    (url, sink::spawn(listener, behavior))
}

/// Runs msggen with the whitespace-separated `args` plus `--json` into
/// `dir`, and reads the summary.
async fn msggen(dir: &Path, args: &str) -> Run {
    let json = dir.join("summary.json");
    let mut argv: Vec<String> = args.split_whitespace().map(str::to_owned).collect();
    argv.extend(["--json".into(), json.display().to_string()]);
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_msggen"))
            .args(&argv)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        json.exists(),
        "no summary; stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Run {
        output,
        summary: read_summary(&json),
    }
}

#[tokio::test]
async fn envelopes_arrive_with_contiguous_seqs_per_generator_and_id() {
    let dir = tempfile::tempdir().unwrap();
    let (url, state) = sink(Behavior::accept()).await;
    let last_seqs = dir.path().join("last.csv");
    let before_us = c1m_common::unix_us_now();
    let args = format!(
        "--target {url} --ids 1-50 --rate 5000 --count 3000 --senders 3 --dist zipf:1.1 \
         --size 17 --generator-id 2 --seed 9 --last-seqs {}",
        last_seqs.display()
    );
    let run = msggen(dir.path(), &args).await;
    run.assert_exit(0);
    let sent = (run.summary.sent, run.summary.failed, run.summary.released);
    assert_eq!(sent, (3000, 0, 3000));
    let after_us = c1m_common::unix_us_now();

    let last = contiguous_seqs(&state);
    let envelopes = state.envelopes.lock().unwrap().clone();
    assert_eq!(envelopes.len(), 3000);
    // Sender k of 3 with --generator-id 2 is generator 6 + k and owns the
    // ids with (id - 1) % 3 == k.
    for (h, payload_len, _) in &envelopes {
        assert_eq!(h.generator, 6 + (h.id - 1) % 3, "{h}");
        assert_eq!(*payload_len, 17);
        assert!((before_us..=after_us).contains(&h.sent_us), "{h}");
    }
    // Zipf: id 1 is the most frequent.
    let of = |id| envelopes.iter().filter(|(h, _, _)| h.id == id).count();
    let (one, two, ten) = (of(1), of(2), of(10));
    assert!(one > two && two > ten, "{one} {two} {ten}");

    // The summary's per-generator audit and the last-seqs file agree with
    // what arrived.
    let generators = &run.summary.generators;
    assert_eq!(generators.len(), 3);
    for g in generators {
        let numbered: u64 = last
            .iter()
            .filter(|((gen, _), _)| *gen == g.generator)
            .map(|(_, s)| s)
            .sum();
        assert_eq!((g.numbered, g.sent), (numbered, numbered));
    }
    let file = std::fs::read_to_string(&last_seqs).unwrap();
    let mut lines = file.lines();
    assert_eq!(lines.next(), Some("generator,id,last_seq"));
    let listed: HashMap<(u64, u64), u64> = lines
        .map(|l| {
            let v: Vec<u64> = l.split(',').map(|x| x.parse().unwrap()).collect();
            ((v[0], v[1]), v[2])
        })
        .collect();
    assert_eq!(listed, last);
    // Ids divisible by 10 are "no connection" in the sink's answers.
    assert_eq!(run.summary.dropped, state.dropped.load(Relaxed));
    assert!(run.summary.dropped > 0);
}

/// 10,000 messages at 5,000/s: the schedule takes 2 s, the achieved rate is
/// close (3% here, where a test run shares 2 cores with other builds; the
/// 1% target over 60 s is benches/rate.sh's), and the writes are about one
/// per millisecond tick.
#[tokio::test]
async fn holds_the_rate_against_a_counting_server() {
    let dir = tempfile::tempdir().unwrap();
    let (url, state) = sink(Behavior::accept()).await;
    let csv = dir.path().join("intervals.csv");
    let args = format!(
        "--target {url} --ids 1-10000 --rate 5000 --duration 2s --senders 2 \
         --report-interval 500ms --csv {}",
        csv.display()
    );
    let run = msggen(dir.path(), &args).await;
    run.assert_exit(0);
    assert_eq!(run.summary.sent, 10_000);
    assert_eq!(state.messages.load(Relaxed), 10_000);
    let achieved = run.summary.achieved_rate;
    assert!(
        (achieved / 5000.0 - 1.0).abs() < 0.03,
        "achieved {achieved}"
    );
    // What the sink saw: first to last arrival spans ~2 s.
    let envelopes = state.envelopes.lock().unwrap();
    let span_us = envelopes.last().unwrap().2 - envelopes.first().unwrap().2;
    assert!(
        (1_950_000..2_200_000).contains(&span_us),
        "span {span_us} us"
    );
    // Even spacing: the median gap between writes is about one 1 ms tick.
    // A shared 2-core box oversleeps the tick (CI saw a 1,740 µs median
    // with a 1 ms sleep oversleeping 120 µs at the median on the idle
    // machine), so up to 3 ms; writes bunched every 5 or 10 ms still fail.
    let p50 = run.summary.gap_us.p50;
    assert!((500..=3000).contains(&p50), "gap p50 {p50} us");
    // CSV: the pinned header and a record per interval.
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    let header = "unix_ms,elapsed_s,sent,failed,dropped,rate,gap_p50_us,gap_p99_us,gap_max_us";
    assert_eq!(lines.next(), Some(header));
    assert!(lines.count() >= 4);
}

#[tokio::test]
async fn a_target_that_is_down_fails_every_message_by_class_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on: bind, read it, close.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let args = format!(
        "--target http://127.0.0.1:{port} --ids 1-100 --rate 1000 --count 20 --senders 1 \
         --retries 2 --batch-max 10"
    );
    let run = msggen(dir.path(), &args).await;
    run.assert_exit(1);
    assert_eq!((run.summary.sent, run.summary.failed), (0, 20));
    assert_eq!(run.failed("refused"), 20);
    // Every failed attempt is counted: 3 attempts per batch, at least 2
    // batches of at most 10.
    let attempts = run.errors("refused");
    assert!(attempts >= 6 && attempts % 3 == 0, "{attempts} attempts");
    assert_eq!(run.summary.retries, attempts / 3 * 2);
    let stdout = String::from_utf8_lossy(&run.output.stdout);
    assert!(stdout.contains("failed refused: 20"), "{stdout}");
}

#[tokio::test]
async fn status_500_is_retried_then_counted_and_exits_1() {
    let args = "--target {url} --ids 1-100 --rate 10000 --count 50 --senders 1 --retries 1";
    let (run, state) = against(Behavior::fail(500, u64::MAX), args).await;
    run.assert_exit(1);
    assert_eq!(run.failed("status_5xx"), 50);
    let requests = state.requests.load(Relaxed);
    assert_eq!(run.errors("status_5xx"), requests);
    assert_eq!(requests % 2, 0, "each batch sent twice");
    assert_eq!(state.messages.load(Relaxed), 0);
}

#[tokio::test]
async fn transient_500s_are_retried_with_the_same_seqs_and_exit_0() {
    let args = "--target {url} --ids 1-20 --rate 2000 --count 400 --senders 2";
    let (run, state) = against(Behavior::fail(503, 2), args).await;
    run.assert_exit(0);
    let counts = (run.summary.sent, run.summary.failed, run.summary.retries);
    assert_eq!(counts, (400, 0, 2));
    assert_eq!(contiguous_seqs(&state).values().sum::<u64>(), 400);
}

#[tokio::test]
async fn status_429_is_retried_as_throttled() {
    let args = "--target {url} --ids 1-20 --rate 2000 --count 100 --senders 1";
    let (run, state) = against(Behavior::fail(429, 2), args).await;
    run.assert_exit(0);
    assert_eq!(
        (run.summary.sent, run.summary.failed, run.summary.retries),
        (100, 0, 2)
    );
    assert_eq!(run.errors("throttled"), 2);
    assert_eq!(contiguous_seqs(&state).values().sum::<u64>(), 100);
}

#[tokio::test]
async fn lines_the_server_refuses_are_failed_as_rejected_and_exit_1() {
    let behavior = Behavior {
        reject_multiple_of: Some(5),
        ..Behavior::accept()
    };
    let args = "--target {url} --ids 1-100 --rate 10000 --count 500 --senders 2";
    let (run, state) = against(behavior, args).await;
    run.assert_exit(1);
    let rejected = state.rejected.load(Relaxed);
    assert!(rejected > 0, "1 id in 5 is refused");
    assert_eq!(run.failed("rejected"), rejected);
    assert_eq!(run.summary.failed, rejected);
    assert_eq!(run.summary.sent, state.messages.load(Relaxed));
    assert_eq!(run.summary.sent + rejected, 500);
    assert_eq!(run.summary.retries, 0, "refused lines are not sent again");
}

#[tokio::test]
async fn status_4xx_is_not_retried() {
    let args = "--target {url} --ids 1-100 --rate 100000 --count 30 --senders 1 --batch-max 10";
    let (run, state) = against(Behavior::fail(413, u64::MAX), args).await;
    run.assert_exit(1);
    assert_eq!(run.failed("status_4xx"), 30);
    assert_eq!(run.summary.retries, 0);
    let requests = state.requests.load(Relaxed);
    assert_eq!(run.errors("status_4xx"), requests);
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let behavior = Behavior {
        silent: true,
        ..Behavior::accept()
    };
    let args = "--target {url} --ids 1-10 --rate 1000 --count 5 --senders 1 --timeout 200ms \
                --retries 1";
    let (run, state) = against(behavior, args).await;
    run.assert_exit(1);
    assert_eq!(run.failed("timeout"), 5);
    let attempts = run.errors("timeout");
    assert_eq!(attempts, state.requests.load(Relaxed));
    assert_eq!(attempts % 2, 0, "each batch tried twice");
}

/// An event batch whose answer never comes may have been fanned out all
/// the same: each timed-out attempt's events count as `uncertain`, so a
/// reader knows `expected` may fall short of what subscribers received.
#[tokio::test]
async fn events_whose_answer_is_lost_are_uncertain() {
    let behavior = Behavior {
        silent: true,
        ..Behavior::accept()
    };
    let args = "--target {url} --publish comet-events --ids 1-10 --rate 1000 --count 5 \
                --senders 1 --timeout 200ms --retries 1";
    let (run, state) = against(behavior, args).await;
    run.assert_exit(1);
    assert_eq!(run.failed("timeout"), 5);
    assert_eq!(run.errors("timeout"), state.requests.load(Relaxed));
    // Every event was in two attempts (the first and its retry).
    assert_eq!(run.summary.uncertain, Some(10));
    assert_eq!(
        (run.summary.expected, run.summary.unheard),
        (Some(0), Some(0))
    );
    // A message run has no fan-out figures at all.
    let (messages, _) = against(
        Behavior::accept(),
        "--target {url} --ids 1-10 --rate 1000 --count 5",
    )
    .await;
    assert_eq!(messages.summary.uncertain, None);
}

#[tokio::test]
async fn the_bearer_token_is_sent_and_a_wrong_one_fails_as_4xx() {
    let behavior = Behavior {
        token: Some("s3cret"),
        ..Behavior::accept()
    };
    let args = "--target {url} --ids 1-10 --rate 1000 --count 20 --token s3cret";
    let (run, _) = against(behavior, args).await;
    run.assert_exit(0);
    assert_eq!(run.summary.sent, 20);
    // Out of reach of --stop-after, which would make it exit 2 when the 20
    // messages happen to go as 20 requests.
    let args = "--target {url} --ids 1-10 --rate 1000 --count 20 --token wrong --stop-after 1000";
    let (run, state) = against(behavior, args).await;
    run.assert_exit(1);
    assert_eq!(run.failed("status_4xx"), 20);
    assert_eq!(state.messages.load(Relaxed), 0);
}

/// A server that closes idle keep-alive connections costs reconnects, not
/// failed attempts: the sender sees the close before writing.
#[tokio::test]
async fn connections_closed_while_idle_are_replaced_without_errors() {
    let behavior = Behavior {
        close_after_answer: true,
        ..Behavior::accept()
    };
    let args = "--target {url} --ids 1-10 --rate 50 --count 10 --senders 1";
    let (run, state) = against(behavior, args).await;
    run.assert_exit(0);
    assert_eq!(run.summary.sent, 10);
    assert!(run.summary.errors_by_class.is_empty());
    // Each answer closed its connection: one connection per request (a
    // loaded machine may put several messages in one request).
    assert_eq!(
        state.connections.load(Relaxed),
        state.requests.load(Relaxed)
    );
}

#[tokio::test]
async fn sigterm_stops_cleanly_with_the_summary() {
    let dir = tempfile::tempdir().unwrap();
    let (url, state) = sink(Behavior::accept()).await;
    let json = dir.path().join("summary.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_msggen"))
        .args([
            "--target",
            &url,
            "--ids",
            "1-100",
            "--rate",
            "1000",
            "--duration",
            "60s",
        ])
        .arg("--json")
        .arg(&json)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Readiness: messages are arriving.
    while state.messages.load(Relaxed) < 100 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let summary = read_summary(&json);
    assert!(summary.stopped_by_signal);
    let sent = summary.sent;
    assert!((100..60_000).contains(&sent), "sent {sent}");
    assert_eq!(sent, state.messages.load(Relaxed));
    assert_eq!(summary.failed, 0);
}

#[test]
fn target_dash_writes_the_batch_lines_to_stdout() {
    let output = Command::new(env!("CARGO_BIN_EXE_msggen"))
        .args([
            "--target", "-", "--ids", "1-10", "--rate", "10000", "--count", "100",
        ])
        .args(["--senders", "2", "--size", "5"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    // The lines comet-server would read: every one taken, and each message
    // an envelope for its line's id.
    let mut last: HashMap<(u64, u64), u64> = HashMap::new();
    let lines = c1m_common::parse_batch(&output.stdout, u64::MAX, |id, message| {
        let (env, used) = c1m_common::decode_envelope(message).unwrap().unwrap();
        assert_eq!((used, env.header.id), (message.len(), id));
        let seq = last
            .entry((env.header.generator, env.header.id))
            .or_insert(0);
        assert_eq!(env.header.seq, *seq + 1);
        *seq = env.header.seq;
    });
    assert_eq!((lines.accepted, lines.rejected), (100, 0));
    assert_eq!(last.values().sum::<u64>(), 100);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("msggen: sent 100 of 100"), "{stderr}");
}

/// `msggen --target - | head -1`: once the reader is gone the run stops
/// (no retries against a closed pipe), says why, and is not reported as
/// stopped by a signal.
#[test]
fn a_closed_stdout_stops_the_run() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("summary.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_msggen"))
        .args(["--target", "-", "--ids", "1-10", "--rate", "1000"])
        .args(["--duration", "60s", "--retries", "5", "--json"])
        .arg(&json)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    stdout.read_line(&mut first).unwrap();
    assert!(first.contains("[c1m "), "{first}");
    drop(stdout);
    // 60 s of messages otherwise; the pipe closing ends it at once.
    let started = std::time::Instant::now();
    let output = child.wait_with_output().unwrap();
    assert!(
        started.elapsed().as_secs() < 30,
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(output.status.code(), Some(1), "the unwritten batch failed");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("standard output was closed: stopping"),
        "{stderr}"
    );
    let summary = read_summary(&json);
    assert!(!summary.stopped_by_signal);
    assert_eq!(summary.retries, 0);
}

#[tokio::test]
async fn rate_max_sends_as_fast_as_the_target_accepts() {
    let args = "--target {url} --ids 1-1000 --rate max --count 50000";
    let (run, state) = against(Behavior::accept(), args).await;
    run.assert_exit(0);
    assert_eq!(run.summary.sent, 50_000);
    assert_eq!(state.messages.load(Relaxed), 50_000);
    assert_eq!(run.summary.rate_target, None);
    assert_eq!(contiguous_seqs(&state).values().sum::<u64>(), 50_000);
}

/// A 429 with `Retry-After: 1` holds the retry (and the sender) for a
/// second rather than the 50 ms backoff, and the messages still arrive.
#[tokio::test]
async fn retry_after_is_honoured() {
    let behavior = Behavior {
        retry_after: Some(1),
        ..Behavior::fail(429, 1)
    };
    let args = "--target {url} --ids 1-20 --rate 1000 --count 20 --senders 1 --batch-max 5";
    let (run, state) = against(behavior, args).await;
    run.assert_exit(0);
    assert_eq!((run.summary.sent, run.summary.retries), (20, 1));
    assert_eq!(run.summary.errors_by_status.get("429"), Some(&1));
    // All 20 are due in 20 ms: only the pause makes the run last a second
    // (a request already in flight when the 429 came may land earlier).
    let arrivals = state.arrivals.lock().unwrap().clone();
    let waited_us = arrivals.last().unwrap() - arrivals[0];
    assert!(
        waited_us >= 990_000,
        "retried after {waited_us} us: {arrivals:?}"
    );
    assert_eq!(contiguous_seqs(&state).values().sum::<u64>(), 20);
}

/// Runs msggen with `args` (whitespace-separated) and returns its output
/// and how long it ran.
fn msggen_output(args: &str) -> (Output, std::time::Duration) {
    let started = std::time::Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_msggen"))
        .args(args.split_whitespace())
        .output()
        .unwrap();
    (output, started.elapsed())
}

/// Issue 14: pointed at comet-server's subscriber port, msggen failed every
/// batch for the whole run as `status_4xx`, with no code and no hint. It
/// now stops after `--stop-after` failed attempts in a row (exit 2), counts
/// them by status code, and shows the answer and what `--target` must be.
#[test]
fn the_subscriber_port_stops_the_run_with_the_status_and_a_hint() {
    let listener = c1m_server::bind("127.0.0.1:0".parse().unwrap(), 64, false).unwrap();
    let admin = c1m_server::bind("127.0.0.1:0".parse().unwrap(), 64, false).unwrap();
    let server = c1m_server::start(c1m_server::Config::default(), listener, admin).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("summary.json");
    let args = format!(
        "--target http://{} --ids 1-100 --rate 1000 --duration 30s --json {}",
        server.subscriber_addr(),
        json.display()
    );
    let (output, took) = msggen_output(&args);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(2), "{stdout}");
    assert!(took.as_secs() < 15, "ran {took:?} of a 30 s schedule");
    // The 20th failure in a row stops the run; the other senders' attempts
    // already in flight may fail after it (4 senders: at most 3 more).
    let attempts = |s: &str| -> u64 {
        let at = s
            .find("failed attempts status_4xx: ")
            .expect("the attempts line");
        let rest = &s[at + "failed attempts status_4xx: ".len()..];
        rest[..rest.find(' ').unwrap()].parse().unwrap()
    };
    let failed = attempts(&stdout);
    assert!((20..=23).contains(&failed), "{stdout}");
    assert!(stdout.contains(&format!("(404: {failed})")), "{stdout}");
    assert!(
        stdout.contains("first failure: status_4xx 404: no such path"),
        "{stdout}"
    );
    assert!(
        stdout.contains("hint: --target must be comet-server's admin listener"),
        "{stdout}"
    );
    assert!(
        stdout.contains("stopped early: 20 attempts in a row failed"),
        "{stdout}"
    );
    let summary = read_summary(&json);
    assert_eq!(summary.errors_by_status.get("404"), Some(&failed));
    let first = summary.first_error.unwrap();
    assert_eq!(
        (first.class.as_str(), first.status),
        ("status_4xx", Some(404))
    );
    assert!(summary.stopped_early.is_some());

    // The admin listener takes the same run, one message per request too.
    let args = format!(
        "--target http://{} --publish comet-each --ids 1-100 --rate 1000 --count 200 --json {}",
        server.admin_addr(),
        json.display()
    );
    let (output, _) = msggen_output(&args);
    assert_eq!(output.status.code(), Some(0));
    let summary = read_summary(&json);
    assert_eq!(
        (summary.sent, summary.writes, summary.publish.as_str()),
        (200, 200, "comet-each")
    );
    assert_eq!(
        summary.dropped, 200,
        "nobody holds these ids: SendAnswer says 0 connections"
    );
}

/// Issue 14: against a closed port the summary said "in 0.00s" (the span
/// of writes, of which there were none) after running for seconds. It
/// prints the run's real duration.
#[tokio::test]
async fn a_run_against_a_closed_port_is_timed_honestly() {
    let dir = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let args = format!(
        "--target http://127.0.0.1:{port} --ids 1-100 --rate 100 --duration 1s --retries 1 \
         --stop-after 0"
    );
    let started = std::time::Instant::now();
    let run = msggen(dir.path(), &args).await;
    let took = started.elapsed().as_secs_f64();
    run.assert_exit(1);
    let duration = run.summary.duration_s;
    assert!(
        (0.95..=took).contains(&duration),
        "{duration} s of {took} s"
    );
    let stdout = String::from_utf8_lossy(&run.output.stdout);
    assert!(stdout.contains(&format!("in {duration:.2}s")), "{stdout}");
    assert_eq!(run.failed("refused"), 100);
    assert!(run.summary.stopped_early.is_none());
}

/// Issue 14: `--json` and the other output paths were written only after
/// the run; one that cannot be created is now refused before the first
/// message.
#[tokio::test]
async fn unwritable_output_paths_are_refused_before_the_first_message() {
    let (url, state) = sink(Behavior::accept()).await;
    for flag in ["--json", "--csv", "--last-seqs"] {
        let args = format!(
            "--target {url} --ids 1-10 --rate 100 --duration 30s {flag} /nonexistent/dir/out"
        );
        let (output, took) = tokio::task::spawn_blocking(move || msggen_output(&args))
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{flag}: {stderr}");
        assert!(stderr.contains("creating /nonexistent/dir/out"), "{stderr}");
        assert!(took.as_secs() < 10, "{flag}: ran {took:?}");
    }
    assert_eq!(state.requests.load(Relaxed), 0);
    assert_eq!(state.connections.load(Relaxed), 0);
}

/// Issue 13: sender k is generator `G*S + k`; a G that makes this pass
/// u64 panicked (debug) or wrapped (release), merging two processes'
/// generators. It is refused at parse time, with the largest G that fits.
#[test]
fn a_generator_id_that_would_wrap_is_refused() {
    let (output, _) = msggen_output(
        "--target - --ids 1-10 --rate 100 --count 3 --senders 4 --generator-id 4611686018427387904",
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("use a --generator-id below 4611686018427387903"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty(), "nothing was sent");
}
