//! A group (`--workers N`): one front process and N worker processes on
//! one machine, serving as one server.
//!
//! - The front (the process the user starts) holds no subscriber
//!   connection. It starts the workers ([`supervise`]), restarts one that
//!   dies, and serves the one public admin address: `/send` split by owner
//!   and forwarded to the workers' admin sockets, one request in flight
//!   per worker and the lines that arrive meanwhile sent together
//!   ([`lane`]), the answers summed ([`workers`]); `/check/{id}` to the
//!   owner; `/stats` and `/metrics` the sum with a per-worker breakdown
//!   ([`snapshot`]); with `--friends` it holds the graph and fans each
//!   event out to the workers that own its publisher's friends
//!   ([`fanout`]); `/presence` relays the workers' streams ([`presence`]).
//!   With `--broker` it also holds the group's NATS link (`broker`), and
//!   routes what arrives there as its own requests ([`Front::route`]).
//! - A worker ([`worker`]) is the standalone server with one reactor,
//!   binding the subscriber port with SO_REUSEPORT under its own descriptor
//!   limit, its admin on an abstract Unix socket only the front uses, and
//!   handing each connection to the owner of its id (`reactor::handoff`).
//!
//! Cost: the front is a small tokio process (~2-3 MB, plus the friends
//! graph with `--friends`: ~111 MB for 1M users x 50); a worker at rest is
//! a standalone server. Nothing is added per connection.

mod fanout;
mod lane;
mod link;
mod presence;
mod snapshot;
mod supervise;
pub(crate) mod worker;
mod workers;

pub(crate) use snapshot::to_prometheus;
use workers::Sent;
pub(crate) use workers::Workers;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use c1m_common::{
    BatchAnswer, BatchLines, GroupCounters, PublishAnswer, PublishBatchAnswer, Repeat, SendAnswer,
    StatsSnapshot, StopSignals, WorkerStats,
};

use crate::admin::{self, json, respond, AdminRoute, Handler, Listener, PROMETHEUS};
use crate::broker::{self, Broker, Carried, Routed, Sink};
use crate::config::{socket_name, Args, Config, Workers as WorkerCount, MAX_WORKERS};
use crate::friends::FriendsGraph;
use crate::stats::Stats;
use c1m_http::{write_error, Reject, Status};
use link::Link;
use supervise::{Slot, Supervisor};

/// A group fan-out's public answer, and the event lines of it a worker did
/// not take (its share lost; counted in the group's `undeliverable` too):
/// the broker's `failed` for what it routed here, exact per request.
struct Fanned<A> {
    answer: A,
    failed: u64,
}

/// The public admin side of a front.
pub(crate) struct Front {
    config: Config,
    /// The front's own counters (refused admin requests, events,
    /// broadcasts, presence readers).
    stats: Arc<Stats>,
    /// `/presence`: the workers' streams relayed to the front's readers.
    relay: Arc<presence::Relay>,
    workers: Arc<Workers>,
    broker: std::sync::OnceLock<Arc<Broker>>,
}

impl Handler for Front {
    fn config(&self) -> &Config {
        &self.config
    }

    fn stats(&self) -> &Stats {
        &self.stats
    }

    fn presence(&self) -> &crate::presence::Presence {
        &self.relay.presence
    }

    async fn presence_ready(&self) -> Result<(), Reject> {
        self.relay.ensure(&self.workers).await
    }

    async fn answer(
        &self,
        route: AdminRoute,
        body: &[u8],
        keep_alive: bool,
        out: &mut Vec<u8>,
    ) -> bool {
        if let Some(broker) = self.broker.get() {
            let published = broker::answer(
                broker,
                &self.config,
                &self.stats,
                route,
                body,
                keep_alive,
                out,
            );
            if let Some(keep_alive) = published.await {
                return keep_alive;
            }
        }
        let (content_type, payload) = match route {
            AdminRoute::SendBatch => {
                let (lines, sent) = self.send_batch(body).await;
                json(&batch_answer(lines, sent))
            }
            AdminRoute::SendOne(id) => match self.workers.send_one(id, body).await {
                Some(connections) => json(&SendAnswer { id, connections }),
                None => return owner_unavailable(out),
            },
            AdminRoute::Check(id) => return self.check(id, keep_alive, out).await,
            AdminRoute::Broadcast => json(&self.broadcast(body).await),
            AdminRoute::PublishOne(id) => json(&self.publish_one(id, body).await.answer),
            AdminRoute::PublishBatch => json(&self.publish_batch(body).await.answer),
            // Refused before it gets here: a front is not a worker.
            AdminRoute::Fanout | AdminRoute::SendEach => {
                let reject = Reject::new(
                    Status::NotImplemented,
                    "not served by a group's front (--workers)",
                );
                write_error(&reject, out);
                return false;
            }
            AdminRoute::Presence => unreachable!("a presence stream is served by presence::serve"),
            AdminRoute::Stats => json(&self.snapshot().await),
            AdminRoute::Metrics => (
                PROMETHEUS,
                to_prometheus(&self.snapshot().await).into_bytes(),
            ),
        };
        respond(out, content_type, &payload, keep_alive);
        keep_alive
    }
}

impl Front {
    /// The graph of a front that takes `/publish` (one without is refused at
    /// the head, before its body is read).
    fn graph(&self) -> &FriendsGraph {
        self.config
            .friends
            .as_deref()
            .expect("/publish without a graph is refused at the head")
    }

    /// `POST /publish/{id}` for the whole group.
    async fn publish_one(&self, id: u64, event: &[u8]) -> Fanned<PublishAnswer> {
        let spread = fanout::publish(
            &self.workers,
            self.graph(),
            &[(id, event)],
            self.config.max_body,
        )
        .await;
        self.count_events(1, spread.unheard);
        Fanned {
            answer: PublishAnswer {
                id,
                friends: spread.reach.friends,
                online: Some(spread.reach.online),
                connections: Some(spread.reach.connections),
            },
            failed: spread.failed,
        }
    }

    /// `POST /publish` for the whole group: the lines checked as one
    /// process checks them, then fanned out.
    async fn publish_batch(&self, body: &[u8]) -> Fanned<PublishBatchAnswer> {
        let mut events = Vec::new();
        let lines = admin::parse_deliverable(&self.config, &self.stats, body, |id, event| {
            events.push((id, event));
        });
        let spread =
            fanout::publish(&self.workers, self.graph(), &events, self.config.max_body).await;
        self.count_events(lines.accepted, spread.unheard);
        Fanned {
            answer: PublishBatchAnswer {
                accepted: lines.accepted,
                rejected: lines.rejected,
                friends: spread.reach.friends,
                online: Some(spread.reach.online),
                connections: Some(spread.reach.connections),
                unheard: Some(spread.unheard),
            },
            failed: spread.failed,
        }
    }

    /// What arrives from the broker (another front's `/send`, `/publish`
    /// or `/broadcast`, or this one's echo), routed into the group as this
    /// front routes its own requests.
    pub(crate) async fn route(&self, carried: Carried, single: Option<u64>, body: &[u8]) -> Routed {
        let workers = &self.workers;
        match (carried, single) {
            (Carried::Messages, Some(id)) => {
                let reached = workers.send_one(id, body).await;
                Routed {
                    messages: 1,
                    dropped: u64::from(reached.unwrap_or(0) == 0),
                    failed: u64::from(reached.is_none()),
                    ..Routed::default()
                }
            }
            (Carried::Messages, None) => {
                let (lines, sent) = self.send_batch(body).await;
                Routed {
                    messages: lines.accepted,
                    dropped: sent.dropped,
                    failed: sent.failed,
                    ..Routed::default()
                }
            }
            (Carried::Events, _) if self.config.friends.is_none() => {
                Routed::without_graph(single, body)
            }
            (Carried::Events, Some(id)) => {
                let fanned = self.publish_one(id, body).await;
                Routed {
                    failed: fanned.failed,
                    ..Routed::event(&fanned.answer)
                }
            }
            (Carried::Events, None) => {
                let fanned = self.publish_batch(body).await;
                Routed {
                    failed: fanned.failed,
                    ..Routed::events(&fanned.answer)
                }
            }
            (Carried::Broadcast, _) => {
                self.broadcast(body).await;
                Routed {
                    messages: 1,
                    ..Routed::default()
                }
            }
        }
    }

    /// `POST /broadcast` for the whole group, counted once here (each
    /// worker counts its own in its breakdown).
    async fn broadcast(&self, message: &[u8]) -> c1m_common::BroadcastAnswer {
        self.stats.broadcasts_in.fetch_add(1, Relaxed);
        self.workers.broadcast(message).await
    }

    /// Events are counted here; the workers count their deliveries.
    fn count_events(&self, events: u64, unheard: u64) {
        self.stats.events_in.fetch_add(events, Relaxed);
        self.stats.events_unheard.fetch_add(unheard, Relaxed);
    }

    /// `GET /check/{id}`: asked of the owner, its answer passed on.
    async fn check(&self, id: u64, keep_alive: bool, out: &mut Vec<u8>) -> bool {
        let path = format!("/check/{id}");
        match self.workers.to_owner(id, "GET", &path, b"").await {
            Some(answer) if answer.status == 200 => {
                respond(out, "application/json", &answer.body, keep_alive);
                keep_alive
            }
            _ => owner_unavailable(out),
        }
    }

    /// `POST /send` for the whole group: the lines checked as one process
    /// checks them, then sent through the owners' lanes.
    async fn send_batch(&self, body: &[u8]) -> (BatchLines, Sent) {
        let mut messages = Vec::new();
        let lines = admin::parse_deliverable(&self.config, &self.stats, body, |id, message| {
            messages.push((id, message));
        });
        (lines, self.workers.send_lines(&messages).await)
    }

    async fn snapshot(&self) -> StatsSnapshot {
        let answers = self.workers.stats().await;
        let mut total = self.stats.snapshot();
        // The front's own RSS is reported apart: `rss_bytes` is the workers'.
        let front_rss_bytes = std::mem::take(&mut total.rss_bytes);
        let slots = &self.workers.slots;
        let mut workers = Vec::with_capacity(answers.len());
        for (index, answer) in answers.into_iter().enumerate() {
            let slot = &slots[index];
            let up = answer.is_some();
            let stats = answer.unwrap_or_default();
            crate::stats::add(&mut total, &stats);
            workers.push(WorkerStats {
                index: index as u64,
                pid: slot.pid.load(Relaxed),
                up,
                restarts: slot.restarts.load(Relaxed),
                stats,
            });
        }
        // A broadcast reached every worker: the group took it once. The
        // workers' presence readers are the front's relay: its readers are
        // the group's.
        let own = self.stats.snapshot();
        total.broadcasts_in = own.broadcasts_in;
        total.presence_readers = own.presence_readers;
        total.presence_closes = own.presence_closes;
        StatsSnapshot {
            group: Some(GroupCounters {
                workers: workers.len() as u64,
                workers_up: workers.iter().filter(|w| w.up).count() as u64,
                restarts: slots.iter().map(|s| s.restarts.load(Relaxed)).sum(),
                handoffs: total.handed_off,
                undeliverable: self.workers.undeliverable.load(Relaxed),
                worker_sends: self.workers.sends.load(Relaxed),
                front_rss_bytes,
            }),
            workers,
            broker: self.broker.get().map(|b| b.state()),
            ..total
        }
    }
}

/// The `/send` answer for `lines`, of which the accepted were `sent`.
fn batch_answer(lines: BatchLines, sent: Sent) -> BatchAnswer {
    BatchAnswer {
        accepted: lines.accepted,
        rejected: lines.rejected,
        delivered: Some(sent.delivered),
        dropped: Some(sent.dropped),
        connections: Some(sent.connections),
    }
}

/// The answer when the worker that owns the id did not answer; the
/// connection closes after it.
fn owner_unavailable(out: &mut Vec<u8>) -> bool {
    let reject = Reject::new(
        Status::ServiceUnavailable,
        "the worker that owns this id is not answering (restarting?); retry",
    );
    write_error(&reject, out);
    false
}

/// How many workers `--workers` means here: `auto` is as many as
/// `--max-conns` needs when each holds 95% of what its descriptors allow
/// (the SO_REUSEPORT spread and connections in handoff need the rest).
pub(crate) fn worker_count(asked: WorkerCount, max_conns: u64, fd_limit: u64) -> usize {
    match asked {
        WorkerCount::Count(n) => n,
        WorkerCount::Auto => {
            let each = (c1m_common::conns_per_process(fd_limit) * 95 / 100).max(1);
            (max_conns.div_ceil(each) as usize).clamp(1, MAX_WORKERS)
        }
    }
}

/// The command line of worker `index` of `workers`, from the front's.
fn worker_args(
    args: &Args,
    index: usize,
    workers: usize,
    group: u32,
    listen: SocketAddr,
    fd_limit: u64,
) -> Vec<String> {
    let config_ms = |d: Duration| format!("{}ms", d.as_millis());
    // Each owns ~1/N of the ids: its share of --max-conns with 5% to spare,
    // within what its descriptors hold.
    let share = (args.max_conns.div_ceil(workers as u64) * 105 / 100)
        .min(c1m_common::conns_per_process(fd_limit).max(1));
    let mut out = vec![
        "--worker-index".into(),
        index.to_string(),
        "--group-id".into(),
        group.to_string(),
        "--workers".into(),
        workers.to_string(),
        "--listen".into(),
        listen.to_string(),
        "--reuse-port".into(),
        "--backlog".into(),
        args.backlog.to_string(),
        "--max-id".into(),
        args.max_id.to_string(),
        "--max-conns".into(),
        share.max(1).to_string(),
        "--max-pending".into(),
        args.max_pending.to_string(),
        "--history".into(),
        args.history.to_string(),
        "--sse-keepalive".into(),
        config_ms(args.sse_keepalive),
        "--poll-timeout".into(),
        config_ms(args.poll_timeout),
        "--header-timeout".into(),
        config_ms(args.header_timeout),
        "--max-body".into(),
        args.max_body.to_string(),
        "--max-admin-conns".into(),
        args.max_admin_conns.to_string(),
    ];
    if let Some(r) = args.reactors {
        out.extend(["--reactors".into(), r.to_string()]);
    }
    if let Some(h) = args.heartbeat {
        out.extend(["--heartbeat".into(), config_ms(h)]);
    }
    if let Some(t) = args.seq_token {
        out.extend(["--seq-token".into(), t.to_string()]);
    }
    // A worker allows the front's page to read its /sse streams, and with
    // `public` serves the page on the subscriber port.
    if let (Some(mode), Some(admin)) = (args.dashboard, args.dashboard_admin) {
        let mode = clap::ValueEnum::to_possible_value(&mode).map(|v| v.get_name().to_owned());
        out.extend(["--dashboard".into(), mode.unwrap_or_default()]);
        out.extend(["--dashboard-admin".into(), admin.to_string()]);
    }
    out
}

/// How much the front's admin thread raises its priority (nice -10: a CFS
/// weight of ~9 processes at nice 0).
const ADMIN_NICE_STEP: i32 = 10;

/// Gives the front's admin thread the CPU weight of several processes: it
/// is on the path of every admin request of every worker, and at nice 0 a
/// machine busy with N workers (and, in an experiment, their clients)
/// gives it 1/N of a core; at 1M here its answers then took seconds.
/// Linux nice is per thread, so the workers the main thread starts keep
/// their own. Needs root or CAP_SYS_NICE; without them it says so once.
fn raise_admin_priority(workers: usize) {
    if workers < 2 {
        return;
    }
    if let Err(e) = c1m_common::raise_thread_priority(ADMIN_NICE_STEP) {
        eprintln!(
            "comet-server: front: could not raise the admin thread's priority ({e}): under CPU \
             contention its answers wait behind the {workers} workers; run with CAP_SYS_NICE to \
             let it"
        );
    }
}

/// The front: starts the workers, serves the admin address, restarts
/// crashed workers, stops them all on SIGINT/SIGTERM.
pub(crate) fn run_front(mut args: Args, asked: WorkerCount) -> anyhow::Result<ExitCode> {
    let mut config = args.to_config()?;
    if let Some(path) = &args.friends {
        config.friends = Some(Arc::new(crate::load_friends(path, config.max_id)?));
    }
    let (_, fd_limit) = c1m_common::nofile_limits().context("reading RLIMIT_NOFILE")?;
    c1m_common::raise_nofile_to_hard().context("raising RLIMIT_NOFILE")?;
    let workers = worker_count(asked, config.max_conns, fd_limit);
    let group = std::process::id();
    if args.broker.is_some() && args.seq_token.is_none() {
        args.seq_token = Some(crate::seq_token_for(group));
    }
    let signals = StopSignals::install(&[libc::SIGINT, libc::SIGTERM], Repeat::Ignore)
        .context("installing SIGINT/SIGTERM handlers")?;
    // Holds the port (port 0 resolved) for the workers and their restarts;
    // bound, never listening, so the kernel gives it no connection.
    let holder = crate::reserve_port(args.listen)
        .with_context(|| format!("binding subscriber address {}", args.listen))?;
    let listen = holder
        .local_addr()?
        .as_socket()
        .context("subscriber address")?;
    let admin_listener = crate::bind(args.admin, args.backlog, false)
        .with_context(|| format!("binding admin address {}", args.admin))?;
    let admin_addr = admin_listener.local_addr()?;
    if let Some(dashboard) = &mut config.dashboard {
        dashboard.subscriber = Some(listen);
        dashboard.admin = Some(admin_addr);
    }
    args.dashboard_admin = Some(admin_addr);

    let slots: Arc<Vec<Slot>> = Arc::new((0..workers).map(|_| Slot::default()).collect());
    let for_worker = args.clone();
    let mut supervisor = Supervisor::new(
        workers,
        Box::new(move |i| worker_args(&for_worker, i, workers, group, listen, fd_limit)),
    );
    if let Err(e) = supervisor.start_all(&slots) {
        supervisor.stop_all();
        return Err(e);
    }
    let links = (0..workers)
        .map(|i| {
            Link::new(
                socket_name(group, i, "admin"),
                config.admin_token.clone(),
                config.header_timeout,
                args.worker_timeout,
            )
        })
        .collect();
    let stats = Arc::new(Stats::default());
    let presence = crate::presence::Presence::new(config.presence_queue, stats.clone());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let front = Arc::new(Front {
        stats,
        relay: Arc::new(presence::Relay::new(presence)),
        workers: Arc::new(Workers::new(
            links,
            runtime.handle(),
            config.max_body,
            slots.clone(),
        )),
        broker: std::sync::OnceLock::new(),
        config,
    });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let serving = {
        let front = front.clone();
        let servers = args.broker.clone().map(|b| b.0);
        let prefix = args.broker_prefix.clone();
        admin_listener.set_nonblocking(true)?;
        std::thread::Builder::new()
            .name("front-admin".into())
            .spawn(move || {
                raise_admin_priority(workers);
                runtime.block_on(async move {
                    let listener =
                        Listener::Tcp(tokio::net::TcpListener::from_std(admin_listener)?);
                    if let Some(servers) = servers {
                        let sink = Sink::Group(front.clone());
                        let link = Broker::start(&servers, &prefix, sink).await?;
                        let _ = front.broker.set(link);
                    }
                    admin::serve_admin(listener, front, stop_rx).await;
                    anyhow::Ok(())
                })
            })?
    };
    println!("comet-server listening on {listen} admin {admin_addr} workers {workers}");
    while signals
        .wait_until(Instant::now() + Duration::from_millis(100))
        .is_none()
    {
        if serving.is_finished() {
            break;
        }
        supervisor.check(&slots);
    }
    let _ = stop_tx.send(true);
    supervisor.stop_all();
    let served = serving
        .join()
        .map_err(|_| anyhow::anyhow!("the admin thread panicked"))?;
    served.context("serving the admin address")?;
    drop(holder);
    eprintln!("comet-server: stopped a group of {workers} workers");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn auto_sizes_the_group_from_the_descriptor_limit() {
        // 19,936 connections per process, planned at 95%: 18,939 each.
        assert_eq!(worker_count(WorkerCount::Auto, 1_000_000, 20_000), 53);
        assert_eq!(worker_count(WorkerCount::Auto, 100_000, 20_000), 6);
        assert_eq!(worker_count(WorkerCount::Auto, 10, 20_000), 1);
        assert_eq!(worker_count(WorkerCount::Auto, u64::MAX, 100), MAX_WORKERS);
        assert_eq!(worker_count(WorkerCount::Count(3), 1_000_000, 20_000), 3);
    }

    #[test]
    fn a_worker_parses_the_command_line_its_front_gives_it() {
        let front = Args::try_parse_from([
            "comet-server",
            "--workers",
            "4",
            "--history",
            "5",
            "--heartbeat",
            "250ms",
            "--max-conns",
            "40k",
            "--broker",
            "nats://127.0.0.1:4222",
        ])
        .unwrap();
        let listen: SocketAddr = "127.0.0.1:8000".parse().unwrap();
        let mut line = vec!["comet-server".to_owned()];
        line.extend(worker_args(&front, 2, 4, 777, listen, 20_000));
        let worker = Args::try_parse_from(&line).unwrap();
        assert!(worker.broker.is_none(), "only the front talks to NATS");
        let config = worker.to_config().unwrap();
        let m = config.membership.unwrap();
        assert_eq!((m.index, m.workers, m.group), (2, 4, 777));
        assert_eq!(config.reactors, 1);
        assert_eq!(config.history, 5);
        assert_eq!(config.heartbeat, Some(Duration::from_millis(250)));
        // A quarter of --max-conns with 5% to spare, within what one
        // process's descriptors hold.
        assert_eq!(config.max_conns, 10_500);
        let mut big = vec!["comet-server".to_owned()];
        big.extend(worker_args(&front, 0, 1, 777, listen, 20_000));
        let one = Args::try_parse_from(&big).unwrap().to_config().unwrap();
        assert_eq!(one.max_conns, 19_936);
        assert_eq!(worker.listen, listen);
        assert!(worker.reuse_port);
    }

    #[test]
    fn worker_arguments_are_refused_without_a_group() {
        let args = Args::try_parse_from(["comet-server", "--worker-index", "1", "--group-id", "5"])
            .unwrap();
        let err = args.to_config().unwrap_err().to_string();
        assert!(err.contains("start a group with --workers N"), "{err}");
    }
}
