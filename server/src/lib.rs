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
mod config;
mod history;
mod http;
mod reactor;
mod request;
mod router;
mod stats;
mod tls;
mod transport;

pub use admin::parse_admin_head;
pub use config::MAX_HEAD;
pub use request::{parse_request, Parsed};

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

pub use config::{Args, Config};
pub use tls::TlsConfig;

use reactor::{Reactor, Shared, WAKER};
use router::{Mailbox, Router};
use stats::Stats;

/// A running server: its addresses, counters and a way to stop it.
/// Dropping it without [`Server::shutdown`] leaves its threads serving until
/// the process ends.
pub struct Server {
    subscriber_addr: SocketAddr,
    admin_addr: SocketAddr,
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

    /// Where the admin API listens.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
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

/// Starts the reactors and the admin side on already-bound listeners.
pub fn start(
    config: Config,
    subscriber: std::net::TcpListener,
    admin: std::net::TcpListener,
) -> io::Result<Server> {
    config
        .check()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{e:#}")))?;
    let subscriber_addr = subscriber.local_addr()?;
    let admin_addr = admin.local_addr()?;
    let mut polls = Vec::new();
    let mut mailboxes = Vec::new();
    let mut receivers = Vec::new();
    for _ in 0..config.reactors {
        let poll = mio::Poll::new()?;
        let waker = mio::Waker::new(poll.registry(), WAKER)?;
        let (tx, rx) = mpsc::channel();
        let queued = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        polls.push(poll);
        mailboxes.push(Mailbox {
            tx,
            waker,
            queued: queued.clone(),
        });
        receivers.push((rx, queued));
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let router = Arc::new(Router::new(mailboxes, config.history, cores));
    let stats = Arc::new(Stats::default());
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
        let reactor = Reactor::new(index as u16, poll, listener, rx, queued, shared.clone())?;
        let thread = std::thread::Builder::new()
            .name(format!("reactor-{index}"))
            .spawn(move || reactor.run())?;
        reactors.push(thread);
    }
    drop(subscriber);

    admin.set_nonblocking(true)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let admin_listener = {
        let _guard = runtime.enter();
        tokio::net::TcpListener::from_std(admin)?
    };
    let ctx = Arc::new(admin::AdminCtx {
        config,
        router,
        stats,
    });
    let (admin_stop, stop_rx) = tokio::sync::watch::channel(false);
    let admin = std::thread::Builder::new()
        .name("admin".into())
        .spawn(move || runtime.block_on(admin::serve_admin(admin_listener, ctx, stop_rx)))?;
    Ok(Server {
        subscriber_addr,
        admin_addr,
        shared,
        reactors,
        admin,
        admin_stop,
    })
}

/// The binary: bind, start, announce, wait for SIGINT/SIGTERM, stop cleanly.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = args.to_config()?;
    let nofile = c1m_common::raise_nofile_to_hard().context("raising RLIMIT_NOFILE")?;
    let reserve = c1m_common::FD_RESERVE;
    if config.max_conns > nofile.saturating_sub(reserve) {
        // Not an error: the fd limit, not --max-conns, is the real cap here.
        eprintln!(
            "comet-server: note: RLIMIT_NOFILE {nofile} holds at most ~{} connections, below --max-conns {}; \
             beyond that accepts fail with EMFILE (raise the limit, or run several servers with --reuse-port)",
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
    let server = start(config, subscriber, admin).context("starting the server")?;
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
