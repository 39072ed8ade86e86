//! `c1m-sysctl`: before a run, tells the user which kernel or process limit
//! will stop it and how to lift it; then applies the fix where it may, or
//! prints an `/etc/sysctl.d/` file.
//!
//! - [`plan`]: the run being planned (connections, role, processes, addresses)
//! - [`probe`]: reading `/proc/sys`, `/proc/meminfo` and this process's limits
//!   under a root directory (`/`, or a fake tree in tests)
//! - [`limits`]: the table of limits, each judged against the plan
//! - [`presets`]: the seeds' settings and what each means on a current kernel
//! - [`report`]: the table and JSON; [`next`]: the commands to run next;
//!   [`print`]: the sysctl.d file; [`apply`]: writing the fixes
//!
//! Costs nothing to run: a few dozen small file reads.

mod apply;
mod limits;
mod next;
mod plan;
mod presets;
mod print;
mod probe;
mod report;

use anyhow::{bail, Context, Result};
use c1m_common::{parse_count, Ipv4List, PortRange};
use c1m_common::{BindMode, Role};
use clap::{Parser, Subcommand, ValueEnum};
use limits::Status;
use plan::Plan;
use presets::Preset;
use probe::Probe;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Checks, applies and prints the kernel and process limits a connection test needs
#[derive(Debug, Parser)]
#[command(name = "c1m-sysctl", version)]
pub struct Args {
    /// What to do with the limits.
    #[command(subcommand)]
    pub command: Command,

    /// Directory holding the proc tree read instead of / (for tests)
    #[arg(
        long,
        global = true,
        hide = true,
        env = "C1M_SYSCTL_ROOT",
        default_value = "/"
    )]
    pub root: PathBuf,
}

/// c1m-sysctl's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print a table of every limit against the plan: current, needed, OK/WARN/FAIL, why.
    /// Exit 0 when nothing fails, 1 when something does, 2 on error.
    Check {
        /// The run to check the limits against.
        #[command(flatten)]
        plan: PlanArgs,
        /// Print the rows as JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Write the sysctls the plan needs under /proc/sys (root; only raises values),
    /// printing `name: old -> new` for each, and say what it cannot change and why
    Apply {
        /// The run to check the limits against.
        #[command(flatten)]
        plan: PlanArgs,
    },
    /// Print an /etc/sysctl.d/ file for the plan, a comment on each line
    Print {
        /// The run to check the limits against.
        #[command(flatten)]
        plan: PlanArgs,
    },
}

/// Which ends of the connections run on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    /// The accepting side only
    Server,
    /// The connecting side only
    Client,
    /// Both, over loopback (two sockets per connection)
    Both,
}

/// How the client picks its source address and port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BindModeArg {
    /// The client binds each (source IP, port) of --local-ports itself
    Explicit,
    /// bind(ip, 0) with IP_BIND_ADDRESS_NO_PORT: the kernel picks the port per 4-tuple
    Noport,
    /// No bind: one source IP, kernel-chosen ports
    Kernel,
}

/// Which seed's settings to show, judge and apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PresetArg {
    /// mochiweb Part 1's sysctl.conf and `ulimit -n 999999`
    Part1,
    /// mochiweb Part 3's sysctl.conf for 1M connections
    Part3,
    /// the icomet C1000K server config
    Icomet,
}

/// The run to check for; shared by check, apply and print.
#[derive(Debug, Clone, clap::Args)]
pub struct PlanArgs {
    /// Connections held at once: 10000, 10k, 1M
    #[arg(long, value_parser = parse_count, required_unless_present = "preset")]
    pub conns: Option<u64>,

    /// Which ends of the connections run on this machine
    #[arg(long, value_enum, default_value_t = RoleArg::Both)]
    pub role: RoleArg,

    /// Processes per role sharing the connections (floodtest --procs, server processes):
    /// a number, or auto for as many as the hard RLIMIT_NOFILE requires
    #[arg(long, default_value = "auto", value_parser = parse_procs)]
    pub procs: Procs,

    /// Client source addresses: 127.0.0.1, 127.0.0.2-127.0.0.18, 127.1.0.0/24
    #[arg(long, default_value = "127.0.0.1")]
    pub source_ips: Ipv4List,

    /// Distinct destination (IP, port) pairs the client connects to
    #[arg(long, value_parser = parse_count, default_value = "1")]
    pub destinations: u64,

    /// How the client picks source address and port
    #[arg(long, value_enum, default_value_t = BindModeArg::Kernel)]
    pub bind_mode: BindModeArg,

    /// Ports an explicit-bind client walks through
    #[arg(long, default_value = "1024-65535")]
    pub local_ports: PortRange,

    /// User-space bytes per connection in the estimate: one figure for both roles,
    /// or SERVER,CLIENT (e.g. 2048,512)
    #[arg(long, value_parser = parse_user_bytes, default_value = "1024")]
    pub user_bytes_per_conn: (u64, u64),

    /// Also judge a seed's settings on this kernel (obsolete, harmful, still useful)
    #[arg(long, value_enum)]
    pub preset: Option<PresetArg>,
}

/// `--procs auto|N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Procs {
    /// As many as the descriptor limit requires.
    Auto,
    /// Exactly this many.
    Count(u64),
}

fn parse_procs(s: &str) -> Result<Procs, String> {
    match s {
        "auto" => Ok(Procs::Auto),
        n => match parse_count(n) {
            Ok(0) => Err("0: expected auto or a number of processes (1 or more)".into()),
            Ok(n) => Ok(Procs::Count(n)),
            Err(e) => Err(format!("{e}, or auto")),
        },
    }
}

fn parse_user_bytes(s: &str) -> Result<(u64, u64), String> {
    // 1 GB a connection is already absurd; the bound keeps conns x bytes
    // inside a u64.
    const MAX: u64 = 1_000_000_000;
    let one = |v: &str| match parse_count(v).map_err(|e| e.to_string())? {
        n if n > MAX => Err(format!(
            "{n} bytes per connection is above the {MAX} this estimate takes"
        )),
        n => Ok(n),
    };
    match s.split_once(',') {
        Some((server, client)) => Ok((one(server)?, one(client)?)),
        None => one(s).map(|b| (b, b)),
    }
}

/// The most connections a plan may hold: a thousand times the million the
/// project is about, and small enough that no figure derived from it
/// (sockets, bytes, pages) overflows.
pub const MAX_CONNS: u64 = 1_000_000_000;

impl PlanArgs {
    /// The plan, or `None` for a preset-only run.
    pub fn plan(&self) -> Result<Option<Plan>> {
        let Some(conns) = self.conns else {
            return Ok(None);
        };
        if conns == 0 {
            bail!("--conns 0: give the connections the run holds at once, such as 10k or 1M");
        }
        if conns > MAX_CONNS {
            bail!(
                "--conns {conns}: above {MAX_CONNS} no machine holds them (each costs ~5 KB of kernel memory); split the run over machines"
            );
        }
        if self.destinations == 0 {
            bail!("--destinations 0: must be at least 1");
        }
        let role = match self.role {
            RoleArg::Server => Role::Server,
            RoleArg::Client => Role::Client,
            RoleArg::Both => Role::Both,
        };
        let mut plan = Plan::new(conns, role);
        plan.procs = match self.procs {
            Procs::Auto => None,
            Procs::Count(n) => Some(n),
        };
        plan.source_ips = self.source_ips.clone();
        plan.destinations = self.destinations;
        plan.bind_mode = match self.bind_mode {
            BindModeArg::Explicit => BindMode::Explicit,
            BindModeArg::Noport => BindMode::NoPort,
            BindModeArg::Kernel => BindMode::Kernel,
        };
        plan.local_ports = self.local_ports;
        (plan.server_user_bytes, plan.client_user_bytes) = self.user_bytes_per_conn;
        Ok(Some(plan))
    }

    /// The preset named by `--preset`, if any.
    pub fn preset(&self) -> Option<Preset> {
        self.preset.map(|p| match p {
            PresetArg::Part1 => Preset::Part1,
            PresetArg::Part3 => Preset::Part3,
            PresetArg::Icomet => Preset::Icomet,
        })
    }
}

/// Everything `check` finds for `args` on the tree `probe` reads.
pub fn check(args: &PlanArgs, probe: &Probe) -> Result<report::CheckReport> {
    let plan = args.plan()?;
    let rows = match &plan {
        Some(plan) => limits::check(plan, probe)?,
        None => Vec::new(),
    };
    let hard = probe.nofile()?.map(|(_, hard)| hard);
    let next = match &plan {
        Some(plan) => next::commands(plan, &rows, plan.procs_under(hard)),
        None => Vec::new(),
    };
    let preset = match args.preset() {
        Some(p) => Some(presets::evaluate(p, probe, c1m_common::page_size())?),
        None => None,
    };
    Ok(report::CheckReport {
        plan: plan.as_ref().map(Plan::describe),
        summary: report::Summary::of(&rows),
        memory: plan.as_ref().map(|p| p.memory().into()),
        rows,
        next,
        preset,
    })
}

/// 0 when no row fails, 1 when one does.
fn exit_for(rows: &[limits::Row]) -> ExitCode {
    if limits::worst(rows) == Status::Fail {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Runs the tool, writing to `out`; errors map to exit code 2 in `main`.
pub fn run_to(args: Args, out: &mut dyn Write) -> Result<ExitCode> {
    let probe = Probe::new(&args.root)?;
    match args.command {
        Command::Check { plan, json } => {
            let report = check(&plan, &probe)?;
            if json {
                serde_json::to_writer_pretty(&mut *out, &report).context("writing JSON")?;
                writeln!(out)?;
            } else {
                write!(out, "{}", report.to_text())?;
            }
            Ok(exit_for(&report.rows))
        }
        Command::Print { plan } => {
            let report = check(&plan, &probe)?;
            let file =
                print::sysctl_file(report.plan.as_deref(), &report.rows, report.preset.as_ref());
            write!(out, "{file}")?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Apply { plan } => {
            let before = check(&plan, &probe)?;
            let done = apply::apply(&before.rows, before.preset.as_ref(), &probe, out)?;
            let after = check(&plan, &probe)?;
            let failing: Vec<&str> = after
                .rows
                .iter()
                .filter(|r| r.status == Status::Fail)
                .map(|r| r.name.as_str())
                .collect();
            writeln!(
                out,
                "changed {}, refused {}, left for you {}{}",
                done.changed,
                done.refused,
                done.left,
                if failing.is_empty() {
                    String::new()
                } else {
                    format!("; still failing: {}", failing.join(", "))
                }
            )?;
            Ok(exit_for(&after.rows))
        }
    }
}

/// Runs the tool on standard output.
pub fn run(args: Args) -> Result<ExitCode> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    run_to(args, &mut out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use c1m_common::DEFAULT_USER_BYTES_PER_CONN;
    use clap::CommandFactory;

    #[test]
    fn args_are_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn parses_a_realistic_command_line() {
        let args = Args::try_parse_from([
            "c1m-sysctl",
            "check",
            "--conns",
            "1M",
            "--role",
            "both",
            "--procs",
            "51",
            "--source-ips",
            "127.0.0.1-127.0.0.17",
            "--bind-mode",
            "explicit",
            "--user-bytes-per-conn",
            "2048,512",
            "--json",
        ])
        .unwrap();
        let Command::Check { plan, json } = args.command else {
            panic!("not check");
        };
        assert!(json);
        let p = plan.plan().unwrap().unwrap();
        assert_eq!(p.conns, 1_000_000);
        assert_eq!(p.procs, Some(51));
        assert_eq!(p.source_ips.len(), 17);
        assert_eq!(p.bind_mode, BindMode::Explicit);
        assert_eq!((p.server_user_bytes, p.client_user_bytes), (2048, 512));
        assert_eq!(args.root, PathBuf::from("/"));
    }

    #[test]
    fn conns_may_be_left_out_only_with_a_preset() {
        assert!(Args::try_parse_from(["c1m-sysctl", "check"]).is_err());
        let args = Args::try_parse_from(["c1m-sysctl", "print", "--preset", "icomet"]).unwrap();
        let Command::Print { plan } = args.command else {
            panic!("not print");
        };
        assert_eq!(plan.plan().unwrap(), None);
        assert_eq!(plan.preset(), Some(Preset::Icomet));
        assert_eq!(
            plan.user_bytes_per_conn,
            (DEFAULT_USER_BYTES_PER_CONN, DEFAULT_USER_BYTES_PER_CONN)
        );
    }

    #[test]
    fn impossible_plans_are_refused() {
        assert!(
            Args::try_parse_from(["c1m-sysctl", "check", "--conns", "10", "--procs", "0"]).is_err()
        );
        let args = Args::try_parse_from([
            "c1m-sysctl",
            "check",
            "--conns",
            "10",
            "--destinations",
            "0",
        ])
        .unwrap();
        let Command::Check { plan, .. } = args.command else {
            panic!("not check");
        };
        assert!(plan
            .plan()
            .unwrap_err()
            .to_string()
            .contains("--destinations 0"));
        assert_eq!(plan.procs, Procs::Auto);
        let refusal = |conns: &str| {
            let args = Args::try_parse_from(["c1m-sysctl", "check", "--conns", conns]).unwrap();
            let Command::Check { plan, .. } = args.command else {
                panic!("not check");
            };
            plan.plan().unwrap_err().to_string()
        };
        assert!(refusal("0").contains("such as 10k or 1M"));
        assert!(refusal("18446744073709551615").contains("split the run over machines"));
        assert!(refusal("1000000001").contains("split the run over machines"));
        let huge = [
            "c1m-sysctl",
            "check",
            "--conns",
            "1G",
            "--user-bytes-per-conn",
            "2G,1",
        ];
        assert!(Args::try_parse_from(huge).is_err());
    }
}
