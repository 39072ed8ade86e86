//! What an admin head announces costs nothing until the bytes arrive. Its
//! own test binary: it measures the process's address space, which other
//! tests running beside it would move.

mod support;

use std::io::Write;

use c1m_server::Config;
use support::*;

/// The test process's mapped address space, bytes.
fn vm_size() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmSize:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    kb * 1024
}

#[test]
fn an_announced_body_is_not_reserved_before_it_arrives() {
    const ANNOUNCED: u64 = 1_000_000_000;
    let server = server(Config {
        max_body: ANNOUNCED as usize,
        ..config()
    });
    // Every thread has served once, so their allocator arenas exist.
    assert_eq!(admin(&server, "GET", "/stats", b"").0, 200);
    let before = vm_size();
    let head = format!(
        "POST /send HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: {ANNOUNCED}\r\n\r\n"
    );
    let mut c = Client::raw(server.admin_addr(), head.as_bytes());
    // The interim answer comes once the head is taken and the body awaited.
    c.expect("HTTP/1.1 100 Continue\r\n\r\n");
    let grown = vm_size().saturating_sub(before);
    assert!(
        grown < ANNOUNCED / 4,
        "the address space grew by {grown} bytes for a body not sent"
    );
    c.stream.write_all(b"5\tthe start of it\n").unwrap();
    drop(c);
    assert_eq!(admin(&server, "GET", "/stats", b"").0, 200);
}
