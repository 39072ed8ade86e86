//! `floodtest agent`: a long-running process on a client machine that runs
//! the shares controllers give it, one run at a time.
//!
//! It announces itself at start and whenever a controller asks, plans a
//! share with [`Plan::new`] (so it refuses what this machine cannot hold
//! with the same numbers and fix as a run here would), and on the start
//! barrier runs it with the usual workers (or `--procs` children). It is
//! silent to discovery while it runs a share. It reports every second and
//! ends the share when told to, when its controller has been silent for the
//! plan's timeout (its connections are closed; the agent waits for work
//! again), or on SIGINT/SIGTERM (the controller gets the final report).
//! Cost at rest: one thread for NATS, nothing else.

use super::bus::Bus;
use super::wire::{self, Announce, DecodeError, FromAgent, RunPlan, ToAgent};
use crate::children::ChildFleet;
use crate::drive::TICK;
use crate::fleet::{Fleet, LocalFleet};
use crate::plan::Plan;
use crate::report::{say, Reporter};
use crate::stats::{Snapshot, Timings};
use crate::worker::Control;
use crate::Args;
use anyhow::Context;
use c1m_common::{AgentSummary, Ipv4List, StopSignals};
use clap::Parser;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Runs a share of a controller's run on this machine
/// (`floodtest --agents ... --broker ...` is the controller).
///
/// It announces itself on the broker (name, host, descriptor limit, cores,
/// source addresses), waits for work, runs each share it is given and
/// reports to its controller every second. It stops a share's connections
/// when the controller has been silent for the run's --agent-timeout, and
/// exits on SIGINT/SIGTERM.
#[derive(Debug, Clone, Parser)]
#[command(name = "floodtest agent", version)]
pub struct AgentArgs {
    /// The NATS server the controller uses (`nats://HOST:PORT`).
    #[arg(long, value_name = "URL")]
    pub broker: String,

    /// This agent's name, for `--agents NAME,NAME` (letters, digits, `-`,
    /// `_`) [default: the host name].
    #[arg(long, value_parser = parse_name)]
    pub name: Option<String>,

    /// Source addresses this machine's connections bind (list, range or
    /// CIDR), in place of the controller's --source-ips.
    #[arg(long)]
    pub source_ips: Option<Ipv4List>,
}

fn parse_name(s: &str) -> Result<String, String> {
    super::check_name(s).map(|()| s.to_owned())
}

/// What this machine is, and the NATS link.
struct Agent {
    bus: Bus,
    me: Announce,
    ephemeral: c1m_common::PortRange,
}

/// A share planned and accepted, waiting for the start barrier.
struct Prepared {
    run: RunPlan,
    /// The flags this share runs with (what `--procs` children get).
    argv: Vec<String>,
    args: Args,
    plan: Plan,
}

/// The host name, as the kernel has it.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "localhost".to_owned())
}

/// Runs the agent until SIGINT/SIGTERM.
pub fn run_agent(args: AgentArgs) -> anyhow::Result<ExitCode> {
    let fd_limit = c1m_common::raise_nofile_to_hard().context("raising RLIMIT_NOFILE")?;
    let ephemeral = crate::plan::ephemeral_range()?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
    let host = host_name();
    let name = match args.name {
        Some(n) => n,
        None => {
            let n: String = host
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            super::check_name(&n).map_err(anyhow::Error::msg)?;
            n
        }
    };
    let ips = args.source_ips.iter().flat_map(|l| l.iter());
    if let Some(ip) = crate::addr::first_not_local(ips)? {
        anyhow::bail!(
            "--source-ips {ip}: this address is not on this host; {}",
            crate::report::NOT_LOCAL_FIX.replace("<ip>", &ip.to_string())
        );
    }
    let stop = crate::drive::catch_stop_signals().context("installing the signal handlers")?;
    let bus = Bus::connect(&args.broker, &format!("floodtest agent {name}"))?;
    bus.subscribe(wire::DISCOVER);
    bus.subscribe(&wire::agent_subject(&name));
    bus.flush(Duration::from_secs(5));
    let me = Announce {
        name,
        host,
        fd_limit,
        cores,
        source_ips: args.source_ips.as_ref().map(ToString::to_string),
        ephemeral: (ephemeral.first, ephemeral.last),
    };
    let agent = Agent { bus, me, ephemeral };
    agent.announce();
    agent.say(&format!(
        "waiting for work on {} (host {}, RLIMIT_NOFILE {}, {} cores, source IPs {})",
        args.broker,
        agent.me.host,
        agent.me.fd_limit,
        agent.me.cores,
        agent.me.source_ips.as_deref().unwrap_or("the controller's")
    ));
    agent.serve(&stop)?;
    Ok(ExitCode::SUCCESS)
}

impl Agent {
    fn say(&self, text: &str) {
        say(
            &mut std::io::stderr(),
            &format!("floodtest agent {}: {text}", self.me.name),
        );
    }

    fn announce(&self) {
        self.bus.publish(
            wire::ANNOUNCE,
            wire::encode(&FromAgent::Announce(self.me.clone())),
        );
    }

    fn answer(&self, run: &str, msg: &FromAgent) {
        self.bus.publish(&wire::run_subject(run), wire::encode(msg));
    }

    /// Waits for work and runs it, until a signal.
    fn serve(&self, stop: &StopSignals) -> anyhow::Result<()> {
        let mut prepared: Option<Prepared> = None;
        while stop.caught().is_none() {
            let Some(msg) = self.bus.recv_timeout(TICK) else {
                continue;
            };
            match wire::decode::<ToAgent>(&msg.payload) {
                Err(e @ DecodeError::Version(_)) => {
                    self.say(&format!("refusing a controller that {e}"));
                    // The controller learns this agent's version from it.
                    self.announce();
                }
                Err(e) => self.say(&format!("ignoring a message on {}: it {e}", msg.subject)),
                Ok(ToAgent::Discover) => self.announce(),
                Ok(ToAgent::Prepare(run)) => {
                    let id = run.run.clone();
                    prepared = None;
                    match self.prepare(run) {
                        Ok(p) => {
                            self.answer(
                                &id,
                                &FromAgent::Ready {
                                    run: id.clone(),
                                    agent: self.me.name.clone(),
                                    procs: p.plan.procs,
                                    workers: p.plan.workers,
                                },
                            );
                            prepared = Some(p);
                        }
                        Err(e) => self.answer(
                            &id,
                            &FromAgent::Refused {
                                run: id.clone(),
                                agent: self.me.name.clone(),
                                why: format!("{e:#}"),
                            },
                        ),
                    }
                }
                Ok(ToAgent::Start { run }) => {
                    if let Some(p) = prepared.take_if(|p| p.run.run == run) {
                        // An agent outlives a share that could not run
                        // (its controller finds it silent and says so).
                        if let Err(e) = self.run_share(p, stop) {
                            self.say(&format!("run {run} failed: {e:#}"));
                        }
                        // Back to waiting: seen again by discovery.
                        self.announce();
                    }
                }
                Ok(ToAgent::Stop { run }) => {
                    // A run called off before its start barrier.
                    prepared.take_if(|p| p.run.run == run);
                }
                Ok(ToAgent::Release { .. } | ToAgent::Beat { .. }) => {}
            }
        }
        Ok(())
    }

    /// Plans `run` here as a run of its own would be planned.
    fn prepare(&self, run: RunPlan) -> anyhow::Result<Prepared> {
        let mut argv = run.flags.clone();
        argv.extend([
            "--conns".to_owned(),
            run.conns.to_string(),
            "--first-index".to_owned(),
            run.first_index.to_string(),
            "--ids".to_owned(),
            run.ids.clone(),
            "--source-ips".to_owned(),
            run.source_ips.clone(),
        ]);
        let args =
            Args::try_parse_from(std::iter::once("floodtest".to_owned()).chain(argv.clone()))
                .map_err(|e| {
                    anyhow::anyhow!(
                        "{}",
                        e.to_string()
                            .lines()
                            .next()
                            .unwrap_or("bad flags")
                            .trim_start_matches("error: ")
                            .to_owned()
                    )
                })?;
        let plan = Plan::new(&args, self.me.fd_limit, self.ephemeral, self.me.cores)?;
        Ok(Prepared {
            run,
            argv,
            args,
            plan,
        })
    }

    /// Runs a started share to its end and sends the final report.
    fn run_share(&self, p: Prepared, stop: &StopSignals) -> anyhow::Result<()> {
        let Prepared {
            run,
            argv,
            args,
            plan,
        } = p;
        self.say(&format!(
            "run {} share {} of {}: {}",
            run.run,
            run.index + 1,
            run.of,
            plan.describe()
        ));
        let fleet: Box<dyn Fleet> = if plan.procs > 1 {
            Box::new(ChildFleet::spawn(plan.procs, &argv)?)
        } else {
            Box::new(LocalFleet::start(
                plan.units(0),
                Arc::new(Control::default()),
            )?)
        };
        // Its own view: plain lines on stdout, and its own summary.
        let mut report =
            Reporter::new(args.conns, args.duration, args.report_interval, None, false)?;
        let mut share = Share {
            agent: self,
            run: &run,
            fleet,
            pending: Snapshot::starting(),
            seq: 0,
            ramp_noted: false,
        };
        let why = share.drive(&mut report, stop)?;
        self.say(&format!("run {} ends: {why}", run.run));
        let Share {
            fleet,
            mut pending,
            seq,
            ..
        } = share;
        let joined = fleet.join();
        merge_into(&mut pending, joined.last);
        pending.finished = true;
        report.absorb(pending.clone());
        let histograms = report.timings().buckets();
        let mut summary = report.finish(plan.procs, plan.workers)?;
        if !joined.failures.is_empty() {
            summary.incomplete = Some(joined.failures.join("; "));
        }
        say(&mut std::io::stdout(), &crate::summary::render(&summary));
        self.answer(
            &run.run,
            &FromAgent::Final {
                run: run.run.clone(),
                agent: self.me.name.clone(),
                seq,
                snap: Box::new(pending),
                summary: Box::new(AgentSummary {
                    name: self.me.name.clone(),
                    host: self.me.host.clone(),
                    summary,
                    histograms,
                }),
            },
        );
        self.bus.flush(Duration::from_secs(5));
        Ok(())
    }
}

/// Folds a newer snapshot into one not yet reported: its counters and
/// gauges replace the old, its histograms add to those still held.
fn merge_into(pending: &mut Snapshot, newer: Snapshot) {
    let mut timings = std::mem::replace(&mut pending.timings, Timings::new());
    timings.add(&newer.timings);
    *pending = Snapshot { timings, ..newer };
}

/// A share while it runs.
struct Share<'a> {
    agent: &'a Agent,
    run: &'a RunPlan,
    fleet: Box<dyn Fleet>,
    /// What the controller has not been sent yet.
    pending: Snapshot,
    /// The next report's number.
    seq: u64,
    ramp_noted: bool,
}

impl Share<'_> {
    /// Polls, obeys and reports until the share is to end; says why.
    fn drive(&mut self, report: &mut Reporter, stop: &StopSignals) -> anyhow::Result<String> {
        let report_every = Duration::from_millis(self.run.report_ms);
        let timeout = Duration::from_millis(self.run.timeout_ms);
        let (mut last_report, mut last_beat) = (Instant::now(), Instant::now());
        loop {
            let tick_end = Instant::now() + TICK;
            while let Some(msg) = self
                .agent
                .bus
                .recv_timeout(tick_end.saturating_duration_since(Instant::now()))
            {
                match wire::decode::<ToAgent>(&msg.payload) {
                    Ok(ToAgent::Release { run }) if run == self.run.run => self.fleet.release(),
                    Ok(ToAgent::Stop { run }) if run == self.run.run => {
                        return Ok("stopped by the controller".to_owned())
                    }
                    Ok(ToAgent::Beat { run }) if run == self.run.run => last_beat = Instant::now(),
                    // Busy: discovery and other runs wait.
                    _ => {}
                }
            }
            if let Some(signal) = stop.caught() {
                return Ok(format!("signal {signal}"));
            }
            if last_beat.elapsed() >= timeout {
                return Ok(format!(
                    "no word from the controller for {:.1}s: closing the connections",
                    last_beat.elapsed().as_secs_f64()
                ));
            }
            let snap = self.fleet.poll();
            let (finished, ramp_done) = (snap.finished, snap.ramp_done());
            merge_into(&mut self.pending, snap);
            if finished {
                return Ok("its workers finished".to_owned());
            }
            if let Some(why) = self.fleet.broken() {
                return Ok(why);
            }
            if last_report.elapsed() >= report_every {
                last_report = Instant::now();
                let snap = std::mem::replace(&mut self.pending, Snapshot::starting());
                let msg = FromAgent::Report {
                    run: self.run.run.clone(),
                    agent: self.agent.me.name.clone(),
                    seq: self.seq,
                    snap: Box::new(snap),
                };
                self.agent.answer(&self.run.run, &msg);
                self.seq += 1;
                if let FromAgent::Report { snap, .. } = msg {
                    // `pending` starts again from nothing: the next poll's
                    // counters replace its own, and the histograms went
                    // with the report.
                    report.absorb(*snap);
                }
                if ramp_done && !self.ramp_noted {
                    self.ramp_noted = true;
                    report.ramp_done();
                }
            }
            report.tick()?;
        }
    }
}
