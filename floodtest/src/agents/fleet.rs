//! The agents of a started run as one [`Fleet`], for the controller's loop.
//!
//! Each agent's latest report is kept as the `--procs` parent keeps a
//! child's line: cumulative counters and gauges replace the previous ones,
//! histograms add up until the loop polls them, so the merged histograms
//! hold every value every agent recorded (exact, not an average of
//! percentiles). The controller beats once a second on each agent's subject
//! (an agent closes its connections when the beats stop). An agent silent
//! for `--agent-timeout` is lost: its connections count as closed, the run
//! ends marked incomplete with its name, and the others' figures stay. A
//! report missing from an agent's sequence marks the run incomplete too
//! (its histograms are short of that second). Cost: one [`Snapshot`] per
//! agent.

use super::bus::Bus;
use super::wire::{self, FromAgent, ToAgent};
use crate::fleet::{Fleet, Joined};
use crate::stats::{Snapshot, Timings};
use c1m_common::AgentSummary;
use std::time::{Duration, Instant};

/// How often the controller tells the agents it is there.
const BEAT_EVERY: Duration = Duration::from_secs(1);

/// How long the agents may take to close their connections and send their
/// final report once told to stop (as for `--procs` children).
const STOP_WAIT: Duration = Duration::from_secs(30);

/// What the controller knows of one agent.
struct View {
    name: String,
    snap: Snapshot,
    heard: Instant,
    next_seq: u64,
    /// Why it was given up, once it was.
    lost: Option<String>,
    /// Its final report's summary.
    summary: Option<AgentSummary>,
}

pub(crate) struct AgentFleet {
    bus: Bus,
    run: String,
    views: Vec<View>,
    timeout: Duration,
    beat: Instant,
    /// Reports that never arrived, by agent.
    gaps: Vec<String>,
}

impl AgentFleet {
    /// The agents `names` of run `run`, just told to start.
    pub(crate) fn new(bus: Bus, run: String, names: Vec<String>, timeout: Duration) -> Self {
        let now = Instant::now();
        let views = names
            .into_iter()
            .map(|name| View {
                name,
                snap: Snapshot::starting(),
                heard: now,
                next_seq: 0,
                lost: None,
                summary: None,
            })
            .collect();
        AgentFleet {
            bus,
            run,
            views,
            timeout,
            beat: now,
            gaps: Vec::new(),
        }
    }

    /// Sends `msg` to every agent not given up.
    fn tell(&self, msg: &ToAgent) {
        let bytes = wire::encode(msg);
        for v in self.views.iter().filter(|v| v.lost.is_none()) {
            self.bus
                .publish(&wire::agent_subject(&v.name), bytes.clone());
        }
    }

    fn beat_if_due(&mut self) {
        if self.beat.elapsed() >= BEAT_EVERY {
            self.beat = Instant::now();
            self.tell(&ToAgent::Beat {
                run: self.run.clone(),
            });
        }
    }

    /// Takes in one message from an agent.
    fn take(&mut self, payload: &[u8]) {
        let (agent, seq, snap, summary) = match wire::decode::<FromAgent>(payload) {
            Ok(FromAgent::Report {
                run,
                agent,
                seq,
                snap,
            }) if run == self.run => (agent, seq, snap, None),
            Ok(FromAgent::Final {
                run,
                agent,
                seq,
                snap,
                summary,
            }) if run == self.run => (agent, seq, snap, Some(summary)),
            _ => return,
        };
        let Some(v) = self.views.iter_mut().find(|v| v.name == agent) else {
            return;
        };
        if v.lost.is_some() {
            // Given up already: its figures were closed off then.
            return;
        }
        if seq != v.next_seq {
            self.gaps.push(format!(
                "agent {agent}: report(s) {}-{} lost on the way",
                v.next_seq,
                seq.saturating_sub(1)
            ));
        }
        v.next_seq = seq + 1;
        v.heard = Instant::now();
        let mut timings = std::mem::replace(&mut v.snap.timings, Timings::new());
        timings.add(&snap.timings);
        v.snap = Snapshot { timings, ..*snap };
        if let Some(summary) = summary {
            v.snap.finished = true;
            v.summary = Some(*summary);
        }
    }

    /// Takes in everything received so far.
    fn drain(&mut self) {
        while let Some(msg) = self.bus.try_recv() {
            self.take(&msg.payload);
        }
    }

    /// Gives an agent up: its connections count as closed.
    fn give_up(v: &mut View, why: String) {
        v.lost = Some(why);
        v.snap.mark_dead();
    }

    fn merged(&mut self) -> Snapshot {
        let mut merged = Snapshot::empty();
        for v in &mut self.views {
            merged.merge(&v.snap);
            v.snap.timings.reset();
        }
        merged
    }
}

impl Fleet for AgentFleet {
    fn poll(&mut self) -> Snapshot {
        self.beat_if_due();
        self.drain();
        let timeout = self.timeout;
        for v in &mut self.views {
            if v.lost.is_none() && v.summary.is_none() && v.heard.elapsed() >= timeout {
                let why = format!(
                    "agent {} lost: no report for {:.1}s",
                    v.name,
                    v.heard.elapsed().as_secs_f64()
                );
                Self::give_up(v, why);
            }
        }
        self.merged()
    }

    fn release(&mut self) {
        self.tell(&ToAgent::Release {
            run: self.run.clone(),
        });
    }

    fn stop(&mut self) {
        self.tell(&ToAgent::Stop {
            run: self.run.clone(),
        });
        self.bus.flush(Duration::from_secs(5));
    }

    fn broken(&mut self) -> Option<String> {
        let lost: Vec<&str> = self
            .views
            .iter()
            .filter_map(|v| v.lost.as_deref())
            .collect();
        (!lost.is_empty()).then(|| lost.join(", "))
    }

    fn join(mut self: Box<Self>) -> Joined {
        self.stop();
        let deadline = Instant::now() + STOP_WAIT;
        while Instant::now() < deadline
            && self
                .views
                .iter()
                .any(|v| v.lost.is_none() && v.summary.is_none())
        {
            // Beats go on: an agent closing many connections is not left
            // thinking its controller has gone.
            self.beat_if_due();
            if let Some(msg) = self.bus.recv_timeout(crate::drive::TICK) {
                self.take(&msg.payload);
            }
        }
        for v in &mut self.views {
            if v.lost.is_none() && v.summary.is_none() {
                let why = format!(
                    "agent {} sent no final report within {}s of the stop",
                    v.name,
                    STOP_WAIT.as_secs()
                );
                Self::give_up(v, why);
            }
        }
        let last = self.merged();
        let mut failures: Vec<String> = self.views.iter().filter_map(|v| v.lost.clone()).collect();
        failures.append(&mut self.gaps);
        let agents = self
            .views
            .iter_mut()
            .filter_map(|v| v.summary.take())
            .collect();
        Joined {
            last,
            failures,
            agents,
        }
    }
}
