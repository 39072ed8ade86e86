//! `apply` and `print` against fake trees, and the seeds' presets.

mod fake;

/// A plan the cramped machine can reach by writing sysctls alone.
const REACHABLE: &[&str] = &[
    "--conns",
    "50k",
    "--procs",
    "3",
    "--bind-mode",
    "noport",
    "--source-ips",
    "127.0.0.1-127.0.0.2",
];

fn args<'a>(command: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec![command];
    all.extend_from_slice(extra);
    all
}

#[test]
fn apply_raises_what_it_can_and_prints_old_to_new() {
    let dir = fake::tree(fake::CRAMPED);
    let root = dir.path();
    assert_eq!(
        fake::run(root, &args("check", REACHABLE)).status.code(),
        Some(1)
    );

    let out = fake::run(root, &args("apply", REACHABLE));
    let text = fake::stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    // 100,000 sockets + 500 open; 100,000 pages of TCP buffers.
    assert!(text.contains("fs.file-max: 100000 -> 100500\n"), "{text}");
    assert!(
        text.contains("net.ipv4.tcp_mem: 10000 20000 30000 -> 10000 100000 150000\n"),
        "{text}"
    );
    assert!(text.contains("net.core.somaxconn: 128 -> 4096\n"), "{text}");
    assert!(
        text.contains("net.ipv4.tcp_max_syn_backlog: 256 -> 4096\n"),
        "{text}"
    );
    assert!(
        text.contains("net.core.netdev_max_backlog: 500 -> 1000\n"),
        "{text}"
    );
    assert!(text.contains("net.ipv4.tcp_tw_reuse: 0 -> 1\n"), "{text}");
    assert!(
        text.contains("RLIMIT_NOFILE (soft): cannot change it from here"),
        "{text}"
    );
    assert!(text.contains("changed 6, refused 0"), "{text}");

    assert_eq!(fake::read(root, "proc/sys/fs/file-max"), "100500\n");
    assert_eq!(
        fake::read(root, "proc/sys/net/ipv4/tcp_mem"),
        "10000 100000 150000\n"
    );
    assert_eq!(fake::read(root, "proc/sys/net/core/somaxconn"), "4096\n");
    // Sufficient values are left alone.
    assert_eq!(fake::read(root, "proc/sys/fs/nr_open"), "500000\n");
    assert_eq!(
        fake::read(root, "proc/sys/net/netfilter/nf_conntrack_max"),
        "65536\n"
    );

    // Now the check passes, and a second apply changes nothing.
    assert_eq!(
        fake::run(root, &args("check", REACHABLE)).status.code(),
        Some(0)
    );
    let again = fake::stdout(&fake::run(root, &args("apply", REACHABLE)));
    assert!(!again.contains("->"), "{again}");
    assert!(again.contains("changed 0"), "{again}");
}

#[test]
fn apply_says_what_it_cannot_change_and_the_way_around() {
    let dir = fake::tree(fake::CRAMPED);
    let root = dir.path();
    let out = fake::run(root, &["apply", "--conns", "1M", "--procs", "1"]);
    let text = fake::stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("fs.nr_open: 500000 -> 1000064\n"), "{text}");
    assert!(
        text.contains("net.netfilter.nf_conntrack_max: 65536 -> 1000010\n"),
        "{text}"
    );
    assert!(
        text.contains("RLIMIT_NOFILE (hard): cannot change it from here: use --procs 51 per role; or, as root, raise it for the tools' session: LimitNOFILE=1000064"),
        "{text}"
    );
    assert!(text.contains("/etc/security/limits.conf"), "{text}");
    assert!(
        text.contains("net.ipv4.tcp_rmem: left at 4096 131072 6291456: apply only raises limits"),
        "{text}"
    );
    assert!(
        text.contains("still failing: RLIMIT_NOFILE (hard), net.ipv4.ip_local_port_range, memory"),
        "{text}"
    );
    // Never lowered.
    assert_eq!(
        fake::read(root, "proc/sys/net/ipv4/tcp_rmem"),
        "4096\t131072\t6291456\n"
    );
}

#[test]
fn print_writes_a_commented_sysctl_file() {
    let dir = fake::tree(fake::CRAMPED);
    let out = fake::run(dir.path(), &args("print", REACHABLE));
    assert_eq!(out.status.code(), Some(0));
    let expected = "\
# /etc/sysctl.d/90-c1m.conf: written by `c1m-sysctl print --conns 50000 --role both --procs 3 --bind-mode noport --source-ips 127.0.0.1-127.0.0.2 --destinations 1`
# from this machine's current values. Install and load it with:
#   sudo cp THIS_FILE /etc/sysctl.d/90-c1m.conf && sudo sysctl --system
# It only raises limits; values already sufficient here are listed, not set.

# FAIL (now 100,000; needs 100,500): every socket is an open file system-wide: 100,000 sockets + 500 open now; past it socket() and accept() fail with ENFILE
fs.file-max = 100500

# WARN (now 0; needs 1 or 2): lets connect() take a port whose old connection is in TIME_WAIT (60 s, fixed: tcp_fin_timeout does not shorten it); matters when the client reconnects; off: a reconnect storm runs out of ports
net.ipv4.tcp_tw_reuse = 1

# WARN (now 128; needs 4,096): caps every listen() backlog; comet-server asks for 4,096 and gets 128: a burst of connects overflows the accept queue and SYNs are retried after 1 s, 3 s, ...
net.core.somaxconn = 4096

# WARN (now 256; needs 4,096 if syncookies=0): half-open connections with tcp_syncookies=0: past 3/4 of it new SYNs are dropped and retried after 1 s
net.ipv4.tcp_max_syn_backlog = 4096

# WARN (now 500; needs 1,000): per-CPU queue of received packets, loopback included; drops show in the 2nd column of /proc/net/softnet_stat; the seeds raised it to 2,500 for NIC bursts
net.core.netdev_max_backlog = 1000

# FAIL (now 10000 20000 30000; needs 100,000 pages at max): pages (4096 B) of socket buffers for all TCP; one unread message per socket = 100,000 pages (390.6 MiB); max is 117.2 MiB: past it the kernel drops segments ('TCP: out of memory -- consider tuning tcp_mem')
net.ipv4.tcp_mem = 10000 100000 150000

# optional, lowers a default (apply never does): the receive buffer each socket may fill before the window closes: 100,000 sockets x 128.0 KiB = 12.2 GiB vs 3.0 GiB (half of available; send and receive buffers fill together); tcp_mem max is what stops it (drops, not OOM) if readers fall behind
# net.ipv4.tcp_rmem = 4096 32212 6291456

# Already sufficient here:
#   fs.nr_open = 500,000 (needs 16,731)
#   RLIMIT_NOFILE (hard) = 20,000 (needs 16,731)
#   net.ipv4.ip_local_port_range = 32768 60999 (needs 25,000 ports)
#   net.ipv4.tcp_wmem = 4096 16384 4194304 (needs default <= 32,212 B)
#   net.netfilter.nf_conntrack_max = 65,536 (needs 50,010)
#   memory = 6.0 GiB available (needs 555.4 MiB)

# Not sysctls, or not settable from here; do these by hand:
# RLIMIT_NOFILE (soft): run `ulimit -n 16731` before starting a server that does not raise its own limit
";
    assert_eq!(fake::stdout(&out), expected);
}

#[test]
fn presets_list_obsolete_and_harmful_settings() {
    let dir = fake::tree(fake::CRAMPED);
    let root = dir.path();
    let (_, doc, code) = fake::check_json(root, &["--preset", "icomet"]);
    assert_eq!(code, 0, "a preset alone is advice, not a failure");
    let verdict = |name: &str| {
        fake::row(&doc["preset"]["rows"], name)["verdict"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(verdict("net.ipv4.tcp_tw_recycle"), "obsolete");
    assert_eq!(verdict("net.ipv4.tcp_max_tw_buckets"), "harmful");
    assert_eq!(verdict("net.core.somaxconn"), "set");
    assert_eq!(verdict("net.ipv4.tcp_keepalive_intvl"), "set");
    // 999,999 raises the cramped box's 100,000.
    assert_eq!(verdict("fs.file-max"), "set");

    let text = fake::stdout(&fake::run(root, &["check", "--preset", "part3"]));
    assert!(text.starts_with("preset part3: mochiweb Part 3"), "{text}");
    // 26,777,216 pages is 102 GiB, beyond the fake 8 GiB of RAM.
    assert!(text.contains("obsolete, harmful or lowering on this kernel, left out by apply: net.ipv4.tcp_mem, vm.min_free_kbytes, vm.swappiness"), "{text}");
    // This machine's own, RAM-sized tcp_mem: Part 1's would lower it.
    fake::write(
        root,
        "proc/sys/net/ipv4/tcp_mem",
        "287898\t383867\t575796\n",
    );
    let text = fake::stdout(&fake::run(root, &["check", "--preset", "part1"]));
    assert!(
        text.contains("net.ipv4.netfilter.ip_conntrack_max"),
        "{text}"
    );
    assert!(
        text.contains("left out by apply: net.ipv4.tcp_mem, net.ipv4.netfilter.ip_conntrack_max"),
        "{text}"
    );
    assert!(text.contains("RLIMIT_NOFILE"), "{text}");
    assert!(text.contains("MANUAL"), "{text}");
}

#[test]
fn presets_print_bad_settings_commented_out_and_apply_skips_them() {
    let dir = fake::tree(fake::CRAMPED);
    let root = dir.path();
    let file = fake::stdout(&fake::run(root, &["print", "--preset", "icomet"]));
    assert!(file.contains("\nnet.core.somaxconn = 1024\n"), "{file}");
    assert!(file.contains("# OBSOLETE: removed in Linux 4.12"), "{file}");
    assert!(file.contains("\n# net.ipv4.tcp_tw_recycle = 1\n"), "{file}");
    assert!(
        file.contains("\n# net.ipv4.tcp_max_tw_buckets = 5000\n"),
        "{file}"
    );
    assert!(!file.contains("\nnet.ipv4.tcp_max_tw_buckets"), "{file}");

    let out = fake::run(root, &["apply", "--preset", "icomet"]);
    let text = fake::stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("net.core.somaxconn: 128 -> 1024\n"), "{text}");
    assert!(
        text.contains("net.ipv4.tcp_tw_recycle: preset icomet value 1 skipped (obsolete)"),
        "{text}"
    );
    assert!(
        text.contains("net.ipv4.tcp_max_tw_buckets: preset icomet value 5000 skipped (harmful)"),
        "{text}"
    );
    assert_eq!(
        fake::read(root, "proc/sys/net/ipv4/tcp_max_tw_buckets"),
        "131072\n"
    );
    assert!(!root.join("proc/sys/net/ipv4/tcp_tw_recycle").exists());
}

#[test]
fn a_plan_and_a_preset_merge_to_the_higher_value() {
    let dir = fake::tree(fake::CRAMPED);
    let root = dir.path();
    let mut a = args("apply", REACHABLE);
    a.extend(["--preset", "icomet"]);
    let text = fake::stdout(&fake::run(root, &a));
    assert!(text.contains("net.core.somaxconn: 128 -> 4096\n"), "{text}");
    assert!(
        text.contains("net.core.somaxconn: preset icomet value 1024 merged with the plan's"),
        "{text}"
    );
    assert_eq!(fake::read(root, "proc/sys/net/core/somaxconn"), "4096\n");
    // The seed's higher 999,999 beats the plan's 100,500 for fs.file-max.
    assert!(text.contains("fs.file-max: 100000 -> 999999\n"), "{text}");
}

#[test]
fn apply_widens_the_port_range_when_that_is_enough() {
    let dir = fake::tree(fake::CRAMPED);
    let root = dir.path();
    // Kernel-chosen ports, one destination: 50,000 need more than 28,232.
    let out = fake::run(root, &["apply", "--conns", "50k", "--procs", "3"]);
    let text = fake::stdout(&out);
    assert!(
        text.contains("net.ipv4.ip_local_port_range: 32768 60999 -> 1024 65535\n"),
        "{text}"
    );
    assert_eq!(
        fake::read(root, "proc/sys/net/ipv4/ip_local_port_range"),
        "1024 65535\n"
    );
    assert_eq!(out.status.code(), Some(0), "{text}");
}
