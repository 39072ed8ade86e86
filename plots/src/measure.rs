//! What memlog samples mean: which user-space figure (RSS or PSS), which
//! kernel figure (Slab or TCP pages), and the cost of one connection.
//!
//! Cost per connection is `c1m_common::Costs`: growth over the idle
//! baseline divided by the connections added, the median over the plateau
//! for a run, with half the range the memory moved there as its `±` (the
//! same method, and the same figures, as the experiment report's).
//!
//! Kernel figures are system-wide: on loopback both ends of a connection
//! live on this machine, so kernel growth per connection includes the
//! client's socket too (~9-10 KB for the pair here).

use c1m_common::{kernel_kb, Costs, MemSample};

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
    /// Both Slab and TCP pages, each its own series.
    Both,
    /// Slab plus TCP pages as one series: the kernel figure of the
    /// experiment report.
    Total,
    /// No kernel series.
    None,
}

impl KernelChoice {
    pub fn parts(self) -> &'static [KernelPart] {
        match self {
            Self::Slab => &[KernelPart::Slab],
            Self::TcpMem => &[KernelPart::TcpMem],
            Self::Both => &[KernelPart::Slab, KernelPart::TcpMem],
            Self::Total => &[KernelPart::Total],
            Self::None => &[],
        }
    }
}

/// One kernel memory figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelPart {
    Slab,
    TcpMem,
    /// Slab plus TCP pages.
    Total,
}

impl KernelPart {
    pub fn kb(self, s: &MemSample) -> u64 {
        match self {
            Self::Slab => s.slab_kb,
            Self::TcpMem => s.tcp_mem_kb,
            Self::Total => kernel_kb(s),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Slab => "kernel Slab",
            Self::TcpMem => "kernel TCP mem",
            Self::Total => "kernel Slab + TCP",
        }
    }
}

/// The default `--min-conns` of the per-connection chart: below 5% of the
/// peak (and below 100), a few MB of allocator or page-cache noise divided
/// by few connections swamps the figure.
pub(crate) fn default_min_conns(costs: &Costs, rows: &[MemSample]) -> u64 {
    let peak = rows.iter().map(|s| s.conns).max().unwrap_or(0);
    (peak.saturating_sub(costs.baseline().conns) / 20).max(100)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(conns: u64) -> MemSample {
        MemSample {
            unix_ms: 0,
            elapsed_s: 0.0,
            rss_kb: 1,
            pss_kb: 1,
            vsz_kb: 1,
            procs: 1,
            conns,
            slab_kb: 1,
            tcp_mem_kb: 2,
            mem_available_kb: 0,
            ..MemSample::default()
        }
    }

    #[test]
    fn min_conns_default_is_five_percent_of_peak_at_least_100() {
        let rows = [sample(0), sample(10_000)];
        assert_eq!(default_min_conns(&Costs::new(&rows).unwrap(), &rows), 500);
        let rows = [sample(0), sample(300)];
        assert_eq!(default_min_conns(&Costs::new(&rows).unwrap(), &rows), 100);
    }

    #[test]
    fn the_kernel_total_is_the_reports_sum() {
        assert_eq!(KernelPart::Total.kb(&sample(0)), 3);
        assert_eq!(KernelChoice::Total.parts(), [KernelPart::Total]);
    }
}
