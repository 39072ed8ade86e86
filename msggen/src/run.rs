//! A send run: checks the configuration before anything starts, connects
//! the senders, starts the clock, the pacer, the reporter and the signal
//! watcher, waits for the senders to finish, and writes the summary.
//!
//! Threads: the pacer has its own OS thread; the senders and the reporter
//! share a two-worker tokio runtime (a sender spends its time waiting for
//! the target, and two workers are what this machine has).

use crate::ids::{owned_count, IdSampler};
use crate::pacer::{Pace, Pacer};
use crate::publish::{Kind, Publisher};
use crate::queue::{Queue, Stop};
use crate::report::{self, Outputs, Reporter};
use crate::schedule::{Rate, Schedule};
use crate::sender::{max_line_len, payload, Finished, OpenLane, Sender, SenderConfig};
use crate::stats::Stats;
use crate::SendArgs;
use anyhow::{bail, Context};
use c1m_common::IdRange;
use c1m_common::MsggenSummary;
use c1m_common::MAX_ENVELOPE_PAYLOAD;
use c1m_common::{Repeat, StopSignals};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Most senders (generators) in one process.
const MAX_SENDERS: u32 = 10_000;
/// Most connections in one process: under the descriptor limit (20,000
/// here) with room for the rest of the process.
const MAX_CONNS: u32 = 16_000;
/// Most pipelined requests per connection.
const MAX_PIPELINE: u32 = 1024;
/// The longest `--tick` and `--timeout` that mean something: a tick is a
/// batching interval, a timeout a wait for one answer.
const MAX_TICK: Duration = Duration::from_secs(1);
const MAX_TIMEOUT: Duration = Duration::from_secs(3600);
/// Most retries of one request (past this, backoff alone is 2 s each).
const MAX_RETRIES: u32 = 1000;

/// A checked configuration.
#[derive(Debug)]
struct Plan {
    args: SendArgs,
    publisher: Publisher,
    kind: Kind,
    ids: IdRange,
    rate: Rate,
    pace: Pace,
    batch_lines: usize,
    seed: u64,
}

impl Plan {
    /// Refuses, with the fix, a configuration that cannot work.
    fn from_args(args: &SendArgs) -> anyhow::Result<Self> {
        let (Some(url), Some(ids), Some(rate)) = (&args.target, args.ids, args.rate) else {
            bail!("--target, --ids and --rate are required");
        };
        let (publisher, kind) = Publisher::new(url, &args.publish, args.token.as_deref())
            .map_err(anyhow::Error::msg)?;
        if ids.len() > u64::from(u32::MAX) {
            bail!("--ids {ids} holds {} ids; at most {} fit one msggen process: split the range over several processes (--generator-id tells them apart)", ids.len(), u32::MAX);
        }
        if args.senders == 0 || args.senders > MAX_SENDERS {
            bail!(
                "--senders {} is out of range: use 1 to {MAX_SENDERS}",
                args.senders
            );
        }
        if u64::from(args.senders) > ids.len() {
            bail!(
                "--senders {} is more than the {} ids: each sender owns ids of its own; use --senders {} or fewer",
                args.senders,
                ids.len(),
                ids.len()
            );
        }
        // Sender k is generator G*S + k: the last one must fit a u64, or
        // two processes' generators (and their accounting) would coincide.
        let last_generator = args
            .generator_id
            .checked_mul(u64::from(args.senders))
            .and_then(|g| g.checked_add(u64::from(args.senders) - 1));
        if last_generator.is_none() {
            bail!(
                "--generator-id {} with --senders {} numbers generators past {}: use a --generator-id below {}",
                args.generator_id,
                args.senders,
                u64::MAX,
                u64::MAX / u64::from(args.senders)
            );
        }
        if args.max_conns < args.senders || args.max_conns > MAX_CONNS {
            bail!(
                "--max-conns {} is out of range: each of the {} senders needs a connection, and one process holds at most {MAX_CONNS}: use {} to {MAX_CONNS}",
                args.max_conns,
                args.senders,
                args.senders
            );
        }
        if args.pipeline == 0 || args.pipeline > MAX_PIPELINE {
            bail!(
                "--pipeline {} is out of range: use 1 (no pipelining) to {MAX_PIPELINE}",
                args.pipeline
            );
        }
        if args.pipeline > 1 && !matches!(publisher, Publisher::Http(_)) {
            bail!("--pipeline is for HTTP publish APIs; {kind} batches its messages already");
        }
        if args.retries > MAX_RETRIES {
            bail!(
                "--retries {} is over {MAX_RETRIES}: a request retried that often outlives any run",
                args.retries
            );
        }
        if args.size > MAX_ENVELOPE_PAYLOAD as u64 {
            bail!(
                "--size {} is over the envelope's 1 MiB payload limit",
                args.size
            );
        }
        if args.batch_max == 0 {
            bail!("--batch-max 0: a batch carries at least one message");
        }
        if args.timeout.is_zero() {
            bail!("--timeout 0s would fail every request: give a limit such as 5s");
        }
        if args.timeout > MAX_TIMEOUT {
            bail!("--timeout is over an hour: give a limit such as 5s");
        }
        if args.tick > MAX_TICK {
            bail!("--tick is over 1s: it is the batching interval (1ms by default), not a rate");
        }
        // A Pushpin item wraps the line in about 60 bytes of JSON.
        let line = max_line_len(args.size as usize) as u64 + 64;
        let batch_lines = if kind.per_message() {
            1
        } else {
            u64::from(args.batch_max).min(args.batch_bytes / line) as usize
        };
        if batch_lines == 0 {
            bail!(
                "a message of --size {} takes up to {line} bytes, more than --batch-bytes {}: raise --batch-bytes",
                args.size,
                args.batch_bytes
            );
        }
        if args.count.is_none() && args.duration.is_none() {
            bail!("give --count or --duration: every run is bounded");
        }
        if args.count == Some(0) || args.duration.is_some_and(|d| d.is_zero()) {
            bail!("--count and --duration must be above 0: a run sends at least one message");
        }
        if args.tick.is_zero() || args.report_interval.is_zero() {
            bail!("--tick and --report-interval must be above 0");
        }
        if args.report_interval > Duration::from_secs(24 * 3600) {
            bail!("--report-interval is over a day: report at least daily (--report-interval 24h)");
        }
        let lanes_per_sender = if kind.per_message() {
            (args.max_conns / args.senders) as usize
        } else {
            1
        };
        let pace = match rate {
            Rate::PerSecond(per_second) => Pace::Paced {
                schedule: Schedule::new(per_second, args.count, args.duration),
                // Two seconds of this sender's share, and at least 16 batches.
                backlog: ((per_second * 2.0 / f64::from(args.senders)).ceil() as usize)
                    .max(16 * batch_lines),
            },
            Rate::Max => Pace::Max {
                total: args.count.unwrap_or(u64::MAX),
                deadline: args.duration,
                // Enough for every connection a sender may open to carry
                // a few rounds.
                high_water: 4 * batch_lines * args.pipeline as usize * lanes_per_sender,
            },
        };
        let seed = args.seed.unwrap_or_else(c1m_common::unix_us_now);
        Ok(Self {
            args: args.clone(),
            publisher,
            kind,
            ids,
            rate,
            pace,
            batch_lines,
            seed,
        })
    }

    fn total(&self) -> Option<u64> {
        match self.pace {
            Pace::Paced { schedule, .. } => Some(schedule.total()),
            Pace::Max { total, .. } => (total != u64::MAX).then_some(total),
        }
    }
}

/// Runs a send and returns 0 when every message was accepted, 1 when some
/// failed for good, 2 when it could not run (or stopped early, failing).
pub(crate) fn run(args: &SendArgs) -> anyhow::Result<ExitCode> {
    let plan = Plan::from_args(args)?;
    // Every output file is created now, before the first message: a path
    // that cannot be written is an error before the run, not after it.
    let outputs = Outputs::create(args)?;
    c1m_common::raise_nofile_to_hard().context("raising RLIMIT_NOFILE")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(execute(plan, outputs))
}

async fn execute(plan: Plan, outputs: Outputs) -> anyhow::Result<ExitCode> {
    let args = &plan.args;
    let senders = args.senders;
    let n_ids = plan.ids.len() as u32;
    let stdout = matches!(plan.publisher, Publisher::Stdout);
    let config = Arc::new(SenderConfig {
        publisher: plan.publisher.clone(),
        envelope: plan.kind.envelope(),
        first_id: plan.ids.first,
        senders,
        per_request: plan.batch_lines,
        pipeline: args.pipeline as usize,
        // Standard output is one stream: one writer keeps its lines whole.
        max_lanes: if stdout {
            1
        } else {
            (args.max_conns / senders) as usize
        },
        grow_after: args.tick,
        payload: payload(args.size as usize),
        retries: args.retries,
        timeout: args.timeout,
        stop_after: args.stop_after,
    });
    // Connect before the clock starts, so the first requests do not pay
    // for it; a target that is down is left to the senders' retries.
    let connecting: Vec<_> = (0..senders)
        .map(|_| {
            let config = Arc::clone(&config);
            tokio::spawn(async move {
                tokio::time::timeout(config.timeout, config.publisher.connect()).await
            })
        })
        .collect();
    let mut lanes = Vec::with_capacity(senders as usize);
    for handle in connecting {
        lanes.push(handle.await.ok().and_then(Result::ok).and_then(Result::ok));
    }
    let to = match args.target.as_deref() {
        Some("-") | None => "standard output".to_owned(),
        Some(target) => target.to_owned(),
    };
    let first_generator = args.generator_id * u64::from(senders);
    eprintln!(
        "msggen: {} messages to {to} ({}) ids {} ({}) at {} from {senders} senders (generators {}-{}), seed {}",
        plan.total().map_or("unbounded".to_owned(), |t| t.to_string()),
        plan.kind,
        plan.ids,
        args.dist,
        plan.rate,
        first_generator,
        first_generator + u64::from(senders) - 1,
        plan.seed
    );

    let stats = Arc::new(Stats::new(Instant::now()));
    let stop = Arc::new(Stop::default());
    let queues: Vec<Arc<Queue>> = (0..senders).map(|_| Arc::new(Queue::default())).collect();
    let handles: Vec<_> = lanes
        .into_iter()
        .enumerate()
        .map(|(k, lane)| {
            let k = k as u32;
            let sender = Sender {
                generator: first_generator + u64::from(k),
                config: Arc::clone(&config),
                queue: Arc::clone(&queues[k as usize]),
                stats: Arc::clone(&stats),
                stop: Arc::clone(&stop),
                lane: lane.map(|lane| OpenLane::new(lane, &stats)),
                seqs: vec![0; owned_count(n_ids, senders, k)],
            };
            tokio::spawn(sender.run())
        })
        .collect();
    let pacer = Pacer {
        pace: plan.pace,
        tick: args.tick,
        sampler: IdSampler::new(args.dist, n_ids),
        rng: ChaCha8Rng::seed_from_u64(plan.seed),
        queues,
        stats: Arc::clone(&stats),
        stop: Arc::clone(&stop),
    };
    let pacer = std::thread::Builder::new()
        .name("msggen-pacer".into())
        .spawn(move || pacer.run())
        .context("starting the pacer thread")?;
    let signals = watch_signals(Arc::clone(&stop))?;
    let tty = std::io::stderr().is_terminal() && !args.no_progress;
    let Outputs {
        csv,
        json,
        last_seqs,
    } = outputs;
    let reporter = Reporter::new(Arc::clone(&stats), csv, tty, plan.total());
    let done = Arc::new(Notify::new());
    let reporting = tokio::spawn(report_loop(
        reporter,
        args.report_interval,
        tty,
        Arc::clone(&done),
    ));

    let mut finished = Vec::with_capacity(handles.len());
    for handle in handles {
        finished.push(handle.await.context("a sender task panicked")?);
    }
    let released = tokio::task::spawn_blocking(move || pacer.join())
        .await
        .context("joining the pacer")?
        .map_err(|_| anyhow::anyhow!("the pacer thread panicked"))?;
    done.notify_one();
    let mut reporter = reporting.await.context("the reporter panicked")??;
    reporter.finish()?;
    // Only a signal sets this (a closed stdout also stops a run).
    let stopped_by_signal = signals.caught().is_some();

    let mut summary = MsggenSummary {
        target: args.target.clone().unwrap_or_default(),
        publish: plan.kind.to_string(),
        ids: plan.ids.to_string(),
        dist: args.dist.to_string(),
        rate_target: match plan.rate {
            Rate::PerSecond(r) => Some(r),
            Rate::Max => None,
        },
        senders,
        size: args.size,
        released,
        stopped_by_signal,
        generators: finished.iter().map(|f| f.summary.clone()).collect(),
        ..Default::default()
    };
    report::fill_counters(&mut summary, &stats, plan.kind);
    // With --target -, standard output carries the batches.
    if stdout {
        report::print(&summary, &mut std::io::stderr());
    } else {
        report::print(&summary, &mut std::io::stdout());
    }
    if let Some(file) = json {
        file.write_json(&summary)?;
    }
    if let Some(file) = last_seqs {
        write_last_seqs(file, &finished, plan.ids.first, senders)?;
    }
    Ok(if summary.stopped_early.is_some() {
        ExitCode::from(2)
    } else if summary.failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Reports every `interval` (and redraws the bar 4 times a second on a
/// terminal) until `done`; returns the reporter for its final record.
async fn report_loop(
    mut reporter: Reporter,
    interval: Duration,
    tty: bool,
    done: Arc<Notify>,
) -> anyhow::Result<Reporter> {
    let start = tokio::time::Instant::now();
    let mut records = tokio::time::interval_at(start + interval, interval);
    // After a stall, one record covering it rather than a burst of tiny ones.
    records.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let redraw = if tty {
        Duration::from_millis(250)
    } else {
        Duration::from_secs(3600)
    };
    let mut bar = tokio::time::interval_at(start + redraw, redraw);
    loop {
        tokio::select! {
            _ = records.tick() => reporter.interval()?,
            _ = bar.tick() => reporter.draw(),
            () = done.notified() => return Ok(reporter),
        }
    }
}

/// Sets `stop` on SIGINT or SIGTERM (a repeat is ignored: the batches in
/// flight finish), from a thread of its own that blocks until one comes
/// and never holds the process open.
fn watch_signals(stop: Arc<Stop>) -> anyhow::Result<StopSignals> {
    let signals = StopSignals::install(&[libc::SIGINT, libc::SIGTERM], Repeat::Ignore)
        .context("installing the SIGINT/SIGTERM handlers")?;
    std::thread::Builder::new()
        .name("msggen-signals".into())
        .spawn(move || {
            signals.wait();
            eprintln!("msggen: stopping on signal: finishing the batches in flight");
            stop.set();
        })
        .context("starting the signal thread")?;
    Ok(signals)
}

/// `generator,id,last_seq` for every (generator, id) that was sent to.
fn write_last_seqs(
    file: report::OutputFile,
    finished: &[Finished],
    first_id: u64,
    senders: u32,
) -> anyhow::Result<()> {
    let context = || format!("writing {}", file.path.display());
    let mut out = std::io::BufWriter::new(&file.file);
    writeln!(out, "generator,id,last_seq").with_context(context)?;
    for (k, f) in finished.iter().enumerate() {
        for (i, &seq) in f.seqs.iter().enumerate() {
            if seq > 0 {
                let id = first_id + (i as u64) * u64::from(senders) + k as u64;
                writeln!(out, "{},{id},{seq}", f.summary.generator).with_context(context)?;
            }
        }
    }
    out.flush().with_context(context)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn plan(extra: &[&str]) -> anyhow::Result<Plan> {
        let mut argv = vec![
            "msggen",
            "--target",
            "http://127.0.0.1:1",
            "--ids",
            "1-100",
            "--rate",
            "1000",
        ];
        argv.extend_from_slice(extra);
        let args = crate::Args::try_parse_from(argv).unwrap();
        Plan::from_args(&args.send)
    }

    fn refusal(extra: &[&str]) -> String {
        format!("{:#}", plan(extra).unwrap_err())
    }

    #[test]
    fn impossible_configurations_are_refused_with_the_fix() {
        assert!(refusal(&[]).contains("give --count or --duration"));
        assert!(refusal(&["--count", "0"]).contains("must be above 0"));
        assert!(refusal(&["--duration", "0s"]).contains("must be above 0"));
        assert!(
            refusal(&["--count", "5", "--senders", "101"]).contains("use --senders 100 or fewer")
        );
        assert!(refusal(&["--count", "5", "--size", "300k"]).contains("raise --batch-bytes"));
        assert!(refusal(&["--count", "5", "--size", "2M"]).contains("1 MiB"));
        assert!(refusal(&["--count", "5", "--batch-max", "0"]).contains("at least one message"));
        assert!(refusal(&["--count", "5", "--timeout", "0s"]).contains("such as 5s"));
        let far = ["--count", "5", "--report-interval", "500000000000y"];
        assert!(refusal(&far).contains("at least daily"));
        // Issue 13: every value that feeds arithmetic is bounded here.
        let wraps = ["--count", "5", "--generator-id", "9223372036854775807"];
        assert!(refusal(&wraps).contains("use a --generator-id below"));
        assert!(refusal(&["--count", "5", "--tick", "5s"]).contains("batching interval"));
        assert!(refusal(&["--count", "5", "--timeout", "2h"]).contains("over an hour"));
        assert!(refusal(&["--count", "5", "--max-conns", "2"]).contains("needs a connection"));
        assert!(refusal(&["--count", "5", "--max-conns", "100000"]).contains("at most 16000"));
        assert!(refusal(&["--count", "5", "--pipeline", "0"]).contains("--pipeline 0"));
        assert!(refusal(&["--count", "5", "--retries", "100000"]).contains("outlives"));
        assert!(plan(&["--count", "5", "--generator-id", "1000", "--senders", "8"]).is_ok());
    }

    #[test]
    fn batches_are_bounded_by_lines_and_bytes() {
        let p = plan(&["--count", "5"]).unwrap();
        assert_eq!(p.batch_lines, 1000);
        assert_eq!(p.total(), Some(5));
        let p = plan(&["--count", "5", "--size", "10k", "--batch-bytes", "100k"]).unwrap();
        assert_eq!(p.batch_lines, 100_000 / (max_line_len(10_000) + 64));
        let each = plan(&["--count", "5", "--publish", "nchan", "--pipeline", "4"]).unwrap();
        assert_eq!((each.batch_lines, each.kind), (1, Kind::Nchan));
    }
}
