//! Writes the fixture CSVs of `plots/tests/fixtures/`, through the same
//! record types memlog and floodtest write, so the fixtures follow the
//! schema. Deterministic (a fixed-seed generator), so a re-run reproduces
//! the committed files byte for byte.
//!
//! `cargo run -p c1m-plots --example fixtures -- plots/tests/fixtures`
//!
//! The scenarios are the seeds' experiments, with figures shaped like
//! theirs:
//! - `c1m-10k.csv`: Part 2's run (10 new connections/s up to 10K, then
//!   1,000 msg/s) against a server costing ~2.3 KiB per connection, two
//!   worker processes, sampled every 30 s for two hours; the clients
//!   disconnect at the end.
//! - `mochiweb-10k.csv`: the same run against Part 2's mochiweb before
//!   hibernate (40 MB idle, ~250 MB at 10K, a manual GC dropping ~100 MB),
//!   sampled every 60 s like `mochimem.log`.
//! - `icomet-1m.csv`: icomet's benchmark, 1M connections pausing every
//!   100K, RES growing ~2.7 KiB per connection from 24 MiB.
//! - `c1m-flood-10k.csv`, `mochiweb-flood-10k.csv`: the floodtest side of
//!   the two 10K runs, every 20 s.
//! - `c1m-msggen-10k.csv`: msggen's side of the c1m run, started 10 s
//!   before the messages flow, every 10 s (its own clock starts then).

use c1m_common::{FloodInterval, MemSample, MsggenInterval};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// A small fixed-seed generator (SplitMix64): fixtures must not change
/// between runs, and this needs no dependency.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `-amplitude..amplitude`.
    fn jitter(&mut self, amplitude: f64) -> f64 {
        (self.next() * 2.0 - 1.0) * amplitude
    }
}

const START_MS: u64 = 1_763_769_600_000; // 2025-11-22 00:00 UTC
const IDLE_S: f64 = 120.0;
const RAMP_PER_S: f64 = 10.0;
const TARGET: f64 = 10_000.0;
const MESSAGES_FROM_S: f64 = 20.0 * 60.0;
const CLOSE_FROM_S: f64 = 110.0 * 60.0;
const END_S: f64 = 120.0 * 60.0;

/// Connections open at `t` in the 10K scenario: idle, 10/s up to 10K,
/// held, then closed over a minute.
fn conns_10k(t: f64) -> f64 {
    if t < IDLE_S {
        0.0
    } else if t < CLOSE_FROM_S {
        ((t - IDLE_S) * RAMP_PER_S).min(TARGET)
    } else {
        (TARGET * (1.0 - (t - CLOSE_FROM_S) / 60.0)).max(0.0)
    }
}

/// Peak connections so far: memory freed on close mostly stays with the
/// allocator, so user-space memory follows the peak, not the current count.
fn peak_10k(t: f64) -> f64 {
    conns_10k(t.min(CLOSE_FROM_S))
}

fn mem_10k(step_s: f64, noise: &mut Noise, server: &Server) -> Vec<MemSample> {
    let mut rows = vec![];
    let mut t = 0.0;
    while t <= END_S {
        let conns = conns_10k(t).round();
        let messages = t >= MESSAGES_FROM_S && conns > 0.0;
        let rss = server.rss_kb(t, peak_10k(t), messages) + noise.jitter(server.noise_kb);
        let slab = 412_000.0 + conns * 9.4 + noise.jitter(300.0);
        let tcp_mem = 96.0
            + if messages {
                conns * 0.05 + noise.jitter(24.0).abs()
            } else {
                0.0
            };
        rows.push(MemSample {
            unix_ms: START_MS + (t * 1000.0) as u64,
            elapsed_s: t,
            rss_kb: rss as u64,
            pss_kb: (rss - server.shared_kb) as u64,
            vsz_kb: (server.vsz_base_kb + rss * 1.08) as u64,
            procs: server.procs,
            conns: conns as u64,
            slab_kb: slab as u64,
            tcp_mem_kb: tcp_mem as u64,
            mem_available_kb: (22_900_000.0 - rss - (slab - 412_000.0)) as u64,
            ..MemSample::default()
        });
        t += step_s;
    }
    rows
}

/// How a server's resident memory grows with its connections.
struct Server {
    idle_kb: f64,
    per_conn_kb: f64,
    /// Extra held while messages flow (buffers, mailbox queues).
    messaging_kb: f64,
    /// A manual garbage collection at this time frees this much.
    gc: Option<(f64, f64)>,
    noise_kb: f64,
    shared_kb: f64,
    vsz_base_kb: f64,
    procs: u32,
}

impl Server {
    fn rss_kb(&self, t: f64, peak: f64, messages: bool) -> f64 {
        let mut kb = self.idle_kb + peak * self.per_conn_kb;
        if messages {
            kb += self.messaging_kb;
        }
        if let Some((at, freed)) = self.gc {
            if t >= at {
                // Garbage builds up again after the collection, slowly.
                kb -= freed * (1.0 - ((t - at) / (6.0 * 3600.0)).min(1.0));
            }
        }
        kb
    }
}

fn flood_10k(step_s: f64, noise: &mut Noise, p50_ms: f64, p99_ms: f64) -> Vec<FloodInterval> {
    let mut rows = vec![];
    let (mut opened, mut closed, mut messages, mut chunks, mut bytes) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut prev_open = 0.0;
    let mut t = step_s;
    while t <= END_S {
        let open = conns_10k(t).round();
        let new = (open - prev_open).max(0.0);
        opened += new as u64;
        closed += (prev_open - open).max(0.0) as u64;
        let rate = if t >= MESSAGES_FROM_S && open > 0.0 {
            1000.0 + noise.jitter(25.0)
        } else {
            0.0
        };
        let received = (rate * step_s) as u64;
        messages += received;
        chunks += received + (open / 10.0) as u64 * step_s as u64 / 10; // heartbeats
        bytes += received * 64;
        // A slow spell every half hour, as a GC or a busy neighbour makes.
        let spike = if (t / 60.0) as u64 % 30 == 17 {
            4.0
        } else {
            1.0
        };
        let p50 = (p50_ms * (1.0 + noise.jitter(0.15))) * 1000.0;
        let p99 = (p99_ms * spike * (1.0 + noise.jitter(0.3))) * 1000.0;
        let has = received > 0;
        rows.push(FloodInterval {
            unix_ms: START_MS + (t * 1000.0) as u64,
            elapsed_s: t,
            target: TARGET as u64,
            open: open as u64,
            opened,
            closed,
            failed: if t > 600.0 { 3 } else { 0 },
            chunks,
            bytes,
            messages,
            lost: 0,
            connect_rate: new / step_s,
            message_rate: received as f64 / step_s,
            latency_p50_us: if has { p50 as u64 } else { 0 },
            latency_p99_us: if has { p99 as u64 } else { 0 },
            latency_p999_us: if has { (p99 * 2.2) as u64 } else { 0 },
            latency_max_us: if has { (p99 * 5.0) as u64 } else { 0 },
            events: 0,
        });
        prev_open = open;
        t += step_s;
    }
    rows
}

/// icomet's benchmark: 5,000 new connections/s, a 60 s pause at every
/// 100K, sampled every 10 s; RES from 24 MiB by ~2.76 KiB per connection
/// (its table: 24m idle, 2720m at 1M).
fn icomet_1m(noise: &mut Noise) -> Vec<MemSample> {
    let mut rows = vec![];
    let (mut t, mut conns) = (0.0, 0.0);
    let mut pause_left = 30.0; // idle before the benchmark starts
    while conns < 1_000_000.0 || pause_left > 0.0 {
        let rss = 24.0 * 1024.0 + conns * 2.761 + noise.jitter(200.0).abs();
        let slab = 380_000.0 + conns * 9.5 + noise.jitter(400.0);
        rows.push(MemSample {
            unix_ms: START_MS + (t * 1000.0) as u64,
            elapsed_s: t,
            rss_kb: rss as u64,
            pss_kb: (rss - 900.0) as u64,
            vsz_kb: (rss + 15.0 * 1024.0) as u64,
            procs: 1,
            conns: conns as u64,
            slab_kb: slab as u64,
            tcp_mem_kb: 48,
            mem_available_kb: (22_900_000.0 - rss - conns * 9.5) as u64,
            ..MemSample::default()
        });
        t += 10.0;
        if pause_left > 0.0 {
            pause_left -= 10.0;
        } else {
            let next = conns + 50_000.0;
            conns = next.min(1_000_000.0);
            if conns as u64 % 100_000 == 0 {
                pause_left = 60.0;
            }
        }
    }
    rows
}

/// msggen at 1,000 msg/s from `MESSAGES_FROM_S` until the clients leave.
fn msggen_10k(noise: &mut Noise) -> Vec<MsggenInterval> {
    let started_s = MESSAGES_FROM_S - 10.0;
    let mut rows = vec![];
    let mut sent = 0u64;
    let mut t = 10.0;
    while started_s + t <= CLOSE_FROM_S {
        let rate = if started_s + t > MESSAGES_FROM_S {
            1000.0 + noise.jitter(3.0)
        } else {
            0.0
        };
        sent += (rate * 10.0) as u64;
        rows.push(MsggenInterval {
            unix_ms: START_MS + ((started_s + t) * 1000.0) as u64,
            elapsed_s: t,
            sent,
            failed: 0,
            dropped: 0,
            rate,
            gap_p50_us: 1000,
            gap_p99_us: (1100.0 + noise.jitter(80.0)) as u64,
            gap_max_us: (1900.0 + noise.jitter(400.0)) as u64,
        });
        t += 10.0;
    }
    rows
}

fn write<T: Serialize>(dir: &Path, name: &str, rows: &[T]) -> anyhow::Result<()> {
    let path = dir.join(name);
    let mut w = csv::Writer::from_path(&path)?;
    for r in rows {
        w.serialize(r)?;
    }
    w.flush()?;
    println!("{}: {} rows", path.display(), rows.len());
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "plots/tests/fixtures".into()),
    );
    std::fs::create_dir_all(&dir)?;
    let mut noise = Noise(6);
    let c1m = Server {
        idle_kb: 5_900.0,
        per_conn_kb: 2.3,
        messaging_kb: 1_800.0,
        gc: None,
        noise_kb: 150.0,
        shared_kb: 1_400.0,
        vsz_base_kb: 2.0 * 17_500.0,
        procs: 2,
    };
    let mochiweb = Server {
        idle_kb: 40_156.0,
        per_conn_kb: 20.5,
        messaging_kb: 16_000.0,
        gc: Some((25.0 * 60.0, 96_000.0)),
        noise_kb: 2_500.0,
        shared_kb: 0.0,
        vsz_base_kb: 120_000.0,
        procs: 1,
    };
    write(&dir, "c1m-10k.csv", &mem_10k(30.0, &mut noise, &c1m))?;
    write(
        &dir,
        "mochiweb-10k.csv",
        &mem_10k(60.0, &mut noise, &mochiweb),
    )?;
    write(&dir, "icomet-1m.csv", &icomet_1m(&mut noise))?;
    write(
        &dir,
        "c1m-flood-10k.csv",
        &flood_10k(20.0, &mut noise, 0.35, 1.9),
    )?;
    write(
        &dir,
        "mochiweb-flood-10k.csv",
        &flood_10k(20.0, &mut noise, 2.1, 14.0),
    )?;
    write(&dir, "c1m-msggen-10k.csv", &msggen_10k(&mut noise))?;
    Ok(())
}
