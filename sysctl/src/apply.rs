//! Writing the fixes: each row whose fix is a sysctl value, and each preset
//! setting still worth having, is written under `proc/sys` of the probe's
//! root, with `name: old -> new` printed per change. It only raises limits;
//! what it cannot change (a hard RLIMIT_NOFILE, a read-only `/proc/sys`, a
//! lowered buffer default) it names, with the reason and the way around.
//!
//! On the live machine this changes the running kernel until reboot; tests
//! run it against a fake tree.

use crate::limits::{Fix, Row};
use crate::presets::{PresetReport, Verdict};
use crate::probe::{join, Probe};
use std::collections::HashSet;
use std::io::{self, Write};

/// What `apply` did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    pub changed: usize,
    /// Writes the kernel refused.
    pub refused: usize,
    /// Rows and seed settings left for a person.
    pub left: usize,
}

/// Applies the rows' fixes, then the preset's settings not already covered.
pub fn apply(
    rows: &[Row],
    preset: Option<&PresetReport>,
    probe: &Probe,
    out: &mut dyn Write,
) -> io::Result<Applied> {
    let mut done = Applied::default();
    let mut written = HashSet::new();
    for row in rows {
        match &row.fix {
            Fix::None => {}
            Fix::Set(values) => {
                written.insert(row.name.clone());
                let values = preset.map_or_else(|| values.clone(), |p| p.raise(&row.name, values));
                write_one(probe, &row.name, &values, out, &mut done)?;
            }
            Fix::Suggest(values) => {
                done.left += 1;
                writeln!(
                    out,
                    "{}: left at {}: apply only raises limits; a lower default ({}) bounds memory, see `c1m-sysctl print`",
                    row.name,
                    row.current,
                    join(values, " ")
                )?;
            }
            Fix::Manual(how) => {
                done.left += 1;
                writeln!(out, "{}: cannot change it from here: {how}", row.name)?;
            }
        }
    }
    if let Some(preset) = preset {
        for row in &preset.rows {
            match row.verdict {
                Verdict::Ok => {}
                Verdict::Set if written.contains(&row.name) => {
                    writeln!(
                        out,
                        "{}: preset {} value {} merged with the plan's: the higher of the two is written",
                        row.name, preset.name, row.seed
                    )?;
                }
                Verdict::Set => write_one(probe, &row.name, &row.value, out, &mut done)?,
                Verdict::Manual => {
                    done.left += 1;
                    writeln!(out, "{}: cannot change it from here: {}", row.name, row.why)?;
                }
                Verdict::Lowers | Verdict::Obsolete | Verdict::Harmful => {
                    writeln!(
                        out,
                        "{}: preset {} value {} skipped ({}): {}",
                        row.name,
                        preset.name,
                        row.seed,
                        row.verdict.label().to_lowercase(),
                        row.why
                    )?;
                }
            }
        }
    }
    Ok(done)
}

fn write_one(
    probe: &Probe,
    name: &str,
    values: &[u64],
    out: &mut dyn Write,
    done: &mut Applied,
) -> io::Result<()> {
    let old = match probe.ints(name) {
        Ok(Some(v)) => join(&v, " "),
        Ok(None) => "missing".to_owned(),
        Err(e) => format!("unreadable ({e:#})"),
    };
    let new = join(values, " ");
    if old == new {
        return Ok(());
    }
    match probe.write(name, values) {
        Ok(()) => {
            done.changed += 1;
            writeln!(out, "{name}: {old} -> {new}")
        }
        Err(err) => {
            done.refused += 1;
            writeln!(
                out,
                "{name}: cannot write {} ({err}): {}",
                probe.sysctl_path(name).display(),
                way_around(&err, name, &new)
            )
        }
    }
}

/// Why a sysctl write failed, in terms of what to do about it.
fn way_around(err: &io::Error, name: &str, value: &str) -> String {
    let host = format!("set it on the host: `sysctl -w {name}=\"{value}\"`");
    match err.raw_os_error() {
        Some(libc::EROFS) => format!(
            "/proc/sys is read-only here (a container?); {host}, or for a namespaced net.* setting start the container with `--sysctl {name}=\"{value}\"`"
        ),
        Some(libc::EACCES | libc::EPERM) => {
            // SAFETY: geteuid has no preconditions and cannot fail.
            if unsafe { libc::geteuid() } != 0 {
                "needs root: run `sudo c1m-sysctl apply ...`".to_owned()
            } else {
                format!("root in this namespace may not change it; {host}")
            }
        }
        Some(libc::ENOENT) => "this kernel does not have it".to_owned(),
        Some(libc::EINVAL) => "the kernel rejected the value (out of its allowed range)".to_owned(),
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_say_the_way_around() {
        let rofs = io::Error::from_raw_os_error(libc::EROFS);
        let msg = way_around(&rofs, "net.core.somaxconn", "4096");
        assert!(msg.contains("read-only"), "{msg}");
        assert!(
            msg.contains("--sysctl net.core.somaxconn=\"4096\""),
            "{msg}"
        );
        let inval = io::Error::from_raw_os_error(libc::EINVAL);
        assert!(way_around(&inval, "fs.nr_open", "1").contains("rejected"));
    }
}
