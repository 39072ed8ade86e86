//! `floodtest --agents`: from the agents that announce themselves to a
//! started run, refusing before anything connects when they cannot hold it.
//!
//! 1. Discover: ask who is there and wait, at most `--agents-wait`, for the
//!    agents wanted; the error names who is missing. An agent of another
//!    protocol version is refused, with both versions.
//! 2. Check the combined capacity: each agent's 4-tuples (its source
//!    addresses, its ephemeral range or `--local-ports`, the destinations)
//!    and, with a fixed `--procs`, its descriptors; short, the refusal gives
//!    every agent's figure and the fix.
//! 3. Prepare: each agent gets a disjoint slice of connection indices (so
//!    of ids) and plans it as one machine would; any refusal (with its
//!    numbers and fix) calls the run off before any connect.
//! 4. Start: every agent has accepted, so all are told to go together.

use super::bus::Bus;
use super::fleet::AgentFleet;
use super::wire::{self, Announce, DecodeError, FromAgent, RunPlan, ToAgent};
use super::Wanted;
use crate::args::{Args, Procs};
use crate::drive::TICK;
use crate::report::Reporter;
use anyhow::bail;
use c1m_common::StopSignals;
use c1m_common::{conns_per_process, AddressPlan, BindMode, IdRange, Ipv4List, PortRange};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Report interval the agents keep: a second, or `--report-interval` if
/// shorter (the merged line then has fresh figures from every agent).
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// A run handed out and started.
pub(crate) struct Started {
    pub(crate) fleet: AgentFleet,
    /// Processes over all agents, and workers per process of the first.
    pub(crate) procs: u64,
    pub(crate) workers: u64,
}

/// Finds the agents, checks and hands out the run, and starts it.
pub(crate) fn start(
    args: &Args,
    argv: &[String],
    report: &Reporter,
    stop: &StopSignals,
) -> anyhow::Result<Started> {
    let wanted = args.agents.as_ref().expect("start is called with --agents");
    let broker = args.broker.as_deref().expect("--agents requires --broker");
    let bus = Bus::connect(broker, "floodtest controller")?;
    let agents = discover(&bus, wanted, broker, args.agents_wait, stop)?;
    let ips = agents
        .iter()
        .map(|a| match &a.source_ips {
            None => Ok(args.source_ips.clone()),
            Some(list) => list
                .parse::<Ipv4List>()
                .map_err(|e| anyhow::anyhow!("agent {} announced --source-ips {e}", a.name)),
        })
        .collect::<anyhow::Result<Vec<Ipv4List>>>()?;
    let (target, _) = crate::preset::resolve(args).map_err(anyhow::Error::msg)?;
    check_shared_addresses(args, &agents, &ips)?;
    check_capacity(args, &target, &agents, &ips)?;

    let run = format!("{:016x}", rand::random::<u64>());
    bus.subscribe(&wire::run_subject(&run));
    bus.flush(Duration::from_secs(5));
    let ids = args.ids.unwrap_or(IdRange::new(1, args.conns));
    let slices = IdRange::new(0, args.conns - 1).split(agents.len() as u64);
    let report_ms = REPORT_EVERY.min(args.report_interval).as_millis() as u64;
    for (k, (agent, slice)) in agents.iter().zip(&slices).enumerate() {
        let plan = RunPlan {
            run: run.clone(),
            agent: agent.name.clone(),
            index: k as u64,
            of: agents.len() as u64,
            flags: argv.to_vec(),
            conns: slice.len(),
            first_index: slice.first,
            ids: ids.to_string(),
            source_ips: ips[k].to_string(),
            report_ms,
            timeout_ms: args.agent_timeout.as_millis() as u64,
        };
        bus.publish(
            &wire::agent_subject(&agent.name),
            wire::encode(&ToAgent::Prepare(plan)),
        );
    }
    let names: Vec<String> = agents.iter().map(|a| a.name.clone()).collect();
    let call_off = |bus: &Bus| {
        for name in &names {
            let msg = ToAgent::Stop { run: run.clone() };
            bus.publish(&wire::agent_subject(name), wire::encode(&msg));
        }
        bus.flush(Duration::from_secs(5));
    };
    let ready = match await_ready(&bus, &run, &agents, &slices, args.agents_wait, stop) {
        Ok(ready) => ready,
        Err(e) => {
            call_off(&bus);
            return Err(e);
        }
    };
    // The start barrier: every agent has planned its share.
    for name in &names {
        let msg = ToAgent::Start { run: run.clone() };
        bus.publish(&wire::agent_subject(name), wire::encode(&msg));
    }
    bus.flush(Duration::from_secs(5));
    let parts: Vec<String> = (0..agents.len())
        .map(|k| {
            let (a, (procs, workers)) = (&agents[k], ready[k]);
            format!(
                "{} ({}) {} from {}, {procs} x {workers}",
                a.name,
                a.host,
                slices[k].len(),
                ips[k]
            )
        })
        .collect();
    report.notice(&format!(
        "{} connections to {}:{} over {} agents, started together: {}",
        args.conns,
        target.ip,
        target.ports,
        agents.len(),
        parts.join("; ")
    ));
    let procs = ready.iter().map(|r| r.0).sum();
    let workers = ready.first().map_or(1, |r| r.1);
    let fleet = AgentFleet::new(bus, run, names, args.agent_timeout);
    Ok(Started {
        fleet,
        procs,
        workers,
    })
}

/// Waits for the agents wanted; they come back sorted by name.
fn discover(
    bus: &Bus,
    wanted: &Wanted,
    broker: &str,
    wait: Duration,
    stop: &StopSignals,
) -> anyhow::Result<Vec<Announce>> {
    bus.subscribe(wire::ANNOUNCE);
    bus.flush(Duration::from_secs(5));
    let deadline = Instant::now() + wait;
    let mut found: BTreeMap<String, Announce> = BTreeMap::new();
    let mut asked: Option<Instant> = None;
    loop {
        if let Some(chosen) = chosen(wanted, &found) {
            return Ok(chosen);
        }
        if Instant::now() >= deadline {
            bail!("{}", missing(wanted, &found, broker, wait));
        }
        if stop.caught().is_some() {
            bail!("interrupted while waiting for the agents");
        }
        // Asked again every second: an agent may start after the controller.
        if asked.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
            bus.publish(wire::DISCOVER, wire::encode(&ToAgent::Discover));
            asked = Some(Instant::now());
        }
        let Some(msg) = bus.recv_timeout(TICK) else {
            continue;
        };
        if msg.subject != wire::ANNOUNCE {
            continue;
        }
        match wire::decode::<FromAgent>(&msg.payload) {
            Ok(FromAgent::Announce(a)) => {
                found.insert(a.name.clone(), a);
            }
            Ok(_) => {}
            Err(e @ DecodeError::Version(_)) => {
                bail!("agent {} {e}", name_in(&msg.payload))
            }
            // Not one of ours: someone else's traffic on the subject.
            Err(DecodeError::Malformed(_)) => {}
        }
    }
}

/// The agent's name in a message of any version, if it says one.
fn name_in(payload: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(payload)
        .ok()
        .and_then(|v| {
            v.pointer("/body/name")
                .and_then(|n| n.as_str())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "(unnamed)".to_owned())
}

/// The agents to use, once all wanted have announced themselves.
fn chosen(wanted: &Wanted, found: &BTreeMap<String, Announce>) -> Option<Vec<Announce>> {
    match wanted {
        Wanted::Count(n) => {
            (found.len() as u64 >= *n).then(|| found.values().take(*n as usize).cloned().collect())
        }
        Wanted::Names(names) => {
            let mut sorted = names.clone();
            sorted.sort();
            sorted.iter().map(|n| found.get(n).cloned()).collect()
        }
    }
}

/// Who is missing after the wait, and how to fix it.
fn missing(
    wanted: &Wanted,
    found: &BTreeMap<String, Announce>,
    broker: &str,
    wait: Duration,
) -> String {
    let seen = if found.is_empty() {
        "none announced itself".to_owned()
    } else {
        format!(
            "announced: {}",
            found.keys().cloned().collect::<Vec<_>>().join(", ")
        )
    };
    match wanted {
        Wanted::Count(n) => format!(
            "waited {:.0?} for {n} agents on {broker}: {} of them there ({seen}); fix: start \
             `floodtest agent --broker {broker}` on {} more machine(s), or ask for --agents {}",
            wait,
            found.len(),
            *n - found.len() as u64,
            found.len().max(1)
        ),
        Wanted::Names(names) => {
            let absent: Vec<&str> = names
                .iter()
                .filter(|n| !found.contains_key(*n))
                .map(String::as_str)
                .collect();
            format!(
                "waited {:.0?} for agents {} on {broker}: missing {} ({seen}); fix: start \
                 `floodtest agent --broker {broker} --name NAME` for each",
                wait,
                names.join(","),
                absent.join(", ")
            )
        }
    }
}

/// Refuses two agents on one host binding the same source addresses: the
/// same (address, port) pairs would be tried by both, and each would count
/// the other's as taken.
fn check_shared_addresses(
    args: &Args,
    agents: &[Announce],
    ips: &[Ipv4List],
) -> anyhow::Result<()> {
    if BindMode::from(args.bind_mode) == BindMode::Kernel {
        return Ok(());
    }
    for (i, a) in agents.iter().enumerate() {
        for (j, b) in agents.iter().enumerate().skip(i + 1) {
            let shared = ips[i].iter().find(|ip| ips[j].iter().any(|o| o == *ip));
            if let (true, Some(ip)) = (a.host == b.host, shared) {
                bail!(
                    "agents {} and {} both run on {} and both bind {ip}; fix: give each agent on one \
                     host its own addresses (`floodtest agent --source-ips`)",
                    a.name,
                    b.name,
                    a.host
                );
            }
        }
    }
    Ok(())
}

/// Refuses a run the agents together cannot hold, before any plan is sent.
fn check_capacity(
    args: &Args,
    target: &crate::target::Target,
    agents: &[Announce],
    ips: &[Ipv4List],
) -> anyhow::Result<()> {
    let bind_mode = BindMode::from(args.bind_mode);
    let mut total = 0u64;
    let mut parts = Vec::new();
    for (a, ips) in agents.iter().zip(ips) {
        let plan = AddressPlan {
            bind_mode,
            source_ips: ips.len(),
            local_ports: args.local_ports,
            ephemeral_ports: PortRange {
                first: a.ephemeral.0,
                last: a.ephemeral.1,
            },
            destinations: target.destinations(),
        };
        let mut capacity = plan.capacity();
        let ports = match bind_mode {
            BindMode::Explicit => plan.local_ports.len(),
            _ => plan.ephemeral_ports.len(),
        };
        let mut why = format!(
            "{} source IP(s) x {ports} ports x {} destination(s) = {capacity}",
            match bind_mode {
                BindMode::Kernel => 1,
                _ => ips.len(),
            },
            target.destinations()
        );
        if let Procs::Exactly(n) = args.procs {
            let fds = n * conns_per_process(a.fd_limit);
            if fds < capacity {
                capacity = fds;
                why = format!(
                    "{n} process(es) x {} descriptors = {fds}",
                    conns_per_process(a.fd_limit)
                );
            }
        }
        total += capacity;
        parts.push(format!("{} {why}", a.name));
    }
    if total < args.conns {
        bail!(
            "cannot open {} connections over {} agents: {} = {total}; fix: more agents, more source \
             addresses per agent (`floodtest agent --source-ips`), more destination ports, or --procs auto",
            args.conns,
            agents.len(),
            parts.join(", ")
        );
    }
    Ok(())
}

/// Waits for every agent's answer to its plan; `(procs, workers)` of each.
fn await_ready(
    bus: &Bus,
    run: &str,
    agents: &[Announce],
    slices: &[IdRange],
    wait: Duration,
    stop: &StopSignals,
) -> anyhow::Result<Vec<(u64, u64)>> {
    let deadline = Instant::now() + wait;
    let mut ready: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    while ready.len() < agents.len() {
        if stop.caught().is_some() {
            bail!("interrupted while the agents planned their shares");
        }
        if Instant::now() >= deadline {
            let silent: Vec<&str> = agents
                .iter()
                .filter(|a| !ready.contains_key(&a.name))
                .map(|a| a.name.as_str())
                .collect();
            bail!(
                "agent(s) {} did not answer their plan within {wait:.0?}; nothing was started",
                silent.join(", ")
            );
        }
        let Some(msg) = bus.recv_timeout(TICK) else {
            continue;
        };
        match wire::decode::<FromAgent>(&msg.payload) {
            Ok(FromAgent::Ready {
                run: r,
                agent,
                procs,
                workers,
            }) if r == run => {
                ready.insert(agent, (procs, workers));
            }
            Ok(FromAgent::Refused { run: r, agent, why }) if r == run => {
                let k = agents.iter().position(|a| a.name == agent).unwrap_or(0);
                bail!(
                    "agent {agent} cannot take its share ({} connections); nothing was started: {why}",
                    slices[k].len()
                );
            }
            _ => {}
        }
    }
    Ok(agents.iter().map(|a| ready[&a.name]).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn agent(name: &str, host: &str, ips: Option<&str>) -> Announce {
        Announce {
            name: name.into(),
            host: host.into(),
            fd_limit: 20_000,
            cores: 2,
            source_ips: ips.map(str::to_owned),
            ephemeral: (32768, 60999),
        }
    }

    fn args(line: &str) -> Args {
        Args::try_parse_from(std::iter::once("floodtest").chain(line.split_whitespace())).unwrap()
    }

    #[test]
    fn refuses_what_the_agents_together_cannot_hold_with_each_ones_figure() {
        let a = args("--conns 100k --bind-mode explicit --agents 2 --broker nats://x:1");
        let target = crate::preset::resolve(&a).unwrap().0;
        let agents = [agent("a", "h1", None), agent("b", "h2", None)];
        let ips: Vec<Ipv4List> = vec!["127.0.2.1".parse().unwrap(); 2];
        // 2 x 64,512 explicit pairs hold 100,000.
        check_capacity(&a, &target, &agents, &ips).unwrap();
        let a = args("--conns 100k --bind-mode explicit --procs 2 --agents 2 --broker nats://x:1");
        let err = check_capacity(&a, &target, &agents, &ips)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("cannot open 100000 connections over 2 agents: a 2 process(es) x 19936 descriptors = 39872"),
            "{err}"
        );
    }

    #[test]
    fn two_agents_on_one_host_may_not_bind_the_same_addresses() {
        let a = args("--conns 10 --bind-mode noport --agents 2 --broker nats://x:1");
        let one: Ipv4List = "127.0.2.1-127.0.2.2".parse().unwrap();
        let other: Ipv4List = "127.0.2.2,127.0.3.1".parse().unwrap();
        let same_host = [agent("a", "h", None), agent("b", "h", None)];
        let err = check_shared_addresses(&a, &same_host, &[one.clone(), other.clone()])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("agents a and b both run on h and both bind 127.0.2.2"),
            "{err}"
        );
        let apart = [agent("a", "h1", None), agent("b", "h2", None)];
        check_shared_addresses(&a, &apart, &[one.clone(), other]).unwrap();
        let own: Ipv4List = "127.0.4.1".parse().unwrap();
        check_shared_addresses(&a, &same_host, &[one, own]).unwrap();
    }
}
