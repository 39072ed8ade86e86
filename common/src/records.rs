//! The CSV schemas: one record type per file kind, written by the tool that
//! measures and read back by `plots` and `experiment` through the same type.
//!
//! Every record starts with `unix_ms` (wall clock, to line files up with each
//! other) and `elapsed_s` (since the tool started, for the x axis). Field
//! order is the column order; the tests pin each header line, so a change to
//! a schema is a visible, deliberate change.

use serde::{Deserialize, Serialize};
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub fn unix_ms_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Microseconds since the Unix epoch (the envelope's clock).
pub fn unix_us_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// One `memlog` sample: memory of the target processes and of the kernel,
/// and the connections they hold.
///
/// The last three columns came later and are `#[serde(default)]`: a CSV
/// written before them still reads (empty counts, no CPU figure).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MemSample {
    /// Wall-clock time of the sample, ms since the Unix epoch.
    pub unix_ms: u64,
    /// Seconds since the tool started.
    pub elapsed_s: f64,
    /// Resident set, summed over the target processes.
    pub rss_kb: u64,
    /// Proportional set (smaps_rollup), summed: shared pages are split
    /// between the processes, so many workers are not double counted.
    pub pss_kb: u64,
    /// Virtual size, summed (icomet's VIRT column).
    pub vsz_kb: u64,
    /// How many target processes were found at this sample.
    pub procs: u32,
    /// The connection count of this sample: the server's own figure
    /// (`server_conns`) when memlog reads one, else the ESTABLISHED TCP
    /// sockets counted on the watched local port (`counted_conns`).
    pub conns: u64,
    /// Kernel slab memory (`Slab` in /proc/meminfo), system-wide.
    pub slab_kb: u64,
    /// Memory charged to TCP (`mem` pages in /proc/net/sockstat), in KB.
    pub tcp_mem_kb: u64,
    /// `MemAvailable` in /proc/meminfo.
    pub mem_available_kb: u64,
    /// The server's `connections` from its `/stats` (`memlog
    /// --server-stats`), empty when not asked or when the request failed.
    #[serde(default)]
    pub server_conns: Option<u64>,
    /// ESTABLISHED TCP sockets counted on the watched port at this sample,
    /// empty when this sample did not count them (`--count-every`): the
    /// exact count that cross-checks `server_conns`.
    #[serde(default)]
    pub counted_conns: Option<u64>,
    /// CPU time (user + system) memlog itself used since the previous
    /// sample (the first: since it started), so the sampler's own share of
    /// the machine is in the file.
    #[serde(default)]
    pub memlog_cpu_ms: f64,
}

/// One `floodtest` reporting interval (figures merged over all workers and
/// processes). Counters are cumulative since the start; rates cover the
/// interval; latency percentiles cover the interval too.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FloodInterval {
    /// Wall-clock time at the end of the interval, ms since the Unix epoch.
    pub unix_ms: u64,
    /// Seconds since the tool started.
    pub elapsed_s: f64,
    /// Connections asked for.
    pub target: u64,
    /// Connections open now.
    pub open: u64,
    /// Connections that completed the HTTP handshake so far.
    pub opened: u64,
    /// Connections closed so far, by either side, after opening.
    pub closed: u64,
    /// Connection attempts that failed so far, all classes.
    pub failed: u64,
    /// Chunks (or SSE events, or reads in raw mode) received so far.
    pub chunks: u64,
    /// Body bytes received so far.
    pub bytes: u64,
    /// Envelopes received so far.
    pub messages: u64,
    /// Messages known lost so far (sequence gaps).
    pub lost: u64,
    /// New connections per second over the interval.
    pub connect_rate: f64,
    /// Envelopes per second over the interval.
    pub message_rate: f64,
    /// Delivery latency over the interval, microseconds (0 with no message).
    pub latency_p50_us: u64,
    /// 99th percentile of the delivery latency, microseconds.
    pub latency_p99_us: u64,
    /// 99.9th percentile of the delivery latency, microseconds.
    pub latency_p999_us: u64,
    /// Largest delivery latency, microseconds.
    pub latency_max_us: u64,
    /// Of `messages`, the friends' events (`[c1e` envelopes) so far. It
    /// came later and is `#[serde(default)]`: a CSV written before it
    /// reads as none.
    #[serde(default)]
    pub events: u64,
}

/// One `msggen` reporting interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MsggenInterval {
    /// Wall-clock time at the end of the interval, ms since the Unix epoch.
    pub unix_ms: u64,
    /// Seconds since the tool started.
    pub elapsed_s: f64,
    /// Messages accepted by the target so far.
    pub sent: u64,
    /// Messages that failed for good so far (after retries), all classes.
    pub failed: u64,
    /// Messages the target reported as reaching no connection so far.
    pub dropped: u64,
    /// Messages per second accepted over the interval.
    pub rate: f64,
    /// Spread of the gaps between consecutive sends over the interval,
    /// microseconds: how evenly the rate is held.
    pub gap_p50_us: u64,
    /// 99th percentile of the gaps between sends, microseconds.
    pub gap_p99_us: u64,
    /// Largest gap between sends, microseconds.
    pub gap_max_us: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_of<T: Serialize>(record: &T) -> String {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.serialize(record).unwrap();
        let text = String::from_utf8(w.into_inner().unwrap()).unwrap();
        text.lines().next().unwrap().to_owned()
    }

    fn round_trip<T: Serialize + for<'de> Deserialize<'de> + PartialEq + std::fmt::Debug>(r: T) {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.serialize(&r).unwrap();
        let bytes = w.into_inner().unwrap();
        let back: T = csv::Reader::from_reader(&bytes[..])
            .deserialize()
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(back, r);
    }

    fn mem() -> MemSample {
        MemSample {
            unix_ms: 1,
            elapsed_s: 0.5,
            rss_kb: 2,
            pss_kb: 3,
            vsz_kb: 4,
            procs: 1,
            conns: 5,
            slab_kb: 6,
            tcp_mem_kb: 7,
            mem_available_kb: 8,
            server_conns: Some(5),
            counted_conns: None,
            memlog_cpu_ms: 0.25,
        }
    }

    #[test]
    fn mem_sample_header_is_pinned() {
        assert_eq!(
            header_of(&mem()),
            "unix_ms,elapsed_s,rss_kb,pss_kb,vsz_kb,procs,conns,slab_kb,tcp_mem_kb,mem_available_kb,\
             server_conns,counted_conns,memlog_cpu_ms"
        );
        round_trip(mem());
        round_trip(MemSample {
            server_conns: None,
            counted_conns: Some(5),
            ..mem()
        });
    }

    #[test]
    fn a_mem_csv_from_before_the_cross_check_still_reads() {
        let old = "unix_ms,elapsed_s,rss_kb,pss_kb,vsz_kb,procs,conns,slab_kb,tcp_mem_kb,mem_available_kb\n\
                   1795317271815,0.0,14468,12346,18212,1,37,423456,0,23502560\n";
        let rows: Vec<MemSample> = csv::Reader::from_reader(old.as_bytes())
            .deserialize()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            rows,
            [MemSample {
                unix_ms: 1_795_317_271_815,
                elapsed_s: 0.0,
                rss_kb: 14468,
                pss_kb: 12346,
                vsz_kb: 18212,
                procs: 1,
                conns: 37,
                slab_kb: 423_456,
                tcp_mem_kb: 0,
                mem_available_kb: 23_502_560,
                server_conns: None,
                counted_conns: None,
                memlog_cpu_ms: 0.0,
            }]
        );
    }

    #[test]
    fn flood_interval_header_is_pinned() {
        let r = FloodInterval {
            unix_ms: 1,
            elapsed_s: 1.0,
            target: 10,
            open: 9,
            opened: 9,
            closed: 0,
            failed: 1,
            chunks: 9,
            bytes: 100,
            messages: 3,
            lost: 0,
            connect_rate: 9.0,
            message_rate: 3.0,
            latency_p50_us: 100,
            latency_p99_us: 200,
            latency_p999_us: 300,
            latency_max_us: 400,
            events: 2,
        };
        assert_eq!(
            header_of(&r),
            "unix_ms,elapsed_s,target,open,opened,closed,failed,chunks,bytes,messages,lost,\
             connect_rate,message_rate,latency_p50_us,latency_p99_us,latency_p999_us,latency_max_us,\
             events"
        );
        round_trip(r);
    }

    #[test]
    fn a_flood_csv_from_before_the_events_column_still_reads() {
        let old = "unix_ms,elapsed_s,target,open,opened,closed,failed,chunks,bytes,messages,lost,\
                   connect_rate,message_rate,latency_p50_us,latency_p99_us,latency_p999_us,latency_max_us\n\
                   1,1.0,10,9,9,0,1,9,100,3,0,9.0,3.0,100,200,300,400\n";
        let rows: Vec<FloodInterval> = csv::Reader::from_reader(old.as_bytes())
            .deserialize()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!((rows[0].messages, rows[0].events), (3, 0));
    }

    #[test]
    fn msggen_interval_header_is_pinned() {
        let r = MsggenInterval {
            unix_ms: 1,
            elapsed_s: 1.0,
            sent: 1000,
            failed: 0,
            dropped: 2,
            rate: 1000.0,
            gap_p50_us: 1000,
            gap_p99_us: 1100,
            gap_max_us: 1500,
        };
        assert_eq!(
            header_of(&r),
            "unix_ms,elapsed_s,sent,failed,dropped,rate,gap_p50_us,gap_p99_us,gap_max_us"
        );
        round_trip(r);
    }

    #[test]
    fn clocks_agree() {
        let ms = unix_ms_now();
        let us = unix_us_now();
        assert!(us / 1000 >= ms && us / 1000 - ms < 1000);
    }
}
