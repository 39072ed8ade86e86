//! The benchmark behind `benches/sample_cost.sh`: how long one memlog
//! sample takes as ESTABLISHED sockets on one port grow, and the linear
//! extrapolation to a million connections.
//!
//! It opens the connections with python3 holder processes
//! (`benches/hold.py`: SO_REUSEPORT listeners on 127.0.0.1:PORT, clients
//! from 127.0.0.11, .12, ... at most `--per-client` each, so no process
//! nears the 20,000-descriptor cap), then at each step times, as medians:
//! the netlink count alone, the /proc/net/tcp count alone (the fallback),
//! and a whole `Sampler::sample` with `--pgrep` over the listeners.
//! Holders end when this process does (their stdin closes).
//!
//! With `--comet` the listener is a real comet-server, in this process,
//! and the clients subscribe (`GET /test/ID`): then a whole sample that
//! takes the count from the server's `/stats` (`memlog --server-stats`,
//! a sample that does not count) is timed beside one that counts.

use c1m_memlog::Sampler;
use c1m_memlog::SockDiag;
use c1m_memlog::StatsUrl;
use c1m_memlog::Targets;
use clap::Parser;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Times one memlog sample at growing connection counts.
#[derive(Debug, Parser)]
struct Args {
    /// Connection counts to measure at, ascending.
    #[arg(long, value_delimiter = ',', default_value = "0,10000,19000")]
    steps: Vec<u64>,
    /// Samples per measurement (the median is reported).
    #[arg(long, default_value_t = 31)]
    samples: usize,
    /// Port the listeners share (keep to this crate's range, 18300-18399).
    #[arg(long, default_value_t = 18300)]
    port: u16,
    /// Listener processes sharing the port.
    #[arg(long, default_value_t = 3)]
    listeners: usize,
    /// Connections per client process.
    #[arg(long, default_value_t = 5000)]
    per_client: u64,
    /// Listen with an in-process comet-server instead of python3, and time
    /// a sample with `--server-stats` too.
    #[arg(long)]
    comet: bool,
}

const HOLD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/hold.py");

/// Starts a holder and waits for its readiness line.
fn holder(args: &[String]) -> anyhow::Result<Child> {
    let mut child = Command::new("python3")
        .arg(HOLD)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line)?;
    anyhow::ensure!(
        line.starts_with("listening") || line.starts_with("ready"),
        "holder {args:?} said {line:?}"
    );
    Ok(child)
}

/// CPU time of this thread, user and kernel: the dump runs in the kernel
/// on the reading thread, so this is the work of a sample without the time
/// spent waiting for a core on a busy machine.
fn thread_cpu() -> Duration {
    // SAFETY: an all-zero timespec is valid; clock_gettime fills it.
    let mut t: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: `t` is a valid timespec for the call.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// Medians over `n` runs of `f`: wall-clock and CPU milliseconds.
#[derive(Debug, Clone, Copy)]
struct Cost {
    wall_ms: f64,
    cpu_ms: f64,
}

fn cost(n: usize, mut f: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<Cost> {
    let mut wall = Vec::with_capacity(n);
    let mut cpu = Vec::with_capacity(n);
    for _ in 0..n {
        let (t, c) = (Instant::now(), thread_cpu());
        f()?;
        cpu.push((thread_cpu() - c).as_secs_f64() * 1000.0);
        wall.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    Ok(Cost {
        wall_ms: median(wall),
        cpu_ms: median(cpu),
    })
}

/// TCP sockets in use and in TIME_WAIT in this namespace (sockstat's
/// `inuse` and `tw`): the kernel's walk visits both kinds.
fn tcp_sockets() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/net/sockstat").unwrap_or_default();
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("TCP:"))
        .unwrap_or("");
    let words: Vec<&str> = line.split_whitespace().collect();
    let field = |name: &str| {
        let at = words.iter().position(|w| *w == name)?;
        words.get(at + 1)?.parse().ok()
    };
    (field("inuse").unwrap_or(0), field("tw").unwrap_or(0))
}

struct Row {
    conns: u64,
    /// TCP sockets the kernel walks: in use plus TIME_WAIT.
    sockets: u64,
    walk: Cost,
    netlink: Cost,
    procnet: Cost,
    sample: Cost,
    /// A whole sample with `--server-stats` that does not count (`--comet`).
    stats_sample: Option<Cost>,
}

fn cell(c: Cost) -> String {
    format!("{:.2} / {:.2}", c.wall_ms, c.cpu_ms)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.samples > 0, "--samples must be at least 1");
    c1m_common::raise_nofile_to_hard()?;
    let port = args.port.to_string();
    let mut holders = Vec::new();
    let server = if args.comet {
        let listen = SocketAddr::from(([127, 0, 0, 1], args.port));
        let listener = c1m_server::bind(listen, 4096, false)?;
        let admin = c1m_server::bind("127.0.0.1:0".parse()?, 64, false)?;
        Some(c1m_server::start(
            c1m_server::Config::default(),
            listener,
            admin,
        )?)
    } else {
        for _ in 0..args.listeners {
            holders.push(holder(&["listen".into(), port.clone()])?);
        }
        None
    };
    let listeners = if server.is_some() { 1 } else { args.listeners };
    let mut diag = SockDiag::open()?;
    anyhow::ensure!(
        diag.one_walk(),
        "the legacy one-walk request is refused here"
    );
    let mut per_family = SockDiag::open()?.per_family();
    let targets = || match &server {
        Some(_) => Targets::pids(&[std::process::id()]),
        None => Targets::pattern(&format!("hold.py listen {port}")),
    };
    let mut sampler = Sampler::new(targets()?, args.port);
    anyhow::ensure!(
        sampler.uses_netlink(),
        "netlink sock_diag is unavailable here"
    );
    // Counts from the server's /stats, the sockets never counted after the
    // first sample.
    let mut from_stats = match &server {
        Some(server) => {
            let mut sampler = Sampler::new(targets()?, args.port);
            let url = StatsUrl::parse(&format!("http://{}/stats", server.admin_addr()))
                .map_err(anyhow::Error::msg)?;
            sampler.read_server_stats(url, u64::MAX)?;
            sampler.sample()?;
            Some(sampler)
        }
        None => None,
    };

    println!(
        "# memlog sample cost on port {port}, medians of {} samples",
        args.samples
    );
    println!("# each cell: wall ms / CPU ms (this thread, user + kernel)");
    println!(
        "# netlink: memlog's count (one walk, both families); per_family: two v2 dumps; \
         walk_only: netlink on a port nobody uses"
    );
    println!(
        "conns\tinuse\ttw\tnetlink\t\tper_family\twalk_only\tprocnet\t\twhole_sample{}",
        if server.is_some() {
            "\tserver_stats_sample"
        } else {
            ""
        }
    );
    let mut opened = 0u64;
    let mut rows = Vec::new();
    for &step in &args.steps {
        while opened < step {
            let n = (step - opened).min(args.per_client);
            let src = format!("127.0.0.{}", 11 + holders.len());
            let role = if server.is_some() {
                "subscribe"
            } else {
                "connect"
            };
            holders.push(holder(&[
                role.into(),
                port.clone(),
                src,
                n.to_string(),
                (opened + 1).to_string(),
            ])?);
            opened += n;
        }
        if let Some(server) = &server {
            // The kernel has the connections; wait for the server to hold
            // them all (accepted, requests read).
            let deadline = Instant::now() + Duration::from_secs(30);
            while server.stats().connections != step {
                anyhow::ensure!(
                    Instant::now() < deadline,
                    "comet-server holds {} of {step} connections after 30 s",
                    server.stats().connections
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let counted = diag.count_established(args.port)?;
        anyhow::ensure!(
            counted == step,
            "{counted} ESTABLISHED on :{port}, expected {step}"
        );
        let netlink = cost(args.samples, || {
            diag.count_established(args.port)?;
            Ok(())
        })?;
        let two_walks = cost(args.samples, || {
            per_family.count_established(args.port)?;
            Ok(())
        })?;
        // The same dump for a port nobody uses: the kernel still walks every
        // socket, but sends nothing back. What this leaves of netlink_ms is
        // the cost of the replies.
        let walk = cost(args.samples, || {
            diag.count_established(args.port.wrapping_add(1))?;
            Ok(())
        })?;
        let procnet = cost(args.samples.min(7), || {
            c1m_memlog::count_established(args.port)?;
            Ok(())
        })?;
        let sample = cost(args.samples, || {
            let s = sampler.sample()?;
            anyhow::ensure!(s.procs as usize == listeners && s.conns == step);
            Ok(())
        })?;
        let stats_sample = match &mut from_stats {
            Some(sampler) => Some(cost(args.samples, || {
                let s = sampler.sample()?;
                anyhow::ensure!(s.counted_conns.is_none() && s.server_conns == Some(step));
                Ok(())
            })?),
            None => None,
        };
        let (inuse, tw) = tcp_sockets();
        println!(
            "{step}\t{inuse}\t{tw}\t{}\t{}\t{}\t{}\t{}{}",
            cell(netlink),
            cell(two_walks),
            cell(walk),
            cell(procnet),
            cell(sample),
            stats_sample.map_or(String::new(), |c| format!("\t{}", cell(c)))
        );
        rows.push(Row {
            conns: step,
            sockets: inuse + tw,
            walk,
            netlink,
            procnet,
            sample,
            stats_sample,
        });
    }
    if let [.., a, b] = &rows[..] {
        if b.conns > a.conns {
            let at_1m = |ta: f64, tb: f64| {
                tb + (tb - ta) / (b.conns - a.conns) as f64 * (1_000_000 - b.conns) as f64
            };
            let line = |what: &str, ca: Cost, cb: Cost| {
                println!(
                    "#   {what}: {:.0} ms wall, {:.0} ms CPU",
                    at_1m(ca.wall_ms, cb.wall_ms),
                    at_1m(ca.cpu_ms, cb.cpu_ms)
                )
            };
            println!(
                "# extrapolated linearly from {} and {} to 1,000,000 connections \
                 (both ends on this machine: 2,000,000 sockets):",
                a.conns, b.conns
            );
            line("netlink count", a.netlink, b.netlink);
            line("whole sample", a.sample, b.sample);
            line("/proc/net/tcp count", a.procnet, b.procnet);
            if let Some(stats) = b.stats_sample {
                // One server's /stats is the same document at any count:
                // a slope between two noisy sub-ms figures means nothing.
                println!(
                    "#   whole sample with --server-stats, not counting: {:.2} ms wall, {:.2} ms CPU \
                     at {} (one server's /stats does not grow with its connections)",
                    stats.wall_ms, stats.cpu_ms, b.conns
                );
            }
        }
    }
    // The same from per-item costs at the largest step: the walk's CPU per
    // socket visited, and each reply's on top of it. Less sensitive to a
    // noisy small step than the slope between two steps.
    if let Some(r) = rows.last().filter(|r| r.conns > 0 && r.sockets > 0) {
        let walk_ns = r.walk.cpu_ms * 1e6 / r.sockets as f64;
        let reply_ns = (r.netlink.cpu_ms - r.walk.cpu_ms).max(0.0) * 1e6 / r.conns as f64;
        println!(
            "# per item at {}: walk {walk_ns:.0} ns CPU per socket visited ({} sockets), \
             {reply_ns:.0} ns CPU per counted connection",
            r.conns, r.sockets
        );
        println!(
            "#   => netlink count at 1,000,000 connections (2,000,000 sockets): {:.0} ms CPU",
            (walk_ns * 2e6 + reply_ns * 1e6) / 1e6
        );
    }
    drop(holders); // closes their stdin: they exit
    if let Some(server) = server {
        server.shutdown()?;
    }
    Ok(())
}
