//! One sender: the ids it owns, their sequence numbers, and a small pool of
//! connections (lanes) to the target, whatever the publish API.
//!
//! Sender `k` of `S` is generator `G*S + k` and owns the id offsets with
//! `offset % S == k`. It numbers each id's messages 1, 2, 3, ... as it
//! hands them to a request, and an id has at most one request in flight:
//! its next message waits until the server answered the previous one (a
//! batch may carry several messages of one id, in order). So the server
//! receives each (generator, id)'s messages in sequence, on however many
//! connections, and a gap seen by a subscriber is a lost message.
//!
//! Connections are sized by what the target takes: a message is written on
//! an idle connection; when work has waited `--tick` with every connection
//! busy, another opens (up to `--max-conns`), so the pool settles near the
//! rate times the answer time (Little's law: 16,666 msg/s answered in
//! 120 us needs two). With `--pipeline N` a connection carries up to N
//! requests per round trip. While requests are failing, only one is in
//! flight, as before any pool existed, so a target that is down is not
//! hammered by every connection at once.
//!
//! Each round is stamped (`sent_us`, one clock read) when it is written. A
//! failed attempt (connection refused or broken, timeout, 5xx, 408, 429)
//! is sent again on a new connection with the same sequence numbers and a
//! new stamp, after a backoff of 50 ms doubling up to 2 s (or the answer's
//! `Retry-After`, which also pauses this sender), at most `--retries`
//! times; another 4xx is not retried. Messages of a request that failed
//! for good keep their sequence numbers, so a subscriber sees the gap and
//! `failed` in the summary accounts for it. A retry may duplicate: when the
//! request was written but the answer never came, the server may already
//! have delivered it, and a subscriber counts the repeat as a duplicate,
//! not as loss.
//!
//! State: 8 bytes per owned id (`seqs`), 4 per message waiting, 12 per id
//! in flight, and per connection its socket and buffers.

use crate::failure::{Failure, FailureClass};
use crate::ids::local_index;
use crate::publish::{Lane, Msg, Publisher, Reply, Scratch, Stamp};
use crate::queue::{Queue, Stop};
use crate::stats::Stats;
use c1m_common::{unix_us_now, EnvelopeKind, GeneratorSummary};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// What every sender shares.
#[derive(Debug)]
pub(crate) struct SenderConfig {
    pub(crate) publisher: Publisher,
    /// Messages (`[c1m `) or events (`[c1e `, `--publish comet-events`).
    pub(crate) envelope: EnvelopeKind,
    pub(crate) first_id: u64,
    pub(crate) senders: u32,
    /// Most messages in one request (1 for the per-message APIs).
    pub(crate) per_request: usize,
    /// Requests written on a connection before reading their answers.
    pub(crate) pipeline: usize,
    /// Most connections this sender has open at once.
    pub(crate) max_lanes: usize,
    /// Another connection opens when work has waited this long for one.
    pub(crate) grow_after: Duration,
    pub(crate) payload: Vec<u8>,
    pub(crate) retries: u32,
    pub(crate) timeout: Duration,
    /// Failed attempts in a row (over all senders) that end the run; 0:
    /// never.
    pub(crate) stop_after: u64,
}

/// The longest line one message can take in a batch body.
pub(crate) fn max_line_len(payload_len: usize) -> usize {
    // id, tab, envelope header with 20-digit fields, payload, `]`, newline.
    20 + 1 + c1m_common::MAX_ENVELOPE_HEADER + payload_len + 1 + 1
}

/// First retry backoff; doubles each retry up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

fn backoff(retry: u32) -> Duration {
    FIRST_BACKOFF
        .saturating_mul(1 << retry.saturating_sub(1).min(16))
        .min(MAX_BACKOFF)
}

/// Messages behind a busy id that one request may skip to find others; a
/// bound on the work per request when a hot id (Zipf) is in flight.
const MAX_SKIP: usize = 4096;

/// Sender `k`: generator `G*S + k`, owning the offsets `k, k + S, ...`.
pub(crate) struct Sender {
    pub(crate) generator: u64,
    pub(crate) config: Arc<SenderConfig>,
    pub(crate) queue: Arc<Queue>,
    pub(crate) stats: Arc<Stats>,
    pub(crate) stop: Arc<Stop>,
    /// A connection opened before the clock started, if that worked.
    pub(crate) lane: Option<OpenLane>,
    /// Last sequence number per owned id, indexed by `offset / senders`.
    pub(crate) seqs: Vec<u64>,
}

/// A sender's result: its account and its per-id last sequence numbers.
pub(crate) struct Finished {
    pub(crate) summary: GeneratorSummary,
    pub(crate) seqs: Vec<u64>,
}

/// An open connection, counted in the stats while it lives.
pub(crate) struct OpenLane {
    lane: Lane,
    /// When it last wrote, for the inter-send gaps.
    last_write: Option<Instant>,
    scratch: Scratch,
    stats: Arc<Stats>,
}

impl OpenLane {
    pub(crate) fn new(lane: Lane, stats: &Arc<Stats>) -> Self {
        stats.lane_opened();
        Self {
            lane,
            last_write: None,
            scratch: Scratch::default(),
            stats: Arc::clone(stats),
        }
    }
}

impl Drop for OpenLane {
    fn drop(&mut self) {
        self.stats.lane_closed();
    }
}

/// One request's messages and what became of it so far.
struct Job {
    /// Tells this job's hold on its ids from another job's.
    number: u64,
    msgs: Vec<Msg>,
    retries: u32,
    not_before: Instant,
    /// Why its last attempt failed (a job waiting for its retry).
    last_failure: Option<Failure>,
}

/// A finished round trip.
struct RoundDone {
    /// The connection, when it can carry the next round.
    lane: Option<OpenLane>,
    jobs: Vec<Job>,
    results: Vec<Result<Reply, Failure>>,
    /// Time from the write to the last answer, when answers came.
    answered_in: Option<Duration>,
}

/// The sender's working state.
#[derive(Default)]
struct Work {
    /// Offsets taken from the queue, not yet in a request.
    pending: VecDeque<u32>,
    /// Offsets in flight, with the job holding them.
    busy: HashMap<u32, u64>,
    /// Failed jobs waiting for their retry.
    retries: Vec<Job>,
    idle: Vec<OpenLane>,
    next_number: u64,
    /// False after a round in which every request failed: then one
    /// request at a time, retries first.
    unhealthy: bool,
    /// Since when work has waited with every connection busy.
    starved_since: Option<Instant>,
    /// `Retry-After`: nothing is written before this.
    paused_until: Option<Instant>,
}

impl Sender {
    /// Sends until the queue is closed and everything taken is answered,
    /// or the stop is set and the requests in flight are answered.
    pub(crate) async fn run(mut self) -> Finished {
        let mut work = Work::default();
        work.idle.extend(self.lane.take());
        let mut rounds: JoinSet<RoundDone> = JoinSet::new();
        let mut summary = GeneratorSummary {
            generator: self.generator,
            ..Default::default()
        };
        let config = Arc::clone(&self.config);
        // The queue keeps the backlog (bounded); this keeps a few rounds.
        let pending_cap = config.per_request * config.pipeline * 4;
        let mut queue_open = true;
        let mut taken = Vec::with_capacity(pending_cap);
        loop {
            if self.stop.is_set() {
                let unsent = work.pending.len() as u64;
                self.stats.unsent.fetch_add(unsent, Relaxed);
                work.pending.clear();
                for mut job in std::mem::take(&mut work.retries) {
                    let failure = job.last_failure.take().expect("a retry failed before");
                    self.fail(&mut work, job, &failure, &mut summary);
                }
            } else {
                self.dispatch(&mut work, &mut rounds, &mut summary);
            }
            let drained = work.pending.is_empty() && work.retries.is_empty();
            if rounds.is_empty() && drained && (!queue_open || self.stop.is_set()) {
                break;
            }
            let deadline = self.deadline(&work, rounds.len());
            let room = pending_cap.saturating_sub(work.pending.len());
            let want_more = queue_open && !self.stop.is_set() && room > 0;
            tokio::select! {
                Some(done) = rounds.join_next(), if !rounds.is_empty() => {
                    let done = done.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
                    self.finish(&mut work, done, &mut summary);
                }
                more = self.queue.take(room.max(1), &mut taken), if want_more => {
                    queue_open = more;
                    work.pending.extend(taken.drain(..));
                }
                () = sleep_until(deadline), if deadline.is_some() => {}
                () = self.stop.wait(), if !self.stop.is_set() => {}
            }
        }
        self.stats
            .unsent
            .fetch_add(self.queue.discard() as u64, Relaxed);
        summary.ids_used = self.seqs.iter().filter(|&&s| s > 0).count() as u64;
        summary.max_seq = self.seqs.iter().copied().max().unwrap_or(0);
        Finished {
            summary,
            seqs: self.seqs,
        }
    }

    /// Starts rounds while there is work and a connection for it.
    fn dispatch(
        &mut self,
        work: &mut Work,
        rounds: &mut JoinSet<RoundDone>,
        summary: &mut GeneratorSummary,
    ) {
        let now = Instant::now();
        if work.paused_until.is_some_and(|t| t > now) {
            return;
        }
        work.paused_until = None;
        let cap = if work.unhealthy {
            1
        } else {
            self.config.max_lanes
        };
        loop {
            if work.unhealthy && !rounds.is_empty() {
                return;
            }
            let retry_ready = work.retries.iter().any(|j| j.not_before <= now);
            // While failing, nothing new goes ahead of a waiting retry.
            let new_ok = !work.pending.is_empty() && (!work.unhealthy || work.retries.is_empty());
            if !retry_ready && !new_ok {
                work.starved_since = None;
                return;
            }
            let open = work.idle.len() + rounds.len();
            let lane = match work.idle.pop() {
                Some(lane) => Some(lane),
                None if open < cap
                    && (open == 0
                        || work
                            .starved_since
                            .is_some_and(|t| now - t >= self.config.grow_after)) =>
                {
                    work.starved_since = None;
                    None
                }
                None => {
                    work.starved_since.get_or_insert(now);
                    return;
                }
            };
            let mut jobs = Vec::new();
            while jobs.len() < self.config.pipeline {
                if let Some(i) = work.retries.iter().position(|j| j.not_before <= now) {
                    jobs.push(work.retries.swap_remove(i));
                } else if work.unhealthy && (!work.retries.is_empty() || !jobs.is_empty()) {
                    break;
                } else if let Some(job) = self.next_job(work, now, summary) {
                    jobs.push(job);
                } else {
                    break;
                }
            }
            if jobs.is_empty() {
                work.idle.extend(lane);
                return;
            }
            let round = Round {
                config: Arc::clone(&self.config),
                stats: Arc::clone(&self.stats),
                generator: self.generator,
            };
            rounds.spawn(round.run(lane, jobs));
        }
    }

    /// Numbers up to a request's worth of waiting messages whose ids are
    /// not in flight elsewhere, oldest first.
    fn next_job(
        &mut self,
        work: &mut Work,
        now: Instant,
        summary: &mut GeneratorSummary,
    ) -> Option<Job> {
        let number = work.next_number;
        let mut msgs = Vec::new();
        let (mut i, mut skipped) = (0, 0);
        while i < work.pending.len() && msgs.len() < self.config.per_request && skipped < MAX_SKIP {
            let offset = work.pending[i];
            if work
                .busy
                .get(&offset)
                .is_some_and(|&holder| holder != number)
            {
                i += 1;
                skipped += 1;
                continue;
            }
            work.pending.remove(i);
            work.busy.insert(offset, number);
            let seq = &mut self.seqs[local_index(offset, self.config.senders)];
            *seq += 1;
            msgs.push(Msg {
                id: self.config.first_id + u64::from(offset),
                seq: *seq,
            });
        }
        if msgs.is_empty() {
            return None;
        }
        work.next_number += 1;
        summary.numbered += msgs.len() as u64;
        Some(Job {
            number,
            msgs,
            retries: 0,
            not_before: now,
            last_failure: None,
        })
    }

    /// Accounts a finished round: answers, retries, failures for good.
    fn finish(&mut self, work: &mut Work, done: RoundDone, summary: &mut GeneratorSummary) {
        work.idle.extend(done.lane);
        if let Some(answered_in) = done.answered_in {
            self.stats.record_answer(answered_in);
        }
        let now = Instant::now();
        let mut any_ok = false;
        for (mut job, result) in done.jobs.into_iter().zip(done.results) {
            let n = job.msgs.len() as u64;
            let failure = match result {
                Ok(reply) => {
                    any_ok = true;
                    self.stats.attempt_succeeded();
                    // Refused lines keep their sequence numbers: a gap for
                    // the subscriber, `rejected` in the summary.
                    self.stats.sent.fetch_add(n - reply.rejected, Relaxed);
                    if reply.rejected > 0 {
                        self.stats
                            .failed
                            .add(FailureClass::Rejected, reply.rejected);
                    }
                    if let Some(dropped) = reply.dropped {
                        self.stats.dropped.fetch_add(dropped, Relaxed);
                    }
                    match reply.fanout {
                        Some(fanout) => self.stats.record_fanout(fanout),
                        None if self.config.envelope == EnvelopeKind::Event => {
                            let events = n - reply.rejected;
                            self.stats.unreported.fetch_add(events, Relaxed);
                        }
                        None => {}
                    }
                    summary.sent += n;
                    self.release(work, &job);
                    continue;
                }
                Err(failure) => failure,
            };
            let in_a_row = self.stats.attempt_failed(&failure);
            if self.config.envelope == EnvelopeKind::Event && failure.class.may_have_arrived() {
                // The server may have fanned these out before its answer
                // was lost: a retry can deliver them twice, and `expected`
                // does not count the first time.
                self.stats.uncertain.fetch_add(n, Relaxed);
            }
            // `--target - | head`: the reader is gone and no retry brings
            // it back; end the run as a signal would.
            if matches!(self.config.publisher, Publisher::Stdout)
                && failure.class == FailureClass::Reset
                && self.stop.set()
            {
                eprintln!("msggen: standard output was closed: stopping");
            }
            let limit = self.config.stop_after;
            if limit > 0 && in_a_row >= limit {
                let reason = format!("{in_a_row} attempts in a row failed (--stop-after {limit})");
                if self.stats.stop_early(reason) {
                    self.stop.set();
                }
            }
            if let Some(wait) = failure.retry_after {
                let until = now + wait;
                work.paused_until = Some(work.paused_until.map_or(until, |t| t.max(until)));
            }
            if failure.class.retryable() && job.retries < self.config.retries && !self.stop.is_set()
            {
                job.retries += 1;
                self.stats.retries.fetch_add(1, Relaxed);
                let wait = backoff(job.retries).max(failure.retry_after.unwrap_or_default());
                job.not_before = now + wait;
                job.last_failure = Some(failure);
                work.retries.push(job);
            } else {
                self.fail(work, job, &failure, summary);
            }
        }
        work.unhealthy = !any_ok;
    }

    fn fail(&self, work: &mut Work, job: Job, failure: &Failure, summary: &mut GeneratorSummary) {
        let n = job.msgs.len() as u64;
        self.stats.messages_failed(failure, n);
        summary.failed += n;
        self.release(work, &job);
    }

    /// The job's ids may go into the next request.
    fn release(&self, work: &mut Work, job: &Job) {
        for msg in &job.msgs {
            let offset = (msg.id - self.config.first_id) as u32;
            if work.busy.get(&offset) == Some(&job.number) {
                work.busy.remove(&offset);
            }
        }
    }

    /// When the loop must look again without an answer or a message: a
    /// retry falls due, a pause ends, or a starved pool may grow. `None`
    /// when only an answer or a message can change anything (so the loop
    /// never spins on a deadline it cannot act on).
    fn deadline(&self, work: &Work, in_flight: usize) -> Option<Instant> {
        if self.stop.is_set() {
            return None;
        }
        if let Some(until) = work.paused_until {
            return Some(until);
        }
        let open = work.idle.len() + in_flight;
        let cap = if work.unhealthy {
            1
        } else {
            self.config.max_lanes
        };
        let lane_possible = !work.idle.is_empty() || open < cap;
        let retry = work
            .retries
            .iter()
            .map(|j| j.not_before)
            .min()
            .filter(|_| lane_possible);
        let grow = work
            .starved_since
            .filter(|_| open < cap)
            .map(|t| t + self.config.grow_after);
        retry.into_iter().chain(grow).min()
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    if let Some(at) = deadline {
        tokio::time::sleep_until(at.into()).await;
    }
}

/// What a round needs, moved into its task.
struct Round {
    config: Arc<SenderConfig>,
    stats: Arc<Stats>,
    generator: u64,
}

impl Round {
    /// Connects when `lane` is none (or stale), writes the jobs' requests
    /// and reads their answers, all within `--timeout`.
    async fn run(self, lane: Option<OpenLane>, jobs: Vec<Job>) -> RoundDone {
        let mut results = Vec::with_capacity(jobs.len());
        let mut written = None;
        let exchange = self.exchange(lane, &jobs, &mut results, &mut written);
        // A round past --timeout: its connection is dropped with it.
        let lane: Option<OpenLane> = tokio::time::timeout(self.config.timeout, exchange)
            .await
            .unwrap_or_default();
        let answered_in = written
            .filter(|_| !results.is_empty())
            .map(|at: Instant| at.elapsed());
        let timeout = Failure::new(
            FailureClass::Timeout,
            format!("no answer within --timeout {:?}", self.config.timeout),
        );
        while results.len() < jobs.len() {
            results.push(Err(timeout.clone()));
        }
        RoundDone {
            lane,
            jobs,
            results,
            answered_in,
        }
    }

    async fn exchange(
        &self,
        lane: Option<OpenLane>,
        jobs: &[Job],
        results: &mut Vec<Result<Reply, Failure>>,
        written: &mut Option<Instant>,
    ) -> Option<OpenLane> {
        let publisher = &self.config.publisher;
        let mut lane = match lane {
            Some(lane) if !Publisher::is_stale(&lane.lane) => lane,
            _ => match publisher.connect().await {
                Ok(lane) => OpenLane::new(lane, &self.stats),
                Err(failure) => {
                    results.extend(jobs.iter().map(|_| Err(failure.clone())));
                    return None;
                }
            },
        };
        let requests: Vec<&[Msg]> = jobs.iter().map(|j| j.msgs.as_slice()).collect();
        let messages: usize = requests.iter().map(|r| r.len()).sum();
        let at = Instant::now();
        let stamp = Stamp {
            kind: self.config.envelope,
            generator: self.generator,
            sent_us: unix_us_now(),
            payload: &self.config.payload,
        };
        let since_previous = lane.last_write.map(|previous| at - previous);
        lane.last_write = Some(at);
        *written = Some(at);
        self.stats.record_write(at, messages as u64, since_previous);
        let OpenLane {
            lane: conn,
            scratch,
            ..
        } = &mut lane;
        let reusable = publisher
            .exchange(conn, &requests, &stamp, scratch, results)
            .await;
        reusable.then_some(lane)
    }
}

/// A printable ASCII payload of `len` bytes: letters and digits, so no tab
/// or newline can break a batch line and no API needs to escape it.
pub(crate) fn payload(len: usize) -> Vec<u8> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    ALPHABET.iter().copied().cycle().take(len).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_a_cap() {
        assert_eq!(backoff(1), Duration::from_millis(50));
        assert_eq!(backoff(2), Duration::from_millis(100));
        assert_eq!(backoff(5), Duration::from_millis(800));
        assert_eq!(backoff(30), MAX_BACKOFF);
    }

    #[test]
    fn lines_fit_the_bound() {
        let p = payload(100);
        let stamp = Stamp {
            kind: EnvelopeKind::Event,
            generator: u64::MAX,
            sent_us: u64::MAX,
            payload: &p,
        };
        let mut out = Vec::new();
        c1m_common::push_batch_line(&mut out, u64::MAX, |o| {
            stamp.envelope(
                Msg {
                    id: u64::MAX,
                    seq: u64::MAX,
                },
                o,
            )
        })
        .unwrap();
        assert!(out.len() < max_line_len(100));
        assert!(p.iter().all(|b| b.is_ascii_graphic()));
    }
}
