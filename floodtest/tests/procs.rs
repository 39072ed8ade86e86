//! `--procs 3`: three child processes, one merged view whose counts add up
//! exactly.

mod support;

use std::collections::HashSet;
use support::{floodtest, Behaviour, Server};

#[test]
fn three_processes_merge_exactly() {
    let server = Server::start(Behaviour::Chunked(vec![1, 2, 5]));
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("flood.csv");
    let run = floodtest(&[
        "--url",
        &server.url("/test/{id}"),
        "--conns",
        "300",
        "--procs",
        "3",
        "--bind-mode",
        "explicit",
        "--source-ips",
        "127.0.5.1-127.0.5.4",
        "--local-ports",
        "18100-18199",
        "--duration",
        "500ms",
        "--report-interval",
        "100ms",
        "--csv",
        csv.to_str().unwrap(),
    ]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let s = run.summary();
    assert_eq!(s.procs, 3);
    assert_eq!(
        (s.open, s.opened, s.closed, s.failed_total),
        (300, 300, 300, 0)
    );
    assert_eq!(s.chunks, 300 * 4);
    assert_eq!((s.messages, s.lost), (900, 600));
    assert_eq!(s.latency_us.count, 900);
    assert_eq!(s.connect_us.count, 300);
    assert!(s.client_rss_bytes_per_conn > 0, "{s:?}");
    // Children used disjoint port slices: no source pair twice.
    let peers = server.peers.lock().unwrap().clone();
    assert_eq!(peers.iter().collect::<HashSet<_>>().len(), 300);

    let text = std::fs::read_to_string(&csv).unwrap();
    let header = text.lines().next().unwrap();
    assert!(
        header.starts_with("unix_ms,elapsed_s,target,open,opened"),
        "{header}"
    );
    let last: c1m_common::FloodInterval = csv::Reader::from_reader(text.as_bytes())
        .deserialize()
        .last()
        .unwrap()
        .unwrap();
    assert_eq!((last.opened, last.messages, last.lost), (300, 900, 600));
}

#[test]
fn children_pause_together_and_are_released_by_the_parent() {
    let server = Server::start(Behaviour::Chunked(vec![1]));
    let run = support::with_pauses(&server, "100", "50", &["--procs", "2"]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert!(
        run.stderr().contains("paused at 50 open"),
        "{}",
        run.stderr()
    );
    assert_eq!(run.summary().open, 100);
}

#[test]
fn a_dead_child_ends_the_run_with_an_incomplete_summary() {
    let server = Server::start(Behaviour::Chunked(vec![1]));
    let url = server.url("/test/{id}");
    let mut held = support::hold(&["--url", &url, "--conns", "100", "--procs", "2"]);
    assert!(
        held.ramp_line.contains("open 100/100"),
        "{}",
        held.ramp_line
    );
    let pid = held.child.id();
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap();
    let victim: libc::pid_t = children.split_whitespace().next().unwrap().parse().unwrap();
    // Which child it is: the `K/2` after `--child` in its command line.
    let cmdline = std::fs::read_to_string(format!("/proc/{victim}/cmdline")).unwrap();
    let slot = cmdline
        .split('\0')
        .skip_while(|a| *a != "--child")
        .nth(1)
        .unwrap();
    let which = format!("child {} of 2", slot.split('/').next().unwrap());
    // SAFETY: kill with a pid and a signal number.
    assert_eq!(unsafe { libc::kill(victim, libc::SIGKILL) }, 0);

    // Without a signal to the parent, the dead child alone ends the run.
    let rest: Vec<String> = held.stderr.by_ref().map(Result::unwrap).collect();
    let (code, summary) = held.wait();
    assert_eq!(code, Some(2), "{rest:?}");
    assert!(
        rest.iter()
            .any(|l| l.contains(&format!("{which} ended early"))),
        "{rest:?}"
    );
    let s = summary.expect("the summary is written all the same");
    let why = s.incomplete.as_deref().unwrap();
    assert!(why.contains(&which) && why.contains("SIGKILL"), "{why}");
    // The dead child's streams count as closed; the other child's too.
    assert_eq!((s.open, s.opened, s.closed), (100, 100, 100));
}
