//! Groups on several machines joined through NATS (`--broker`).
//!
//! The front of every group (a standalone server is a group of one
//! in-process worker) holds one NATS connection and one subscription, to
//! `<prefix>.send`. A `POST /send` on any front is published there (a batch
//! as one NATS message, split at line boundaries under the server's
//! `max_payload`); every front, its own included, receives it and routes it
//! to its owners as a local `/send` would ([`Sink`]). So NATS delivers each
//! message once per group, and costs nothing per id: no per-id subject, no
//! per-id subscription (those cost ~5 KB each in async-nats and ~1 KB in
//! nats-server, over the 1 KB per connection this service may spend).
//!
//! When is a `/send` answered? When the front's own subscription has
//! received the message back from NATS (its echo, matched by a
//! `c1m-origin: <token>.<n>` header): that proves NATS took it and routed
//! it, where async-nats's `flush` only says the bytes reached the socket,
//! and across a reconnect can even report a message it discarded. So the
//! answer is `accepted`/`rejected` after the echo, without
//! `delivered`/`dropped` (other machines' connections are not known here);
//! `503` at once while NATS is away, or when no echo comes within
//! [`CONFIRM`] (counted in `undeliverable`). The one case this cannot make
//! exact: a message still queued inside async-nats when the connection
//! drops, which it sends after reconnecting more than [`CONFIRM`] later,
//! after its `/send` was answered 503 (and retried by msggen): that
//! message arrives twice. Waiting up to [`CONFIRM`] for the echo closes
//! the window for every outage shorter than that.
//!
//! Reconnecting is async-nats's (unlimited attempts, with a backoff of
//! our own: 50 ms doubling to 5 s, each +-50% jitter so that many fronts do
//! not reconnect in step); it re-subscribes by itself. Every subscriber
//! connection stays open meanwhile. `/stats` shows the state
//! ([`BrokerState`]).

mod link;

pub(crate) use link::Broker;

use std::time::Duration;

/// How long a `/send` waits for its echo before answering 503.
pub(crate) const CONFIRM: Duration = Duration::from_secs(3);

/// The header naming the publishing front and its message number.
const ORIGIN: &str = "c1m-origin";

/// The header of a single message (`POST /send/{id}`), whose body may hold
/// any bytes; a message without it is a batch of `id<TAB>message` lines.
const SINGLE_ID: &str = "c1m-id";

/// Where received messages go: this process's router, or the workers of a
/// group through their admin sockets.
pub(crate) enum Sink {
    Local(std::sync::Arc<crate::admin::AdminCtx>),
    Group(std::sync::Arc<crate::group::Workers>),
}

/// What routing one received message into the group did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Routed {
    /// Messages routed.
    pub(crate) messages: u64,
    /// Of those, messages that reached no connection.
    pub(crate) dropped: u64,
    /// Messages a worker could not take (it was down).
    pub(crate) failed: u64,
}

impl Sink {
    /// Routes a batch body (or one message for `id`) into the group.
    async fn route(&self, single: Option<u64>, body: &[u8]) -> Routed {
        match self {
            Sink::Local(ctx) => {
                // The same backpressure a local /send waits on.
                while ctx.router.backlog() > crate::admin::MAX_BACKLOG {
                    tokio::time::sleep(Duration::from_micros(500)).await;
                }
                match single {
                    Some(id) => Routed {
                        messages: 1,
                        dropped: u64::from(crate::admin::publish_one(ctx, id, body) == 0),
                        failed: 0,
                    },
                    None => {
                        let sent = crate::admin::publish_batch(ctx, body);
                        Routed {
                            messages: sent.accepted,
                            dropped: sent.dropped.unwrap_or(0),
                            failed: 0,
                        }
                    }
                }
            }
            Sink::Group(workers) => match single {
                Some(id) => workers.route_one(id, body).await,
                None => workers.route_batch(body).await,
            },
        }
    }
}

/// Answers `POST /send` and `POST /send/{id}` by publishing to NATS (see
/// the module doc); `None` for any other route. Returns whether the
/// connection stays open (a 503 closes it).
pub(crate) async fn answer_send(
    broker: &Broker,
    config: &crate::config::Config,
    route: crate::admin::AdminRoute,
    body: &[u8],
    keep_alive: bool,
    out: &mut Vec<u8>,
) -> Option<bool> {
    use crate::admin::{json, respond, AdminRoute};
    use c1m_common::BatchAnswer as SentBatch;
    let refused = |why: link::Unavailable, out: &mut Vec<u8>| {
        let reject = c1m_http::Reject::new(c1m_http::Status::ServiceUnavailable, why.reason());
        c1m_http::write_error(&reject, out);
        false
    };
    match route {
        AdminRoute::SendOne(id) => Some(match broker.publish_one(id, body).await {
            Ok(()) => {
                // What is known here is a batch of one's answer.
                let answer = SentBatch {
                    accepted: 1,
                    ..SentBatch::default()
                };
                let (content_type, payload) = json(&answer);
                respond(out, content_type, &payload, keep_alive);
                keep_alive
            }
            Err(why) => {
                broker.refused(1);
                refused(why, out)
            }
        }),
        AdminRoute::SendBatch => {
            // Only lines a worker would take travel: bad ids and messages
            // over --max-pending are refused here, as one process would.
            let mut valid = Vec::with_capacity(body.len());
            let mut oversized = 0;
            let lines = c1m_common::parse_batch(body, config.max_id, |id, message| {
                if message.len() > config.max_pending {
                    oversized += 1;
                    return;
                }
                valid.extend_from_slice(id.to_string().as_bytes());
                valid.push(b'\t');
                valid.extend_from_slice(message);
                valid.push(b'\n');
            });
            let sendable = lines.accepted - oversized;
            if sendable == 0 {
                let answer = SentBatch {
                    accepted: 0,
                    rejected: lines.rejected + oversized,
                    ..SentBatch::default()
                };
                let (content_type, payload) = json(&answer);
                respond(out, content_type, &payload, keep_alive);
                return Some(keep_alive);
            }
            Some(match broker.publish_batch(&valid).await {
                Ok(confirmed) => {
                    broker.refused(sendable - confirmed);
                    let answer = SentBatch {
                        accepted: confirmed,
                        rejected: lines.rejected + oversized + (sendable - confirmed),
                        ..SentBatch::default()
                    };
                    let (content_type, payload) = json(&answer);
                    respond(out, content_type, &payload, keep_alive);
                    keep_alive
                }
                Err(why) => {
                    broker.refused(sendable);
                    refused(why, out)
                }
            })
        }
        _ => None,
    }
}

/// Splits a batch body into pieces of at most `max` bytes at line
/// boundaries; a line longer than `max` is returned in `too_long`.
pub(crate) fn split_lines(body: &[u8], max: usize) -> (Vec<&[u8]>, u64) {
    let mut pieces = Vec::new();
    let mut too_long = 0;
    let mut start = 0;
    let mut end = 0;
    for line in body.split_inclusive(|&b| b == b'\n') {
        if line.len() > max {
            if end > start {
                pieces.push(&body[start..end]);
            }
            too_long += 1;
            end += line.len();
            start = end;
            continue;
        }
        if end + line.len() - start > max {
            pieces.push(&body[start..end]);
            start = end;
        }
        end += line.len();
    }
    if end > start {
        pieces.push(&body[start..end]);
    }
    (pieces, too_long)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_split_at_line_boundaries_under_the_limit() {
        let body = b"1\taaaa\n2\tbb\n3\tcccccccccccc\n4\td\n";
        let (pieces, too_long) = split_lines(body, 12);
        assert_eq!(too_long, 1, "line 3 cannot travel");
        assert_eq!(pieces, [&b"1\taaaa\n2\tbb\n"[..], &b"4\td\n"[..]]);
        let (pieces, too_long) = split_lines(body, 1000);
        assert_eq!((pieces, too_long), (vec![&body[..]], 0));
        assert!(split_lines(b"", 10).0.is_empty());
    }
}
