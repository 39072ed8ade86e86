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
//! `/publish` and `/broadcast` travel the same way ([`Carried`]).
//!
//! When is a `/send` (or `/publish`, `/broadcast`) answered? When the front's own subscription has
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

use c1m_common::{
    push_batch_line, BatchAnswer, BroadcastAnswer, PublishAnswer, PublishBatchAnswer,
};

use crate::admin::{json, respond, AdminRoute};
use crate::config::Config;
use crate::stats::Stats;

/// How long a `/send` waits for its echo before answering 503.
pub(crate) const CONFIRM: Duration = Duration::from_secs(3);

/// The header naming the publishing front and its message number.
const ORIGIN: &str = "c1m-origin";

/// The header of a single message (`POST /send/{id}`), whose body may hold
/// any bytes; a message without it is a batch of `id<TAB>message` lines.
const SINGLE_ID: &str = "c1m-id";

/// The header naming what a NATS message carries when it is not `/send`'s
/// messages (see [`Carried`]).
const KIND: &str = "c1m-kind";

/// What one NATS message carries: the body of a `/send`, a `/publish` or a
/// `/broadcast` posted to some front. Each is routed by every group as it
/// would route the request posted to it: messages to their ids' owners,
/// events through the group's own copy of the friends graph to the friends
/// it holds, a broadcast to every connection. So an event travels once per
/// group whatever its publisher's friend count, and no front needs to know
/// where another's users are (the measured choice: `server/README.md`,
/// "Friends' events across groups").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Carried {
    Messages,
    Events,
    Broadcast,
}

impl Carried {
    /// The `c1m-kind` value; messages have none (as before it existed).
    fn header(self) -> Option<&'static str> {
        match self {
            Carried::Messages => None,
            Carried::Events => Some("events"),
            Carried::Broadcast => Some("broadcast"),
        }
    }

    /// `None` for a kind this version does not know (a newer front's).
    fn from_header(value: Option<&str>) -> Option<Self> {
        match value {
            None => Some(Carried::Messages),
            Some("events") => Some(Carried::Events),
            Some("broadcast") => Some(Carried::Broadcast),
            Some(_) => None,
        }
    }
}

/// Where received messages go: this process's router, or the workers of a
/// group through its front.
pub(crate) enum Sink {
    Local(std::sync::Arc<crate::admin::AdminCtx>),
    Group(std::sync::Arc<crate::group::Front>),
}

/// What routing one received message into the group did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Routed {
    /// Messages (or events, or a broadcast) routed.
    pub(crate) messages: u64,
    /// Of those, messages that reached no connection (events: no friend).
    pub(crate) dropped: u64,
    /// Messages this group could not take (a worker was down, or events
    /// arrived at a group without `--friends`).
    pub(crate) failed: u64,
    /// Why, when `failed` has a cause the operator must fix.
    pub(crate) problem: Option<&'static str>,
}

/// Events arrived at a group that holds no graph.
pub(crate) const NO_GRAPH: &str = "friends' events arrived from NATS but this server has no \
     --friends graph: give every group of the cluster the same --friends FILE";

impl Routed {
    /// What a `/publish/{id}` routed here reached.
    pub(crate) fn event(answer: &PublishAnswer) -> Self {
        Routed {
            messages: 1,
            dropped: u64::from(answer.online == Some(0)),
            ..Routed::default()
        }
    }

    /// What a `/publish` batch routed here reached.
    pub(crate) fn events(answer: &PublishBatchAnswer) -> Self {
        Routed {
            messages: answer.accepted,
            dropped: answer.unheard.unwrap_or(0),
            ..Routed::default()
        }
    }

    /// Events this group cannot fan out (it has no graph).
    pub(crate) fn without_graph(single: Option<u64>, body: &[u8]) -> Self {
        let events = match single {
            Some(_) => 1,
            None => body.iter().filter(|&&b| b == b'\n').count() as u64,
        };
        Routed {
            messages: events,
            failed: events,
            problem: Some(NO_GRAPH),
            ..Routed::default()
        }
    }
}

impl Sink {
    /// Routes a batch body (or one message for `id`) into the group.
    async fn route(&self, carried: Carried, single: Option<u64>, body: &[u8]) -> Routed {
        match self {
            Sink::Local(ctx) => {
                // The same backpressure a local /send waits on.
                ctx.router.room().await;
                route_local(ctx, carried, single, body)
            }
            Sink::Group(front) => front.route(carried, single, body).await,
        }
    }
}

/// [`Sink::route`] for one process: what its own admin answers would do.
fn route_local(
    ctx: &crate::admin::AdminCtx,
    carried: Carried,
    single: Option<u64>,
    body: &[u8],
) -> Routed {
    use crate::admin::{publish, publish_batch, publish_one};
    match (carried, single) {
        (Carried::Messages, Some(id)) => Routed {
            messages: 1,
            dropped: u64::from(publish_one(ctx, id, body) == 0),
            ..Routed::default()
        },
        (Carried::Messages, None) => {
            let sent = publish_batch(ctx, body);
            Routed {
                messages: sent.accepted,
                dropped: sent.dropped.unwrap_or(0),
                ..Routed::default()
            }
        }
        (Carried::Events, _) if ctx.config.friends.is_none() => Routed::without_graph(single, body),
        (Carried::Events, Some(id)) => Routed::event(&publish::event(ctx, id, body)),
        (Carried::Events, None) => Routed::events(&publish::events(ctx, body)),
        (Carried::Broadcast, _) => {
            publish::broadcast(ctx, body);
            Routed {
                messages: 1,
                ..Routed::default()
            }
        }
    }
}

/// Answers `POST /send`, `/send/{id}`, `/publish`, `/publish/{id}` and
/// `/broadcast` by publishing to NATS (see the module doc); `None` for any
/// other route. Returns whether the connection stays open (a 503 closes
/// it). The answer says what is known here: what NATS took, and for
/// events the publishers' friends in the graph; not what reached
/// connections (other groups' are not known).
pub(crate) async fn answer(
    broker: &Broker,
    config: &Config,
    stats: &Stats,
    route: AdminRoute,
    body: &[u8],
    keep_alive: bool,
    out: &mut Vec<u8>,
) -> Option<bool> {
    let carried = match route {
        AdminRoute::SendOne(_) | AdminRoute::SendBatch => Carried::Messages,
        AdminRoute::PublishOne(_) | AdminRoute::PublishBatch => Carried::Events,
        AdminRoute::Broadcast => Carried::Broadcast,
        _ => return None,
    };
    // A front that takes /publish holds the graph (refused at the head
    // otherwise).
    let friends_of = |id: u64| {
        config
            .friends
            .as_deref()
            .map_or(0, |g| g.friends(id).remaining() as u64)
    };
    let (published, at_stake) = match route {
        AdminRoute::SendOne(id) => {
            let sent = broker.publish_one(carried, id, body).await;
            let answer = BatchAnswer {
                accepted: 1,
                ..BatchAnswer::default()
            };
            (sent.map(|()| json(&answer)), 1)
        }
        AdminRoute::PublishOne(id) => {
            let sent = broker.publish_one(carried, id, body).await;
            let answer = PublishAnswer {
                id,
                friends: friends_of(id),
                online: None,
                connections: None,
            };
            (sent.map(|()| json(&answer)), 1)
        }
        AdminRoute::Broadcast => {
            let sent = broker.publish_broadcast(body).await;
            (sent.map(|()| json(&BroadcastAnswer { reactors: None })), 1)
        }
        _ => {
            // Only lines a worker would take travel: bad ids and messages
            // no subscriber could take are refused here, as one process
            // would.
            let mut valid = Vec::with_capacity(body.len());
            let mut friends = Vec::new();
            let lines = crate::admin::parse_deliverable(config, stats, body, |id, message| {
                // A parsed line's message holds no newline and no CR.
                let _ = push_batch_line(&mut valid, id, |o| o.extend_from_slice(message));
                friends.push(friends_of(id));
            });
            let sent = match lines.accepted {
                0 => Ok(0),
                _ => broker.publish_batch(carried, &valid).await,
            };
            let answer = sent.map(|confirmed| {
                // Part of it went: say so, the rest counts as refused.
                let unconfirmed = lines.accepted - confirmed;
                broker.refused(unconfirmed);
                let (accepted, rejected) = (confirmed, lines.rejected + unconfirmed);
                match carried {
                    Carried::Messages => json(&BatchAnswer {
                        accepted,
                        rejected,
                        ..BatchAnswer::default()
                    }),
                    _ => json(&PublishBatchAnswer {
                        accepted,
                        rejected,
                        friends: friends[..confirmed as usize].iter().sum(),
                        online: None,
                        connections: None,
                        unheard: None,
                    }),
                }
            });
            (answer, lines.accepted)
        }
    };
    Some(match published {
        Ok((content_type, payload)) => {
            respond(out, content_type, &payload, keep_alive);
            keep_alive
        }
        Err(why) => {
            broker.refused(at_stake);
            let reject = c1m_http::Reject::new(c1m_http::Status::ServiceUnavailable, why.reason());
            c1m_http::write_error(&reject, out);
            false
        }
    })
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
