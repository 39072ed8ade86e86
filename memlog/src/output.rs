//! Where samples go: the CSV file (flushed every sample, so a killed run
//! keeps what it measured), Part 2's `mochimem.log` line on stdout with
//! `--format seed`, and a live line on a terminal.

use anyhow::Context;
use c1m_common::MemSample;
use std::ffi::CStr;
use std::fs::File;
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};

/// The CSV file: a header, then one `MemSample` row per sample.
pub(crate) struct CsvOut {
    writer: csv::Writer<File>,
    path: PathBuf,
}

impl CsvOut {
    /// Creates (truncates) the file now, so an unwritable path fails
    /// before the first sample.
    pub(crate) fn create(path: &Path) -> anyhow::Result<Self> {
        let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        Ok(CsvOut {
            writer: csv::Writer::from_writer(file),
            path: path.to_owned(),
        })
    }

    /// Appends one row and flushes it to the file.
    pub(crate) fn write(&mut self, sample: &MemSample) -> anyhow::Result<()> {
        self.writer
            .serialize(sample)
            .and_then(|()| self.writer.flush().map_err(csv::Error::from))
            .with_context(|| format!("writing {}", self.path.display()))
    }
}

/// Part 2's `mochimem.log` line: `date`, `date +%s`, RSS in KB and the
/// connection count, tab-separated, the date as `date(1)` prints it in the
/// C locale (`Mon Oct 20 16:57:24 BST 2008`), in local time.
pub(crate) fn seed_line(sample: &MemSample) -> String {
    let epoch = (sample.unix_ms / 1000) as i64;
    format!(
        "{}\t{}\t{}\t{}",
        format_date(&local_time(epoch)),
        epoch,
        sample.rss_kb,
        sample.conns
    )
}

/// A wall-clock time broken down as `date` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CivilTime {
    year: i32,
    /// 0 = January.
    month: usize,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    /// 0 = Sunday.
    weekday: usize,
    /// Time zone abbreviation (`UTC`, `BST`).
    zone: String,
}

/// `epoch` in the local time zone (the TZ environment variable, else
/// /etc/localtime), as `date` reads it.
fn local_time(epoch: i64) -> CivilTime {
    let t: libc::time_t = epoch;
    // SAFETY: an all-zero tm is valid; localtime_r fills it from `t`, both
    // valid for the call. tm_zone then points at a static string owned by
    // libc (or is null, which we check).
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&t, &mut tm);
        let zone = if tm.tm_zone.is_null() {
            String::from("UTC")
        } else {
            CStr::from_ptr(tm.tm_zone).to_string_lossy().into_owned()
        };
        CivilTime {
            year: tm.tm_year + 1900,
            month: tm.tm_mon.clamp(0, 11) as usize,
            day: tm.tm_mday as u32,
            hour: tm.tm_hour as u32,
            minute: tm.tm_min as u32,
            second: tm.tm_sec as u32,
            weekday: tm.tm_wday.clamp(0, 6) as usize,
            zone,
        }
    }
}

/// `%a %b %e %H:%M:%S %Z %Y`: the default format of `date` (day of month
/// padded with a space, as `%e` does).
fn format_date(t: &CivilTime) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{} {} {:>2} {:02}:{:02}:{:02} {} {}",
        DAYS[t.weekday], MONTHS[t.month], t.day, t.hour, t.minute, t.second, t.zone, t.year
    )
}

/// One status line on stderr, rewritten in place every sample, when stderr
/// is a terminal; nothing otherwise (logs and pipes get no escape codes).
pub(crate) struct LiveLine {
    enabled: bool,
    shown: bool,
}

impl LiveLine {
    pub(crate) fn new() -> Self {
        LiveLine {
            enabled: io::stderr().is_terminal(),
            shown: false,
        }
    }

    /// Replaces the line with this sample's figures.
    pub(crate) fn show(&mut self, sample: &MemSample) {
        if self.enabled {
            let _ = write!(io::stderr(), "\r\x1b[K{}", live_text(sample));
            self.shown = true;
        }
    }

    /// Erases the line, so a line printed to the same terminal on stdout
    /// does not land in the middle of it.
    pub(crate) fn erase(&mut self) {
        if self.shown {
            let _ = write!(io::stderr(), "\r\x1b[K");
            self.shown = false;
        }
    }

    /// Leaves the last figures on screen and moves to a new line.
    pub(crate) fn finish(&mut self) {
        if self.shown {
            let _ = writeln!(io::stderr());
            self.shown = false;
        }
    }
}

impl Default for LiveLine {
    fn default() -> Self {
        Self::new()
    }
}

/// `2 procs  RSS 90.9 MB  PSS 88.1 MB  conns 10001  9.0 KB/conn (PSS)  kernel: slab 210.3 MB  tcp 12.0 MB`
fn live_text(s: &MemSample) -> String {
    let per_conn = if s.conns > 0 {
        format!("{:.1} KB/conn (PSS)", s.pss_kb as f64 / s.conns as f64)
    } else {
        String::from("- KB/conn")
    };
    format!(
        "{} procs  RSS {}  PSS {}  conns {}  {}  kernel: slab {}  tcp {}",
        s.procs,
        mb(s.rss_kb),
        mb(s.pss_kb),
        s.conns,
        per_conn,
        mb(s.slab_kb),
        mb(s.tcp_mem_kb)
    )
}

fn mb(kb: u64) -> String {
    format!("{:.1} MB", kb as f64 / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(unix_ms: u64, rss_kb: u64, conns: u64) -> MemSample {
        MemSample {
            unix_ms,
            elapsed_s: 0.0,
            rss_kb,
            pss_kb: rss_kb - 1000,
            vsz_kb: rss_kb * 3,
            procs: 1,
            conns,
            slab_kb: 200_000,
            tcp_mem_kb: 1040,
            mem_available_kb: 20_000_000,
            ..MemSample::default()
        }
    }

    #[test]
    fn seed_line_has_part_2s_form() {
        // The first line of mochimem.log in Part 2.
        let t = CivilTime {
            year: 2008,
            month: 9,
            day: 20,
            hour: 16,
            minute: 57,
            second: 24,
            weekday: 1,
            zone: "BST".into(),
        };
        let line = format!("{}\t{}\t{}\t{}", format_date(&t), 1224518244, 40388, 1);
        assert_eq!(line, "Mon Oct 20 16:57:24 BST 2008\t1224518244\t40388\t1");
        let early = CivilTime { day: 2, ..t };
        assert_eq!(format_date(&early), "Mon Oct  2 16:57:24 BST 2008");
    }

    #[test]
    fn seed_line_date_matches_the_date_command() {
        let epoch = 1_224_518_244u64;
        let line = seed_line(&sample(epoch * 1000 + 999, 40388, 1));
        let out = std::process::Command::new("date")
            .arg(format!("--date=@{epoch}"))
            .env("LC_ALL", "C")
            .output()
            .expect("running date");
        let date = String::from_utf8(out.stdout).unwrap();
        assert_eq!(line, format!("{}\t{epoch}\t40388\t1", date.trim_end()));
    }

    #[test]
    fn live_text_reads_at_a_glance() {
        let text = live_text(&sample(0, 91_000, 10_001));
        assert_eq!(
            text,
            "1 procs  RSS 88.9 MB  PSS 87.9 MB  conns 10001  9.0 KB/conn (PSS)  kernel: slab 195.3 MB  tcp 1.0 MB"
        );
        assert!(live_text(&sample(0, 5000, 0)).contains("- KB/conn"));
    }

    #[test]
    fn csv_rows_are_on_disk_after_each_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mem.csv");
        let mut out = CsvOut::create(&path).unwrap();
        out.write(&sample(1, 5000, 3)).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text.lines().count(),
            2,
            "header and one row, unflushed: {text:?}"
        );
        assert!(text.starts_with("unix_ms,elapsed_s,rss_kb,pss_kb,"));
        let err = CsvOut::create(Path::new("/nonexistent-dir/mem.csv"))
            .err()
            .unwrap();
        assert!(format!("{err:#}").starts_with("creating /nonexistent-dir/mem.csv: "));
    }
}
