//! The admin API on its own listener (loopback by default): `POST /send`
//! (batch), `POST /send/{id}`, `POST /publish` (batch), `POST
//! /publish/{id}`, `POST /broadcast`, `GET /check/{id}`, `GET /presence`
//! (a stream), `GET /stats`, `GET /metrics`, HTTP/1.1 keep-alive, optional
//! bearer token.
//!
//! Admin connections are few (a generator or two, a scraper), so each is a
//! tokio task on a small current-thread runtime, at most
//! `--max-admin-conns` at once (each may buffer a body of `--max-body`); the subscriber side, where
//! connections are many, does not use tokio. A batch is parsed in place and
//! published into one [`Outbox`](crate::router::Outbox), so each reactor is
//! woken once per batch however many messages it holds.

pub(crate) mod publish;
mod routes;

pub use routes::parse_admin_head;
pub(crate) use routes::{bearer, AdminRoute};

use std::future::Future;
use std::os::fd::AsFd;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use c1m_common::{parse_batch, BatchAnswer, BatchLines, CheckAnswer, SendAnswer, SendEachAnswer};
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

use crate::config::Config;
use crate::dashboard::Board;
use crate::presence::{self, Presence};
use crate::router::{BatchKind, Router};
use crate::stats::Stats;
use crate::transport;
use c1m_http::{write_error, Reject, Status};

/// A message no subscriber could take: one frame over `--max-pending` that
/// the socket does not swallow at once closes its reader as a slow
/// consumer, so it is refused at the door instead.
fn oversized() -> Reject {
    Reject::new(
        Status::PayloadTooLarge,
        "message is over --max-pending: every recipient would be closed as a slow consumer; \
         raise --max-pending",
    )
}

/// `POST /publish` on a server started without a graph.
fn no_graph() -> Reject {
    Reject::new(
        Status::NotFound,
        "POST /publish needs a friends graph: start comet-server with --friends FILE",
    )
}

/// `POST /fanout` or `/send-each` anywhere but a group's worker.
fn not_a_worker(route: AdminRoute) -> Reject {
    let reason = if route == AdminRoute::Fanout {
        "POST /fanout is a group's internal request (front to worker): publish events with \
         POST /publish"
    } else {
        "POST /send-each is a group's internal request (front to worker): send messages with \
         POST /send"
    };
    Reject::new(Status::NotFound, reason)
}

/// Admin connections being refused with 503 at once (see `serve_admin`).
const MAX_REFUSALS: usize = 64;

/// The interim answer to `Expect: 100-continue`.
const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// What answers the routed admin requests: this process's router
/// ([`AdminCtx`]), or a group's front that forwards to its workers.
pub(crate) trait Handler: Send + Sync + 'static {
    /// The limits the admin listener applies (token, body size, timeouts).
    fn config(&self) -> &Config;
    /// Where refused requests are counted.
    fn stats(&self) -> &Stats;
    /// Where `GET /presence` readers subscribe.
    fn presence(&self) -> &Presence;
    /// Makes sure the changes reach [`Handler::presence`] once a reader
    /// has subscribed (a group's front relays its workers' streams); the
    /// refusal when they cannot.
    fn presence_ready(&self) -> impl Future<Output = Result<(), Reject>> + Send {
        std::future::ready(Ok(()))
    }
    /// Appends the whole response to `route` to `out`; false when the
    /// connection must close after it (the client asked, or a refusal).
    fn answer<'a>(
        &'a self,
        route: AdminRoute,
        body: &'a [u8],
        keep_alive: bool,
        out: &'a mut Vec<u8>,
    ) -> impl Future<Output = bool> + Send + 'a;
}

/// An admin listener: TCP for people and tools, or the abstract Unix
/// socket a worker of a group serves its front on.
pub(crate) enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

/// What admin handlers need.
pub(crate) struct AdminCtx {
    pub(crate) config: Config,
    pub(crate) router: Arc<Router>,
    pub(crate) stats: Arc<Stats>,
    pub(crate) presence: Arc<Presence>,
    /// Set once the NATS link is up (`--broker` on a standalone server):
    /// `/send` is published there instead of routed here.
    pub(crate) broker: std::sync::OnceLock<Arc<crate::broker::Broker>>,
}

impl Handler for AdminCtx {
    fn config(&self) -> &Config {
        &self.config
    }

    fn stats(&self) -> &Stats {
        &self.stats
    }

    fn presence(&self) -> &Presence {
        &self.presence
    }

    async fn answer(
        &self,
        route: AdminRoute,
        body: &[u8],
        keep_alive: bool,
        out: &mut Vec<u8>,
    ) -> bool {
        if route.publishes() {
            // Backpressure: while a reactor has more than this left to
            // write, the publisher waits instead of queueing without bound.
            self.router.room().await;
        }
        if let Some(broker) = self.broker.get() {
            let published = crate::broker::answer(
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
            if matches!(route, AdminRoute::Stats | AdminRoute::Metrics) {
                let snap = c1m_common::StatsSnapshot {
                    broker: Some(broker.state()),
                    ..self.stats.snapshot()
                };
                let (content_type, payload) = match route {
                    AdminRoute::Stats => json(&snap),
                    _ => (PROMETHEUS, crate::group::to_prometheus(&snap).into_bytes()),
                };
                respond(out, content_type, &payload, keep_alive);
                return keep_alive;
            }
        }
        answer(self, route, body, keep_alive, out)
    }
}

/// Accepts admin connections until `stop` turns true.
pub(crate) async fn serve_admin<H: Handler>(
    listener: Listener,
    ctx: Arc<H>,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(ctx.config().max_admin_conns));
    let address = match &listener {
        Listener::Tcp(l) => l.local_addr().ok(),
        Listener::Unix(_) => None,
    };
    let board = Board::new(ctx.config(), address);
    // Each 503 lingers up to LINGER for the client to read it; past this
    // many at once a connection over the limit is just closed, so a flood
    // of admin connects cannot hold descriptors the subscribers need.
    let refusals = Arc::new(Semaphore::new(MAX_REFUSALS));
    loop {
        let accepted = tokio::select! {
            accepted = accept(&listener) => accepted,
            _ = stop.changed() => {
                // Presence streams end with their terminator, if they can
                // within a moment.
                let ended = async {
                    while ctx.stats().presence_readers.load(Relaxed) > 0 {
                        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                    }
                };
                let _ = tokio::time::timeout(std::time::Duration::from_secs(1), ended).await;
                return;
            }
        };
        let (slots, refusals, board) = (&slots, &refusals, &board);
        match accepted {
            Ok(Accepted::Tcp(stream)) => {
                let _ = stream.set_nodelay(true);
                admit(stream, &ctx, slots, refusals, &stop, board);
            }
            Ok(Accepted::Unix(stream)) => admit(stream, &ctx, slots, refusals, &stop, board),
            Err(e) => {
                if c1m_common::is_exhaustion(&e).is_some() {
                    // Back off instead of spinning on EMFILE.
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
    }
}

enum Accepted {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
}

async fn accept(listener: &Listener) -> std::io::Result<Accepted> {
    match listener {
        Listener::Tcp(l) => l.accept().await.map(|(s, _)| Accepted::Tcp(s)),
        Listener::Unix(l) => l.accept().await.map(|(s, _)| Accepted::Unix(s)),
    }
}

/// Serves `stream` in its own task while a slot is free; over
/// `--max-admin-conns` it gets a 503 (or, past [`MAX_REFUSALS`] of those at
/// once, just the close).
fn admit<S, H>(
    mut stream: S,
    ctx: &Arc<H>,
    slots: &Arc<Semaphore>,
    refusals: &Arc<Semaphore>,
    stop: &watch::Receiver<bool>,
    board: &Option<Arc<Board>>,
) where
    S: AsyncRead + AsyncWrite + AsFd + Unpin + Send + 'static,
    H: Handler,
{
    let (ctx, stop, board) = (ctx.clone(), stop.clone(), board.clone());
    let task = |permit: OwnedSemaphorePermit, refuse_it: bool| async move {
        if refuse_it {
            let reject = Reject::new(
                Status::ServiceUnavailable,
                "over --max-admin-conns admin connections",
            );
            refuse(&mut stream, &*ctx, reject).await;
        } else {
            serve_conn(stream, ctx, stop, board).await;
        }
        drop(permit);
    };
    if let Ok(slot) = slots.clone().try_acquire_owned() {
        tokio::spawn(task(slot, false));
    } else if let Ok(refusal) = refusals.clone().try_acquire_owned() {
        tokio::spawn(task(refusal, true));
    }
}

/// One keep-alive admin connection: head, body, answer, repeat.
async fn serve_conn<S, H>(
    mut stream: S,
    ctx: Arc<H>,
    stop: watch::Receiver<bool>,
    board: Option<Arc<Board>>,
) where
    S: AsyncRead + AsyncWrite + AsFd + Unpin,
    H: Handler,
{
    let config = ctx.config();
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    let mut out = Vec::with_capacity(1024);
    let token = config.admin_token.as_deref();
    loop {
        // The head, within --header-timeout.
        let head = tokio::time::timeout(config.header_timeout, async {
            loop {
                match parse_admin_head(&buf, token, config.max_id) {
                    Ok(None) => {}
                    done => return Some(done),
                }
                match stream.read_buf(&mut buf).await {
                    Ok(0) | Err(_) => return None,
                    Ok(_) => {}
                }
            }
        })
        .await;
        let head = match head {
            Ok(Some(Ok(Some(head)))) => head,
            Ok(Some(Err(reject))) => return refuse(&mut stream, &*ctx, reject).await,
            // Closed, timed out or failed: nothing to answer.
            _ => return,
        };
        if head.content_length > config.max_body {
            let reject = Reject::new(Status::PayloadTooLarge, "body is over --max-body");
            return refuse(&mut stream, &*ctx, reject).await;
        }
        // The page, its stream and tickets (`--dashboard`), whatever the
        // admin routes would say of their paths.
        if let Some(board) = &board {
            let at = &buf[..head.len];
            match board
                .serve(at, head.content_length, &mut stream, &*ctx)
                .await
            {
                Some(Ok(true)) => {
                    buf.drain(..head.len);
                    continue;
                }
                Some(Ok(false)) => return,
                Some(Err(reject)) => return refuse(&mut stream, &*ctx, reject).await,
                None => {}
            }
        }
        // Refused (401, 404, ...): answer at once; the body is never buffered,
        // so an unauthorized client cannot make the server hold --max-body.
        let route = match head.route {
            Ok(route) => route,
            Err(reject) => return refuse(&mut stream, &*ctx, reject).await,
        };
        if route == AdminRoute::Presence {
            let presence = ctx.presence();
            let subscription = presence.subscribe();
            if let Err(reject) = ctx.presence_ready().await {
                return refuse(&mut stream, &*ctx, reject).await;
            }
            return presence::serve(&mut stream, presence, subscription, head.http11, stop).await;
        }
        // One message in the body: it must fit a subscriber's --max-pending.
        let single = matches!(
            route,
            AdminRoute::SendOne(_) | AdminRoute::PublishOne(_) | AdminRoute::Broadcast
        );
        if single && head.content_length > config.max_pending {
            return refuse(&mut stream, &*ctx, oversized()).await;
        }
        let publish = matches!(route, AdminRoute::PublishOne(_) | AdminRoute::PublishBatch);
        if publish && config.friends.is_none() {
            return refuse(&mut stream, &*ctx, no_graph()).await;
        }
        // A group's own request: only its front may ask a worker.
        if route.internal() && config.membership.is_none() {
            return refuse(&mut stream, &*ctx, not_a_worker(route)).await;
        }
        // Below --max-body (checked above), so no overflow.
        let end = head.len.saturating_add(head.content_length);
        // Without it a client that asked waits (curl: 1 s) before sending.
        if buf.len() < end && head.expect_continue && stream.write_all(CONTINUE).await.is_err() {
            return;
        }
        // The body too must arrive within --header-timeout of its head
        // (an admin slowloris would otherwise hold a task forever).
        let body = tokio::time::timeout(config.header_timeout, async {
            while buf.len() < end {
                // Room for what may come next, not for what the head
                // announced: the buffer grows with the bytes that arrive.
                buf.reserve((end - buf.len()).min(BODY_STEP));
                match stream.read_buf(&mut buf).await {
                    Ok(0) | Err(_) => return false,
                    Ok(_) => {}
                }
            }
            true
        })
        .await;
        if body != Ok(true) {
            return;
        }
        let body = &buf[head.len..end];
        // Refused at the door (a group's front too): no transport could
        // carry it to a subscriber intact.
        if let (true, Some(reason)) = (single, transport::uncarriable(body)) {
            return refuse(&mut stream, &*ctx, Reject::new(Status::BadRequest, reason)).await;
        }
        out.clear();
        let keep_alive = ctx.answer(route, body, head.keep_alive, &mut out).await;
        if let Some(board) = &board {
            board.decorate(&buf[..head.len], &mut out);
        }
        if stream.write_all(&out).await.is_err() || !keep_alive {
            return;
        }
        buf.drain(..end);
        if buf.capacity() > BODY_STEP && buf.len() <= BODY_STEP {
            // A keep-alive connection between requests holds no large body.
            buf.shrink_to(BODY_STEP);
        }
    }
}

/// Most bytes a body's buffer is grown by ahead of what has arrived (and
/// what an idle keep-alive connection keeps).
const BODY_STEP: usize = 64 * 1024;

/// Answers a refused request and closes. What the client still sends (a
/// body) is read and discarded for a short while first: closing a socket
/// with unread bytes resets it, and the reset can destroy the answer before
/// the client reads it.
async fn refuse<S, H>(stream: &mut S, ctx: &H, reject: Reject)
where
    S: AsyncRead + AsyncWrite + Unpin,
    H: Handler,
{
    ctx.stats().bad_requests.fetch_add(1, Relaxed);
    let mut out = Vec::new();
    write_error(&reject, &mut out);
    if stream.write_all(&out).await.is_err() || stream.shutdown().await.is_err() {
        return;
    }
    let mut sink = [0u8; 4096];
    let linger = LINGER.min(ctx.config().header_timeout);
    let _ = tokio::time::timeout(linger, async {
        while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}

/// How long a refused admin connection's remaining input is discarded.
const LINGER: std::time::Duration = std::time::Duration::from_secs(2);

/// Calls `each(id, message)` for every line of a `/send` or `/publish`
/// batch as [`parse_batch`] does, and rejects too a line whose message no
/// subscriber could take (over `--max-pending`, or holding a CR); a batch
/// with a rejected line counts once in `bad_requests`.
pub(crate) fn parse_deliverable<'a>(
    config: &Config,
    stats: &Stats,
    body: &'a [u8],
    mut each: impl FnMut(u64, &'a [u8]),
) -> BatchLines {
    let mut refused = 0;
    let mut lines = parse_batch(body, config.max_id, |id, message| {
        if message.len() > config.max_pending || transport::uncarriable(message).is_some() {
            refused += 1;
        } else {
            each(id, message);
        }
    });
    lines.accepted -= refused;
    lines.rejected += refused;
    if lines.rejected > 0 {
        stats.bad_requests.fetch_add(1, Relaxed);
    }
    lines
}

/// Publishes every line of `body` to the router in one outbox, counted in
/// `stats`; what one process's `POST /send` answers.
pub(crate) fn publish_batch(ctx: &AdminCtx, body: &[u8]) -> BatchAnswer {
    let (mut delivered, mut dropped, mut connections) = (0, 0, 0);
    let lines = publish_lines(ctx, body, |n| {
        connections += n;
        if n == 0 {
            dropped += 1;
        } else {
            delivered += 1;
        }
    });
    BatchAnswer {
        accepted: lines.accepted,
        rejected: lines.rejected,
        delivered: Some(delivered),
        dropped: Some(dropped),
        connections: Some(connections),
    }
}

/// `POST /send-each` (a worker, from its front): as `/send`, with the
/// connections each line reached.
fn publish_each(ctx: &AdminCtx, body: &[u8]) -> SendEachAnswer {
    let mut connections = Vec::new();
    publish_lines(ctx, body, |n| {
        connections.push(u32::try_from(n).unwrap_or(u32::MAX));
    });
    SendEachAnswer { connections }
}

/// Publishes the lines of a `/send` body in one outbox, counted in
/// `stats`; `each` is told the connections each accepted line reached.
fn publish_lines(ctx: &AdminCtx, body: &[u8], mut each: impl FnMut(u64)) -> BatchLines {
    let (router, stats) = (&ctx.router, &ctx.stats);
    let mut outbox = router.outbox(BatchKind::Direct);
    let mut dropped = 0;
    let lines = parse_deliverable(&ctx.config, stats, body, |id, message| {
        let n = router.publish(id, message, &mut outbox).connections as u64;
        dropped += u64::from(n == 0);
        each(n);
    });
    router.flush(&mut outbox);
    stats.messages_in.fetch_add(lines.accepted, Relaxed);
    stats.dropped.fetch_add(dropped, Relaxed);
    lines
}

/// Publishes one message to `id`'s connections; the number reached.
pub(crate) fn publish_one(ctx: &AdminCtx, id: u64, message: &[u8]) -> u64 {
    let router = &ctx.router;
    let mut outbox = router.outbox(BatchKind::Direct);
    let published = router.publish(id, message, &mut outbox);
    router.flush(&mut outbox);
    ctx.stats.messages_in.fetch_add(1, Relaxed);
    if published.connections == 0 {
        ctx.stats.dropped.fetch_add(1, Relaxed);
    }
    published.connections as u64
}

/// Handles a routed request; appends the whole response to `out`; false
/// when the connection must close after it.
fn answer(
    ctx: &AdminCtx,
    route: AdminRoute,
    body: &[u8],
    keep_alive: bool,
    out: &mut Vec<u8>,
) -> bool {
    let (content_type, payload) = match route {
        AdminRoute::SendOne(id) => json(&SendAnswer {
            id,
            connections: publish_one(ctx, id, body),
        }),
        AdminRoute::SendBatch => json(&publish_batch(ctx, body)),
        AdminRoute::SendEach => json(&publish_each(ctx, body)),
        AdminRoute::PublishOne(id) => json(&publish::event(ctx, id, body)),
        AdminRoute::PublishBatch => json(&publish::events(ctx, body)),
        AdminRoute::Fanout => match publish::fanout(ctx, body) {
            Ok(answer) => json(&answer),
            Err(malformed) => {
                // Front and worker are one binary: this is a bug, said loudly.
                eprintln!("comet-server: worker: {malformed}");
                ctx.stats.bad_requests.fetch_add(1, Relaxed);
                let reason = "malformed POST /fanout body (front and worker disagree)";
                write_error(&Reject::new(Status::BadRequest, reason), out);
                return false;
            }
        },
        AdminRoute::Broadcast => json(&publish::broadcast(ctx, body)),
        AdminRoute::Presence => unreachable!("a presence stream is served by presence::serve"),
        AdminRoute::Check(id) => {
            let connections = ctx.router.connections(id);
            json(&CheckAnswer {
                id,
                online: connections > 0,
                connections: connections as u64,
            })
        }
        AdminRoute::Stats => json(&ctx.stats.snapshot()),
        AdminRoute::Metrics => (
            PROMETHEUS,
            crate::stats::to_prometheus(&ctx.stats.snapshot()).into_bytes(),
        ),
    };
    respond(out, content_type, &payload, keep_alive);
    keep_alive
}

/// The content type of `GET /metrics`.
pub(crate) const PROMETHEUS: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Appends a `200 OK` response carrying `payload`.
pub(crate) fn respond(out: &mut Vec<u8>, content_type: &str, payload: &[u8], keep_alive: bool) {
    use std::io::Write;
    let connection = if keep_alive { "keep-alive" } else { "close" };
    let _ = write!(
        out,
        "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: {connection}\r\n\r\n",
        payload.len()
    );
    out.extend_from_slice(payload);
}

pub(crate) fn json(value: &impl Serialize) -> (&'static str, Vec<u8>) {
    let mut body = serde_json::to_vec(value).unwrap_or_default();
    body.push(b'\n');
    ("application/json", body)
}
