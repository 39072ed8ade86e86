//! Pre-flight: what the run needs, and refusing before connecting when the
//! machine cannot give it.
//!
//! A source address that is not on this host is refused here too (it could
//! never be bound). Two ceilings, both from `c1m_common::capacity`: the 4-tuples the source
//! addresses, ports and destinations allow, and the descriptors one process
//! may hold (RLIMIT_NOFILE, here 20,000 and not raisable). The first is fixed
//! by more source IPs or a wider port range; the second by more processes,
//! which `--procs auto` starts. The plan then cuts the work into units (one
//! per worker thread of each process): a contiguous slice of connection
//! indices and, in explicit mode, a disjoint slice of local ports, so no two
//! units ever try the same source pair.

use crate::args::{Args, Procs};
use crate::stream::Expect;
use crate::target::Target;
use crate::tls::Tls;
use anyhow::{bail, Context};
use c1m_common::{conns_per_process, procs_needed, AddressPlan, BindMode, FD_RESERVE};
use c1m_common::{IdRange, PortRange};
use c1m_http::ws::Bounds;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

/// Where the kernel keeps its ephemeral port range.
pub(crate) const EPHEMERAL_RANGE: &str = "/proc/sys/net/ipv4/ip_local_port_range";

/// Reads `net.ipv4.ip_local_port_range`.
pub(crate) fn ephemeral_range() -> anyhow::Result<PortRange> {
    let text = std::fs::read_to_string(EPHEMERAL_RANGE)
        .with_context(|| format!("reading {EPHEMERAL_RANGE}"))?;
    let mut parts = text.split_whitespace();
    let (Some(a), Some(b)) = (parts.next(), parts.next()) else {
        bail!("{EPHEMERAL_RANGE}: expected two ports, found {text:?}");
    };
    format!("{a}-{b}")
        .parse()
        .with_context(|| format!("parsing {EPHEMERAL_RANGE}"))
}

/// One worker's share of the run.
#[derive(Debug, Clone)]
pub(crate) struct Unit {
    pub(crate) target: Arc<Target>,
    /// How streams are read (and the subprotocol a WebSocket asks for).
    pub(crate) expect: Arc<Expect>,
    /// For `https://` and `wss://`: what each session is opened with.
    pub(crate) tls: Option<Arc<Tls>>,
    pub(crate) bind_mode: BindMode,
    pub(crate) source_ips: Vec<Ipv4Addr>,
    /// This unit's slice of `--local-ports` (explicit mode).
    pub(crate) local_ports: PortRange,
    /// Connection indices (0-based over the whole run) this unit opens.
    pub(crate) indices: IdRange,
    pub(crate) ids: IdRange,
    /// New connections per second, this unit's share of `--rate`.
    pub(crate) rate: Option<f64>,
    pub(crate) max_connecting: u64,
    /// Connections between pauses, this unit's share of `--pause-every`.
    pub(crate) pause_step: Option<u64>,
    pub(crate) connect_timeout: Duration,
    /// First backoff, when `--reconnect` is on.
    pub(crate) reconnect: Option<Duration>,
}

/// The whole run, checked.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) args: Args,
    pub(crate) target: Arc<Target>,
    expect: Arc<Expect>,
    tls: Option<Arc<Tls>>,
    pub(crate) bind_mode: BindMode,
    pub(crate) source_ips: Vec<Ipv4Addr>,
    pub(crate) ids: IdRange,
    pub(crate) ephemeral: PortRange,
    pub(crate) fd_limit: u64,
    pub(crate) procs: u64,
    pub(crate) workers: u64,
    pub(crate) capacity: u64,
}

impl Plan {
    /// Checks `args` against the address space and the descriptor limit;
    /// the error says what is short and how to fix it.
    pub(crate) fn new(
        args: &Args,
        fd_limit: u64,
        ephemeral: PortRange,
        cores: u64,
    ) -> anyhow::Result<Plan> {
        let conns = args.conns;
        if conns == 0 {
            bail!("--conns must be at least 1");
        }
        if let Some(min) = args.min_open.filter(|&m| m > conns) {
            bail!("--min-open {min} can never be met with --conns {conns}: give at most {conns}");
        }
        let bind_mode = BindMode::from(args.bind_mode);
        let source_ips: Vec<Ipv4Addr> = args.source_ips.iter().collect();
        let (target, mode) = crate::preset::resolve(args).map_err(anyhow::Error::msg)?;
        let target = Arc::new(
            target
                .with_headers(&args.headers)
                .map_err(anyhow::Error::msg)?,
        );
        let destinations = target.destinations();
        let address_plan = AddressPlan {
            bind_mode,
            source_ips: source_ips.len() as u64,
            local_ports: args.local_ports,
            ephemeral_ports: ephemeral,
            destinations,
        };
        let capacity = address_plan.capacity();
        if capacity < conns {
            bail!("{}", address_refusal(args, &address_plan, conns));
        }
        let per_process = conns_per_process(fd_limit);
        let needed = procs_needed(conns, fd_limit);
        let procs = match (args.child, args.procs) {
            (Some(slot), _) => slot.of,
            (None, Procs::Auto) => needed,
            (None, Procs::Exactly(n)) => n,
        };
        if procs < needed {
            bail!(
                "cannot hold {conns} connections in {procs} process(es): each may hold {per_process} \
                 (RLIMIT_NOFILE {fd_limit} minus {} reserved); fix: --procs {needed} (or --procs auto), \
                 or raise the limit (`ulimit -n`, LimitNOFILE=; above the hard limit needs CAP_SYS_RESOURCE)",
                FD_RESERVE
            );
        }
        let procs = procs.min(conns);
        // No more workers than a process has connections.
        let workers = args
            .workers
            .map_or((cores / procs).max(1), |w| w.max(1) as u64)
            .min(conns.div_ceil(procs));
        // A child's stdin is the parent's command pipe; the parent waits for Enter.
        let no_terminal = !std::io::IsTerminal::is_terminal(&std::io::stdin());
        if args.pause_every.is_some()
            && args.pause_secs.is_none()
            && no_terminal
            && args.child.is_none()
        {
            bail!("--pause-every waits for Enter, but stdin is not a terminal; fix: add --pause-secs N");
        }
        // Checked now (the CA file read, the host a TLS name), not at the
        // first connect.
        let tls = if target.scheme.tls() {
            Some(Arc::new(Tls::new(
                &target.host,
                args.ca.as_deref(),
                args.insecure,
            )?))
        } else {
            None
        };
        let expect = Arc::new(Expect {
            mode,
            websocket: target.scheme.websocket(),
            subprotocol: args.ws_subprotocol.clone(),
            bounds: Bounds {
                frame: args.ws_max_message,
                message: args.ws_max_message,
            },
        });
        let plan = Plan {
            args: args.clone(),
            expect,
            tls,
            target,
            bind_mode,
            source_ips,
            ids: args.ids.unwrap_or(IdRange::new(1, conns)),
            ephemeral,
            fd_limit,
            procs,
            workers,
            capacity,
        };
        plan.check_units(&address_plan)?;
        if bind_mode != BindMode::Kernel {
            let found = crate::addr::first_not_local(plan.source_ips.iter().copied())
                .context("checking the --source-ips addresses")?;
            if let Some(ip) = found {
                bail!(
                    "--source-ips {ip}: this address is not on this host, so no connection can be \
                     bound to it; {}",
                    crate::report::NOT_LOCAL_FIX.replace("<ip>", &ip.to_string())
                );
            }
        }
        Ok(plan)
    }

    /// The slice of connection indices and local ports of process `k`.
    fn process_share(&self, k: u64) -> (IdRange, PortRange) {
        let first = self.args.first_index;
        let indices =
            IdRange::new(first, first + self.args.conns - 1).split(self.procs)[k as usize];
        let ports = match self.bind_mode {
            BindMode::Explicit => self.args.local_ports.split(self.procs)[k as usize],
            _ => self.args.local_ports,
        };
        (indices, ports)
    }

    /// The units (workers) of process `k`.
    pub(crate) fn units(&self, k: u64) -> Vec<Unit> {
        let (indices, ports) = self.process_share(k);
        let index_slices = indices.split(self.workers);
        let n = index_slices.len();
        let port_slices = match self.bind_mode {
            BindMode::Explicit => ports.split(n as u64),
            _ => vec![ports; n],
        };
        let total_units = (self.procs * n as u64) as f64;
        let share = |v: u64| ((v as f64 / total_units).round() as u64).max(1);
        index_slices
            .into_iter()
            .zip(port_slices)
            .map(|(indices, local_ports)| Unit {
                target: self.target.clone(),
                expect: self.expect.clone(),
                tls: self.tls.clone(),
                bind_mode: self.bind_mode,
                source_ips: self.source_ips.clone(),
                local_ports,
                indices,
                ids: self.ids,
                rate: self.args.rate.map(|r| r as f64 / total_units),
                max_connecting: share(self.args.max_connecting),
                pause_step: self.args.pause_every.map(share),
                connect_timeout: self.args.connect_timeout,
                reconnect: self.args.reconnect.then_some(self.args.reconnect_backoff),
            })
            .collect()
    }

    /// In explicit mode each unit owns a slice of the local ports: check
    /// that every slice still holds its share.
    fn check_units(&self, whole: &AddressPlan) -> anyhow::Result<()> {
        if self.bind_mode != BindMode::Explicit {
            return Ok(());
        }
        let slices = self.procs * self.workers;
        if u64::from(self.args.local_ports.len()) < slices {
            bail!(
                "--local-ports {} has fewer ports than the {slices} workers that split it; \
                 fix: a wider --local-ports or fewer --workers/--procs",
                self.args.local_ports
            );
        }
        for k in 0..self.procs {
            for unit in self.units(k) {
                let plan = AddressPlan {
                    local_ports: unit.local_ports,
                    ..*whole
                };
                if plan.capacity() < unit.indices.len() {
                    bail!(
                        "the {slices} workers split --local-ports {} into slices of {} ports, which hold {} \
                         connections each but {} are needed; fix: add source IPs (--source-ips)",
                        self.args.local_ports,
                        unit.local_ports.len(),
                        plan.capacity(),
                        unit.indices.len()
                    );
                }
            }
        }
        Ok(())
    }

    /// One line saying what the run will do.
    pub(crate) fn describe(&self) -> String {
        let source = match self.bind_mode {
            BindMode::Kernel => format!("kernel-chosen source, ports {}", self.ephemeral),
            BindMode::NoPort => format!(
                "{} source IPs, kernel ports {}",
                self.source_ips.len(),
                self.ephemeral
            ),
            BindMode::Explicit => format!(
                "{} source IPs, explicit ports {}",
                self.source_ips.len(),
                self.args.local_ports
            ),
        };
        format!(
            "{} connections to {}:{} ({} destinations) from {source}: capacity {}; {} process(es) x {} worker(s), RLIMIT_NOFILE {}",
            self.args.conns,
            self.target.ip,
            self.target.ports,
            self.target.destinations(),
            self.capacity,
            self.procs,
            self.workers,
            self.fd_limit
        )
    }
}

/// `n` consecutive source addresses from the first one given, as an
/// `--source-ips` range the user can paste (`127.0.1.1-127.0.1.17`); on
/// loopback, moved down if needed so that it stays inside 127.0.0.0/8.
fn source_range(args: &Args, n: u64) -> String {
    let first = args.source_ips.iter().next().map_or(0x7f00_0001, u32::from);
    let more = u32::try_from(n.saturating_sub(1)).unwrap_or(u32::MAX);
    let top = if first >> 24 == 127 {
        0x7fff_fffe
    } else {
        u32::MAX
    };
    let first = first.min(top.saturating_sub(more));
    let last = first.saturating_add(more).min(top);
    format!("{}-{}", Ipv4Addr::from(first), Ipv4Addr::from(last))
}

/// The refusal for a run the addresses cannot hold, with the fix.
fn address_refusal(args: &Args, plan: &AddressPlan, conns: u64) -> String {
    let dests = plan.destinations;
    let sysctl = "sysctl -w net.ipv4.ip_local_port_range=\"1024 65535\"";
    let (arithmetic, fix) = match plan.bind_mode {
        BindMode::Kernel => (
            format!(
                "kernel bind mode: 1 source IP x {} ephemeral ports ({}) x {dests} destination(s) = {}",
                plan.ephemeral_ports.len(),
                plan.ephemeral_ports,
                plan.capacity()
            ),
            {
                let needed = AddressPlan { bind_mode: BindMode::NoPort, source_ips: 1, ..*plan }
                    .source_ips_needed(conns);
                format!(
                    "use --bind-mode noport or explicit with {needed} source IPs (--source-ips {}; any 127.x.y.z works \
                     on loopback), or widen the range: {sysctl}",
                    source_range(args, needed)
                )
            },
        ),
        BindMode::NoPort => (
            format!(
                "noport bind mode: {} source IP(s) x {} ephemeral ports ({}) x {dests} destination(s) = {}",
                plan.source_ips,
                plan.ephemeral_ports.len(),
                plan.ephemeral_ports,
                plan.capacity()
            ),
            format!(
                "give {} source IPs (--source-ips {}), or widen the range: {sysctl}",
                plan.source_ips_needed(conns),
                source_range(args, plan.source_ips_needed(conns))
            ),
        ),
        BindMode::Explicit => (
            format!(
                "explicit bind mode: {} source IP(s) x {} local ports ({}) x {dests} destination(s) = {}",
                plan.source_ips,
                plan.local_ports.len(),
                args.local_ports,
                plan.capacity()
            ),
            format!(
                "give {} source IPs (--source-ips {}), a wider --local-ports, or more destination ports",
                plan.source_ips_needed(conns),
                source_range(args, plan.source_ips_needed(conns))
            ),
        ),
    };
    format!("cannot open {conns} connections: {arithmetic}; fix: {fix}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(line: &str) -> Args {
        Args::try_parse_from(std::iter::once("floodtest").chain(line.split_whitespace())).unwrap()
    }

    const EPHEMERAL: PortRange = PortRange {
        first: 32768,
        last: 60999,
    };

    /// Why `Plan::new` refuses `line` under `fd_limit` (2 CPUs).
    fn refusal(line: &str, fd_limit: u64) -> String {
        Plan::new(&args(line), fd_limit, EPHEMERAL, 2)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn refuses_what_the_addresses_cannot_hold() {
        let err = refusal(
            "--conns 70k --bind-mode explicit --source-ips 127.0.1.1",
            20_000,
        );
        assert!(err.contains("= 64512"), "{err}");
        assert!(
            err.contains("give 2 source IPs (--source-ips 127.0.1.1-127.0.1.2)"),
            "{err}"
        );
        let err = refusal(
            "--conns 1M --bind-mode explicit --source-ips 127.3.0.250",
            2_000_000,
        );
        assert!(
            err.contains("give 16 source IPs (--source-ips 127.3.0.250-127.3.1.9)"),
            "{err}"
        );
        let err = refusal(
            "--conns 1M --bind-mode explicit --source-ips 127.255.255.250",
            2_000_000,
        );
        assert!(
            err.contains("(--source-ips 127.255.255.239-127.255.255.254)"),
            "stays in 127/8: {err}"
        );
        let err = Plan::new(&args("--conns 30k"), 1_000_000, EPHEMERAL, 2)
            .unwrap_err()
            .to_string();
        assert!(err.contains("ip_local_port_range"), "{err}");
    }

    #[test]
    fn refuses_too_few_processes_and_sizes_auto() {
        let a = args("--conns 70k --bind-mode explicit --source-ips 127.0.1.1-127.0.1.3 --procs 2");
        let err = Plan::new(&a, 20_000, EPHEMERAL, 2).unwrap_err().to_string();
        assert!(err.contains("--procs 4"), "{err}");
        let a = args("--conns 70k --bind-mode explicit --source-ips 127.0.1.1-127.0.1.3");
        let plan = Plan::new(&a, 20_000, EPHEMERAL, 2).unwrap();
        assert_eq!((plan.procs, plan.workers), (4, 1));
    }

    #[test]
    fn units_split_indices_and_ports_disjointly() {
        let a = args("--conns 1000 --bind-mode explicit --local-ports 2000-2999 --procs 2 --workers 2 --rate 1000");
        let plan = Plan::new(&a, 20_000, EPHEMERAL, 2).unwrap();
        let units: Vec<Unit> = (0..2).flat_map(|k| plan.units(k)).collect();
        assert_eq!(units.len(), 4);
        assert_eq!(units.iter().map(|u| u.indices.len()).sum::<u64>(), 1000);
        for pair in units.windows(2) {
            assert_eq!(pair[0].indices.last + 1, pair[1].indices.first);
            assert!(pair[0].local_ports.last < pair[1].local_ports.first);
        }
        assert_eq!(units[0].rate, Some(250.0));
        assert_eq!(units[0].max_connecting, 64);
    }
}
