//! `experiment compare PRESET --targets comet,nchan,pushpin`: the preset
//! against each server in turn on this machine, each a whole run of its
//! own (its report, CSVs and logs in `<out>/<target>/`), then one
//! `report.md` with the figures side by side ([`crate::side_by_side`]) and
//! the charts overlaid, one colour per server (`plots` with several
//! labelled CSVs).
//!
//! Every target is checked before the first starts, so a comparison never
//! stops half way for a missing package. A run that fails still gets its
//! column, marked with how it ended; a stop signal ends the comparison
//! (the signal stays caught for the runs after it).

use crate::args::{Args, CompareArgs, RunOptions};
use crate::figures::{read_figures, FLOOD_CSV, MEM_CSV};
use crate::report::Outcome;
use crate::side_by_side::{Column, Comparison};
use crate::supervisor::Supervisor;
use crate::target::{self, External, TargetKind};
use crate::tools::Tools;
use crate::{charts, preset};
use anyhow::{bail, Context};
use c1m_common::{Repeat, StopSignals};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

/// Runs the comparison; exits with the worst of the runs' codes.
pub fn compare(args: CompareArgs) -> anyhow::Result<ExitCode> {
    let found = preset::find_for(&args.preset, args.options.msg_rate)?;
    check_targets(&args.targets, found.message_rate > 0)?;
    let tools = Tools::locate(args.options.bin_dir.as_deref())?;
    let started = SystemTime::now();
    let stamp = humantime::format_rfc3339_seconds(started).to_string();
    let dir = args
        .options
        .out
        .clone()
        .unwrap_or_else(|| crate::default_out(&format!("compare-{}", found.name), &stamp));
    crate::prepare_out(&dir)?;
    // Each run installs the same handlers; what one caught stays caught,
    // so a Ctrl-C during a run also ends the comparison.
    let signals =
        StopSignals::install(&[libc::SIGINT, libc::SIGTERM, libc::SIGHUP], Repeat::Ignore)
            .context("installing the SIGINT/SIGTERM handler")?;
    let load_before = load_average();
    println!(
        "compare {}: {} -> {}",
        found.name,
        names(&args.targets),
        dir.display()
    );
    let mut columns = Vec::new();
    let mut worst = 0u8;
    for &kind in &args.targets {
        let sub = dir.join(kind.name());
        println!("compare: {} in {}", kind.name(), sub.display());
        let run = Args {
            preset: args.preset.clone(),
            options: RunOptions {
                out: Some(sub.clone()),
                ..args.options.clone()
            },
            workers: None,
            broker: None,
            target: kind,
            external: External::default(),
        };
        let (server, outcome, code) = match crate::run_one(&run) {
            Ok(done) => {
                let code = code_of(&done.outcome);
                (done.server, done.outcome, code)
            }
            Err(e) => (
                kind.name().to_owned(),
                Outcome::Incomplete(format!("{e:#}")),
                2,
            ),
        };
        worst = worst.max(code);
        let figures = read_figures(&sub).unwrap_or_default();
        columns.push(Column {
            kind,
            server,
            outcome,
            figures,
        });
        if signals.caught().is_some() {
            println!("compare: interrupted; the report covers the runs so far");
            worst = 2;
            break;
        }
    }
    let ran: Vec<TargetKind> = columns.iter().map(|c| c.kind).collect();
    let (charts, notes) = overlay(&tools, &dir, &ran);
    let comparison = Comparison {
        title: format!("{}: {}", found.name, names(&args.targets)),
        command: crate::command_line(),
        started: stamp,
        load_before,
        load_after: load_average(),
        columns,
        charts,
        notes,
    };
    let path = dir.join("report.md");
    std::fs::write(&path, comparison.render())
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    println!("report: {}", path.display());
    Ok(ExitCode::from(worst))
}

/// Refuses, before anything starts, a comparison that cannot run: no
/// target, one twice, `external` (a comparison starts each server
/// itself), or a server this machine lacks.
fn check_targets(targets: &[TargetKind], sends_messages: bool) -> anyhow::Result<()> {
    if targets.is_empty() {
        bail!("--targets names no server: give e.g. --targets comet,nchan,pushpin");
    }
    if let Some(twice) = targets
        .iter()
        .enumerate()
        .find_map(|(i, t)| targets[..i].contains(t).then_some(t))
    {
        bail!("--targets names {} twice", twice.name());
    }
    if targets.contains(&TargetKind::External) {
        bail!(
            "compare starts each server itself; measure a server you run with `experiment PRESET \
             --target external ...` and compare by hand"
        );
    }
    for &kind in targets {
        target::check(kind, &External::default(), sends_messages, None)?;
    }
    Ok(())
}

fn names(targets: &[TargetKind]) -> String {
    targets
        .iter()
        .map(|t| t.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A run's exit code (`experiment`'s: 0 complete, 1 a check failed, 2 stopped early).
fn code_of(outcome: &Outcome) -> u8 {
    match outcome {
        Outcome::Complete => 0,
        Outcome::CheckFailed(_) => 1,
        Outcome::Incomplete(_) => 2,
    }
}

/// `/proc/loadavg`'s three averages.
fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The memory, per-connection and flood charts with one line per server
/// that wrote the CSV.
fn overlay(tools: &Tools, dir: &Path, ran: &[TargetKind]) -> (Vec<(String, String)>, Vec<String>) {
    let mut sup = Supervisor::new(dir, Duration::from_secs(5));
    let mut charts = Vec::new();
    let mut notes = Vec::new();
    let jobs: [(&str, &str, &str, &str, &[&str]); 3] = [
        (
            "memory",
            MEM_CSV,
            "mem.png",
            "Server memory and connections over time, one colour per server",
            &["--kernel", "both"],
        ),
        (
            "per-conn",
            MEM_CSV,
            "per-conn.png",
            "Bytes per connection, one colour per server",
            &["--kernel", "total"],
        ),
        (
            "flood",
            FLOOD_CSV,
            "flood.png",
            "Connections, messages received and latency, one colour per server",
            &[],
        ),
    ];
    for (kind, csv, png, what, extra) in jobs {
        let with: Vec<TargetKind> = ran
            .iter()
            .copied()
            .filter(|t| dir.join(t.name()).join(csv).exists())
            .collect();
        if with.is_empty() {
            notes.push(format!("no {png}: no run wrote {csv}"));
            continue;
        }
        let mut args = vec![kind.to_owned()];
        args.extend(
            with.iter()
                .map(|t| dir.join(t.name()).join(csv).to_string_lossy().into_owned()),
        );
        for t in &with {
            args.extend(["--label".to_owned(), t.name().to_owned()]);
        }
        args.extend([
            "-o".to_owned(),
            dir.join(png).to_string_lossy().into_owned(),
        ]);
        args.extend(extra.iter().map(|a| a.to_string()));
        match charts::plot(tools, &mut sup, &format!("plots-{kind}"), &args) {
            Ok(()) => charts.push((png.to_owned(), what.to_owned())),
            Err(e) => notes.push(format!("no {png}: {e:#}")),
        }
    }
    (charts, notes)
}
