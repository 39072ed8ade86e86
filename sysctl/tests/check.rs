//! `c1m-sysctl check` against fake trees: every limit passing, every one
//! failing, the memory estimate and the exit codes, via the real binary.

mod fake;

const MILLION_BOTH: &[&str] = &[
    "--conns",
    "1M",
    "--role",
    "both",
    "--bind-mode",
    "noport",
    "--source-ips",
    "127.0.0.1-127.0.0.16",
];

#[test]
fn every_limit_passes_on_a_roomy_machine() {
    let dir = fake::tree(fake::ROOMY);
    let (rows, doc, code) = fake::check_json(dir.path(), MILLION_BOTH);
    let names: Vec<&str> = rows.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "fs.file-max",
            "fs.nr_open",
            "RLIMIT_NOFILE (hard)",
            "RLIMIT_NOFILE (soft)",
            "net.ipv4.ip_local_port_range",
            "net.ipv4.tcp_tw_reuse",
            "net.core.somaxconn",
            "net.ipv4.tcp_max_syn_backlog",
            "net.core.netdev_max_backlog",
            "net.ipv4.tcp_mem",
            "net.ipv4.tcp_rmem",
            "net.ipv4.tcp_wmem",
            "net.netfilter.nf_conntrack_max",
            "memory",
        ]
    );
    for (name, status) in &rows {
        assert_eq!(status, "OK", "{name}: {doc:#}");
    }
    assert!(doc["rows"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["fix"] == "none"));
    assert_eq!(doc["summary"]["ok"], 14);
    assert_eq!(code, 0);
    // The JSON schema the experiment runner embeds (sorted: the map's order
    // depends on serde_json's features).
    let keys = |v: &serde_json::Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(
        keys(&doc["rows"][0]),
        ["current", "fix", "name", "needed", "status", "why"]
    );
    assert_eq!(
        keys(&doc),
        ["memory", "next", "plan", "preset", "rows", "summary"]
    );
    // Nothing in the way: the next command is the run that was checked.
    assert_eq!(
        doc["next"],
        serde_json::json!([
            "next: floodtest --url 'http://127.0.0.1:8000/test/{id}' --conns 1000000 --bind-mode noport \
             --source-ips 127.0.0.1-127.0.0.16 (against comet-server --listen 127.0.0.1:8000)"
        ])
    );
}

#[test]
fn every_limit_fails_or_warns_on_a_cramped_machine() {
    let dir = fake::tree(fake::CRAMPED);
    let (rows, doc, code) = fake::check_json(dir.path(), &["--conns", "1M", "--procs", "1"]);
    let status = |name: &str| {
        rows.iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no row {name}"))
            .1
            .clone()
    };
    for name in [
        "fs.file-max",
        "fs.nr_open",
        "RLIMIT_NOFILE (hard)",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.tcp_mem",
        "net.netfilter.nf_conntrack_max",
        "memory",
    ] {
        assert_eq!(status(name), "FAIL", "{name}: {doc:#}");
    }
    for name in [
        "RLIMIT_NOFILE (soft)",
        "net.ipv4.tcp_tw_reuse",
        "net.core.somaxconn",
        "net.ipv4.tcp_max_syn_backlog",
        "net.core.netdev_max_backlog",
        "net.ipv4.tcp_rmem",
        "net.ipv4.tcp_wmem",
    ] {
        assert_eq!(status(name), "WARN", "{name}: {doc:#}");
    }
    assert_eq!(code, 1);
    let why = |name: &str| {
        fake::row(&doc["rows"], name)["why"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    // 20,000 hard, no CAP_SYS_RESOURCE: 1M needs 51 processes per role.
    assert!(
        why("RLIMIT_NOFILE (hard)").contains("--procs 51"),
        "{doc:#}"
    );
    assert!(why("RLIMIT_NOFILE (hard)").contains("CAP_SYS_RESOURCE"));
    let fix = |name: &str| fake::row(&doc["rows"], name)["fix"].clone();
    assert_eq!(fix("fs.file-max"), serde_json::json!({"set": [2_000_500]}));
    assert!(fix("RLIMIT_NOFILE (hard)")["manual"]
        .as_str()
        .unwrap()
        .contains("limits.conf"));
    // 28,232 ports per source IP: 36 of them, or 16 with the widest range.
    let ports = why("net.ipv4.ip_local_port_range");
    assert!(
        ports.contains("--source-ips 127.0.0.1-127.0.0.36"),
        "{ports}"
    );
    assert!(ports.contains("use 16 addresses"), "{ports}");
}

#[test]
fn the_memory_estimate_counts_both_ends_of_a_loopback_connection() {
    let dir = fake::tree(fake::ROOMY);
    let (_, doc, _) = fake::check_json(dir.path(), MILLION_BOTH);
    let m = &doc["memory"];
    assert_eq!(m["sockets"], 2_000_000);
    assert_eq!(m["kernel_bytes"], 9_600_000_000u64);
    assert_eq!(m["server_user_bytes"], 1_024_000_000u64);
    assert_eq!(m["client_user_bytes"], 1_024_000_000u64);
    assert_eq!(m["total_bytes"], 11_648_000_000u64);
    assert_eq!(m["per_connection_bytes"], 11_648);
    let row = doc["rows"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(row["name"], "memory");
    assert_eq!(row["needed"], "10.8 GiB");
    assert!(
        row["why"]
            .as_str()
            .unwrap()
            .contains("= 11,648 B per connection"),
        "{row}"
    );

    // The server alone, with a heavier user space: one socket per connection.
    let (_, doc, _) = fake::check_json(
        dir.path(),
        &[
            "--conns",
            "1M",
            "--role",
            "server",
            "--user-bytes-per-conn",
            "4096,0",
        ],
    );
    let m = &doc["memory"];
    assert_eq!(m["sockets"], 1_000_000);
    assert_eq!(m["kernel_bytes"], 4_800_000_000u64);
    assert_eq!(m["server_user_bytes"], 4_096_000_000u64);
    assert_eq!(m["client_user_bytes"], 0);
}

#[test]
fn memory_beyond_what_is_available_fails() {
    let dir = fake::tree(fake::ROOMY);
    // 60 GiB available; 5M loopback connections need 5M x 11,648 B = 54 GiB:
    // over 80% (WARN); 6M need 65 GB, beyond it (FAIL).
    let (rows, _, _) = fake::check_json(
        dir.path(),
        &[
            "--conns",
            "5M",
            "--procs",
            "10",
            "--source-ips",
            "127.0.0.0/24",
        ],
    );
    assert_eq!(
        rows.last().unwrap(),
        &("memory".to_owned(), "WARN".to_owned())
    );
    let (rows, _, code) = fake::check_json(
        dir.path(),
        &[
            "--conns",
            "6M",
            "--procs",
            "10",
            "--source-ips",
            "127.0.0.0/24",
        ],
    );
    assert_eq!(
        rows.last().unwrap(),
        &("memory".to_owned(), "FAIL".to_owned())
    );
    assert_eq!(code, 1);
}

#[test]
fn role_decides_which_rows_apply() {
    let dir = fake::tree(fake::ROOMY);
    let (server, _, _) = fake::check_json(dir.path(), &["--conns", "10k", "--role", "server"]);
    let names: Vec<&str> = server.iter().map(|(n, _)| n.as_str()).collect();
    assert!(names.contains(&"net.core.somaxconn"));
    assert!(!names.contains(&"net.ipv4.ip_local_port_range"));
    assert!(!names.contains(&"net.ipv4.tcp_tw_reuse"));
    let (client, _, _) = fake::check_json(dir.path(), &["--conns", "10k", "--role", "client"]);
    let names: Vec<&str> = client.iter().map(|(n, _)| n.as_str()).collect();
    assert!(!names.contains(&"net.core.somaxconn"));
    assert!(names.contains(&"net.ipv4.ip_local_port_range"));
}

#[test]
fn conntrack_is_checked_only_when_loaded() {
    let dir = fake::tree(fake::ROOMY);
    std::fs::remove_file(dir.path().join("proc/sys/net/netfilter/nf_conntrack_max")).unwrap();
    let (rows, _, code) = fake::check_json(dir.path(), MILLION_BOTH);
    assert!(rows.iter().all(|(n, _)| !n.contains("conntrack")));
    assert_eq!(code, 0);
}

#[test]
fn bind_modes_use_the_capacity_arithmetic() {
    let dir = fake::tree(fake::ROOMY);
    let port_status = |args: &[&str]| {
        let (_, doc, _) = fake::check_json(dir.path(), args);
        let row = fake::row(&doc["rows"], "net.ipv4.ip_local_port_range");
        (
            row["status"].as_str().unwrap().to_owned(),
            row["why"].as_str().unwrap().to_owned(),
        )
    };
    // Part 3: 17 source IPs, explicit ports 1024-65535, one destination.
    let (s, why) = port_status(&[
        "--conns",
        "1M",
        "--bind-mode",
        "explicit",
        "--source-ips",
        "127.0.0.2-127.0.0.18",
    ]);
    assert_eq!(s, "OK", "{why}");
    assert!(why.contains("1,096,704"), "{why}");
    // Without a bind the source IPs do not count: 64,512 ports x 2 destinations.
    let (s, why) = port_status(&[
        "--conns",
        "200k",
        "--bind-mode",
        "kernel",
        "--destinations",
        "2",
        "--source-ips",
        "127.0.0.1-127.0.0.9",
    ]);
    assert_eq!(s, "FAIL", "{why}");
    assert!(why.contains("--bind-mode noport"), "{why}");
    let (s, _) = port_status(&[
        "--conns",
        "120k",
        "--bind-mode",
        "kernel",
        "--destinations",
        "2",
    ]);
    assert_eq!(s, "OK");
}

#[test]
fn exit_codes() {
    let roomy = fake::tree(fake::ROOMY);
    let cramped = fake::tree(fake::CRAMPED);
    let code = |root: &std::path::Path, args: &[&str]| fake::run(root, args).status.code().unwrap();
    assert_eq!(code(roomy.path(), &["check", "--conns", "10k"]), 0);
    assert_eq!(code(cramped.path(), &["check", "--conns", "1M"]), 1);
    // Warnings alone still pass.
    assert_eq!(code(cramped.path(), &["check", "--conns", "10k"]), 0);

    // Errors: no proc tree, an unparsable value, a bad flag.
    let empty = tempfile::tempdir().unwrap();
    let out = fake::run(empty.path(), &["check", "--conns", "10k"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("c1m-sysctl: "));
    fake::write(roomy.path(), "proc/sys/net/core/somaxconn", "lots\n");
    let out = fake::run(roomy.path(), &["check", "--conns", "10k"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("net.core.somaxconn"));
    assert_eq!(code(cramped.path(), &["check", "--conns", "ten"]), 2);
    assert_eq!(
        code(cramped.path(), &["check", "--conns", "10", "--procs", "0"]),
        2
    );
}

#[test]
fn the_table_names_the_fixes() {
    let dir = fake::tree(fake::CRAMPED);
    let out = fake::run(dir.path(), &["check", "--conns", "1M", "--procs", "1"]);
    let text = fake::stdout(&out);
    assert!(
        text.starts_with("c1m-sysctl check --conns 1000000 --role both --procs 1"),
        "{text}"
    );
    assert!(text.contains("LIMIT "));
    assert!(text.contains("\n7 FAIL, 7 WARN, 0 OK\n"), "{text}");
    assert!(text.contains("to fix:\n"));
    assert!(
        text.contains("  fs.file-max [kernel, as root]: `c1m-sysctl apply` sets 2000500\n"),
        "{text}"
    );
    // Each fix says which tool it is for, and the table ends with what to
    // run: apply with the run changed as the fixes say (36 source
    // addresses, 51 processes), then the flood with that addressing.
    assert!(
        text.contains("  net.ipv4.ip_local_port_range [floodtest and check flags]: use --bind-mode noport --source-ips 127.0.0.1-127.0.0.36"),
        "{text}"
    );
    assert!(
        text.contains(
            "  RLIMIT_NOFILE (hard) [floodtest --procs, server processes]: use --procs 51 per role"
        ),
        "{text}"
    );
    let apply = "next (as root): c1m-sysctl apply --conns 1000000 --role both --procs 51 \
                 --bind-mode noport --source-ips 127.0.0.1-127.0.0.36 --destinations 1\n";
    assert!(text.contains(apply), "{text}");
    let last = text.lines().last().unwrap();
    assert_eq!(
        last,
        "then: lift memory by hand (above), and check again: c1m-sysctl check --conns 1000000 \
         --role both --procs 51 --bind-mode noport --source-ips 127.0.0.1-127.0.0.36 --destinations 1"
    );
}

#[test]
fn the_next_command_after_apply_is_the_run_with_the_addressing_checked() {
    let dir = fake::tree(fake::ROOMY);
    fake::write(
        dir.path(),
        "proc/sys/net/ipv4/tcp_mem",
        "10000\t20000\t30000\n",
    );
    let out = fake::run(
        dir.path(),
        &["check", "--conns", "1M", "--source-ips", "127.0.0.1"],
    );
    let text = fake::stdout(&out);
    let tail: Vec<&str> = text.lines().rev().take(2).collect();
    assert_eq!(
        tail,
        [
            "then: floodtest --url 'http://127.0.0.1:8000/test/{id}' --conns 1000000 --bind-mode noport \
             --source-ips 127.0.0.1-127.0.0.16 (against comet-server --listen 127.0.0.1:8000)",
            "next (as root): c1m-sysctl apply --conns 1000000 --role both --procs auto --bind-mode noport \
             --source-ips 127.0.0.1-127.0.0.16 --destinations 1",
        ],
        "{text}"
    );
}

#[test]
fn procs_auto_splits_under_the_hard_limit_like_floodtest() {
    let dir = fake::tree(fake::CRAMPED);
    let (_, doc, _) = fake::check_json(dir.path(), &["--conns", "1M"]);
    let row = |name: &str| fake::row(&doc["rows"], name).clone();
    // Hard 20,000 without CAP_SYS_RESOURCE: 51 processes of 19,608.
    let hard = row("RLIMIT_NOFILE (hard)");
    assert_eq!(hard["status"], "WARN", "{hard}");
    assert_eq!(hard["needed"], "19,672");
    assert!(
        hard["why"]
            .as_str()
            .unwrap()
            .contains("--procs auto: 51 processes per role"),
        "{hard}"
    );
    assert!(hard["fix"]["manual"]
        .as_str()
        .unwrap()
        .contains("run comet-server --workers 51"));
    // fs.nr_open (500,000) is then no obstacle.
    assert_eq!(row("fs.nr_open")["status"], "OK");
    assert!(doc["plan"].as_str().unwrap().contains("--procs auto"));
}

/// A kernel reporting the largest values it allows (`fs.file-max` is
/// LONG_MAX by default on 64-bit kernels; `tcp_mem` and the buffers can be
/// set that high) and a plan at the largest sizes the flags take: every
/// command answers, none panics on the arithmetic.
#[test]
fn the_largest_values_do_not_overflow() {
    const LONG_MAX: &str = "9223372036854775807";
    let huge: Vec<(&str, String)> = fake::CRAMPED
        .iter()
        .map(|&(path, text)| {
            let fields = text.split_whitespace().count();
            let value = if path.starts_with("proc/sys/") {
                format!("{}\n", vec![LONG_MAX; fields].join("\t"))
            } else {
                text.to_owned()
            };
            (path, value)
        })
        .collect();
    let files: Vec<(&str, &str)> = huge.iter().map(|(p, v)| (*p, v.as_str())).collect();
    let dir = fake::tree(&files);
    for command in ["check", "print"] {
        let out = fake::run(
            dir.path(),
            &[
                command,
                "--conns",
                "1G",
                "--source-ips",
                "0.0.0.0/0",
                "--destinations",
                "18446744073709551615",
                "--user-bytes-per-conn",
                "1G",
                "--bind-mode",
                "noport",
                "--preset",
                "part3",
            ],
        );
        let code = out.status.code();
        assert!(
            matches!(code, Some(0 | 1)),
            "{command}: {code:?} {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
