//! The workers of a run, seen as one: threads in this process
//! ([`LocalFleet`]) or child processes ([`crate::children::ChildFleet`]).
//! The controller polls a fleet for a merged [`Snapshot`], releases pauses
//! and stops it, without knowing which kind it has.

use crate::plan::Unit;
use crate::stats::Snapshot;
use crate::worker::{Control, Slot, Worker};
use std::io;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Barrier, Mutex};
use std::thread::JoinHandle;

pub(crate) trait Fleet {
    /// Cumulative counters and gauges now, with the histograms recorded
    /// since the previous poll.
    fn poll(&mut self) -> Snapshot;
    /// Lets every worker pass its current `--pause-every` step.
    fn release(&mut self);
    /// Asks every worker to close its connections and finish.
    fn stop(&mut self);
    /// Why part of the fleet has ended before it was asked to (a worker
    /// that failed, a child process that died), once that has happened.
    fn broken(&mut self) -> Option<String>;
    /// Stops and waits for the workers; returns what they recorded since
    /// the last poll and, if any part failed, why (the run is incomplete,
    /// but what it counted is still reported).
    fn join(self: Box<Self>) -> Joined;
}

/// The end of a fleet.
pub(crate) struct Joined {
    pub(crate) last: Snapshot,
    /// Each part that failed and how; empty when all ended cleanly.
    pub(crate) failures: Vec<String>,
    /// Each agent's own summary, when the fleet is agents.
    pub(crate) agents: Vec<c1m_common::AgentSummary>,
}

/// Resident set size of this process, bytes; 0 if /proc cannot say.
fn rss_bytes() -> u64 {
    c1m_common::rss_bytes(c1m_common::Pid::Current).unwrap_or(0)
}

/// Worker threads in this process.
pub(crate) struct LocalFleet {
    control: Arc<Control>,
    slots: Vec<Arc<Slot>>,
    handles: Vec<JoinHandle<io::Result<()>>>,
    /// RSS once the workers had allocated, before the first connect.
    baseline_rss: u64,
    /// Connections this process opens.
    target: u64,
    /// Open connections and RSS the first time half the target was open.
    half: Option<(u64, u64)>,
    peak_open: u64,
    rss_at_peak: u64,
}

impl LocalFleet {
    /// Starts one worker per unit. Workers allocate, then wait until the
    /// baseline RSS is taken, so the memory delta is what connections cost.
    ///
    /// What one connection costs is the growth from the moment half the
    /// target was open to the peak, over the connections added in between:
    /// what the first connections pay once (histogram pages, thread stacks
    /// deepening, the controller's first figures: ~0.5 MiB here) falls out,
    /// where dividing the growth since the baseline by the peak charged it
    /// to them (36 KB a connection at 10 connections).
    pub(crate) fn start(units: Vec<Unit>, control: Arc<Control>) -> anyhow::Result<Self> {
        let target = units.iter().map(|u| u.indices.len()).sum();
        let gate = Arc::new(Barrier::new(units.len() + 1));
        let mut slots = Vec::new();
        let mut handles = Vec::new();
        for (i, unit) in units.into_iter().enumerate() {
            let slot = Arc::new(Mutex::new(Snapshot::starting()));
            slots.push(slot.clone());
            let (control, gate) = (control.clone(), gate.clone());
            let handle = std::thread::Builder::new()
                .name(format!("worker-{i}"))
                .spawn(move || {
                    let worker = Worker::new(unit, control, slot);
                    gate.wait();
                    gate.wait();
                    worker?.run()
                })?;
            handles.push(handle);
        }
        gate.wait();
        let baseline_rss = rss_bytes();
        gate.wait();
        Ok(Self {
            control,
            slots,
            handles,
            baseline_rss,
            target,
            half: None,
            peak_open: 0,
            rss_at_peak: baseline_rss,
        })
    }

    fn collect(&mut self) -> Snapshot {
        let mut merged = Snapshot::empty();
        for slot in &self.slots {
            let mut s = slot.lock().unwrap_or_else(|p| p.into_inner());
            merged.merge(&s);
            s.timings.reset();
        }
        let open = merged.counters.open();
        if open > 0 && open >= self.peak_open {
            self.peak_open = open;
            self.rss_at_peak = rss_bytes();
        }
        if self.half.is_none() && open > 0 && open >= self.target.div_ceil(2) {
            self.half = Some((open, rss_bytes()));
        }
        // From half way when the peak went past it, else from the baseline.
        let (from_open, from_rss) = match self.half {
            Some((open, rss)) if self.peak_open > open => (open, rss),
            _ => (0, self.baseline_rss),
        };
        merged.peak_open = self.peak_open;
        merged.rss_delta_bytes = self.rss_at_peak as i64 - from_rss as i64;
        merged.rss_conns = self.peak_open - from_open;
        merged
    }
}

impl Fleet for LocalFleet {
    fn poll(&mut self) -> Snapshot {
        self.collect()
    }

    fn release(&mut self) {
        self.control.gate.fetch_add(1, Ordering::Relaxed);
    }

    fn stop(&mut self) {
        self.control.stop.store(true, Ordering::Relaxed);
    }

    fn broken(&mut self) -> Option<String> {
        // A worker returns only when told to stop, or on an error. Stop is
        // read after the handles: a worker that ended because of a stop set
        // in between is then not mistaken for a failure.
        let ended = self.handles.iter().filter(|h| h.is_finished()).count();
        let stopping = self.control.stop.load(Ordering::SeqCst);
        (!stopping && ended > 0).then(|| format!("{ended} worker thread(s) ended early"))
    }

    fn join(mut self: Box<Self>) -> Joined {
        self.stop();
        let mut failures = Vec::new();
        for (i, handle) in std::mem::take(&mut self.handles).into_iter().enumerate() {
            match handle.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failures.push(format!("worker {i} failed: {e}")),
                Err(_) => failures.push(format!("worker {i} panicked")),
            }
        }
        Joined {
            last: self.collect(),
            failures,
            agents: Vec::new(),
        }
    }
}
