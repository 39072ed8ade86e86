//! `msggen graph`: a deterministic social graph whose degree distribution
//! follows a power law, for the server's subscription manager ("typical
//! social network data: friends"). The file format is in `FRIENDS.md`.
//!
//! Model: Chung-Lu. User `i` (0-based rank) gets an expected degree
//! `w_i = c * (i + 1)^(-1/(gamma - 1))`, capped at `--max-friends` (default
//! `sqrt(users * avg)`, which keeps every pair's probability at most 1), with
//! `c` chosen so the weights sum to `users * avg-friends`. Each pair (i, j)
//! is a friendship with probability `min(1, w_i w_j / sum w)`, so user `i`'s
//! expected degree is about `w_i` and degrees follow P(d) ~ d^-gamma.
//!
//! Generation is Miller & Hagberg's O(users + friendships) algorithm
//! ("Efficient generation of networks with given expected degrees", 2011):
//! with the weights in decreasing order, for each user it skips ahead over
//! candidate friends geometrically instead of trying every pair. Friendships
//! come out in (user, friend) order with user < friend and are written as
//! they come: memory is the weights and a degree count, 12 bytes a user
//! (16 while the weights are scaled; 16 MB at 10^6 users), whatever the
//! number of friendships.
//!
//! Determinism: the random stream is ChaCha8 seeded with `--seed`, an
//! algorithm fixed by its specification, so the same seed and flags give the
//! same bytes on every platform.

use anyhow::Context;
use c1m_common::{mem_available, parse_count, push_friendship, FRIENDS_HEADER};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

/// Friends graph options.
#[derive(Debug, Clone, clap::Args)]
pub struct GraphArgs {
    /// Users, numbered 1..=users (`1M`); user 1 has the most friends.
    #[arg(long, value_parser = parse_count)]
    pub users: u64,
    /// Mean number of friends per user.
    #[arg(long)]
    pub avg_friends: f64,
    /// Seed: the same seed and options give the same file, byte for byte.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Output file, `-` for standard output.
    #[arg(long)]
    pub out: PathBuf,
    /// Exponent gamma of the degree distribution P(d) ~ d^-gamma (above 2;
    /// social networks measure 2 to 3).
    #[arg(long, default_value_t = 2.5)]
    pub exponent: f64,
    /// Most expected friends of any user (default sqrt(users * avg-friends)).
    #[arg(long)]
    pub max_friends: Option<f64>,
}

/// What was written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct GraphStats {
    pub(crate) users: u64,
    pub(crate) friendships: u64,
    pub(crate) mean_degree: f64,
    pub(crate) median_degree: u32,
    pub(crate) p99_degree: u32,
    pub(crate) max_degree: u32,
    /// Users without a friend.
    pub(crate) isolated: u64,
}

/// Checks the options (with the fix when they cannot work).
fn check(args: &GraphArgs) -> anyhow::Result<()> {
    if args.users < 2 || args.users > u64::from(u32::MAX) {
        anyhow::bail!(
            "--users {} is out of range: use 2 to {}",
            args.users,
            u32::MAX
        );
    }
    if !(args.avg_friends > 0.0 && args.avg_friends < (args.users - 1) as f64 / 2.0) {
        anyhow::bail!(
            "--avg-friends {} must be above 0 and below half the other users ({}) for a power law to fit",
            args.avg_friends,
            (args.users - 1) / 2
        );
    }
    if !(args.exponent > 2.0 && args.exponent.is_finite()) {
        anyhow::bail!(
            "--exponent {} must be above 2 (the mean degree is infinite otherwise)",
            args.exponent
        );
    }
    let needed = args.users.saturating_mul(BYTES_PER_USER);
    if let Some(available) = mem_available() {
        if needed > available {
            anyhow::bail!(
                "--users {} needs about {} MB of memory ({BYTES_PER_USER} bytes a user) and {} MB is available: use fewer --users",
                args.users,
                needed / 1_000_000,
                available / 1_000_000
            );
        }
    }
    if let Some(m) = args.max_friends {
        if m.is_nan() || m < args.avg_friends {
            anyhow::bail!(
                "--max-friends {m} must be at least --avg-friends {}",
                args.avg_friends
            );
        }
    }
    Ok(())
}

/// Peak memory of a generation per user: two `f64` vectors while the
/// weights are scaled, then the weights and a `u32` degree.
const BYTES_PER_USER: u64 = 16;

/// Runs `msggen graph`.
pub(crate) fn run(args: &GraphArgs) -> anyhow::Result<ExitCode> {
    check(args)?;
    let stats = if args.out.as_os_str() == "-" {
        generate(args, io::stdout().lock()).context("writing the graph to standard output")?
    } else {
        let file =
            File::create(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
        generate(args, file).with_context(|| format!("writing {}", args.out.display()))?
    };
    eprintln!(
        "msggen graph: {} users, {} friendships, degree mean {:.2} median {} p99 {} max {}, {} without friends",
        stats.users,
        stats.friendships,
        stats.mean_degree,
        stats.median_degree,
        stats.p99_degree,
        stats.max_degree,
        stats.isolated
    );
    Ok(ExitCode::SUCCESS)
}

/// The expected degrees, in decreasing order, summing to `users * avg`.
pub(crate) fn weights(users: u32, avg: f64, exponent: f64, max_friends: Option<f64>) -> Vec<f64> {
    let n = users as usize;
    let total = f64::from(users) * avg;
    let cap = max_friends
        .unwrap_or_else(|| total.sqrt())
        .min(f64::from(users - 1));
    let alpha = 1.0 / (exponent - 1.0);
    let raw: Vec<f64> = (1..=n).map(|r| (r as f64).powf(-alpha)).collect();
    let sum_at = |c: f64| raw.iter().map(|&x| (c * x).min(cap)).sum::<f64>();
    // sum_at grows with c; bisect for the scale that gives the total.
    let (mut lo, mut hi) = (0.0, 1.0);
    while sum_at(hi) < total {
        hi *= 2.0;
        if hi > 1e300 {
            break; // cap * users < total: every weight is at the cap.
        }
    }
    for _ in 0..100 {
        let mid = 0.5 * (lo + hi);
        if sum_at(mid) < total {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    raw.iter().map(|&x| (hi * x).min(cap)).collect()
}

/// Writes the graph to `out` and returns its statistics.
pub(crate) fn generate<W: Write>(args: &GraphArgs, out: W) -> io::Result<GraphStats> {
    let users = args.users as u32;
    let w = weights(users, args.avg_friends, args.exponent, args.max_friends);
    let total: f64 = w.iter().sum();
    let n = w.len();
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let mut degree = vec![0u32; n];
    let mut out = BufWriter::with_capacity(1 << 20, out);
    writeln!(out, "{FRIENDS_HEADER}")?;
    let mut friendships = 0u64;
    let mut line = Vec::with_capacity(32);
    for u in 0..n.saturating_sub(1) {
        let mut v = u + 1;
        let mut p = (w[u] * w[v] / total).min(1.0);
        while v < n && p > 0.0 {
            if p < 1.0 {
                // Skip the candidates that fail, all at once: the number of
                // failures before a success at probability p is geometric.
                let r: f64 = 1.0 - rng.random::<f64>(); // in (0, 1]
                let skip = (r.ln() / (1.0 - p).ln()).floor();
                v = v.saturating_add(if skip.is_finite() { skip as usize } else { n });
            }
            if v < n {
                let q = (w[u] * w[v] / total).min(1.0);
                // Accept with q/p: v's own probability, not the bound used
                // to skip (weights decrease, so q <= p).
                if rng.random::<f64>() < q / p {
                    line.clear();
                    push_friendship(&mut line, u as u64 + 1, v as u64 + 1);
                    out.write_all(&line)?;
                    degree[u] += 1;
                    degree[v] += 1;
                    friendships += 1;
                }
                p = q;
                v += 1;
            }
        }
    }
    out.flush()?;
    Ok(degree_stats(degree, friendships))
}

fn degree_stats(mut degree: Vec<u32>, friendships: u64) -> GraphStats {
    let users = degree.len() as u64;
    let isolated = degree.iter().filter(|&&d| d == 0).count() as u64;
    degree.sort_unstable();
    let at = |q: f64| degree[((degree.len() - 1) as f64 * q).round() as usize];
    GraphStats {
        users,
        friendships,
        mean_degree: 2.0 * friendships as f64 / users as f64,
        median_degree: at(0.5),
        p99_degree: at(0.99),
        max_degree: *degree.last().unwrap_or(&0),
        isolated,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(users: u64, avg: f64, seed: u64) -> GraphArgs {
        GraphArgs {
            users,
            avg_friends: avg,
            seed,
            out: PathBuf::from("-"),
            exponent: 2.5,
            max_friends: None,
        }
    }

    fn graph(a: &GraphArgs) -> (Vec<u8>, GraphStats) {
        let mut bytes = Vec::new();
        let stats = generate(a, &mut bytes).unwrap();
        (bytes, stats)
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let (a, _) = graph(&args(5_000, 10.0, 1));
        let (b, _) = graph(&args(5_000, 10.0, 1));
        let (c, _) = graph(&args(5_000, 10.0, 2));
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn mean_degree_is_close_and_the_tail_is_heavy() {
        for (users, avg) in [(20_000, 20.0), (50_000, 50.0)] {
            let (_, s) = graph(&args(users, avg, 7));
            assert!(
                (s.mean_degree / avg - 1.0).abs() < 0.03,
                "mean {} for --avg-friends {avg}",
                s.mean_degree
            );
            // Power law: the median user has fewer friends than the mean, a
            // few have many times more.
            assert!(f64::from(s.median_degree) < avg, "{s:?}");
            assert!(f64::from(s.max_degree) > 10.0 * avg, "{s:?}");
        }
    }

    #[test]
    fn the_shared_reader_accepts_what_is_written() {
        let (bytes, s) = graph(&args(3_000, 8.0, 3));
        let limit = c1m_common::IdLimit {
            max: 3_000,
            why: "--users",
        };
        // The reader checks every rule of FRIENDS.md: header, user < friend,
        // sorted without repeats, ids within 1..=users.
        let mut smallest = u64::MAX;
        let file =
            c1m_common::read_friends(&bytes[..], limit, |u, _| smallest = smallest.min(u)).unwrap();
        assert_eq!(file.friendships, s.friendships);
        assert_eq!(smallest, 1);
        assert!(bytes.starts_with(FRIENDS_HEADER.as_bytes()));
    }

    #[test]
    fn weights_sum_to_the_total_under_the_cap() {
        let w = weights(10_000, 20.0, 2.5, None);
        let sum: f64 = w.iter().sum();
        assert!((sum / 200_000.0 - 1.0).abs() < 1e-6);
        assert!(w.windows(2).all(|p| p[0] >= p[1]));
        assert!(w[0] <= 200_000f64.sqrt() + 1e-9);
    }

    #[test]
    fn refuses_impossible_options() {
        assert!(check(&args(1, 1.0, 1)).is_err());
        assert!(check(&args(100, 60.0, 1)).is_err());
        let mut a = args(100, 5.0, 1);
        a.exponent = 1.5;
        assert!(check(&a).is_err());
        assert!(check(&args(100, 5.0, 1)).is_ok());
    }

    /// One user more than MemAvailable holds is refused before anything
    /// is allocated (on a machine with under 69 GB free, which --users
    /// cannot exceed otherwise).
    #[test]
    fn refuses_a_graph_bigger_than_memory() {
        let available = mem_available().expect("/proc/meminfo");
        let users = available / BYTES_PER_USER + 1;
        if users > u64::from(u32::MAX) {
            return; // more memory free than the largest graph needs
        }
        let err = check(&args(users, 5.0, 1)).unwrap_err().to_string();
        assert!(err.contains("use fewer --users"), "{err}");
    }
}
