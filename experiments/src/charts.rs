//! Drawing the run's charts and memory table with `plots`, after the load
//! has stopped. A chart that cannot be drawn (a CSV missing because the run
//! was cut short) becomes a note in the report, not a failure.

use crate::figures::{FLOOD_CSV, MEM_CSV};
use crate::supervisor::{Ends, Supervisor};
use crate::tools::{Tool, Tools};
use std::path::Path;
use std::time::Duration;

/// `plots` draws one chart in well under a second; this bounds a stuck one.
const PLOT_TIMEOUT: Duration = Duration::from_secs(60);

/// The charts drawn: (PNG file, what it shows).
pub struct Charts {
    pub charts: Vec<(String, String)>,
    pub mem_table: Option<String>,
    pub notes: Vec<String>,
}

/// Draws every chart whose CSV exists in `dir`. `table_step` is the
/// connection-count step of the memory table.
pub fn draw(tools: &Tools, dir: &Path, sup: &mut Supervisor, table_step: u64) -> Charts {
    let mut out = Charts {
        charts: Vec::new(),
        mem_table: None,
        notes: Vec::new(),
    };
    let jobs = [
        (
            "memory",
            MEM_CSV,
            "mem.png",
            "Server memory and connections over time",
        ),
        (
            "per-conn",
            MEM_CSV,
            "per-conn.png",
            "Server bytes per connection",
        ),
        (
            "flood",
            FLOOD_CSV,
            "flood.png",
            "Connections and messages seen by floodtest",
        ),
    ];
    for (kind, csv, png, what) in jobs {
        if !dir.join(csv).exists() {
            out.notes.push(format!("no {png}: {csv} was not written"));
            continue;
        }
        let args = [kind, &path(dir, csv), "-o", &path(dir, png)].map(str::to_owned);
        match plot(tools, sup, &format!("plots-{kind}"), &args) {
            Ok(()) => out.charts.push((png.to_owned(), what.to_owned())),
            Err(e) => out.notes.push(format!("no {png}: {e:#}")),
        }
    }
    if dir.join(MEM_CSV).exists() {
        let args = [
            "table",
            &path(dir, MEM_CSV),
            "--step",
            &table_step.max(1).to_string(),
        ]
        .map(str::to_owned);
        match plot(tools, sup, "plots-table", &args) {
            Ok(()) => out.mem_table = std::fs::read_to_string(dir.join("plots-table.stdout")).ok(),
            Err(e) => out.notes.push(format!("no memory table: {e:#}")),
        }
    }
    out
}

fn plot(tools: &Tools, sup: &mut Supervisor, name: &str, args: &[String]) -> anyhow::Result<()> {
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
