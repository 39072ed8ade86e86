//! What one connection costs, from memlog samples: the one method behind
//! every bytes-per-connection figure (the report's table of figures, its
//! memory table, the per-connection chart), so a report cannot show two
//! figures for the same thing.
//!
//! **Growth over the idle baseline.** The baseline is the first sample
//! holding the fewest connections (the idle server before the flood, so
//! its start-up memory is not charged to connections). At a sample, the
//! cost is `(memory - memory at the baseline) / (connections - connections
//! at the baseline)`. The figure of a run is the median of that over the
//! plateau: the samples holding at least [`PLATEAU`] of the peak.
//!
//! **Its uncertainty.** While the connections hold still over the plateau,
//! whatever the memory does is not theirs: half the range it moved there,
//! divided by the connections added, is what the machine's other activity
//! can account for, and is given as `±`. Kernel memory (`Slab`, TCP pages)
//! is system-wide, so on a shared machine this is what says whether the
//! kernel figure means anything; the same `±`, divided by its own added
//! connections, goes with the figure of any single sample (a table row
//! taken during the ramp).
//!
//! Pure arithmetic over [`MemSample`]s; nothing is kept.

use crate::records::MemSample;

/// Share of the peak connections a sample must hold to be on the plateau.
pub const PLATEAU: f64 = 0.99;

/// Kernel memory a connection costs: `Slab` plus TCP buffer pages, KiB.
pub fn kernel_kb(s: &MemSample) -> u64 {
    s.slab_kb.saturating_add(s.tcp_mem_kb)
}

/// A cost per connection and how far the machine's own movement could
/// have moved it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cost {
    /// Bytes per connection.
    pub bytes: f64,
    /// Half the range the memory moved over the plateau, per connection
    /// added; `None` with fewer than three plateau samples to tell.
    pub plus_minus: Option<f64>,
}

/// The samples of one run, read for costs per connection.
#[derive(Debug, Clone)]
pub struct Costs<'a> {
    base: &'a MemSample,
    plateau: Vec<&'a MemSample>,
}

impl<'a> Costs<'a> {
    /// `None` without samples.
    pub fn new(rows: &'a [MemSample]) -> Option<Self> {
        let fewest = rows.iter().map(|s| s.conns).min()?;
        let base = rows.iter().find(|s| s.conns == fewest)?;
        let peak = rows.iter().map(|s| s.conns).max()?;
        let floor = (peak as f64 * PLATEAU).ceil() as u64;
        Some(Self {
            base,
            plateau: rows.iter().filter(|s| s.conns >= floor).collect(),
        })
    }

    /// The baseline sample.
    pub fn baseline(&self) -> &'a MemSample {
        self.base
    }

    /// The samples on the plateau, in order.
    pub fn plateau(&self) -> &[&'a MemSample] {
        &self.plateau
    }

    /// Half the range `kb` moved over the plateau, KiB (`None` with fewer
    /// than three samples there).
    pub fn noise_kb(&self, kb: impl Fn(&MemSample) -> u64) -> Option<f64> {
        if self.plateau.len() < 3 {
            return None;
        }
        let values = self.plateau.iter().map(|s| kb(s));
        let (lo, hi) = values.fold((u64::MAX, 0), |(lo, hi), v| (lo.min(v), hi.max(v)));
        Some((hi - lo) as f64 / 2.0)
    }

    /// The cost at one sample by the figure `kb`, with the plateau's
    /// movement over its own added connections; `None` when it holds no
    /// more connections than the baseline.
    pub fn at(&self, s: &MemSample, kb: impl Fn(&MemSample) -> u64 + Copy) -> Option<Cost> {
        let added = s.conns.checked_sub(self.base.conns).filter(|&n| n > 0)? as f64;
        Some(Cost {
            bytes: (kb(s) as f64 - kb(self.base) as f64) * 1024.0 / added,
            plus_minus: self.noise_kb(kb).map(|kb| kb * 1024.0 / added),
        })
    }

    /// The run's cost by the figure `kb`: the median over the plateau, with
    /// the plateau's movement over the median's added connections.
    pub fn at_peak(&self, kb: impl Fn(&MemSample) -> u64 + Copy) -> Option<Cost> {
        let mut values: Vec<(f64, u64)> = self
            .plateau
            .iter()
            .filter_map(|s| Some((self.at(s, kb)?.bytes, s.conns)))
            .collect();
        if values.is_empty() {
            return None;
        }
        values.sort_by(|a, b| a.0.total_cmp(&b.0));
        let n = values.len();
        let (bytes, conns) = if n % 2 == 1 {
            values[n / 2]
        } else {
            let (a, b) = (values[n / 2 - 1], values[n / 2]);
            ((a.0 + b.0) / 2.0, a.1.min(b.1))
        };
        let added = (conns - self.base.conns) as f64;
        Some(Cost {
            bytes,
            plus_minus: self.noise_kb(kb).map(|kb| kb * 1024.0 / added),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(conns: u64, rss_kb: u64, slab_kb: u64) -> MemSample {
        MemSample {
            unix_ms: 0,
            elapsed_s: 0.0,
            rss_kb,
            pss_kb: rss_kb,
            vsz_kb: rss_kb,
            procs: 1,
            conns,
            slab_kb,
            tcp_mem_kb: 0,
            mem_available_kb: 0,
            ..MemSample::default()
        }
    }

    #[test]
    fn the_cost_is_the_median_growth_over_the_baseline_with_the_plateau_movement() {
        let rows = [
            sample(5, 1_100, 100_000),
            // The baseline: the first with the fewest connections.
            sample(0, 1_000, 100_000),
            sample(4_000, 3_000, 160_000),
            sample(10_000, 6_000, 200_000),
            // Another process takes 100 MiB of slab for one sample.
            sample(10_000, 6_100, 302_400),
            sample(9_950, 6_000, 199_000),
        ];
        let c = Costs::new(&rows).unwrap();
        assert_eq!(c.baseline().rss_kb, 1_000);
        assert_eq!(c.plateau().len(), 3);
        let rss = c.at_peak(|s| s.rss_kb).unwrap();
        // 5,000 KiB over 9,950 (the median of 5,000/10,000, 5,100/10,000
        // and 5,000/9,950), give or take 50 KiB over 9,950.
        assert_eq!(rss.bytes, 5_000.0 * 1024.0 / 9_950.0);
        assert_eq!(rss.plus_minus, Some(50.0 * 1024.0 / 9_950.0));
        let kernel = c.at_peak(kernel_kb).unwrap();
        assert_eq!(kernel.bytes, 100_000.0 * 1024.0 / 10_000.0);
        // The burst shows as the uncertainty: ±51,700 KiB over 10,000.
        assert_eq!(kernel.plus_minus, Some(51_700.0 * 1024.0 / 10_000.0));
        // A ramp sample carries the same movement over its own connections.
        let ramp = c.at(&rows[2], kernel_kb).unwrap();
        assert_eq!(ramp.bytes, 60_000.0 * 1024.0 / 4_000.0);
        assert_eq!(ramp.plus_minus, Some(51_700.0 * 1024.0 / 4_000.0));
        assert_eq!(c.at(&rows[1], kernel_kb), None);
    }

    #[test]
    fn too_few_plateau_samples_give_no_uncertainty() {
        let rows = [sample(0, 1_000, 0), sample(100, 1_100, 0)];
        let c = Costs::new(&rows).unwrap();
        let cost = c.at_peak(|s| s.rss_kb).unwrap();
        assert_eq!((cost.bytes, cost.plus_minus), (1_024.0, None));
        assert!(Costs::new(&[]).is_none());
        let idle = [sample(0, 1, 0), sample(0, 2, 0)];
        assert_eq!(Costs::new(&idle).unwrap().at_peak(|s| s.rss_kb), None);
    }
}
