//! Turning rows into what a person or a program reads: an aligned table
//! with a summary line, or JSON with the same fields (the experiment runner
//! embeds it in its report).

use crate::limits::{Fix, PlanFix, Row, Status};
use crate::presets::{PresetReport, Verdict};
use c1m_common::MemoryEstimate;
use serde::Serialize;
use std::fmt::Write;

/// `1234567` as `1,234,567`.
pub(crate) fn count(n: u64) -> String {
    c1m_common::thousands(n)
}

/// Bytes in binary units with one decimal: `9.6 GiB`, `128.0 KiB`.
pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        }
    }
}

/// Columns padded to their widest cell; the last column is left ragged.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let last = header.len() - 1;
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i == last {
                line += cell;
            } else {
                let _ = write!(line, "{cell:<w$}  ", w = widths[i]);
            }
        }
        out += line.trim_end();
        out.push('\n');
    }
    out
}

/// The counts of each status, as the summary line and JSON carry them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub ok: usize,
    pub warn: usize,
    pub fail: usize,
}

impl Summary {
    pub fn of(rows: &[Row]) -> Self {
        let mut s = Summary::default();
        for r in rows {
            match r.status {
                Status::Ok => s.ok += 1,
                Status::Warn => s.warn += 1,
                Status::Fail => s.fail += 1,
            }
        }
        s
    }
}

/// The memory estimate with its sums, for JSON readers.
#[derive(Debug, Clone, Serialize)]
pub struct MemoryReport {
    #[serde(flatten)]
    pub estimate: MemoryEstimate,
    pub total_bytes: u64,
    pub per_connection_bytes: u64,
}

impl From<MemoryEstimate> for MemoryReport {
    fn from(estimate: MemoryEstimate) -> Self {
        Self {
            estimate,
            total_bytes: estimate.total(),
            per_connection_bytes: estimate.per_connection(),
        }
    }
}

/// Everything `check` found.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// The plan as command-line words; `None` for a preset-only check.
    pub plan: Option<String>,
    pub rows: Vec<Row>,
    pub summary: Summary,
    /// The command lines to run next, each with its lead-in (`next (as
    /// root): c1m-sysctl apply ...`, `then: floodtest ...`).
    pub next: Vec<String>,
    pub memory: Option<MemoryReport>,
    pub preset: Option<PresetReport>,
}

impl CheckReport {
    /// The human form: the limits table, its summary, then the preset.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        if let Some(plan) = &self.plan {
            let _ = writeln!(out, "c1m-sysctl check {plan}\n");
            let cells: Vec<Vec<String>> = self
                .rows
                .iter()
                .map(|r| {
                    vec![
                        r.name.clone(),
                        r.current.clone(),
                        r.needed.clone(),
                        r.status.label().to_owned(),
                        r.why.clone(),
                    ]
                })
                .collect();
            out += &table(&["LIMIT", "CURRENT", "NEEDED", "STATUS", "WHY"], &cells);
            let s = self.summary;
            let _ = writeln!(out, "\n{} FAIL, {} WARN, {} OK", s.fail, s.warn, s.ok);
            let fixes: Vec<String> = self
                .rows
                .iter()
                .filter(|r| r.status == Status::Fail)
                .filter_map(|r| {
                    let (tool, how) = match (&r.fix, &r.plan_fix) {
                        (Fix::Set(v), _) => (
                            "kernel, as root",
                            format!("`c1m-sysctl apply` sets {}", crate::probe::join(v, " ")),
                        ),
                        (Fix::Manual(m), Some(PlanFix::Addresses { .. })) => {
                            ("floodtest and check flags", m.clone())
                        }
                        (Fix::Manual(m), Some(PlanFix::Procs(_))) => {
                            ("floodtest --procs, server processes", m.clone())
                        }
                        (Fix::Manual(m), None) => ("by hand", m.clone()),
                        _ => return None,
                    };
                    Some(format!("  {} [{tool}]: {how}", r.name))
                })
                .collect();
            if !fixes.is_empty() {
                out += "to fix:\n";
                for f in fixes {
                    out += &f;
                    out.push('\n');
                }
            }
            for line in &self.next {
                out += line;
                out.push('\n');
            }
        }
        if let Some(preset) = &self.preset {
            if self.plan.is_some() {
                out.push('\n');
            }
            out += &preset_text(preset);
        }
        out
    }
}

fn preset_text(p: &PresetReport) -> String {
    let mut out = format!("preset {}: {}\n\n", p.name, p.source);
    let cells: Vec<Vec<String>> = p
        .rows
        .iter()
        .map(|r| {
            vec![
                r.name.clone(),
                r.seed.clone(),
                r.current.clone(),
                r.verdict.label().to_owned(),
                r.why.clone(),
            ]
        })
        .collect();
    out += &table(&["SETTING", "SEED", "CURRENT", "VERDICT", "WHY"], &cells);
    let flagged: Vec<&str> = p
        .rows
        .iter()
        .filter(|r| {
            matches!(
                r.verdict,
                Verdict::Obsolete | Verdict::Harmful | Verdict::Lowers
            )
        })
        .map(|r| r.name.as_str())
        .collect();
    if !flagged.is_empty() {
        let _ = writeln!(
            out,
            "\nobsolete, harmful or lowering on this kernel, left out by apply: {}",
            flagged.join(", ")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_bytes_read_well() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_000), "1,000");
        assert_eq!(count(1_048_576), "1,048,576");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(131_072), "128.0 KiB");
        assert_eq!(bytes(9_600_000_000), "8.9 GiB");
    }

    #[test]
    fn table_pads_all_but_the_last_column() {
        let t = table(
            &["A", "BB", "WHY"],
            &[vec!["xyz".into(), "1".into(), "because".into()]],
        );
        assert_eq!(t, "A    BB  WHY\nxyz  1   because\n");
    }
}
