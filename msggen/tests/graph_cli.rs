//! `msggen graph` as a user runs it: the same seed writes the same file.

use std::process::Command;

fn graph(out: &std::path::Path, seed: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_msggen"))
        .args([
            "graph",
            "--users",
            "20k",
            "--avg-friends",
            "10",
            "--seed",
            seed,
            "--out",
        ])
        .arg(out)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stderr).unwrap()
}

#[test]
fn same_seed_writes_the_same_file() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("c"),
    );
    let report = graph(&a, "1");
    graph(&b, "1");
    graph(&c, "2");
    let (a, b, c) = (
        std::fs::read(a).unwrap(),
        std::fs::read(b).unwrap(),
        std::fs::read(c).unwrap(),
    );
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert!(a.starts_with(b"user,friend\n"));
    // The report's count is the file's line count less the header.
    let lines = a.iter().filter(|&&x| x == b'\n').count() - 1;
    assert!(
        report.contains(&format!("20000 users, {lines} friendships")),
        "{report}"
    );
}

#[test]
fn impossible_graph_is_refused_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_msggen"))
        .args(["graph", "--users", "10", "--avg-friends", "20", "--out"])
        .arg(dir.path().join("x"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).starts_with("msggen: --avg-friends 20"));
}
