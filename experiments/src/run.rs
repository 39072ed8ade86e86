//! The chain of one experiment: limits check, server, memlog, flood, load,
//! hold, stop, plots, report.
//!
//! Every step's failure ends the chain with an error that becomes the
//! report's "incomplete" reason; the children are stopped and the report
//! is written whatever happened, from whatever the tools wrote by then.

use crate::figures::{self, FLOOD_CSV, FLOOD_JSON, MEM_CSV, MSGGEN_CSV, MSGGEN_JSON};
use crate::preset::Plan;
use crate::progress::Progress;
use crate::supervisor::{Ends, Supervisor};
use crate::tools::{Tool, Tools};
use crate::{admin, child};
use anyhow::{bail, Context};
use c1m_common::MemSample;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

/// The server's readiness line starts with this.
const SERVER_READY: &str = "comet-server listening on ";
/// Time for a tool to start and say it is ready.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// Messages still in flight when msggen stops get this long to arrive.
const DRAIN: Duration = Duration::from_secs(1);

/// What the chain measured before it ended, and how it ended.
pub(crate) struct Chain {
    /// Set when a check failed but the run went on (target not reached).
    pub(crate) check_failed: Option<String>,
    pub(crate) notes: Vec<String>,
}

/// Runs the chain in `dir`, each child under `sup`. `Ok` means it reached
/// the end of the hold; the caller stops the children either way.
pub(crate) fn execute(
    plan: &Plan,
    tools: &Tools,
    dir: &Path,
    sup: &mut Supervisor,
    chain: &mut Chain,
) -> anyhow::Result<()> {
    if let Some(failed) = check_limits(plan, tools, sup)? {
        chain.check_failed = Some(failed);
        return Ok(());
    }

    let servers = start_servers(plan, tools, sup)?;
    let listen = servers.listen;
    let admin_addr = servers.admin;

    let mut memlog_args = vec![
        "--port".to_owned(),
        listen.port().to_string(),
        "--interval".to_owned(),
        format!("{}ms", memlog_interval(plan).as_millis()),
        "--out".to_owned(),
        path_arg(&dir.join(MEM_CSV)),
    ];
    for pid in &servers.pids {
        memlog_args.extend(["--pid".to_owned(), pid.to_string()]);
    }
    sup.start(
        "memlog",
        &tools.path(Tool::Memlog),
        &memlog_args,
        Ends::Never,
    )?;
    // The first sample is the baseline every per-connection figure
    // subtracts, so it must be taken before the first connection.
    sup.wait_for(START_TIMEOUT, |_| {
        Ok((!mem_rows(dir).is_empty()).then_some(()))
    })?
    .context("memlog wrote no sample within 20 s")?;

    sup.start(
        "floodtest",
        &tools.path(Tool::Floodtest),
        &flood_args(plan, listen, dir),
        Ends::Never,
    )?;
    let ramp_timeout = plan.ramp() * 2 + Duration::from_secs(30);
    let ramp_start = Instant::now();
    let mut last_open = 0;
    let mut polled: Option<Instant> = None;
    let reached = sup.wait_for(ramp_timeout, |_| {
        // A front's /stats asks every worker: with many, poll less often.
        if polled.is_some_and(|t| t.elapsed() < servers.poll_every(plan.workers)) {
            return Ok(None);
        }
        polled = Some(Instant::now());
        last_open = servers.connections()?;
        Ok((last_open >= plan.conns).then_some(()))
    })?;
    match reached {
        Some(()) => println!(
            "{} connections open after {:.1} s",
            c1m_common::thousands(plan.conns),
            ramp_start.elapsed().as_secs_f64()
        ),
        None => {
            let why = format!(
                "the server held {} of {} connections after {} s",
                c1m_common::thousands(last_open),
                c1m_common::thousands(plan.conns),
                ramp_timeout.as_secs()
            );
            println!("{why}; holding what there is");
            chain.check_failed = Some(why);
        }
    }

    if plan.message_rate > 0 {
        let msggen = sup.start(
            "msggen",
            &tools.path(Tool::Msggen),
            &msggen_args(plan, admin_addr, dir),
            Ends::Success,
        )?;
        println!(
            "sending {} msg/s for {}",
            c1m_common::thousands(plan.message_rate),
            humantime::format_duration(plan.hold)
        );
        let mut progress = Progress::new(dir, plan.hold);
        let status = sup
            .wait_for(plan.hold + START_TIMEOUT, |s| {
                say_progress(&mut progress);
                s.exited(msggen)
            })?
            .context("msggen did not finish its --duration in time")?;
        if !status.success() {
            bail!("msggen ended with {}", child::describe(status));
        }
        sup.hold(DRAIN)?;
    } else {
        println!("holding for {}", humantime::format_duration(plan.hold));
        let mut progress = Progress::new(dir, plan.hold);
        sup.wait_for(plan.hold, |_| {
            say_progress(&mut progress);
            Ok(None::<()>)
        })?;
    }
    record_stats(servers.admin, dir, chain);
    Ok(())
}

/// Prints the hold's progress line when one is due.
fn say_progress(progress: &mut Progress) {
    if let Some(line) = progress.due() {
        println!("{line}");
    }
}

/// The run's comet-server: one process, or a group's front and workers.
struct Servers {
    listen: SocketAddr,
    /// The admin address (a group's front answers for every worker).
    admin: SocketAddr,
    /// The server, or the front and every worker, for memlog.
    pids: Vec<u32>,
}

impl Servers {
    /// Connections held (a front's `/stats` is the sum over its workers).
    fn connections(&self) -> anyhow::Result<u64> {
        Ok(admin::stats(self.admin)?.connections)
    }

    /// How often to ask for the count while waiting: a front asks every
    /// worker, so less often for large groups.
    fn poll_every(&self, workers: u64) -> Duration {
        Duration::from_millis(10 * workers.max(1))
    }
}

/// Starts the server: with `plan.workers` over 1 a group
/// (`comet-server --workers N`), whose front starts the workers on one
/// SO_REUSEPORT port and hands each connection to its id's owner; with
/// `plan.broker`, joined to that NATS.
fn start_servers(plan: &Plan, tools: &Tools, sup: &mut Supervisor) -> anyhow::Result<Servers> {
    let mut args = vec![
        "--listen".to_owned(),
        "127.0.0.1:0".to_owned(),
        "--admin".to_owned(),
        "127.0.0.1:0".to_owned(),
    ];
    if plan.workers > 1 {
        args.extend(["--workers".to_owned(), plan.workers.to_string()]);
        // Each worker's share, not the default million each.
        args.extend(["--max-conns".to_owned(), plan.conns.to_string()]);
    }
    if let Some(broker) = &plan.broker {
        args.extend(["--broker".to_owned(), broker.clone()]);
    }
    if let Some(h) = plan.preset.heartbeat {
        args.extend(["--heartbeat".to_owned(), format!("{}s", h.as_secs())]);
    }
    let id = sup.start(
        "comet-server",
        &tools.path(Tool::Server),
        &args,
        Ends::Never,
    )?;
    let (listen, admin_addr) = sup
        .wait_for(START_TIMEOUT * 3, |s| server_ready(&s.child(id).stdout))?
        .with_context(|| {
            format!(
                "comet-server printed no `{SERVER_READY}...` line within {:?}",
                START_TIMEOUT * 3
            )
        })?;
    let mut pids = vec![sup.child(id).pid()];
    // A front lists its workers' pids in /stats; memlog follows them all.
    let stats = admin::stats(admin_addr)?;
    pids.extend(stats.workers.iter().map(|w| w.pid));
    if plan.workers > 1 {
        println!(
            "comet-server ready on {listen}: a front (pid {}) and {} workers (admin {admin_addr})",
            pids[0],
            pids.len() - 1
        );
    } else {
        println!(
            "comet-server ready on {listen} (admin {admin_addr}, pid {})",
            pids[0]
        );
    }
    Ok(Servers {
        listen,
        admin: admin_addr,
        pids,
    })
}

/// Runs `c1m-sysctl check`; `Some(reason)` when a limit blocks the run.
fn check_limits(
    plan: &Plan,
    tools: &Tools,
    sup: &mut Supervisor,
) -> anyhow::Result<Option<String>> {
    let mut args = vec![
        "check".to_owned(),
        "--conns".to_owned(),
        plan.conns.to_string(),
        "--role".to_owned(),
        "both".to_owned(),
    ];
    args.extend(plan.preset.addressing.client_args());
    // A failing check exits 1: that is an answer here, not a crash.
    let id = sup.start("sysctl", &tools.path(Tool::Sysctl), &args, Ends::Any)?;
    let status = match sup.wait_exit(id, START_TIMEOUT)? {
        Some(status) => status,
        None => bail!("c1m-sysctl check gave no answer within {START_TIMEOUT:?}"),
    };
    match status.code() {
        Some(0) => Ok(None),
        Some(1) => {
            let table = std::fs::read_to_string(&sup.child(id).stdout).unwrap_or_default();
            eprintln!("{table}");
            // The table ends with its own next commands; here the run to
            // start again is this one.
            eprintln!(
                "experiment: once the limits are lifted, run this again: {}",
                crate::command_line()
            );
            Ok(Some(format!(
                "c1m-sysctl check: a limit blocks {} connections (the table and the fix are below and in sysctl.stdout)",
                c1m_common::thousands(plan.conns)
            )))
        }
        _ => bail!("c1m-sysctl check failed ({})", child::describe(status)),
    }
}

/// The addresses in the server's readiness line, once it has printed it.
fn server_ready(stdout: &Path) -> anyhow::Result<Option<(SocketAddr, SocketAddr)>> {
    let text = std::fs::read_to_string(stdout).unwrap_or_default();
    let Some(line) = text.lines().find(|l| l.starts_with(SERVER_READY)) else {
        return Ok(None);
    };
    // comet-server listening on <addr> admin <addr>
    let words: Vec<&str> = line[SERVER_READY.len()..].split_whitespace().collect();
    match words[..] {
        [listen, "admin", admin, ..] => Ok(Some((
            listen
                .parse()
                .with_context(|| format!("readiness line {line:?}"))?,
            admin
                .parse()
                .with_context(|| format!("readiness line {line:?}"))?,
        ))),
        _ => bail!("unexpected readiness line {line:?}"),
    }
}

/// One memlog sample a second, more often for runs of under 20 s so the
/// chart still has points, less often past 200,000 connections: counting
/// them costs ~1 us of CPU each (memlog/benches/sample_cost.sh), ~1 s at 1M
/// with both loopback ends on the machine.
fn memlog_interval(plan: &Plan) -> Duration {
    if plan.ramp() + plan.hold < Duration::from_secs(20) {
        Duration::from_millis(250)
    } else if plan.conns > 200_000 {
        Duration::from_secs(5)
    } else {
        Duration::from_secs(1)
    }
}

fn mem_rows(dir: &Path) -> Vec<MemSample> {
    figures::read_csv(&dir.join(MEM_CSV)).unwrap_or_default()
}

fn flood_args(plan: &Plan, listen: SocketAddr, dir: &Path) -> Vec<String> {
    // floodtest stops by itself at the latest when the whole run should
    // have ended, so even a lost runner leaves no endless load.
    let bound = plan.ramp() * 3 + plan.hold + Duration::from_secs(120);
    let mut args = vec![
        "--url".to_owned(),
        format!("http://{listen}/test/{{id}}"),
        "--conns".to_owned(),
        plan.conns.to_string(),
        "--ids".to_owned(),
        format!("1-{}", plan.conns),
        "--rate".to_owned(),
        plan.connect_rate.to_string(),
        "--duration".to_owned(),
        format!("{}s", bound.as_secs()),
        "--report-interval".to_owned(),
        "1s".to_owned(),
        "--csv".to_owned(),
        path_arg(&dir.join(FLOOD_CSV)),
        "--json".to_owned(),
        path_arg(&dir.join(FLOOD_JSON)),
    ];
    args.extend(plan.preset.addressing.client_args());
    if let Some(p) = plan.pause {
        args.extend([
            "--pause-every".to_owned(),
            p.every.to_string(),
            "--pause-secs".to_owned(),
            p.secs.to_string(),
        ]);
    }
    args
}

fn msggen_args(plan: &Plan, admin: SocketAddr, dir: &Path) -> Vec<String> {
    vec![
        "--target".to_owned(),
        format!("http://{admin}"),
        "--ids".to_owned(),
        format!("1-{}", plan.conns),
        "--rate".to_owned(),
        plan.message_rate.to_string(),
        "--duration".to_owned(),
        format!("{}ms", plan.hold.as_millis()),
        "--report-interval".to_owned(),
        "1s".to_owned(),
        "--no-progress".to_owned(),
        "--csv".to_owned(),
        path_arg(&dir.join(MSGGEN_CSV)),
        "--json".to_owned(),
        path_arg(&dir.join(MSGGEN_JSON)),
    ]
}

/// Keeps the server's own last `/stats` answer beside the other summaries
/// (a group's: the sum, each worker's, the group's and broker's counters).
fn record_stats(admin: SocketAddr, dir: &Path, chain: &mut Chain) {
    match admin::stats(admin) {
        Ok(stats) => {
            let text = serde_json::to_string_pretty(&stats).unwrap_or_default();
            if let Err(e) = std::fs::write(dir.join("server-stats.json"), text + "\n") {
                chain
                    .notes
                    .push(format!("could not write server-stats.json: {e}"));
            }
        }
        Err(e) => chain.notes.push(format!(
            "the server's final /stats could not be read: {e:#}"
        )),
    }
}

fn path_arg(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}
