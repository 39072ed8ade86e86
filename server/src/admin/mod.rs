//! The admin API on its own listener (loopback by default): `POST /send`
//! (batch), `POST /send/{id}`, `GET /check/{id}`, `GET /stats`, `GET
//! /metrics`, HTTP/1.1 keep-alive, optional bearer token.
//!
//! Admin connections are few (a generator or two, a scraper), so each is a
//! tokio task on a small current-thread runtime, at most
//! `--max-admin-conns` at once (each may buffer a body of `--max-body`); the subscriber side, where
//! connections are many, does not use tokio. A batch is parsed in place and
//! published into one [`Outbox`](crate::router::Outbox), so each reactor is
//! woken once per batch however many messages it holds.

mod routes;

pub use routes::parse_admin_head;
use routes::AdminRoute;

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use c1m_common::{parse_batch, BatchAnswer, CheckAnswer, SendAnswer};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};

use crate::config::Config;
use crate::router::Router;
use crate::stats::{to_prometheus, Stats};
use crate::transport;
use c1m_http::{write_error, Reject, Status};

/// Deliveries a reactor may have queued before publishers wait (~2 MB of
/// queued records and message bytes at 16-byte messages).
const MAX_BACKLOG: usize = 64 * 1024;

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

/// Admin connections being refused with 503 at once (see `serve_admin`).
const MAX_REFUSALS: usize = 64;

/// The interim answer to `Expect: 100-continue`.
const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// What admin handlers need.
pub(crate) struct AdminCtx {
    pub(crate) config: Config,
    pub(crate) router: Arc<Router>,
    pub(crate) stats: Arc<Stats>,
}

/// Accepts admin connections until `stop` turns true.
pub(crate) async fn serve_admin(
    listener: TcpListener,
    ctx: Arc<AdminCtx>,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(ctx.config.max_admin_conns));
    // Each 503 lingers up to LINGER for the client to read it; past this
    // many at once a connection over the limit is just closed, so a flood
    // of admin connects cannot hold descriptors the subscribers need.
    let refusals = Arc::new(Semaphore::new(MAX_REFUSALS));
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((mut stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    let ctx = ctx.clone();
                    match slots.clone().try_acquire_owned() {
                        Ok(slot) => tokio::spawn(async move {
                            serve_conn(stream, ctx).await;
                            drop(slot);
                        }),
                        Err(_) => match refusals.clone().try_acquire_owned() {
                            Ok(refusal) => tokio::spawn(async move {
                                let reject = Reject::new(
                                    Status::ServiceUnavailable,
                                    "over --max-admin-conns admin connections",
                                );
                                refuse(&mut stream, &ctx, reject).await;
                                drop(refusal);
                            }),
                            Err(_) => continue,
                        },
                    };
                }
                Err(e) => {
                    if c1m_common::is_exhaustion(&e).is_some() {
                        // Back off instead of spinning on EMFILE.
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                }
            },
            _ = stop.changed() => return,
        }
    }
}

/// One keep-alive admin connection: head, body, answer, repeat.
async fn serve_conn(mut stream: TcpStream, ctx: Arc<AdminCtx>) {
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    let mut out = Vec::with_capacity(1024);
    let token = ctx.config.admin_token.as_deref();
    loop {
        // The head, within --header-timeout.
        let head = tokio::time::timeout(ctx.config.header_timeout, async {
            loop {
                match parse_admin_head(&buf, token, ctx.config.max_id) {
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
            Ok(Some(Err(reject))) => return refuse(&mut stream, &ctx, reject).await,
            // Closed, timed out or failed: nothing to answer.
            _ => return,
        };
        if head.content_length > ctx.config.max_body {
            let reject = Reject::new(Status::PayloadTooLarge, "body is over --max-body");
            return refuse(&mut stream, &ctx, reject).await;
        }
        // Refused (401, 404, ...): answer at once; the body is never buffered,
        // so an unauthorized client cannot make the server hold --max-body.
        let route = match head.route {
            Ok(route) => route,
            Err(reject) => return refuse(&mut stream, &ctx, reject).await,
        };
        if matches!(route, AdminRoute::SendOne(_)) && head.content_length > ctx.config.max_pending {
            return refuse(&mut stream, &ctx, oversized()).await;
        }
        // Below --max-body (checked above), so no overflow.
        let end = head.len.saturating_add(head.content_length);
        // Without it a client that asked waits (curl: 1 s) before sending.
        if buf.len() < end && head.expect_continue && stream.write_all(CONTINUE).await.is_err() {
            return;
        }
        // The body too must arrive within --header-timeout of its head
        // (an admin slowloris would otherwise hold a task forever).
        let body = tokio::time::timeout(ctx.config.header_timeout, async {
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
        if let (AdminRoute::SendOne(_), Some(reason)) = (route, transport::uncarriable(body)) {
            return refuse(&mut stream, &ctx, Reject::new(Status::BadRequest, reason)).await;
        }
        if matches!(route, AdminRoute::SendOne(_) | AdminRoute::SendBatch) {
            // Backpressure: while a reactor has more than this left to
            // write, the publisher waits instead of queueing without bound.
            while ctx.router.backlog() > MAX_BACKLOG {
                tokio::time::sleep(std::time::Duration::from_micros(500)).await;
            }
        }
        out.clear();
        answer(&ctx, route, body, head.keep_alive, &mut out);
        if stream.write_all(&out).await.is_err() || !head.keep_alive {
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
async fn refuse(stream: &mut TcpStream, ctx: &AdminCtx, reject: Reject) {
    ctx.stats.bad_requests.fetch_add(1, Relaxed);
    let mut out = Vec::new();
    write_error(&reject, &mut out);
    if stream.write_all(&out).await.is_err() || stream.shutdown().await.is_err() {
        return;
    }
    let mut sink = [0u8; 4096];
    let linger = LINGER.min(ctx.config.header_timeout);
    let _ = tokio::time::timeout(linger, async {
        while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}

/// How long a refused admin connection's remaining input is discarded.
const LINGER: std::time::Duration = std::time::Duration::from_secs(2);

/// Handles a routed request; appends the whole response to `out`.
fn answer(ctx: &AdminCtx, route: AdminRoute, body: &[u8], keep_alive: bool, out: &mut Vec<u8>) {
    let router = &ctx.router;
    let stats = &ctx.stats;
    let (content_type, payload) = match route {
        AdminRoute::SendOne(id) => {
            let mut outbox = router.outbox();
            let published = router.publish(id, body, &mut outbox);
            router.flush(&mut outbox);
            stats.messages_in.fetch_add(1, Relaxed);
            if published.connections == 0 {
                stats.dropped.fetch_add(1, Relaxed);
            }
            json(&SendAnswer {
                id,
                connections: published.connections as u64,
            })
        }
        AdminRoute::SendBatch => {
            let mut outbox = router.outbox();
            let (mut delivered, mut dropped, mut connections, mut refused) = (0, 0, 0, 0);
            let mut lines = parse_batch(body, ctx.config.max_id, |id, message| {
                if message.len() > ctx.config.max_pending
                    || transport::uncarriable(message).is_some()
                {
                    refused += 1;
                    return;
                }
                let n = router.publish(id, message, &mut outbox).connections as u64;
                connections += n;
                if n == 0 {
                    dropped += 1;
                } else {
                    delivered += 1;
                }
            });
            router.flush(&mut outbox);
            lines.accepted -= refused;
            lines.rejected += refused;
            stats.messages_in.fetch_add(lines.accepted, Relaxed);
            stats.dropped.fetch_add(dropped, Relaxed);
            if lines.rejected > 0 {
                stats.bad_requests.fetch_add(1, Relaxed);
            }
            json(&BatchAnswer {
                accepted: lines.accepted,
                rejected: lines.rejected,
                delivered: Some(delivered),
                dropped: Some(dropped),
                connections: Some(connections),
            })
        }
        AdminRoute::Check(id) => {
            let connections = router.connections(id);
            json(&CheckAnswer {
                id,
                online: connections > 0,
                connections: connections as u64,
            })
        }
        AdminRoute::Stats => json(&stats.snapshot()),
        AdminRoute::Metrics => (
            "text/plain; version=0.0.4; charset=utf-8",
            to_prometheus(&stats.snapshot()).into_bytes(),
        ),
    };
    use std::io::Write;
    let connection = if keep_alive { "keep-alive" } else { "close" };
    let _ = write!(
        out,
        "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: {connection}\r\n\r\n",
        payload.len()
    );
    out.extend_from_slice(&payload);
}

fn json(value: &impl Serialize) -> (&'static str, Vec<u8>) {
    let mut body = serde_json::to_vec(value).unwrap_or_default();
    body.push(b'\n');
    ("application/json", body)
}
