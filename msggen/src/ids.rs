//! Which id each message goes to, and which sender owns an id.
//!
//! Ids are handled as offsets from the first id of `--ids` (`u32`, so a
//! queue entry costs 4 bytes and per-id state is a flat `Vec`).
//!
//! - `uniform`: every id equally likely.
//! - `zipf:S`: the id at offset `r - 1` has weight `1 / r^S` (rank 1 is the
//!   first id), sampled by `rand_distr::Zipf` (rejection-inversion, O(1) per
//!   sample, no table). With S = 1.1 over 10^6 ids the first id gets ~10% of
//!   the messages and most ids get none in a short run: "a few active users
//!   and many idle ones".
//!
//! Ownership: sender `k` of `S` owns the offsets with `offset % S == k`, and
//! keeps their sequence numbers at index `offset / S` of its own vector, so
//! per-id state (a `u64` sequence number) for 10^6 ids is 8 MB in all,
//! whatever the number of senders.

use rand::Rng;
use rand_distr::{Distribution, Zipf};
use std::fmt;
use std::str::FromStr;

/// The id distribution named on the command line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Dist {
    /// Every id equally likely.
    Uniform,
    /// Zipf with this exponent over the ranks 1..=n.
    Zipf(f64),
}

impl FromStr for Dist {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        const FORM: &str = "expected uniform or zipf:S with S > 0, such as zipf:1.1";
        let s = s.trim();
        if s.eq_ignore_ascii_case("uniform") {
            return Ok(Dist::Uniform);
        }
        let exponent = s
            .strip_prefix("zipf:")
            .and_then(|e| e.parse::<f64>().ok())
            .filter(|e| e.is_finite() && *e > 0.0)
            .ok_or_else(|| format!("{s:?}: {FORM}"))?;
        Ok(Dist::Zipf(exponent))
    }
}

impl fmt::Display for Dist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dist::Uniform => f.write_str("uniform"),
            Dist::Zipf(s) => write!(f, "zipf:{s}"),
        }
    }
}

/// Draws id offsets in `0..n` from a [`Dist`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum IdSampler {
    Uniform { n: u32 },
    Zipf { n: u32, zipf: Zipf<f64> },
}

impl IdSampler {
    /// A sampler over `n` ids (`1 <= n <= u32::MAX`).
    pub(crate) fn new(dist: Dist, n: u32) -> Self {
        assert!(n >= 1, "an id sampler needs at least one id");
        match dist {
            Dist::Uniform => IdSampler::Uniform { n },
            Dist::Zipf(s) => IdSampler::Zipf {
                n,
                // Cannot fail: n >= 1 and s > 0 were checked when parsing.
                zipf: Zipf::new(f64::from(n), s).expect("valid zipf parameters"),
            },
        }
    }

    /// One id offset.
    pub(crate) fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> u32 {
        match *self {
            IdSampler::Uniform { n } => rng.random_range(0..n),
            // The sample is an integer-valued rank in 1..=n; the clamp guards
            // the float edge.
            IdSampler::Zipf { n, zipf } => (zipf.sample(rng) as u32).clamp(1, n) - 1,
        }
    }
}

/// The sender that owns `offset`, of `senders`.
pub(crate) fn owner(offset: u32, senders: u32) -> usize {
    (offset % senders) as usize
}

/// Where sender `owner(offset)` keeps `offset`'s state.
pub(crate) fn local_index(offset: u32, senders: u32) -> usize {
    (offset / senders) as usize
}

/// How many ids sender `k` of `senders` owns out of `n`.
pub(crate) fn owned_count(n: u32, senders: u32, k: u32) -> usize {
    (n / senders + u32::from(k < n % senders)) as usize
}

/// The generalised harmonic number H(n, s) = sum of 1/r^s for r in 1..=n:
/// the rank-1 share of Zipf(n, s) is 1/H(n, s) (what the tests check the
/// sampler against).
#[cfg(test)]
fn harmonic(n: u32, s: f64) -> f64 {
    (1..=n).map(|r| (f64::from(r)).powf(-s)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn parses_distributions() {
        assert_eq!("uniform".parse(), Ok(Dist::Uniform));
        assert_eq!("zipf:1.1".parse(), Ok(Dist::Zipf(1.1)));
        for bad in ["zipf", "zipf:", "zipf:0", "zipf:-1", "zipf:x", "pareto"] {
            assert!(bad.parse::<Dist>().is_err(), "{bad}");
        }
        assert_eq!(Dist::Zipf(1.1).to_string(), "zipf:1.1");
    }

    fn counts(sampler: IdSampler, n: u32, draws: u32) -> Vec<u32> {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut counts = vec![0u32; n as usize];
        for _ in 0..draws {
            counts[sampler.sample(&mut rng) as usize] += 1;
        }
        counts
    }

    /// Rank shares match 1/(r^s H(n, s)) within a few standard errors.
    #[test]
    fn zipf_rank_shares_match_theory() {
        let (n, s, draws) = (10_000u32, 1.1, 400_000u32);
        let c = counts(IdSampler::new(Dist::Zipf(s), n), n, draws);
        let h = harmonic(n, s);
        for rank in [1u32, 2, 10, 100] {
            let p = f64::from(rank).powf(-s) / h;
            let expected = p * f64::from(draws);
            let sigma = (expected * (1.0 - p)).sqrt();
            let got = f64::from(c[rank as usize - 1]);
            assert!(
                (got - expected).abs() < 5.0 * sigma,
                "rank {rank}: {got} messages, expected {expected:.0} +- {sigma:.0}"
            );
        }
        // Long tail: the top 1% of ids get 65% of the messages, and ~200
        // ids get none even though there are 40 messages per id.
        let top: u32 = c[..100].iter().sum();
        let top_theory: f64 = (1..=100).map(|r| f64::from(r).powf(-s)).sum::<f64>() / h;
        assert!((f64::from(top) / f64::from(draws) - top_theory).abs() < 0.01);
        assert!(c.iter().filter(|&&x| x == 0).count() > 100);
    }

    #[test]
    fn uniform_covers_every_id_evenly() {
        let (n, draws) = (100u32, 200_000u32);
        let c = counts(IdSampler::new(Dist::Uniform, n), n, draws);
        let expected = f64::from(draws / n);
        for (i, &x) in c.iter().enumerate() {
            assert!(
                (f64::from(x) - expected).abs() < 5.0 * expected.sqrt(),
                "id {i}: {x}"
            );
        }
    }

    #[test]
    fn a_single_id_is_always_drawn() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for dist in [Dist::Uniform, Dist::Zipf(1.1)] {
            let s = IdSampler::new(dist, 1);
            assert!((0..100).all(|_| s.sample(&mut rng) == 0));
        }
    }

    #[test]
    fn ownership_partitions_the_ids() {
        let (n, senders) = (10u32, 3u32);
        let mut seen = vec![Vec::new(); senders as usize];
        for off in 0..n {
            seen[owner(off, senders)].push(local_index(off, senders));
        }
        for k in 0..senders {
            let idx = &seen[k as usize];
            assert_eq!(idx.len(), owned_count(n, senders, k));
            assert_eq!(*idx, (0..idx.len()).collect::<Vec<_>>());
        }
    }
}
