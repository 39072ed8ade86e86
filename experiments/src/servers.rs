//! Starting the run's server and knowing what it is: comet-server (one
//! process, or a group's front and workers), nginx+nchan or Pushpin from
//! their Debian binaries (the config `c1m_pushsrv` generates, in
//! `<out>/<target>/`), or nothing for a server the user runs. Whatever it
//! is, the result says where subscribers and publishers go, which
//! processes memlog follows, and the server's name and version for the
//! report.

use crate::admin;
use crate::figures::{self, FLOOD_CSV};
use crate::preset::Plan;
use crate::supervisor::{Ends, Supervisor};
use crate::target::TargetKind;
use crate::tools::{Tool, Tools};
use anyhow::{bail, Context};
use c1m_common::FloodInterval;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// The server's readiness line starts with this.
const SERVER_READY: &str = "comet-server listening on ";
/// Time for a server to start and say (or show) it is ready.
pub(crate) const START_TIMEOUT: Duration = Duration::from_secs(20);

/// The run's server once it is ready.
pub(crate) struct Servers {
    /// Where subscribers connect (an external server's: from its URL).
    pub(crate) listen: SocketAddr,
    /// Where msggen publishes (comet-server's admin listener, nchan's or
    /// Pushpin's publish port; unused for an external server).
    pub(crate) publish: SocketAddr,
    /// comet-server's admin listener, which counts its connections.
    pub(crate) admin: Option<SocketAddr>,
    /// The server's processes, for memlog (`--pid`).
    pub(crate) pids: Vec<u32>,
    /// Or a pattern memlog looks processes up by (`--pgrep`).
    pub(crate) pgrep: Option<String>,
    /// Its name and version, for the report (`nginx/1.22.1 with nchan 1.3.6`).
    pub(crate) name: String,
}

impl Servers {
    /// Connections held: comet-server's `/stats` (a front's is the sum
    /// over its workers); for another server floodtest's own count in its
    /// last `flood.csv` row, since no other server answers the question.
    pub(crate) fn connections(&self, dir: &Path) -> anyhow::Result<u64> {
        match self.admin {
            Some(admin) => Ok(admin::stats(admin)?.connections),
            None => {
                let rows: Vec<FloodInterval> = figures::read_csv(&dir.join(FLOOD_CSV))?;
                Ok(rows.last().map_or(0, |r| r.open))
            }
        }
    }

    /// How often to ask for the count while waiting: a front asks every
    /// worker, so less often for large groups.
    pub(crate) fn poll_every(&self, workers: u64) -> Duration {
        Duration::from_millis(10 * workers.max(1))
    }

    /// memlog's arguments naming the processes to follow.
    pub(crate) fn memlog_targets(&self) -> Vec<String> {
        match &self.pgrep {
            Some(pattern) => vec!["--pgrep".to_owned(), pattern.clone()],
            None => self
                .pids
                .iter()
                .flat_map(|pid| ["--pid".to_owned(), pid.to_string()])
                .collect(),
        }
    }
}

/// Starts (or, for `external`, finds) the plan's server.
pub(crate) fn start(
    plan: &Plan,
    tools: &Tools,
    dir: &Path,
    sup: &mut Supervisor,
) -> anyhow::Result<Servers> {
    match plan.target {
        TargetKind::Comet => start_comet(plan, tools, dir, sup),
        TargetKind::Nchan => start_packaged(plan.target, c1m_pushsrv::nchan_setup, dir, sup),
        TargetKind::Pushpin => start_packaged(plan.target, c1m_pushsrv::pushpin_setup, dir, sup),
        TargetKind::External => {
            let e = &plan.external;
            let listen = SocketAddr::from(([127, 0, 0, 1], e.subscribe_port()?));
            let name = match (&e.pgrep, e.server_pid.first()) {
                (Some(p), _) => format!("external server (processes matching {p:?})"),
                (None, Some(pid)) => {
                    let comm =
                        std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                    format!(
                        "external server ({}, pid {})",
                        comm.trim(),
                        pids_words(&e.server_pid)
                    )
                }
                (None, None) => "external server".to_owned(),
            };
            Ok(Servers {
                listen,
                publish: listen,
                admin: None,
                pids: e.server_pid.clone(),
                pgrep: e.pgrep.clone(),
                name,
            })
        }
    }
}

fn pids_words(pids: &[u32]) -> String {
    pids.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// nginx+nchan or Pushpin: its config written into `<dir>/<target>/`, its
/// processes started under the supervisor (each in its own group, stopped
/// with the others), ready once it answers (`Setup::ready`: both ports
/// accept, and Pushpin's probe stream is answered 200) and every process it
/// forks exists, so memlog follows them all from its
/// first sample.
fn start_packaged(
    kind: TargetKind,
    setup: fn(&Path) -> std::io::Result<c1m_pushsrv::Setup>,
    dir: &Path,
    sup: &mut Supervisor,
) -> anyhow::Result<Servers> {
    let conf = dir.join(kind.name());
    std::fs::create_dir_all(&conf).with_context(|| format!("creating {}", conf.display()))?;
    let setup = setup(&conf).with_context(|| format!("writing {}'s config", kind.name()))?;
    let mut roots = Vec::new();
    let mut expected = 0;
    for launch in &setup.launches {
        let id = sup.start(
            launch.name,
            Path::new(&launch.program),
            &launch.args,
            Ends::Never,
        )?;
        roots.push(sup.child(id).pid());
        expected += 1 + launch.forks;
    }
    let pids = sup
        .wait_for(START_TIMEOUT, |_| {
            if !setup.ready() {
                return Ok(None);
            }
            let all = with_descendants(&roots);
            Ok((all.len() >= expected).then_some(all))
        })?
        .with_context(|| {
            format!(
                "{} was not ready within {START_TIMEOUT:?} (listening on {} and {}, {expected} processes); \
                 its logs are in {}",
                kind.name(),
                setup.subscribe,
                setup.publish,
                dir.display()
            )
        })?;
    let server = kind.packaged().expect("a packaged target");
    let name = server.version().unwrap_or_else(|| kind.name().to_owned());
    println!(
        "{name} ready on {} (publish {}, pids {})",
        setup.subscribe,
        setup.publish,
        pids_words(&pids)
    );
    Ok(Servers {
        listen: setup.subscribe,
        publish: setup.publish,
        admin: None,
        pids,
        pgrep: None,
        name,
    })
}

/// `roots` and every process they started, and those started, from
/// `/proc/PID/task/TID/children`.
fn with_descendants(roots: &[u32]) -> Vec<u32> {
    let mut all = roots.to_vec();
    let mut i = 0;
    while i < all.len() {
        let tasks = std::fs::read_dir(format!("/proc/{}/task", all[i]));
        for task in tasks.into_iter().flatten().flatten() {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            for pid in children.split_whitespace().filter_map(|p| p.parse().ok()) {
                if !all.contains(&pid) {
                    all.push(pid);
                }
            }
        }
        i += 1;
    }
    all
}

/// Starts comet-server: with `plan.workers` over 1 a group
/// (`comet-server --workers N`), whose front starts the workers on one
/// SO_REUSEPORT port and hands each connection to its id's owner; with
/// `plan.broker`, joined to that NATS; with friends' events, serving the
/// graph in `dir` (`run::make_graph` wrote it).
fn start_comet(
    plan: &Plan,
    tools: &Tools,
    dir: &Path,
    sup: &mut Supervisor,
) -> anyhow::Result<Servers> {
    let mut args = vec![
        "--listen".to_owned(),
        "127.0.0.1:0".to_owned(),
        "--admin".to_owned(),
        "127.0.0.1:0".to_owned(),
        // The live page on the admin address (loopback): nothing is
        // served, nor costs anything, until someone opens it.
        "--dashboard".to_owned(),
    ];
    if plan.workers > 1 {
        args.extend(["--workers".to_owned(), plan.workers.to_string()]);
        // Each worker's share, not the default million each.
        args.extend(["--max-conns".to_owned(), plan.conns.to_string()]);
    }
    if let Some(broker) = &plan.broker {
        args.extend(["--broker".to_owned(), broker.clone()]);
    }
    if plan.friends_events() {
        let graph = dir.join(crate::figures::FRIENDS_CSV);
        args.extend(["--friends".to_owned(), graph.display().to_string()]);
    }
    if let Some(h) = plan.preset.heartbeat {
        args.extend(["--heartbeat".to_owned(), format!("{}s", h.as_secs())]);
    }
    let program = tools.path(Tool::Server);
    let id = sup.start("comet-server", &program, &args, Ends::Never)?;
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
    println!("dashboard: http://{admin_addr}/ (live connections, memory and messages of this run)");
    let version = std::process::Command::new(&program)
        .arg("--version")
        .output();
    let name = version
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|v| v.lines().next().map(str::to_owned))
        .unwrap_or_else(|| "comet-server".to_owned());
    Ok(Servers {
        listen,
        publish: admin_addr,
        admin: Some(admin_addr),
        pids,
        pgrep: None,
        name,
    })
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
