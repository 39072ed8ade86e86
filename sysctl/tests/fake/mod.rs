//! A fake `/proc` tree in a temp dir, and running the real binary on it.

#![allow(dead_code)]

use std::path::Path;
use std::process::Output;

/// A machine where a million loopback connections fit: every check passes
/// for `--conns 1M --role both --source-ips 127.0.0.1-127.0.0.16`.
pub(crate) const ROOMY: &[(&str, &str)] = &[
    ("proc/sys/fs/file-max", "10000000\n"),
    ("proc/sys/fs/file-nr", "100\t0\t10000000\n"),
    ("proc/sys/fs/nr_open", "2000000\n"),
    ("proc/sys/net/ipv4/ip_local_port_range", "1024\t65535\n"),
    ("proc/sys/net/ipv4/tcp_tw_reuse", "1\n"),
    ("proc/sys/net/core/somaxconn", "4096\n"),
    ("proc/sys/net/ipv4/tcp_max_syn_backlog", "4096\n"),
    ("proc/sys/net/ipv4/tcp_syncookies", "1\n"),
    ("proc/sys/net/core/netdev_max_backlog", "1000\n"),
    ("proc/sys/net/ipv4/tcp_mem", "3000000\t4000000\t6000000\n"),
    ("proc/sys/net/ipv4/tcp_rmem", "4096\t8192\t6291456\n"),
    ("proc/sys/net/ipv4/tcp_wmem", "4096\t8192\t4194304\n"),
    ("proc/sys/net/netfilter/nf_conntrack_max", "2000000\n"),
    ("proc/sys/net/netfilter/nf_conntrack_count", "5\n"),
    ("proc/meminfo", "MemTotal:       67108864 kB\nMemFree:        1 kB\nMemAvailable:   62914560 kB\n"),
    ("proc/self/limits", "Limit                     Soft Limit           Hard Limit           Units\nMax open files            1100000              1100000              files\n"),
    ("proc/self/status", "Name:\tc1m-sysctl\nCapEff:\t0000000000000000\n"),
];

/// A machine where every limit is too low for a million connections.
pub(crate) const CRAMPED: &[(&str, &str)] = &[
    ("proc/sys/fs/file-max", "100000\n"),
    ("proc/sys/fs/file-nr", "500\t0\t100000\n"),
    ("proc/sys/fs/nr_open", "500000\n"),
    ("proc/sys/net/ipv4/ip_local_port_range", "32768\t60999\n"),
    ("proc/sys/net/ipv4/tcp_tw_reuse", "0\n"),
    ("proc/sys/net/core/somaxconn", "128\n"),
    ("proc/sys/net/ipv4/tcp_max_syn_backlog", "256\n"),
    ("proc/sys/net/ipv4/tcp_syncookies", "0\n"),
    ("proc/sys/net/core/netdev_max_backlog", "500\n"),
    ("proc/sys/net/ipv4/tcp_mem", "10000\t20000\t30000\n"),
    ("proc/sys/net/ipv4/tcp_rmem", "4096\t131072\t6291456\n"),
    ("proc/sys/net/ipv4/tcp_wmem", "4096\t16384\t4194304\n"),
    ("proc/sys/net/netfilter/nf_conntrack_max", "65536\n"),
    ("proc/sys/net/netfilter/nf_conntrack_count", "10\n"),
    ("proc/sys/net/core/rmem_max", "212992\n"),
    ("proc/sys/net/core/wmem_max", "212992\n"),
    ("proc/sys/net/ipv4/tcp_max_tw_buckets", "131072\n"),
    ("proc/sys/net/ipv4/tcp_keepalive_intvl", "75\n"),
    ("proc/sys/net/ipv4/tcp_keepalive_probes", "9\n"),
    ("proc/sys/vm/min_free_kbytes", "67584\n"),
    ("proc/sys/vm/swappiness", "60\n"),
    ("proc/meminfo", "MemTotal:        8388608 kB\nMemFree:        1 kB\nMemAvailable:    6291456 kB\n"),
    ("proc/self/limits", "Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 20000                files\n"),
    ("proc/self/status", "Name:\tc1m-sysctl\nCapEff:\t000001fffeffffff\n"),
];

/// Writes `files` under a new temp dir.
pub(crate) fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("proc/sys")).unwrap();
    for (path, text) in files {
        write(dir.path(), path, text);
    }
    dir
}

pub(crate) fn write(root: &Path, path: &str, text: &str) {
    let p = root.join(path);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

pub(crate) fn read(root: &Path, path: &str) -> String {
    std::fs::read_to_string(root.join(path)).unwrap()
}

/// Runs `c1m-sysctl args...` with its root at `root`.
pub(crate) fn run(root: &Path, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_c1m-sysctl"))
        .args(args)
        .env("C1M_SYSCTL_ROOT", root)
        .output()
        .unwrap()
}

pub(crate) fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// The rows of `check --json`, as (name, status) pairs, and the document,
/// which must match `docs/schema/sysctl-check.json`.
pub(crate) fn check_json(
    root: &Path,
    args: &[&str],
) -> (Vec<(String, String)>, serde_json::Value, i32) {
    let mut all = vec!["check", "--json"];
    all.extend_from_slice(args);
    let out = run(root, &all);
    // Every document a test reads is one the schema must describe.
    let text = String::from_utf8_lossy(&out.stdout);
    if let Err(e) = c1m_common::validate_against_schema("sysctl-check.json", &text) {
        panic!("{e}");
    }
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let rows = doc["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_owned(),
                r["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    (rows, doc, out.status.code().unwrap())
}

/// The row named `name` in a JSON array of rows (`doc["rows"]`,
/// `doc["preset"]["rows"]`).
pub(crate) fn row<'a>(rows: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    rows.as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no row {name}"))
}
