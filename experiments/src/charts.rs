//! Drawing the run's charts and memory table with `plots`, after the load
//! has stopped. A chart that cannot be drawn (a CSV missing because the run
//! was cut short) becomes a note in the report, not a failure.

use crate::figures::{CLIENT_MEM_CSV, FLOOD_CSV, MEM_CSV, MSGGEN_CSV};
use crate::supervisor::{Ends, Supervisor};
use crate::tools::{Tool, Tools};
use std::path::Path;
use std::time::Duration;

/// `plots` draws one chart in well under a second; this bounds a stuck one.
const PLOT_TIMEOUT: Duration = Duration::from_secs(60);

/// The charts drawn: (PNG file, what it shows).
pub(crate) struct Charts {
    pub(crate) charts: Vec<(String, String)>,
    pub(crate) mem_table: Option<String>,
    pub(crate) notes: Vec<String>,
}

/// The memory table `plots table` writes.
pub(crate) const MEM_TABLE: &str = "mem-table.md";

/// Draws every chart whose CSV exists in `dir`.
pub(crate) fn draw(tools: &Tools, dir: &Path, sup: &mut Supervisor) -> Charts {
    let mut out = Charts {
        charts: Vec::new(),
        mem_table: None,
        notes: Vec::new(),
    };
    // Over time, Slab and TCP pages apart (buffered messages show in the
    // latter); per connection, their sum: the report's kernel figure.
    let both: &[&str] = &["--kernel", "both"];
    let total: &[&str] = &["--kernel", "total"];
    // msggen's send rate beside what floodtest received, when it ran.
    let msggen = path(dir, MSGGEN_CSV);
    let sent: Vec<&str> = if dir.join(MSGGEN_CSV).exists() {
        vec!["--msggen", msggen.as_str()]
    } else {
        vec![]
    };
    // The client's user space alone: the kernel figure is system-wide,
    // already in mem.png.
    let client: &[&str] = &[
        "--kernel",
        "none",
        "--label",
        "floodtest",
        "--title",
        "Client (floodtest) memory",
    ];
    let jobs: [(&str, &str, &str, &str, &[&str]); 4] = [
        (
            "memory",
            MEM_CSV,
            "mem.png",
            "Server memory (user space above, kernel below) and connections over time",
            both,
        ),
        (
            "memory",
            CLIENT_MEM_CSV,
            "client-mem.png",
            "Client (floodtest, every process) memory and connections over time",
            client,
        ),
        (
            "per-conn",
            MEM_CSV,
            "per-conn.png",
            "Bytes per connection (user space above, kernel below)",
            total,
        ),
        (
            "flood",
            FLOOD_CSV,
            "flood.png",
            "Connections, messages sent and received, and latency seen by floodtest",
            &sent,
        ),
    ];
    for (kind, csv, png, what, extra) in jobs {
        if !dir.join(csv).exists() {
            out.notes.push(format!("no {png}: {csv} was not written"));
            continue;
        }
        let mut args = vec![
            kind.to_owned(),
            path(dir, csv),
            "-o".to_owned(),
            path(dir, png),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        let step = format!("plots-{}", png.trim_end_matches(".png"));
        match plot(tools, sup, &step, &args) {
            Ok(()) => out.charts.push((png.to_owned(), what.to_owned())),
            Err(e) => out.notes.push(format!("no {png}: {e:#}")),
        }
    }
    if dir.join(MEM_CSV).exists() {
        let args = vec![
            "table".to_owned(),
            path(dir, MEM_CSV),
            "-o".to_owned(),
            path(dir, MEM_TABLE),
        ];
        match plot(tools, sup, "plots-table", &args) {
            Ok(()) => out.mem_table = std::fs::read_to_string(dir.join(MEM_TABLE)).ok(),
            Err(e) => out.notes.push(format!("no memory table: {e:#}")),
        }
    }
    out
}

/// Runs `plots ARGS` under `sup` (its logs `<name>.stdout`/`.stderr`).
pub(crate) fn plot(
    tools: &Tools,
    sup: &mut Supervisor,
    name: &str,
    args: &[String],
) -> anyhow::Result<()> {
    let id = sup.start(name, &tools.path(Tool::Plots), args, Ends::Any)?;
    match sup.wait_exit(id, PLOT_TIMEOUT)? {
        Some(status) if status.success() => Ok(()),
        Some(status) => anyhow::bail!(
            "`plots {}` ended with {} (see {name}.stderr)",
            args[0],
            crate::child::describe(status)
        ),
        None => {
            sup.stop(id)?;
            anyhow::bail!("`plots {}` took over {PLOT_TIMEOUT:?}", args[0])
        }
    }
}

fn path(dir: &Path, file: &str) -> String {
    dir.join(file).to_string_lossy().into_owned()
}
