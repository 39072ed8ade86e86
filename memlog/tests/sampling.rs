//! The sampler against a child process whose memory and connections the
//! test controls: the figures must move exactly as the child does.

mod support;

use c1m_memlog::Sampler;
use c1m_memlog::SockDiag;
use c1m_memlog::Targets;
use support::{unique_marker, Testee};

#[test]
fn memory_and_connections_follow_the_child() {
    let mut child = Testee::spawn("sampling");
    let mut sampler = Sampler::new(Targets::pids(&[child.pid()]).unwrap(), child.port);
    assert!(sampler.uses_netlink(), "netlink sock_diag should work here");

    let before = sampler.sample().unwrap();
    assert_eq!((before.procs, before.conns), (1, 0));
    assert!(before.rss_kb > 0 && before.pss_kb > 0 && before.vsz_kb >= before.rss_kb);
    assert!(before.slab_kb > 0 && before.mem_available_kb > 0);

    child.ask("alloc 64");
    let grown = sampler.sample().unwrap();
    let (rss_growth, pss_growth) = (grown.rss_kb - before.rss_kb, grown.pss_kb - before.pss_kb);
    // 64 MiB = 65,536 KB touched; the interpreter adds a little around it.
    for growth in [rss_growth, pss_growth] {
        assert!(
            (64_000..=70_000).contains(&growth),
            "grew {growth} KB for 64 MiB"
        );
    }
    assert!(grown.elapsed_s >= before.elapsed_s && grown.unix_ms >= before.unix_ms);

    assert_eq!(child.ask("open 40"), "ok 40");
    assert_eq!(sampler.sample().unwrap().conns, 40);
    assert_eq!(child.ask("open6 10"), "ok 50");
    assert_eq!(
        sampler.sample().unwrap().conns,
        50,
        "IPv6 sockets count too"
    );
    assert_eq!(child.ask("close 15"), "ok 35");
    assert_eq!(sampler.sample().unwrap().conns, 35);

    child.ask("free");
    let freed = sampler.sample().unwrap();
    assert!(
        freed.rss_kb < grown.rss_kb - 60_000,
        "rss {} after free",
        freed.rss_kb
    );

    let pid = child.pid();
    child.kill();
    let gone = sampler.sample().unwrap();
    assert_eq!(
        (gone.procs, gone.rss_kb, gone.conns),
        (0, 0, 0),
        "pid {pid} exited"
    );
}

/// The /proc/net/tcp count, read until it agrees with `expected` (at most
/// five reads): the file is not a snapshot, so sockets other processes open
/// or close meanwhile (other tests, other tools on this machine) can make a
/// read show a line twice or miss one; a quiet read is exact.
fn proc_count(port: u16, expected: u64) -> u64 {
    let mut last = 0;
    for _ in 0..5 {
        last = c1m_memlog::count_established(port).unwrap();
        if last == expected {
            break;
        }
    }
    last
}

#[test]
fn netlink_count_equals_proc_net_tcp() {
    let mut child = Testee::spawn("netlink-vs-proc");
    // 1,800 replies of ~124 bytes span several 32 KiB netlink batches.
    assert_eq!(child.ask("open 1500"), "ok 1500");
    assert_eq!(child.ask("open6 300"), "ok 1800");
    // Its client end also has local port P (from 127.0.0.2), but is not
    // the server's: counted once, not twice.
    assert_eq!(child.ask("stray"), "ok 1801");
    let mut diag = SockDiag::open().unwrap();
    let by_netlink = diag.count_established(child.port).unwrap();
    assert!(
        diag.one_walk(),
        "the legacy both-families request works here"
    );
    let by_proc = proc_count(child.port, by_netlink);
    let mut per_family = SockDiag::open().unwrap().per_family();
    let by_v2 = per_family.count_established(child.port).unwrap();
    assert_eq!((by_netlink, by_v2, by_proc), (1801, 1801, 1801));

    assert_eq!(child.ask("close 1001"), "ok 800");
    assert_eq!(diag.count_established(child.port).unwrap(), 800);
    assert_eq!(proc_count(child.port, 800), 800);
    assert_eq!(per_family.count_established(child.port).unwrap(), 800);
    // The clients' ends have ephemeral local ports: never counted.
    assert_eq!(diag.count_established(1).unwrap(), 0);
}

#[test]
fn pgrep_follows_processes_that_come_and_go() {
    let marker = unique_marker("pgrep");
    let first = Testee::spawn(&marker);
    let mut sampler = Sampler::new(Targets::pattern(&marker).unwrap(), first.port);
    let one = sampler.sample().unwrap();
    assert_eq!(one.procs, 1);

    let second = Testee::spawn(&marker);
    let two = sampler.sample().unwrap();
    assert_eq!(two.procs, 2, "a process that starts is picked up");
    assert!(two.rss_kb > one.rss_kb && two.pss_kb > one.pss_kb);

    first.kill();
    assert_eq!(
        sampler.sample().unwrap().procs,
        1,
        "an exited one is dropped"
    );
    let restarted = Testee::spawn(&marker);
    assert_eq!(
        sampler.sample().unwrap().procs,
        2,
        "a restarted one is found again"
    );

    second.kill();
    restarted.kill();
    let none = sampler.sample().unwrap();
    assert_eq!(
        (none.procs, none.rss_kb, none.pss_kb, none.vsz_kb),
        (0, 0, 0, 0)
    );
    assert!(
        none.slab_kb > 0 && none.mem_available_kb > 0,
        "kernel figures still recorded"
    );
}
