//! A counting stand-in for the server's `POST /send` batch endpoint, for the
//! integration tests and the benchmark sink (`examples/sink.rs`).
//!
//! It reads HTTP/1.1 requests with `c1m_http` on keep-alive connections,
//! counts requests and message lines, can record every envelope it is sent
//! (tests), and answers as its [`Behavior`] says: the usual 200 with
//! comet-server's `BatchAnswer` `{"accepted":..,"rejected":..,"delivered":..,
//! "dropped":..}` (ids divisible by 10 count as "no connection"; with
//! `reject_multiple_of`, ids divisible by it are refused), or a fixed error
//! status for the first N requests. Bodies are read with comet-server's own
//! parser, `c1m_common::parse_batch`.

#![allow(dead_code)] // Each test binary uses a different part.

use c1m_common::{decode_envelope, parse_batch, BatchAnswer, Header};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone, Copy)]
pub(crate) struct Behavior {
    /// Answer this status instead of 200 ...
    pub fail_status: u16,
    /// ... to the first this many requests (u64::MAX: to all).
    pub fail_first: u64,
    /// Keep every envelope received (tests; costs memory).
    pub record: bool,
    /// Close the connection after each answer, without saying so (as a
    /// server's keep-alive idle timeout does).
    pub close_after_answer: bool,
    /// Read requests but never answer (a hung server).
    pub silent: bool,
    /// Answer 401 unless the request carries `Authorization: Bearer <this>`.
    pub token: Option<&'static str>,
    /// Refuse the lines whose id is divisible by this (as comet-server
    /// refuses a bad id or an oversized message), saying so in `rejected`.
    pub reject_multiple_of: Option<u64>,
    /// With the failing status: this `Retry-After` (seconds).
    pub retry_after: Option<u32>,
}

impl Behavior {
    pub(crate) fn accept() -> Self {
        Self {
            fail_status: 200,
            fail_first: 0,
            record: true,
            close_after_answer: false,
            silent: false,
            token: None,
            reject_multiple_of: None,
            retry_after: None,
        }
    }

    pub(crate) fn fail(status: u16, first: u64) -> Self {
        Self {
            fail_status: status,
            fail_first: first,
            record: true,
            close_after_answer: false,
            silent: false,
            token: None,
            reject_multiple_of: None,
            retry_after: None,
        }
    }
}

/// What arrived.
#[derive(Debug)]
pub(crate) struct SinkState {
    pub start: Instant,
    pub requests: AtomicU64,
    pub connections: AtomicU64,
    /// Message lines in accepted batches.
    pub messages: AtomicU64,
    /// Of those, lines whose id is divisible by 10 (answered as dropped).
    pub dropped: AtomicU64,
    /// Lines refused (`Behavior::reject_multiple_of`), not in `messages`.
    pub rejected: AtomicU64,
    /// Every envelope of an accepted batch, in arrival order, with the
    /// microseconds since `start` at which its batch was read.
    pub envelopes: Mutex<Vec<(Header, usize, u64)>>,
    /// Microseconds since `start` of every request read.
    pub arrivals: Mutex<Vec<u64>>,
}

impl SinkState {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            requests: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            messages: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            envelopes: Mutex::new(Vec::new()),
            arrivals: Mutex::new(Vec::new()),
        }
    }
}

/// Serves on `listener` until the runtime stops; returns the shared state.
pub(crate) fn spawn(listener: TcpListener, behavior: Behavior) -> Arc<SinkState> {
    let state = Arc::new(SinkState::new());
    let shared = Arc::clone(&state);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let state = Arc::clone(&shared);
            state.connections.fetch_add(1, Relaxed);
            tokio::spawn(async move {
                let _ = connection(stream, behavior, &state).await;
            });
        }
    });
    state
}

/// What the sink reads of a request head.
const LIMITS: c1m_http::HeadLimits = c1m_http::HeadLimits::new(64 * 1024, 16);

async fn connection(
    mut stream: TcpStream,
    behavior: Behavior,
    state: &SinkState,
) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 16);
    loop {
        // Read a request head.
        let (head_len, body_len, authorized) = loop {
            let mut slots = c1m_http::HeaderSlots::new();
            match c1m_http::parse_request(&buf, &LIMITS, &mut slots) {
                Ok(Some(head)) => {
                    let len = match head.body {
                        c1m_http::BodyFraming::Length(n) => n as usize,
                        _ => 0,
                    };
                    let authorized = behavior.token.is_none_or(|token| {
                        head.headers.get("authorization")
                            == Some(format!("Bearer {token}").as_bytes())
                    });
                    break (head.len, len, authorized);
                }
                Ok(None) => {
                    if stream.read_buf(&mut buf).await? == 0 {
                        return Ok(());
                    }
                }
                Err(_) => return Ok(()),
            }
        };
        while buf.len() < head_len + body_len {
            if stream.read_buf(&mut buf).await? == 0 {
                return Ok(());
            }
        }
        let arrived_us = state.start.elapsed().as_micros() as u64;
        let index = state.requests.fetch_add(1, Relaxed);
        state.arrivals.lock().unwrap().push(arrived_us);
        if behavior.silent {
            buf.drain(..head_len + body_len);
            continue;
        }
        let body = &buf[head_len..head_len + body_len];
        let answer = if !authorized {
            "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n".to_owned()
        } else if index < behavior.fail_first && behavior.fail_status != 200 {
            let retry_after = behavior
                .retry_after
                .map_or(String::new(), |s| format!("Retry-After: {s}\r\n"));
            format!(
                "HTTP/1.1 {} Refused\r\n{retry_after}Content-Length: 0\r\n\r\n",
                behavior.fail_status
            )
        } else {
            let counted = count(
                body,
                behavior.reject_multiple_of,
                behavior.record.then_some((state, arrived_us)),
            );
            let Counted {
                lines,
                dropped,
                rejected,
            } = counted;
            state.messages.fetch_add(lines, Relaxed);
            state.dropped.fetch_add(dropped, Relaxed);
            state.rejected.fetch_add(rejected, Relaxed);
            let json = serde_json::to_string(&BatchAnswer {
                accepted: lines,
                rejected,
                delivered: Some(lines - dropped),
                dropped: Some(dropped),
                connections: None,
            })
            .unwrap();
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{json}",
                json.len()
            )
        };
        buf.drain(..head_len + body_len);
        stream.write_all(answer.as_bytes()).await?;
        if behavior.close_after_answer {
            return Ok(());
        }
    }
}

/// What one batch held.
struct Counted {
    /// Lines taken.
    lines: u64,
    /// Of those, lines whose id is divisible by 10 ("no connection").
    dropped: u64,
    /// Lines refused (`reject_multiple_of`), not in `lines`.
    rejected: u64,
}

/// Counts the `id<TAB>message` lines of a batch, refusing those whose id is
/// divisible by `reject`; records the envelopes taken when asked.
fn count(body: &[u8], reject: Option<u64>, record: Option<(&SinkState, u64)>) -> Counted {
    let (mut lines, mut dropped, mut rejected) = (0, 0, 0);
    let mut recorded = Vec::new();
    let read = parse_batch(body, u64::MAX, |id, message| {
        if reject.is_some_and(|k| id % k == 0) {
            rejected += 1;
            return;
        }
        lines += 1;
        if id % 10 == 0 {
            dropped += 1;
        }
        if let Some((_, at)) = record {
            let decoded = decode_envelope(message);
            let (env, used) = decoded.ok().flatten().unwrap_or_else(|| {
                panic!(
                    "message is not an envelope: {:?}",
                    String::from_utf8_lossy(message)
                )
            });
            assert_eq!(used, message.len(), "bytes after the envelope");
            assert_eq!(env.header.id, id, "line id and envelope id differ");
            recorded.push((env.header, env.payload.len(), at));
        }
    });
    assert_eq!(read.rejected, 0, "msggen wrote a line comet-server refuses");
    if let Some((state, _)) = record {
        state.envelopes.lock().unwrap().extend(recorded);
    }
    Counted {
        lines,
        dropped,
        rejected,
    }
}
