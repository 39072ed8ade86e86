//! Bind modes, and refusing a run the addresses or descriptors cannot hold.

mod support;

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};
use support::{floodtest, Behaviour, Server};

fn held(server: &Server, extra: &[&str]) -> Vec<std::net::SocketAddr> {
    let url = server.url("/test/{id}");
    let mut args = vec!["--url", url.as_str(), "--duration", "200ms"];
    args.extend_from_slice(extra);
    let run = floodtest(&args);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    server.peers.lock().unwrap().clone()
}

fn ip(last: u8, third: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, third, last))
}

#[test]
fn explicit_binds_its_own_pairs() {
    let server = Server::start(Behaviour::Chunked(vec![1]));
    let peers = held(
        &server,
        &[
            "--conns",
            "90",
            "--bind-mode",
            "explicit",
            "--source-ips",
            "127.0.2.1-127.0.2.2",
            "--local-ports",
            "18150-18199",
        ],
    );
    assert_eq!(peers.len(), 90);
    let ips: HashSet<IpAddr> = peers.iter().map(|p| p.ip()).collect();
    assert_eq!(ips, HashSet::from([ip(1, 2), ip(2, 2)]));
    assert!(
        peers.iter().all(|p| (18150..=18199).contains(&p.port())),
        "{peers:?}"
    );
    let pairs: HashSet<_> = peers.iter().collect();
    assert_eq!(pairs.len(), 90);
}

#[test]
fn noport_spreads_over_source_ips() {
    let server = Server::start(Behaviour::Chunked(vec![1]));
    let peers = held(
        &server,
        &[
            "--conns",
            "60",
            "--bind-mode",
            "noport",
            "--source-ips",
            "127.0.3.1-127.0.3.3",
        ],
    );
    let ips: HashSet<IpAddr> = peers.iter().map(|p| p.ip()).collect();
    assert_eq!(ips, HashSet::from([ip(1, 3), ip(2, 3), ip(3, 3)]));
}

#[test]
fn kernel_mode_does_not_bind() {
    let server = Server::start(Behaviour::Chunked(vec![1]));
    let peers = held(
        &server,
        &[
            "--conns",
            "30",
            "--bind-mode",
            "kernel",
            "--source-ips",
            "127.0.4.1",
        ],
    );
    assert!(
        peers
            .iter()
            .all(|p| p.ip() == IpAddr::V4(Ipv4Addr::LOCALHOST)),
        "{peers:?}"
    );
}

#[test]
fn refuses_more_than_the_addresses_hold_before_connecting() {
    let server = Server::start(Behaviour::Chunked(vec![1]));
    let run = floodtest(&[
        "--url",
        &server.url("/test/{id}"),
        "--conns",
        "300",
        "--bind-mode",
        "explicit",
        "--source-ips",
        "127.0.2.1",
        "--local-ports",
        "18100-18199",
    ]);
    assert_eq!(run.code(), 2);
    let err = run.stderr();
    assert!(err.contains("cannot open 300 connections"), "{err}");
    assert!(err.contains("1 source IP(s) x 100 local ports"), "{err}");
    assert!(err.contains("give 3 source IPs"), "{err}");
    assert!(
        server.peers.lock().unwrap().is_empty(),
        "nothing may connect"
    );
}

#[test]
fn refuses_a_source_address_that_is_not_on_this_host() {
    // 203.0.113.7 (TEST-NET-3) is on no host: bind() says EADDRNOTAVAIL,
    // which used to be taken for a used 4-tuple and reported after the run
    // as "every (source IP, port) pair to this destination is taken".
    let server = Server::start(Behaviour::Chunked(vec![1]));
    for mode in ["noport", "explicit"] {
        let run = floodtest(&[
            "--url",
            &server.url("/test/{id}"),
            "--conns",
            "5",
            "--bind-mode",
            mode,
            "--source-ips",
            "127.0.0.1,203.0.113.7",
            "--duration",
            "100ms",
        ]);
        assert_eq!(run.code(), 2, "{mode}: {}", run.stderr());
        let err = run.stderr();
        assert!(
            err.contains("--source-ips 203.0.113.7: this address is not on this host"),
            "{mode}: {err}"
        );
        assert!(err.contains("ip addr add 203.0.113.7/32 dev lo"), "{err}");
        assert!(!err.contains("pair"), "{err}");
    }
    assert!(
        server.peers.lock().unwrap().is_empty(),
        "nothing may connect"
    );
}

#[test]
fn refuses_more_than_one_process_holds() {
    let (_, hard) = c1m_common::nofile_limits().unwrap();
    let conns = (hard + 100).to_string();
    let run = floodtest(&[
        "--url",
        "http://127.0.0.1:9/x",
        "--conns",
        &conns,
        "--procs",
        "1",
        "--bind-mode",
        "explicit",
        "--source-ips",
        "127.0.2.0/24",
    ]);
    assert_eq!(run.code(), 2);
    assert!(run.stderr().contains("--procs 2"), "{}", run.stderr());
}

#[test]
fn refuses_a_json_path_it_cannot_write_before_connecting() {
    let server = Server::start(Behaviour::Chunked(vec![1]));
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_floodtest"))
        .args(["--url", &server.url("/test/{id}"), "--conns", "5"])
        .args(["--duration", "100ms", "--json", "/nonexistent-dir/s.json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("creating /nonexistent-dir/s.json"), "{err}");
    assert!(
        server.peers.lock().unwrap().is_empty(),
        "nothing may connect"
    );
}
