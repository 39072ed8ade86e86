//! The loopback floor: how late a message arrives when nothing but the
//! kernel stands between writer and reader. One loopback connection, a
//! writer pacing 16-byte records (its clock's microseconds) at `--rate`,
//! and a reader blocked in `read` that takes each record's age as it
//! arrives. No delivery through a server can beat these figures on the same
//! machine at the same moment, so `server/benches/latency.sh` prints them
//! beside the servers'.
//!
//! ```text
//! floor --rate 16666 --secs 10
//! FLOOR rate=16666 secs=10 received=166660 p50=21 p99=64 p999=180 max=950
//! ```
//! (microseconds; the reader is a thread of this process, as floodtest's
//! workers are threads of theirs.)

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use c1m_common::unix_us_now;
use hdrhistogram::Histogram;

#[path = "support/arg.rs"]
mod arg;
use arg::arg;

fn main() -> std::io::Result<()> {
    let rate = arg("--rate", 16_666).clamp(1, 1_000_000);
    let secs = arg("--secs", 10).clamp(1, 600);
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let mut writer = TcpStream::connect(listener.local_addr()?)?;
    let (mut reader, _) = listener.accept()?;
    // Each record is written alone, as a server writes one message.
    writer.set_nodelay(true)?;

    let total = rate * secs;
    let read = std::thread::spawn(move || -> std::io::Result<Histogram<u64>> {
        let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds");
        let mut record = [0u8; 16];
        for _ in 0..total {
            reader.read_exact(&mut record)?;
            let sent = u64::from_le_bytes(record[..8].try_into().expect("8 bytes"));
            hist.saturating_record(unix_us_now().saturating_sub(sent).max(1));
        }
        Ok(hist)
    });

    let start = Instant::now();
    let gap = Duration::from_secs(1) / u32::try_from(rate).expect("rate is clamped");
    for n in 0..total {
        let due = start + gap * u32::try_from(n).unwrap_or(u32::MAX);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let mut record = [0u8; 16];
        record[..8].copy_from_slice(&unix_us_now().to_le_bytes());
        writer.write_all(&record)?;
    }
    let hist = read.join().expect("reader thread")?;
    println!(
        "FLOOR rate={rate} secs={secs} received={} p50={} p99={} p999={} max={}",
        hist.len(),
        hist.value_at_quantile(0.5),
        hist.value_at_quantile(0.99),
        hist.value_at_quantile(0.999),
        hist.max()
    );
    Ok(())
}
