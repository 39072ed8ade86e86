//! An `/etc/sysctl.d/` file for the plan (and a preset), with a comment
//! per setting saying why. Like `apply` it only raises limits; a lower
//! buffer default and the seeds' obsolete or harmful settings appear
//! commented out with the reason, and what is not a sysctl (descriptor
//! limits, memory) is listed at the end for a person.

use crate::limits::{Fix, Row, Status};
use crate::presets::{PresetReport, Verdict};
use crate::probe::join;
use std::collections::HashSet;
use std::fmt::Write;

/// The file's name the header suggests installing it as.
pub(crate) const FILE_NAME: &str = "/etc/sysctl.d/90-c1m.conf";

/// Renders the file for `rows` (from `plan`) and an optional preset.
pub(crate) fn sysctl_file(
    plan: Option<&str>,
    rows: &[Row],
    preset: Option<&PresetReport>,
) -> String {
    let mut out = String::new();
    let what = match (plan, preset) {
        (Some(p), Some(pr)) => format!("{p} --preset {}", pr.name),
        (Some(p), None) => p.to_owned(),
        (None, Some(pr)) => format!("--preset {}", pr.name),
        (None, None) => String::new(),
    };
    let _ = writeln!(out, "# {FILE_NAME}: written by `c1m-sysctl print {what}`");
    out += "# from this machine's current values. Install and load it with:\n";
    let _ = writeln!(
        out,
        "#   sudo cp THIS_FILE {FILE_NAME} && sudo sysctl --system"
    );
    out += "# It only raises limits; values already sufficient here are listed, not set.\n";

    let mut set = HashSet::new();
    let mut manual = Vec::new();
    let mut sufficient = Vec::new();
    for row in rows {
        match &row.fix {
            Fix::Set(values) => {
                set.insert(row.name.as_str());
                let values = &preset.map_or_else(|| values.clone(), |p| p.raise(&row.name, values));
                let _ = write!(
                    out,
                    "\n# {} (now {}; needs {}): {}\n{} = {}\n",
                    row.status.label(),
                    row.current,
                    row.needed,
                    row.why,
                    row.name,
                    join(values, " ")
                );
            }
            Fix::Suggest(values) => {
                let _ = write!(
                    out,
                    "\n# optional, lowers a default (apply never does): {}\n# {} = {}\n",
                    row.why,
                    row.name,
                    join(values, " ")
                );
            }
            Fix::Manual(how) => manual.push(format!("# {}: {how}", row.name)),
            Fix::None if row.status == Status::Ok => {
                sufficient.push(format!(
                    "#   {} = {} (needs {})",
                    row.name, row.current, row.needed
                ));
            }
            Fix::None => manual.push(format!("# {}: {}", row.name, row.why)),
        }
    }
    if !sufficient.is_empty() {
        out += "\n# Already sufficient here:\n";
        for line in sufficient {
            out += &line;
            out.push('\n');
        }
    }
    if let Some(preset) = preset {
        let _ = write!(out, "\n# Preset {}: {}\n", preset.name, preset.source);
        for row in &preset.rows {
            match row.verdict {
                Verdict::Ok | Verdict::Set if set.contains(row.name.as_str()) => {
                    let _ = writeln!(
                        out,
                        "# {} = {}: merged with the plan's line above (the higher is set)",
                        row.name, row.seed
                    );
                }
                Verdict::Ok | Verdict::Set => {
                    let _ = write!(out, "# {}\n{} = {}\n", row.why, row.name, row.seed);
                }
                Verdict::Manual => manual.push(format!("# {} {}: {}", row.name, row.seed, row.why)),
                Verdict::Lowers | Verdict::Obsolete | Verdict::Harmful => {
                    let _ = write!(
                        out,
                        "# {}: {}\n# {} = {}\n",
                        row.verdict.label(),
                        row.why,
                        row.name,
                        row.seed
                    );
                }
            }
        }
    }
    if !manual.is_empty() {
        out += "\n# Not sysctls, or not settable from here; do these by hand:\n";
        for line in manual {
            out += &line;
            out.push('\n');
        }
    }
    out
}
