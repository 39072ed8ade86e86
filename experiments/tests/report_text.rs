//! report.md rendered from fixture CSV and JSON files (a small c10k run),
//! pinned to `fixtures/c10k/report.md`.
//!
//! The fixture's figures are checked by hand there: the plateau is the
//! samples at 2, 3 and 4 s (at least 990 of the peak 1,000 connections);
//! RSS grew 800, 810 and 790 KiB over 1,000, 1,000 and 995 connections, so
//! the median is 800 KiB / 1,000 = 819 B; the kernel grew 10,020 and 9,030
//! KiB and, at 4 s, 200,020 KiB (another process's burst), so the median
//! is 10,020 KiB / 1,000 = 10,260 B, and the burst shows as its ±: Slab
//! plus TCP pages ranged over 186.5 MiB there (190,990 KiB), ±95,495 KiB
//! over 1,000 connections = ±97,787 B, which flags the run as disturbed. Set `C1M_BLESS=1` to rewrite
//! the file after a deliberate change, and review the diff.

use c1m_experiments::{find_preset, Overrides, Plan};
use c1m_experiments::{Load, Machine};
use c1m_experiments::{Outcome, Report, Step};
use std::path::Path;
use std::time::Duration;

/// The fixture summaries are documents the tools could have written.
#[test]
fn fixture_summaries_match_their_schemas() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/c10k");
    for (file, schema) in [
        ("flood.json", "flood-summary.json"),
        ("msggen.json", "msggen-summary.json"),
    ] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        c1m_common::validate_against_schema(schema, &text)
            .unwrap_or_else(|e| panic!("{file}: {e}"));
    }
}

fn fixture_report(outcome: Outcome) -> String {
    fixture_report_under(outcome, Load::default())
}

fn fixture_report_under(outcome: Outcome, load: Load) -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/c10k");
    let plan = Plan::new(
        find_preset("c10k").unwrap(),
        Overrides {
            scale: Some(0.1),
            connect_rate: Some(1000),
            hold: Some(Duration::from_secs(3)),
            message_rate: None,
        },
    );
    let step = |name: &str, pid: u32, command: &str, result: &str| Step {
        name: name.into(),
        pid,
        command: command.into(),
        result: result.into(),
    };
    Report {
        command: "experiment c10k --scale 0.1 --rate 1000 --duration 3s".into(),
        started: "2026-11-22T03:05:29Z".into(),
        took: Duration::from_millis(6_400),
        machine: Machine {
            cores: 2,
            cpu_model: "AMD EPYC".into(),
            memory_kb: 24_641_536,
            kernel: "Linux 6.18.44 x86_64".into(),
            load_average: "0.50 0.40 0.30".into(),
        },
        plan: &plan,
        server: "comet-server 0.1.0".into(),
        settle_wait: Duration::from_secs(4),
        load: Some(load),
        outcome,
        figures: c1m_experiments::read_figures(&dir).unwrap(),
        steps: vec![
            step(
                "comet-server",
                100,
                "comet-server --listen 127.0.0.1:0 --admin 127.0.0.1:0",
                "stopped by the runner, exit 0",
            ),
            step(
                "msggen",
                104,
                "msggen --target http://127.0.0.1:40071 --ids 1-1000 --rate 1667",
                "exit 0",
            ),
        ],
        charts: vec![(
            "mem.png".into(),
            "Server memory and connections over time".into(),
        )],
        mem_table: Some("| connections | RES |\n| ---: | ---: |\n| 0 | 3.9 MiB |\n".into()),
        sysctl: None,
        notes: vec!["no flood.png: plots failed".into()],
    }
    .render()
}

#[test]
fn report_from_fixture_files_is_pinned() {
    let text = fixture_report(Outcome::Complete);
    let pinned = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/c10k/report.md");
    if std::env::var_os("C1M_BLESS").is_some() {
        std::fs::write(&pinned, &text).unwrap();
    }
    let expected = std::fs::read_to_string(&pinned).unwrap();
    for (i, (got, want)) in text.lines().zip(expected.lines()).enumerate() {
        assert_eq!(got, want, "report.md line {} differs", i + 1);
    }
    assert_eq!(text, expected);
}

#[test]
fn an_incomplete_run_says_why_at_the_top() {
    let text = fixture_report(Outcome::Incomplete(
        "comet-server ended unexpectedly (killed by SIGKILL)".into(),
    ));
    let third = text.lines().nth(2).unwrap();
    assert_eq!(
        third,
        "**Incomplete:** comet-server ended unexpectedly (killed by SIGKILL). \
         The figures cover what was measured until then."
    );
}

#[test]
fn a_run_on_a_busy_machine_is_flagged_at_the_top() {
    let busy = Load {
        mean: 3.7,
        peak: 9,
        over_cores: 0.8,
        samples: 40,
    };
    let text = fixture_report_under(Outcome::Complete, busy);
    let flag = text
        .lines()
        .find(|l| l.starts_with("**Disturbed:**"))
        .unwrap();
    assert!(
        flag.contains("the load exceeded the cores: 3.7 runnable tasks on average for 2 cores (9 at the most)"),
        "{flag}"
    );
    // The fixture's kernel burst: memory moved while connections held.
    assert!(
        flag.contains("the machine's memory moved without the connections moving: Slab + TCP pages ranged over"),
        "{flag}"
    );
    assert!(text.contains("| load during the run | 3.7 runnable tasks on average, 9 at the most, over 2 cores 80% of the time |"));
    let quiet = fixture_report(Outcome::Complete);
    let flag = quiet
        .lines()
        .find(|l| l.starts_with("**Disturbed:**"))
        .unwrap();
    assert!(!flag.contains("the load exceeded"), "{flag}");
}

#[test]
fn the_title_and_the_figures_name_what_was_run_and_how() {
    let text = fixture_report(Outcome::Complete);
    // Scale 0.1: the title says 1,000 connections and 1,667 msg/s.
    assert!(
        text.starts_with("# c10k: C10K: ramp to 1,000 connections, then 1,667 msg/s to random ids"),
        "{}",
        text.lines().next().unwrap()
    );
    assert!(text.lines().next().unwrap().ends_with("(scale 0.1)"));
    let kernel = text
        .lines()
        .find(|l| l.starts_with("| kernel bytes per connection (Slab + TCP pages"))
        .unwrap();
    assert!(kernel.contains("10,260 B ± 97,787 B"), "{kernel}");
    assert!(text.contains("is one method, growth over the idle baseline"));
    // 1,000 held: no client figure, and why.
    assert!(text.contains("| client bytes per connection | not shown under 10,000 connections (fixed costs swamp it) |"));
}
