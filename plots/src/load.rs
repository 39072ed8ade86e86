//! Reading c1m CSVs through the record types of `c1m_common::records`, so a
//! schema change there is a compile error here, not a silently empty chart.
//!
//! Loading is generic over [`Record`]; a bad file is reported with its path,
//! line and column, and a file with a header but no rows is an error of its
//! own ([`LoadError::Empty`]) so no chart is drawn from nothing. Files are
//! read whole into memory: a day of memlog at one sample a second is 86,400
//! rows of ~100 bytes, well under 10 MB.

use c1m_common::{FloodInterval, MemSample, MsggenInterval};
use serde::de::DeserializeOwned;
use std::fs::File;
use std::path::{Path, PathBuf};

/// A CSV row type plots can read, and which tool writes it.
pub(crate) trait Record: DeserializeOwned {
    /// The tool that writes this kind of CSV, named in error messages so a
    /// file given to the wrong subcommand is recognised as such.
    const WRITER: &'static str;

    /// Seconds since the writing tool started: every chart's time axis.
    fn elapsed_s(&self) -> f64;

    /// The first floating-point column holding NaN or an infinity, if any:
    /// such a value has no place on an axis (a NaN made the axis search
    /// loop forever), so the file is refused with the line.
    fn non_finite(&self) -> Option<&'static str>;
}

/// Every record type has `elapsed_s`; the writer's name and the
/// floating-point columns differ.
macro_rules! record {
    ($t:ty, $writer:literal, [$($float:ident),+]) => {
        impl Record for $t {
            const WRITER: &'static str = $writer;

            fn elapsed_s(&self) -> f64 {
                self.elapsed_s
            }

            fn non_finite(&self) -> Option<&'static str> {
                [$((stringify!($float), self.$float)),+]
                    .into_iter()
                    .find(|(_, v)| !v.is_finite())
                    .map(|(name, _)| name)
            }
        }
    };
}

record!(MemSample, "memlog", [elapsed_s]);
record!(
    FloodInterval,
    "floodtest",
    [elapsed_s, connect_rate, message_rate]
);
record!(MsggenInterval, "msggen", [elapsed_s, rate]);

/// Why a CSV could not be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LoadError {
    // The io error is in the message, not a `source`: printed with `{:#}`
    // it would otherwise appear twice.
    #[error("{path}: {err}")]
    Open { path: String, err: std::io::Error },
    #[error("{path}:{line}: {detail} (expected a {writer} CSV)")]
    Bad {
        path: String,
        /// 1-based line in the file; the header is line 1.
        line: u64,
        detail: String,
        writer: &'static str,
    },
    #[error("{path}: no samples (the file holds a header at most), nothing to draw")]
    Empty { path: String },
}

/// Every row of one CSV, in file order.
pub(crate) fn load<T: Record>(path: &Path) -> Result<Vec<T>, LoadError> {
    let shown = path.display().to_string();
    let file = File::open(path).map_err(|err| LoadError::Open {
        path: shown.clone(),
        err,
    })?;
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(file);
    let headers = reader.headers().cloned().unwrap_or_default();
    let mut rows = Vec::new();
    for result in reader.deserialize::<T>() {
        let row = result.map_err(|err| bad_row(&shown, &headers, err, T::WRITER))?;
        if let Some(column) = row.non_finite() {
            return Err(LoadError::Bad {
                path: shown,
                // The header is line 1 and c1m's rows are one line each.
                line: rows.len() as u64 + 2,
                detail: format!("column {column}: not a finite number"),
                writer: T::WRITER,
            });
        }
        rows.push(row);
    }
    if rows.is_empty() {
        return Err(LoadError::Empty { path: shown });
    }
    Ok(rows)
}

fn bad_row(
    path: &str,
    headers: &csv::StringRecord,
    err: csv::Error,
    writer: &'static str,
) -> LoadError {
    let line = err.position().map_or(0, |p| p.line());
    let detail = match err.kind() {
        csv::ErrorKind::Deserialize { err, .. } => {
            let column = err
                .field()
                .and_then(|i| headers.get(i as usize))
                .map(|name| format!("column {name}: "))
                .unwrap_or_default();
            format!("{column}{}", err.kind())
        }
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("{len} fields where the header has {expected_len}"),
        csv::ErrorKind::Utf8 { .. } => "not valid UTF-8".to_owned(),
        csv::ErrorKind::Io(io) => io.to_string(),
        _ => err.to_string(),
    };
    LoadError::Bad {
        path: path.to_owned(),
        line,
        detail,
        writer,
    }
}

/// One CSV to draw, with the name its series carry in the legend.
#[derive(Debug, Clone)]
pub struct Input<T> {
    pub label: String,
    pub path: PathBuf,
    pub rows: Vec<T>,
}

/// Loads every file and names it: the n-th `--label`, or else the file's
/// stem (`runs/ours.csv` is "ours"; when two stems collide, the path
/// without its extension, so two `mem.csv` stay apart).
pub(crate) fn load_inputs<T: Record>(
    files: &[PathBuf],
    labels: &[String],
) -> anyhow::Result<Vec<Input<T>>> {
    if labels.len() > files.len() {
        anyhow::bail!(
            "{} --label given for {} CSV file(s): give at most one label per file, in file order",
            labels.len(),
            files.len()
        );
    }
    let names = default_labels(files);
    files
        .iter()
        .enumerate()
        .map(|(i, path)| {
            Ok(Input {
                label: labels.get(i).cloned().unwrap_or_else(|| names[i].clone()),
                path: path.clone(),
                rows: load(path)?,
            })
        })
        .collect()
}

/// The last sample's time over all inputs: where a time axis ends.
pub(crate) fn last_elapsed_s<T: Record>(inputs: &[Input<T>]) -> f64 {
    inputs
        .iter()
        .flat_map(|i| i.rows.iter().map(Record::elapsed_s))
        .fold(0.0, f64::max)
}

fn default_labels(files: &[PathBuf]) -> Vec<String> {
    let stem = |p: &PathBuf| {
        p.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| p.display().to_string())
    };
    let stems: Vec<String> = files.iter().map(stem).collect();
    stems
        .iter()
        .zip(files)
        .map(|(s, path)| {
            if stems.iter().filter(|other| *other == s).count() > 1 {
                path.with_extension("").display().to_string()
            } else {
                s.clone()
            }
        })
        .collect()
}

/// A c10k run as memlog saw it here, for the chart tests: RSS from ~3.4
/// to ~5.3 MiB (190 B a connection, give or take a page), Slab growing
/// ~90 MiB, and TCP pages that held more at the idle sample than later
/// (a per-connection figure below zero); 10,000 connections by 2,000 a
/// second, then held.
#[cfg(test)]
pub(crate) fn c10k_memlog() -> Input<MemSample> {
    let rows = (0..70u64)
        .map(|i| {
            let conns = (i * 2_000).min(10_000);
            MemSample {
                unix_ms: i * 1000,
                elapsed_s: i as f64,
                rss_kb: 3_400 + conns * 190 / 1024 + i % 3,
                pss_kb: 1_600 + conns * 190 / 1024,
                vsz_kb: 203_000,
                procs: 1,
                conns,
                slab_kb: 300_000 + conns * 9,
                tcp_mem_kb: 1_000 - conns / 20,
                mem_available_kb: 1,
                ..MemSample::default()
            }
        })
        .collect();
    Input {
        label: "c10k".to_owned(),
        path: "mem.csv".into(),
        rows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_default_to_stems_and_stay_distinct() {
        let files: Vec<PathBuf> = ["a/ours.csv", "b/mem.csv", "c/mem.csv"]
            .iter()
            .map(PathBuf::from)
            .collect();
        assert_eq!(default_labels(&files), ["ours", "b/mem", "c/mem"]);
    }
}
