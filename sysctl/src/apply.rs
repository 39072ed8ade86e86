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
pub(crate) struct Applied {
    pub(crate) changed: usize,
    /// Writes the kernel refused.
    pub(crate) refused: usize,
    /// Rows and seed settings left for a person.
    pub(crate) left: usize,
}

/// Applies the rows' fixes, then the preset's settings not already covered.
pub(crate) fn apply(
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
    // The last guard of "only raises": whatever computed `values`, a write
    // that would lower a limit is refused here.
    if let Ok(Some(current)) = probe.ints(name) {
        if lowers(name, &current, values) {
            done.left += 1;
            return writeln!(
                out,
                "{name}: left at {old}: {new} would lower it, and apply only raises limits"
            );
        }
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

/// Whether writing `new` over `current` takes something away: a lower
/// value in any field, except where lower is wider (the first port of
/// `ip_local_port_range`) or the order is not numeric (`tcp_tw_reuse`: 2
/// is loopback only, 1 everywhere; only turning it off takes away).
fn lowers(name: &str, current: &[u64], new: &[u64]) -> bool {
    match (name, current, new) {
        ("net.ipv4.ip_local_port_range", [lo, hi], [new_lo, new_hi]) => new_lo > lo || new_hi < hi,
        ("net.ipv4.tcp_tw_reuse", [cur], [n]) => *n == 0 && *cur != 0,
        _ => current.len() != new.len() || current.iter().zip(new).any(|(c, n)| n < c),
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
    fn only_raising_writes_pass_the_guard() {
        assert!(!lowers("fs.file-max", &[100], &[200]));
        assert!(lowers("fs.file-max", &[300], &[200]));
        assert!(lowers("net.ipv4.tcp_mem", &[10, 20, 30], &[10, 25, 29]));
        assert!(!lowers("net.ipv4.tcp_mem", &[10, 20, 30], &[10, 25, 45]));
        assert!(lowers("net.ipv4.tcp_mem", &[10, 20, 30], &[10, 25]));
        let range = "net.ipv4.ip_local_port_range";
        assert!(!lowers(range, &[32768, 60999], &[1024, 65535]));
        assert!(lowers(range, &[1024, 65535], &[32768, 65535]));
        assert!(lowers(range, &[1024, 65535], &[1024, 60999]));
        assert!(!lowers("net.ipv4.tcp_tw_reuse", &[2], &[1]));
        assert!(lowers("net.ipv4.tcp_tw_reuse", &[1], &[0]));
    }

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
