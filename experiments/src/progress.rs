//! What the runner says while it holds the load: one line every
//! [`EVERY`], so a minute's hold (or a day's) is not a minute of silence.
//! The figures come from the last rows of the CSVs floodtest and msggen
//! write every second, read from the files' ends: the cost does not grow
//! with the run.

use crate::figures::{FLOOD_CSV, MSGGEN_CSV};
use crate::report::micros;
use c1m_common::{thousands, FloodInterval, MsggenInterval};
use serde::de::DeserializeOwned;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How often a line is printed while holding.
pub(crate) const EVERY: Duration = Duration::from_secs(10);

/// The hold's clock and where its figures are.
pub(crate) struct Progress {
    dir: PathBuf,
    since: Instant,
    hold: Duration,
    last: Instant,
}

impl Progress {
    /// A hold of `hold` starting now, its figures in `dir`.
    pub(crate) fn new(dir: &Path, hold: Duration) -> Self {
        let now = Instant::now();
        Self {
            dir: dir.to_path_buf(),
            since: now,
            hold,
            last: now,
        }
    }

    /// The line to print now, when one is due.
    pub(crate) fn due(&mut self) -> Option<String> {
        if self.last.elapsed() < EVERY {
            return None;
        }
        self.last = Instant::now();
        let flood: Option<FloodInterval> = last_row(&self.dir.join(FLOOD_CSV));
        let sent: Option<MsggenInterval> = last_row(&self.dir.join(MSGGEN_CSV));
        Some(line(
            self.since.elapsed(),
            self.hold,
            flood.as_ref(),
            sent.as_ref(),
        ))
    }
}

/// `held 20 s of 1m: 10,000 open, 333,320 sent, 333,320 delivered, 0 lost,
/// p99 1.24 ms`.
fn line(
    held: Duration,
    hold: Duration,
    flood: Option<&FloodInterval>,
    sent: Option<&MsggenInterval>,
) -> String {
    let mut out = format!(
        "held {} s of {}",
        held.as_secs(),
        humantime::format_duration(hold)
    );
    if let Some(f) = flood {
        out += &format!(": {} open", thousands(f.open));
        if let Some(m) = sent {
            out += &format!(", {} sent", thousands(m.sent));
        }
        // floodtest's `messages` counts every envelope: the friends'
        // events apart, as the report counts them.
        out += &format!(
            ", {} delivered",
            thousands(f.messages.saturating_sub(f.events))
        );
        if f.events > 0 {
            out += &format!(", {} event deliveries", thousands(f.events));
        }
        out += &format!(
            ", {} lost, {} chunks",
            thousands(f.lost),
            thousands(f.chunks)
        );
        if f.latency_max_us > 0 {
            out += &format!(", p99 {} (last second)", micros(f.latency_p99_us));
        }
    }
    out
}

/// The last complete row of a CSV, read from the end of the file: its
/// header line and the last 8 KiB.
fn last_row<T: DeserializeOwned>(path: &Path) -> Option<T> {
    let mut file = std::fs::File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    let mut start = Vec::new();
    file.by_ref().take(4096).read_to_end(&mut start).ok()?;
    let head = String::from_utf8_lossy(&start);
    let header = head.lines().next()?.to_owned();
    file.seek(SeekFrom::Start(len.saturating_sub(8192))).ok()?;
    let mut tail = String::new();
    file.read_to_string(&mut tail).ok()?;
    // Only whole lines: the last one may still be being written.
    let complete = &tail[..tail.rfind('\n')?];
    let last = complete.lines().last()?;
    if last == header {
        return None;
    }
    let text = format!("{header}\n{last}\n");
    csv::Reader::from_reader(text.as_bytes())
        .deserialize()
        .next()?
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flood(open: u64, p99: u64) -> FloodInterval {
        FloodInterval {
            unix_ms: 1,
            elapsed_s: 1.0,
            target: 10,
            open,
            opened: open,
            closed: 0,
            failed: 0,
            chunks: 12,
            bytes: 100,
            messages: 7,
            lost: 0,
            connect_rate: 0.0,
            message_rate: 7.0,
            latency_p50_us: p99 / 2,
            latency_p99_us: p99,
            latency_p999_us: p99,
            latency_max_us: p99,
            events: 0,
        }
    }

    #[test]
    fn the_hold_line_says_how_far_it_is_and_what_flows() {
        let f = flood(10_000, 1_240);
        let text = line(
            Duration::from_secs(20),
            Duration::from_secs(60),
            Some(&f),
            None,
        );
        assert_eq!(
            text,
            "held 20 s of 1m: 10,000 open, 7 delivered, 0 lost, 12 chunks, p99 1.24 ms (last second)"
        );
        let with_events = FloodInterval { events: 3, ..f };
        assert_eq!(
            line(
                Duration::from_secs(20),
                Duration::from_secs(60),
                Some(&with_events),
                None
            ),
            "held 20 s of 1m: 10,000 open, 4 delivered, 3 event deliveries, 0 lost, 12 chunks, \
             p99 1.24 ms (last second)"
        );
        assert_eq!(
            line(Duration::from_secs(3), Duration::from_secs(60), None, None),
            "held 3 s of 1m"
        );
    }

    #[test]
    fn the_last_whole_row_is_read_from_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FLOOD_CSV);
        let mut w = csv::Writer::from_path(&path).unwrap();
        for open in 1..=2_000 {
            w.serialize(flood(open, 0)).unwrap();
        }
        w.flush().unwrap();
        drop(w);
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("1,2.0,10,99"); // a row being written
        std::fs::write(&path, text).unwrap();
        let last: FloodInterval = last_row(&path).unwrap();
        assert_eq!(last.open, 2_000);
        assert!(last_row::<FloodInterval>(&dir.path().join("none.csv")).is_none());
    }
}
