//! The chain of one experiment: limits check, server, memlog, flood, load,
//! hold, stop, plots, report.
//!
//! Every step's failure ends the chain with an error that becomes the
//! report's "incomplete" reason; the children are stopped and the report
//! is written whatever happened, from whatever the tools wrote by then.

use crate::figures::{
    self, CLIENT_MEM_CSV, EVENTS_JSON, FLOOD_CSV, FLOOD_JSON, FRIENDS_CSV, MEM_CSV, MSGGEN_CSV,
    MSGGEN_JSON, SERVER_STATS_JSON,
};
use crate::preset::Plan;
use crate::progress::Progress;
use crate::servers::{self, Servers, START_TIMEOUT};
use crate::supervisor::{Ends, Supervisor};
use crate::target;
use crate::tools::{Tool, Tools};
use crate::{admin, child};
use anyhow::{bail, Context};
use c1m_common::MemSample;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

/// Messages still in flight when msggen stops get this long to arrive.
const DRAIN: Duration = Duration::from_secs(1);

/// What the chain measured before it ended, and how it ended.
pub(crate) struct Chain {
    /// Set when a check failed but the run went on (target not reached).
    pub(crate) check_failed: Option<String>,
    pub(crate) notes: Vec<String>,
    /// The server's name and version, once it has started.
    pub(crate) server: Option<String>,
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

    if plan.friends_events() {
        make_graph(plan, tools, dir, sup)?;
    }
    let servers = servers::start(plan, tools, dir, sup)?;
    chain.server = Some(servers.name.clone());
    if plan.preset.heartbeat.is_some() && servers.admin.is_none() {
        chain.notes.push(format!(
            "the preset's heartbeat is comet-server's own (`--heartbeat`); {} sends none, so \
             its streams carried only the messages",
            servers.name
        ));
    }
    let listen = servers.listen;

    let mut memlog_args = vec![
        "--port".to_owned(),
        listen.port().to_string(),
        "--out".to_owned(),
        path_arg(&dir.join(MEM_CSV)),
    ];
    memlog_args.extend(memlog_sampling(plan, servers.admin));
    memlog_args.extend(servers.memlog_targets());
    sup.start(
        "memlog",
        &tools.path(Tool::Memlog),
        &memlog_args,
        Ends::Never,
    )?;
    // The client's memory over time, where the client runs here.
    if plan.agents.is_none() {
        sup.start(
            "memlog-client",
            &tools.path(Tool::Memlog),
            &client_memlog_args(plan, servers.admin, listen.port(), dir),
            Ends::Never,
        )?;
    }
    // The first sample is the baseline every per-connection figure
    // subtracts, so it must be taken before the first connection.
    sup.wait_for(START_TIMEOUT, |_| {
        Ok((!mem_rows(dir).is_empty()).then_some(()))
    })?
    .context("memlog wrote no sample within 20 s")?;

    sup.start(
        "floodtest",
        &tools.path(Tool::Floodtest),
        &flood_args(plan, &servers, dir),
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
        last_open = servers.connections(dir)?;
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
            &msggen_args(plan, &servers, dir),
            Ends::Success,
        )?;
        let events = if plan.friends_events() {
            Some(sup.start(
                "msggen-events",
                &tools.path(Tool::Msggen),
                &events_args(plan, &servers, dir),
                Ends::Success,
            )?)
        } else {
            None
        };
        println!(
            "sending {} msg/s{} for {}",
            c1m_common::thousands(plan.message_rate),
            match events {
                Some(_) => format!(
                    " and {} friends' events/s",
                    c1m_common::thousands(plan.event_rate)
                ),
                None => String::new(),
            },
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
        if let Some(events) = events {
            // Started with msggen, for the same --duration.
            match sup.wait_exit(events, START_TIMEOUT)? {
                Some(status) if status.success() => {}
                Some(status) => bail!("msggen (events) ended with {}", child::describe(status)),
                None => bail!("msggen (events) did not finish its --duration in time"),
            }
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
    if let Some(admin) = servers.admin {
        record_stats(admin, dir, chain);
    }
    Ok(())
}

/// Prints the hold's progress line when one is due.
fn say_progress(progress: &mut Progress) {
    if let Some(line) = progress.due() {
        println!("{line}");
    }
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

/// Past this many connections a socket count costs too much to take every
/// second: ~1 us of CPU per connection with both loopback ends here
/// (memlog/benches/sample_cost.sh), ~1 s at 1M.
const COUNT_EVERY_SAMPLE_UP_TO: u64 = 200_000;
/// With comet-server past [`COUNT_EVERY_SAMPLE_UP_TO`], memlog counts the
/// sockets every this many samples: at 1M, ~1 s of CPU every 10 s, ~10% of
/// one core (memlog/README.md, "What a sample costs").
const COUNT_EVERY: u64 = 10;
/// The client's memlog counts the sockets at its first and last sample
/// only (memlog's largest `--count-every`).
const COUNT_NEVER: u64 = 1_000_000;

/// memlog's interval and where its connection counts come from: one sample
/// a second (every 250 ms for runs under 20 s, so the chart still has
/// points), each counting the sockets. Past 200,000 connections
/// comet-server's own `/stats` (a group's front sums its workers) gives
/// every sample's count and the sockets are counted every 10th sample to
/// check it; another server has no `/stats`, so it is sampled every 5 s,
/// each sample counting.
fn memlog_sampling(plan: &Plan, admin: Option<SocketAddr>) -> Vec<String> {
    let mut args = memlog_interval(plan, admin);
    if let (Some(admin), true) = (admin, counts_from_server(plan)) {
        args.extend(server_counts(admin, COUNT_EVERY));
    }
    args
}

/// The client's memlog: floodtest's processes (the parent and its
/// children: every command line holding this run's flood.csv path) into
/// client-mem.csv, on the server memlog's schedule. The sockets it would
/// count are the ones the server's memlog counts, so from comet-server it
/// takes the connections from `/stats` at every size and counts only at
/// its first and last sample; from a server without `/stats` it counts as
/// the server's memlog does, doubling that cost.
fn client_memlog_args(
    plan: &Plan,
    admin: Option<SocketAddr>,
    port: u16,
    dir: &Path,
) -> Vec<String> {
    let mut args = vec![
        "--port".to_owned(),
        port.to_string(),
        "--out".to_owned(),
        path_arg(&dir.join(CLIENT_MEM_CSV)),
        "--pgrep".to_owned(),
        path_arg(&dir.join(FLOOD_CSV)),
    ];
    args.extend(memlog_interval(plan, admin));
    if let Some(admin) = admin {
        args.extend(server_counts(admin, COUNT_NEVER));
    }
    args
}

/// Whether the socket count is too dear to take every second.
fn counts_from_server(plan: &Plan) -> bool {
    plan.conns > COUNT_EVERY_SAMPLE_UP_TO
}

/// `--interval` for either memlog (see [`memlog_sampling`]).
fn memlog_interval(plan: &Plan, admin: Option<SocketAddr>) -> Vec<String> {
    let every = if plan.ramp() + plan.hold < Duration::from_secs(20) {
        Duration::from_millis(250)
    } else if admin.is_none() && counts_from_server(plan) {
        Duration::from_secs(5)
    } else {
        Duration::from_secs(1)
    };
    vec!["--interval".to_owned(), format!("{}ms", every.as_millis())]
}

/// Connections from comet-server's `/stats`, the sockets counted every
/// `count_every` samples (and at the first and last).
fn server_counts(admin: SocketAddr, count_every: u64) -> [String; 4] {
    [
        "--server-stats".to_owned(),
        format!("http://{admin}/stats"),
        "--count-every".to_owned(),
        count_every.to_string(),
    ]
}

fn mem_rows(dir: &Path) -> Vec<MemSample> {
    figures::read_csv(&dir.join(MEM_CSV)).unwrap_or_default()
}

fn flood_args(plan: &Plan, servers: &Servers, dir: &Path) -> Vec<String> {
    // floodtest stops by itself at the latest when the whole run should
    // have ended, so even a lost runner leaves no endless load.
    let bound = plan.ramp() * 3 + plan.hold + Duration::from_secs(120);
    let mut args = target::flood_args(plan.target, &plan.external, servers.listen);
    args.extend([
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
    ]);
    args.extend(plan.preset.addressing.client_args());
    if let Some(agents) = &plan.agents {
        // The agents' own --source-ips, where they announced some, replace
        // the preset's addressing.
        args.extend([
            "--agents".to_owned(),
            agents.wanted.clone(),
            "--broker".to_owned(),
            agents.broker.clone(),
        ]);
    }
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

/// msggen's `--timeout` for the run's publishers: a machine busy with a
/// million connections answers a batch late (one for a group reaches
/// every worker), and waiting beats retrying, which would deliver the
/// batch twice (events: counted as uncertain) and add to the load.
const ANSWER_TIMEOUT: &str = "30s";

/// msggen's `--max-conns` for the messages and for the events: when
/// answers are slow msggen opens connections up to it, and together (with
/// memlog and the page) they must stay under comet-server's
/// `--max-admin-conns` (256), past which the admin refuses with 503. At
/// 1M, msggen's default (256 each) did pass it and ended the run.
const MESSAGE_CONNS: &str = "128";
const EVENT_CONNS: &str = "64";

fn msggen_args(plan: &Plan, servers: &Servers, dir: &Path) -> Vec<String> {
    let mut args = target::msggen_args(plan.target, &plan.external, servers.publish);
    args.extend(publisher_args(plan, plan.message_rate, MESSAGE_CONNS));
    args.extend([
        "--csv".to_owned(),
        path_arg(&dir.join(MSGGEN_CSV)),
        "--json".to_owned(),
        path_arg(&dir.join(MSGGEN_JSON)),
    ]);
    args
}

/// Writes the friends graph of the run's users for comet-server's
/// `--friends` (`msggen graph`: 50 friends on average, the same graph for
/// the same users every run).
fn make_graph(plan: &Plan, tools: &Tools, dir: &Path, sup: &mut Supervisor) -> anyhow::Result<()> {
    let args = [
        "graph".to_owned(),
        "--users".to_owned(),
        plan.conns.to_string(),
        "--avg-friends".to_owned(),
        "50".to_owned(),
        "--seed".to_owned(),
        "1".to_owned(),
        "--out".to_owned(),
        path_arg(&dir.join(FRIENDS_CSV)),
    ];
    let id = sup.start(
        "msggen-graph",
        &tools.path(Tool::Msggen),
        &args,
        Ends::Success,
    )?;
    // 1M users (25M friendships, 314 MB) take a few seconds here.
    match sup.wait_exit(id, GRAPH_TIMEOUT)? {
        Some(status) if status.success() => Ok(()),
        Some(status) => bail!("msggen graph ended with {}", child::describe(status)),
        None => bail!("msggen graph wrote no graph within {GRAPH_TIMEOUT:?}"),
    }
}

/// The longest `msggen graph` may take.
const GRAPH_TIMEOUT: Duration = Duration::from_secs(180);

/// Friends' events from random users to comet-server's `POST /publish`,
/// for as long as the messages run.
fn events_args(plan: &Plan, servers: &Servers, dir: &Path) -> Vec<String> {
    let mut args = vec![
        "--target".to_owned(),
        format!("http://{}", servers.publish),
        "--publish".to_owned(),
        "comet-events".to_owned(),
    ];
    args.extend(publisher_args(plan, plan.event_rate, EVENT_CONNS));
    args.extend(["--json".to_owned(), path_arg(&dir.join(EVENTS_JSON))]);
    args
}

/// What the messages' and the events' msggen share: random ids of the
/// run's users at `rate` for the hold, answers waited for, at most
/// `conns` connections, released every `--msg-tick` if given.
fn publisher_args(plan: &Plan, rate: u64, conns: &str) -> Vec<String> {
    let mut args = vec![
        "--ids".to_owned(),
        format!("1-{}", plan.conns),
        "--rate".to_owned(),
        rate.to_string(),
        "--duration".to_owned(),
        format!("{}ms", plan.hold.as_millis()),
        "--report-interval".to_owned(),
        "1s".to_owned(),
        "--no-progress".to_owned(),
        "--timeout".to_owned(),
        ANSWER_TIMEOUT.to_owned(),
        "--max-conns".to_owned(),
        conns.to_owned(),
    ];
    if let Some(tick) = plan.msg_tick {
        args.extend(["--tick".to_owned(), format!("{}us", tick.as_micros())]);
    }
    args
}

/// Keeps the server's own last `/stats` answer beside the other summaries
/// (a group's: the sum, each worker's, the group's and broker's counters).
fn record_stats(admin: SocketAddr, dir: &Path, chain: &mut Chain) {
    match admin::stats(admin) {
        Ok(stats) => {
            let text = serde_json::to_string_pretty(&stats).unwrap_or_default();
            if let Err(e) = std::fs::write(dir.join(SERVER_STATS_JSON), text + "\n") {
                chain
                    .notes
                    .push(format!("could not write {SERVER_STATS_JSON}: {e}"));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preset::{find_preset, FloodAgents, Overrides};

    fn plan(name: &str, scale: f64) -> Plan {
        let overrides = Overrides {
            scale: Some(scale),
            ..Overrides::default()
        };
        Plan::new(find_preset(name).unwrap(), overrides)
    }

    #[test]
    fn memlog_counts_sockets_each_second_until_200k_then_asks_the_server() {
        let admin: SocketAddr = "127.0.0.1:8001".parse().unwrap();
        let words = |args: Vec<String>| args.join(" ");
        let c10k = plan("c10k", 1.0);
        assert_eq!(
            words(memlog_sampling(&c10k, Some(admin))),
            "--interval 1000ms"
        );
        let part3 = plan("part3", 1.0);
        assert!(part3.conns > COUNT_EVERY_SAMPLE_UP_TO);
        assert_eq!(
            words(memlog_sampling(&part3, Some(admin))),
            "--interval 1000ms --server-stats http://127.0.0.1:8001/stats --count-every 10"
        );
        // No /stats to ask (nchan, Pushpin, external): each sample counts.
        assert_eq!(words(memlog_sampling(&part3, None)), "--interval 5000ms");
    }

    #[test]
    fn the_clients_memlog_follows_this_runs_floodtest_and_leaves_the_counting_to_the_server() {
        let admin: SocketAddr = "127.0.0.1:8001".parse().unwrap();
        let dir = Path::new("/r");
        let words = |args: Vec<String>| args.join(" ");
        let c10k = plan("c10k", 1.0);
        assert_eq!(
            words(client_memlog_args(&c10k, Some(admin), 8000, dir)),
            "--port 8000 --out /r/client-mem.csv --pgrep /r/flood.csv --interval 1000ms \
             --server-stats http://127.0.0.1:8001/stats --count-every 1000000"
        );
        let part3 = plan("part3", 1.0);
        assert_eq!(
            words(client_memlog_args(&part3, None, 8000, dir)),
            "--port 8000 --out /r/client-mem.csv --pgrep /r/flood.csv --interval 5000ms"
        );
        // The pattern is in every floodtest process's command line, the
        // children's too (they get the parent's arguments).
        let servers = comet_on_8000(admin);
        let flood = flood_args(&c10k, &servers, dir);
        assert!(flood.contains(&"/r/flood.csv".to_owned()), "{flood:?}");
    }

    /// A comet-server listening on 8000 with its admin at `admin`.
    fn comet_on_8000(admin: SocketAddr) -> Servers {
        Servers {
            listen: "127.0.0.1:8000".parse().unwrap(),
            publish: admin,
            admin: Some(admin),
            pids: Vec::new(),
            pgrep: None,
            name: "comet-server".into(),
        }
    }

    #[test]
    fn msggen_releases_every_msg_tick_when_given_and_at_its_own_default_otherwise() {
        let admin: SocketAddr = "127.0.0.1:8001".parse().unwrap();
        let servers = comet_on_8000(admin);
        let dir = Path::new("/r");
        let mut c10k = plan("c10k", 1.0);
        let tick = |args: Vec<String>| {
            let at = args.iter().position(|a| a == "--tick")?;
            args.get(at + 1).cloned()
        };
        assert_eq!(tick(msggen_args(&c10k, &servers, dir)), None);
        c10k.msg_tick = Some(Duration::from_micros(100));
        assert_eq!(
            tick(msggen_args(&c10k, &servers, dir)).as_deref(),
            Some("100us")
        );
    }

    #[test]
    fn with_agents_floodtest_is_their_controller() {
        let mut plan = Plan::new(find_preset("part3").unwrap(), Overrides::default());
        let listen: SocketAddr = "127.0.0.1:8000".parse().unwrap();
        let servers = Servers {
            listen,
            publish: listen,
            admin: None,
            pids: Vec::new(),
            pgrep: None,
            name: "comet-server".into(),
        };
        let alone = flood_args(&plan, &servers, Path::new("/tmp/run"));
        assert!(!alone.iter().any(|a| a == "--agents"), "{alone:?}");
        plan.agents = Some(FloodAgents {
            wanted: "a,b".into(),
            broker: "nats://10.0.0.5:4222".into(),
        });
        let args = flood_args(&plan, &servers, Path::new("/tmp/run"));
        let at = args.iter().position(|a| a == "--agents").unwrap();
        assert_eq!(
            args[at..at + 4],
            ["--agents", "a,b", "--broker", "nats://10.0.0.5:4222"]
        );
        // The rest is the run as on one machine: the same ids and output.
        assert_eq!(args[..at], alone[..at]);
    }
}
