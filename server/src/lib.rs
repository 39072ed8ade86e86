//! Reference comet server: chunked, SSE and long-poll subscribers, a
//! sharded router and an admin API, lean at rest.
//!
//! - Subscribers ([`reactor`]): R threads, each a mio event loop over a slab
//!   of compact connection records, sharing one listener. An idle
//!   connection is a 32-byte record and a router slot, not a task.
//! - [`router`]: id -> connections, sharded; messages reach a reactor as one
//!   batch per wake-up.
//! - [`admin`]: tokio, for the few admin connections (`POST /send`, ...).
//!
//! [`start`] takes already-bound listeners (tests bind port 0) and returns a
//! [`Server`] handle; [`run`] is the binary: bind, start, print the
//! readiness line, wait for SIGINT/SIGTERM, end the streams cleanly.

#![forbid(unsafe_code)]

mod admin;
mod broker;
mod config;
mod dashboard;
mod friends;
mod group;
mod history;
mod http;
mod presence;
mod reactor;
mod request;
mod router;
mod stats;
mod tls;
mod transport;

pub use admin::parse_admin_head;
pub use config::MAX_HEAD;
pub use request::{parse_request, Ids, Parsed, Request, RequestLimits, Route};

use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use c1m_common::{Repeat, StopSignals};
use socket2::{Domain, Protocol, Socket, Type};

pub use config::{Args, BrokerUrls, Config, Dashboard, DashboardMode, Membership, Workers};
pub use friends::{FriendsGraph, GraphError};
pub use tls::TlsConfig;

use presence::Presence;
use reactor::{Reactor, Shared, WAKER};
use router::{Mailbox, Router};
use stats::Stats;

/// A running server: its addresses, counters and a way to stop it.
/// Dropping it without [`Server::shutdown`] leaves its threads serving until
/// the process ends.
pub struct Server {
    subscriber_addr: SocketAddr,
    /// `None` for a worker's Unix admin socket.
    admin_addr: Option<SocketAddr>,
    shared: Arc<Shared>,
    reactors: Vec<JoinHandle<io::Result<()>>>,
    admin: JoinHandle<()>,
    admin_stop: tokio::sync::watch::Sender<bool>,
}

impl Server {
    /// Where subscribers connect (the bound listener's address, so a test
    /// that bound port 0 learns the port).
    pub fn subscriber_addr(&self) -> SocketAddr {
        self.subscriber_addr
    }

    /// Where the admin API listens (unspecified, port 0, for a worker of a
    /// group, whose admin socket is an abstract Unix one).
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// The counters, as `/stats` returns them.
    pub fn stats(&self) -> c1m_common::StatsSnapshot {
        self.shared.stats.snapshot()
    }

    /// The router, for in-process publishers (tests, a future broker).
    pub fn router(&self) -> &Arc<Router> {
        &self.shared.router
    }

    /// Whether a reactor or the admin thread has ended without being asked
    /// to (an error or a panic). The server is then only half alive: some
    /// subscribers are no longer served, or nobody can publish. It must be
    /// stopped; [`Server::shutdown`] says what ended the thread.
    pub fn is_broken(&self) -> bool {
        !self.shared.shutdown.load(Relaxed)
            && (self.reactors.iter().any(JoinHandle::is_finished) || self.admin.is_finished())
    }

    /// Stops accepting, ends every stream (chunked terminator, empty
    /// long-poll answer), closes everything; returns once all threads ended,
    /// with the error of the first that failed.
    pub fn shutdown(self) -> io::Result<()> {
        self.shared.shutdown.store(true, Relaxed);
        self.shared.router.wake_all();
        let _ = self.admin_stop.send(true);
        let mut result = Ok(());
        for (index, reactor) in self.reactors.into_iter().enumerate() {
            let failure = match reactor.join() {
                Ok(Ok(())) => continue,
                Ok(Err(e)) => format!("reactor {index} failed: {e}"),
                Err(panic) => format!("reactor {index} panicked: {}", panic_message(&panic)),
            };
            if result.is_ok() {
                result = Err(io::Error::other(failure));
            }
        }
        if let Err(panic) = self.admin.join() {
            if result.is_ok() {
                let failure = format!("the admin thread panicked: {}", panic_message(&panic));
                result = Err(io::Error::other(failure));
            }
        }
        result
    }
}

/// What a thread's panic said, if it said it with a string.
fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// How often [`run`] looks at the server's threads between signals.
const WATCH_EVERY: Duration = Duration::from_millis(100);

/// Waits until `stopped` reports a stop request (it may wait for one until
/// the deadline it is given) or a server thread has died; returns whether
/// one died.
fn supervise(server: &Server, mut stopped: impl FnMut(Instant) -> bool) -> bool {
    loop {
        if server.is_broken() {
            return true;
        }
        if stopped(Instant::now() + WATCH_EVERY) {
            return server.is_broken();
        }
    }
}

/// Binds a listener with an explicit backlog (the default is small), and
/// SO_REUSEPORT when several processes are to share the port.
pub fn bind(addr: SocketAddr, backlog: i32, reuse_port: bool) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    Ok(socket.into())
}

/// Binds `addr` with SO_REUSEPORT without listening: it resolves port 0
/// and keeps the port for a group's workers (and their restarts), which
/// bind it too; a socket that does not listen gets no connection.
pub(crate) fn reserve_port(addr: SocketAddr) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    Ok(socket)
}

/// The broker-mode sequence token of a group: non-zero, from the front's
/// pid and the clock, so a restarted group numbers differently.
pub(crate) fn seq_token_for(pid: u32) -> u32 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    let mixed = (now ^ (u64::from(pid) << 20)).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 43;
    (mixed as u32 % router::MAX_SEQ_TOKEN) + 1
}

/// An admin listener before the runtime takes it.
pub(crate) enum AdminSocket {
    Tcp(std::net::TcpListener),
    Unix(std::os::unix::net::UnixListener),
}

/// Starts the reactors and the admin side on already-bound listeners.
pub fn start(
    config: Config,
    subscriber: std::net::TcpListener,
    admin: std::net::TcpListener,
) -> io::Result<Server> {
    start_with(config, subscriber, AdminSocket::Tcp(admin))
}

/// [`start`] with any admin socket.
pub(crate) fn start_with(
    config: Config,
    subscriber: std::net::TcpListener,
    admin: AdminSocket,
) -> io::Result<Server> {
    start_serving(config, subscriber, admin, None).map(|(server, _)| server)
}

/// Starts everything; with `broker` (servers, prefix) the admin runtime
/// also holds the NATS link, and the second value says once it is set up.
fn start_serving(
    mut config: Config,
    subscriber: std::net::TcpListener,
    admin: AdminSocket,
    broker: Option<(Vec<String>, String)>,
) -> io::Result<(Server, mpsc::Receiver<anyhow::Result<()>>)> {
    config
        .check()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{e:#}")))?;
    let subscriber_addr = subscriber.local_addr()?;
    let admin_addr = match &admin {
        AdminSocket::Tcp(l) => Some(l.local_addr()?),
        AdminSocket::Unix(_) => None,
    };
    if let Some(dashboard) = &mut config.dashboard {
        // The page names both listeners (a worker's admin is its front's).
        dashboard.subscriber = Some(subscriber_addr);
        dashboard.admin = dashboard.admin.or(admin_addr);
    }
    let mut polls = Vec::new();
    let mut mailboxes = Vec::new();
    let mut receivers = Vec::new();
    for _ in 0..config.reactors {
        let poll = mio::Poll::new()?;
        let waker = mio::Waker::new(poll.registry(), WAKER)?;
        let (tx, rx) = mpsc::channel();
        let queued = Arc::new(router::Queued::default());
        polls.push(poll);
        mailboxes.push(Mailbox {
            tx,
            waker,
            queued: queued.clone(),
            direct: std::sync::OnceLock::new(),
        });
        receivers.push((rx, queued));
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let stats = Arc::new(Stats::default());
    let presence = Arc::new(Presence::new(config.presence_queue, stats.clone()));
    let router = Arc::new(
        Router::new(mailboxes, config.history, cores, presence.clone())
            .with_seq_token(config.seq_token),
    );
    let shared = Arc::new(Shared {
        config: config.clone(),
        router: router.clone(),
        stats: stats.clone(),
        shutdown: AtomicBool::new(false),
        exhaustion_reported: AtomicBool::new(false),
        #[cfg(test)]
        fault: AtomicBool::new(false),
    });
    let mut reactors = Vec::new();
    for (index, (poll, (rx, queued))) in polls.into_iter().zip(receivers).enumerate() {
        let listener = subscriber.try_clone()?;
        let reactor = Reactor::new(index as u16, &poll, listener, rx, queued, shared.clone())?;
        let reactor = Arc::new(std::sync::Mutex::new(reactor));
        router.attach(index, Arc::downgrade(&reactor) as _);
        let thread = std::thread::Builder::new()
            .name(format!("reactor-{index}"))
            .spawn(move || reactor::run(&reactor, poll))?;
        reactors.push(thread);
    }
    drop(subscriber);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let admin_listener = {
        let _guard = runtime.enter();
        match admin {
            AdminSocket::Tcp(l) => {
                l.set_nonblocking(true)?;
                admin::Listener::Tcp(tokio::net::TcpListener::from_std(l)?)
            }
            AdminSocket::Unix(l) => {
                l.set_nonblocking(true)?;
                admin::Listener::Unix(tokio::net::UnixListener::from_std(l)?)
            }
        }
    };
    let ctx = Arc::new(admin::AdminCtx {
        config,
        router,
        stats,
        presence,
        broker: std::sync::OnceLock::new(),
    });
    let (admin_stop, stop_rx) = tokio::sync::watch::channel(false);
    let (linked_tx, linked) = mpsc::channel();
    let admin = std::thread::Builder::new()
        .name("admin".into())
        .spawn(move || {
            runtime.block_on(async move {
                if let Some((servers, prefix)) = broker {
                    let sink = broker::Sink::Local(ctx.clone());
                    match broker::Broker::start(&servers, &prefix, sink).await {
                        Ok(link) => {
                            let _ = ctx.broker.set(link);
                            let _ = linked_tx.send(Ok(()));
                        }
                        Err(e) => {
                            let _ = linked_tx.send(Err(e));
                            return;
                        }
                    }
                }
                admin::serve_admin(admin_listener, ctx, stop_rx).await
            })
        })?;
    let server = Server {
        subscriber_addr,
        admin_addr,
        shared,
        reactors,
        admin,
        admin_stop,
    };
    Ok((server, linked))
}

/// Loads `--friends`, saying what it holds and what it took.
pub(crate) fn load_friends(path: &std::path::Path, max_id: u64) -> anyhow::Result<FriendsGraph> {
    let started = std::time::Instant::now();
    let rss_before = c1m_common::rss_bytes(c1m_common::Pid::Current).unwrap_or(0);
    let graph = FriendsGraph::load(path, max_id)
        .with_context(|| format!("loading --friends {}", path.display()))?;
    let rss_after = c1m_common::rss_bytes(c1m_common::Pid::Current).unwrap_or(0);
    eprintln!(
        "comet-server: friends graph {}: {} friendships, ids up to {}, {} bytes in memory (RSS +{} bytes), loaded in {:.2} s",
        path.display(),
        graph.friendships(),
        graph.max_id(),
        graph.bytes(),
        rss_after.saturating_sub(rss_before),
        started.elapsed().as_secs_f64()
    );
    Ok(graph)
}

/// The binary: bind, start, announce, wait for SIGINT/SIGTERM, stop
/// cleanly; with `--workers`, the front of a group ([`group`]).
pub fn run(mut args: Args) -> anyhow::Result<ExitCode> {
    if args.worker_index.is_some() {
        return group::worker::run_worker(args);
    }
    if let Some(asked) = args.workers {
        return group::run_front(args, asked);
    }
    if args.broker.is_some() && args.seq_token.is_none() {
        args.seq_token = Some(seq_token_for(std::process::id()));
    }
    let mut config = args.to_config()?;
    if let Some(path) = &args.friends {
        config.friends = Some(Arc::new(load_friends(path, config.max_id)?));
    }
    let nofile = c1m_common::raise_nofile_to_hard().context("raising RLIMIT_NOFILE")?;
    let reserve = c1m_common::FD_RESERVE;
    if config.max_conns > nofile.saturating_sub(reserve) {
        // Not an error: the fd limit, not --max-conns, is the real cap here.
        eprintln!(
            "comet-server: note: RLIMIT_NOFILE {nofile} holds at most ~{} connections, below --max-conns {}; \
             beyond that accepts fail with EMFILE (raise the limit, or run a group: --workers auto)",
            nofile.saturating_sub(reserve),
            config.max_conns
        );
    }
    // Installed before the readiness line, so a signal sent as soon as the
    // line is read still ends the streams cleanly.
    // A repeated signal is ignored: the clean stop is bounded.
    let signals = StopSignals::install(&[libc::SIGINT, libc::SIGTERM], Repeat::Ignore)
        .context("installing SIGINT/SIGTERM handlers")?;
    let subscriber = bind(args.listen, args.backlog, args.reuse_port)
        .with_context(|| format!("binding subscriber address {}", args.listen))?;
    let admin = bind(args.admin, args.backlog, false)
        .with_context(|| format!("binding admin address {}", args.admin))?;
    let broker = args
        .broker
        .clone()
        .map(|b| (b.0, args.broker_prefix.clone()));
    let (server, linked) = start_serving(config, subscriber, AdminSocket::Tcp(admin), broker)
        .context("starting the server")?;
    if args.broker.is_some() {
        linked
            .recv()
            .context("the admin thread ended")?
            .context("connecting to the broker")?;
    }
    println!(
        "comet-server listening on {} admin {}",
        server.subscriber_addr(),
        server.admin_addr()
    );
    // A thread that dies ends the process (exit 2): never a half-alive server.
    let broken = supervise(&server, |deadline| signals.wait_until(deadline).is_some());
    let snap = server.stats();
    let stopped = server.shutdown();
    if broken {
        let why = stopped.map_or_else(|e| e.to_string(), |()| "a server thread ended".into());
        anyhow::bail!("{why}; stopped the rest of the server");
    }
    stopped.context("stopping")?;
    eprintln!(
        "comet-server: stopped: {} connections ended, {} messages in, {} out, {} dropped",
        snap.connections, snap.messages_in, snap.messages_out, snap.dropped
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn started() -> Server {
        let loopback = "127.0.0.1:0".parse().unwrap();
        let sub = bind(loopback, 16, false).unwrap();
        let admin = bind(loopback, 16, false).unwrap();
        start(Config::default(), sub, admin).unwrap()
    }

    /// Sleeps to the deadline and reports no stop request.
    fn never_stopped(deadline: Instant) -> bool {
        std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
        false
    }

    #[test]
    fn a_reactor_that_dies_ends_the_server_with_its_error() {
        let server = started();
        assert!(!supervise(&server, |_| true), "a healthy server just stops");
        server.shared.fault.store(true, Relaxed);
        server.shared.router.wake_all();
        let watching = Instant::now();
        assert!(supervise(&server, never_stopped));
        assert!(watching.elapsed() < Duration::from_secs(5));
        let err = server.shutdown().unwrap_err().to_string();
        assert!(
            err.starts_with("reactor ") && err.contains("injected fault"),
            "{err}"
        );
    }

    #[test]
    fn a_config_that_would_overflow_is_refused_at_start() {
        let loopback = "127.0.0.1:0".parse().unwrap();
        let config = Config {
            sse_keepalive: Duration::MAX,
            ..Config::default()
        };
        let sub = bind(loopback, 16, false).unwrap();
        let admin = bind(loopback, 16, false).unwrap();
        let err = start(config, sub, admin).err().expect("refused");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("--sse-keepalive"), "{err}");
    }
}
