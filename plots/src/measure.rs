//! What memlog samples mean: which user-space figure (RSS or PSS), which
//! kernel figure (Slab or TCP pages), and the cost of one connection.
//!
//! Cost per connection is growth over a baseline divided by the connections
//! added: `(kb - base.kb) * 1024 / (conns - base.conns)`. The baseline is
//! the first sample holding the fewest connections, usually the idle server
//! before the flood, so the server's own start-up memory is not charged to
//! its connections, and a log started after some connections were open
//! still divides by the connections actually added.
//!
//! Kernel figures are system-wide: on loopback both ends of a connection
//! live on this machine, so kernel growth per connection includes the
//! client's socket too (~9-10 KB for the pair here).

use c1m_common::MemSample;

/// The memory figures a chart of memlog samples draws (flattened into the
/// `memory` and `per-conn` arguments).
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct Figures {
    /// User-space memory figure
    #[arg(long, value_enum, default_value_t = UserSeries::Rss)]
    pub series: UserSeries,
    /// Kernel memory figure (system-wide; the memory chart draws its growth
    /// since the first sample)
    #[arg(long, value_enum, default_value_t = KernelChoice::Slab)]
    pub kernel: KernelChoice,
}

/// Which user-space memory figure to draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum UserSeries {
    /// Resident set size, summed over the server processes (ps/top's RES).
    Rss,
    /// Proportional set size: shared pages split between processes, so
    /// many workers sharing code are not counted many times.
    Pss,
}

impl UserSeries {
    pub fn kb(self, s: &MemSample) -> u64 {
        match self {
            Self::Rss => s.rss_kb,
            Self::Pss => s.pss_kb,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Rss => "RSS",
            Self::Pss => "PSS",
        }
    }
}

/// Which kernel memory figure(s) to draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KernelChoice {
    /// `Slab` from /proc/meminfo: socket structures, dentries, inodes; what
    /// idle connections cost the kernel.
    Slab,
    /// TCP pages from /proc/net/sockstat: buffered data, near zero for
    /// idle connections, grows when clients read slower than messages come.
    TcpMem,
    /// Both Slab and TCP pages.
    Both,
    /// No kernel series.
    None,
}

impl KernelChoice {
    pub fn parts(self) -> &'static [KernelPart] {
        match self {
            Self::Slab => &[KernelPart::Slab],
            Self::TcpMem => &[KernelPart::TcpMem],
            Self::Both => &[KernelPart::Slab, KernelPart::TcpMem],
            Self::None => &[],
        }
    }
}

/// One kernel memory figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelPart {
    Slab,
    TcpMem,
}

impl KernelPart {
    pub fn kb(self, s: &MemSample) -> u64 {
        match self {
            Self::Slab => s.slab_kb,
            Self::TcpMem => s.tcp_mem_kb,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Slab => "kernel Slab",
            Self::TcpMem => "kernel TCP mem",
        }
    }
}

/// The first sample holding the fewest connections (`rows` is not empty:
/// loading refuses empty files).
pub(crate) fn baseline(rows: &[MemSample]) -> (usize, &MemSample) {
    let min = rows.iter().map(|s| s.conns).min().unwrap_or(0);
    rows.iter()
        .enumerate()
        .find(|(_, s)| s.conns == min)
        .expect("rows is not empty")
}

/// Bytes one connection costs at `s` by the figure `kb`, or `None` when
/// `s` holds no more connections than the baseline.
pub(crate) fn per_conn_bytes(
    s: &MemSample,
    base: &MemSample,
    kb: impl Fn(&MemSample) -> u64,
) -> Option<f64> {
    let added = s.conns.checked_sub(base.conns).filter(|&n| n > 0)?;
    Some((kb(s) as f64 - kb(base) as f64) * 1024.0 / added as f64)
}

/// The default `--min-conns` of the per-connection chart: below 5% of the
/// peak (and below 100), a few MB of allocator or page-cache noise divided
/// by few connections swamps the figure.
pub(crate) fn default_min_conns(rows: &[MemSample]) -> u64 {
    let (_, base) = baseline(rows);
    let peak_added = rows.iter().map(|s| s.conns).max().unwrap_or(0) - base.conns;
    (peak_added / 20).max(100)
}

/// The median cost per connection over the samples at 95% of the peak or
/// more: the figure a reader wants ("2.7 KiB per connection at 1M").
pub(crate) fn plateau_per_conn(
    rows: &[MemSample],
    kb: impl Fn(&MemSample) -> u64 + Copy,
) -> Option<(u64, f64)> {
    let (_, base) = baseline(rows);
    let peak = rows.iter().map(|s| s.conns).max()?;
    let mut values: Vec<f64> = rows
        .iter()
        .filter(|s| s.conns as f64 >= peak as f64 * 0.95)
        .filter_map(|s| per_conn_bytes(s, base, kb))
        .collect();
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    Some((peak, values[values.len() / 2]))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample(conns: u64, rss_kb: u64, slab_kb: u64) -> MemSample {
        MemSample {
            unix_ms: 0,
            elapsed_s: 0.0,
            rss_kb,
            pss_kb: rss_kb,
            vsz_kb: rss_kb * 2,
            procs: 1,
            conns,
            slab_kb,
            tcp_mem_kb: 0,
            mem_available_kb: 0,
        }
    }

    #[test]
    fn baseline_is_the_first_sample_with_fewest_conns() {
        let rows = [
            sample(5, 100, 0),
            sample(0, 90, 0),
            sample(0, 80, 0),
            sample(10, 200, 0),
        ];
        assert_eq!(baseline(&rows).0, 1);
    }

    #[test]
    fn per_conn_divides_growth_by_connections_added() {
        let base = sample(1000, 10_000, 500_000);
        let s = sample(11_000, 10_000 + 25_000, 500_000 + 95_000);
        assert_eq!(per_conn_bytes(&s, &base, |s| s.rss_kb), Some(2560.0));
        assert_eq!(per_conn_bytes(&s, &base, |s| s.slab_kb), Some(9728.0));
        assert_eq!(per_conn_bytes(&base, &base, |s| s.rss_kb), None);
    }

    #[test]
    fn min_conns_default_is_five_percent_of_peak_at_least_100() {
        assert_eq!(
            default_min_conns(&[sample(0, 1, 0), sample(10_000, 2, 0)]),
            500
        );
        assert_eq!(
            default_min_conns(&[sample(0, 1, 0), sample(300, 2, 0)]),
            100
        );
    }

    #[test]
    fn plateau_takes_the_median_near_the_peak() {
        let rows = [
            sample(0, 1000, 0),
            sample(500, 1000 + 5000, 0), // below 95% of the peak: ignored
            sample(1000, 1000 + 2000, 0),
            sample(1000, 1000 + 3000, 0),
            sample(990, 1000 + 2970, 0),
        ];
        let (peak, bytes) = plateau_per_conn(&rows, |s| s.rss_kb).unwrap();
        assert_eq!(peak, 1000);
        assert_eq!(bytes, 3072.0);
    }
}
