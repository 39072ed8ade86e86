//! The admin answers that reach many connections at once: `POST
//! /publish/{id}` and its batch form (an event for the publisher's online
//! friends, through the friends graph), `POST /fanout` (a group's worker:
//! events for ids its front picked from the graph), and `POST /broadcast`
//! (one message for every connection). Each publishes into one outbox, so
//! each reactor is woken once per request.

use std::sync::atomic::Ordering::Relaxed;

use c1m_common::{
    parse_fanout, BroadcastAnswer, FanoutAnswer, MalformedFanout, PublishAnswer, PublishBatchAnswer,
};

use super::{parse_deliverable, AdminCtx};
use crate::friends::{self, FriendsGraph, Reach};
use crate::router::BatchKind;

/// `POST /publish/{id}`: `event` to every connection of `id`'s online friends.
pub(crate) fn event(ctx: &AdminCtx, id: u64, event: &[u8]) -> PublishAnswer {
    let mut outbox = ctx.router.outbox(BatchKind::Fanout);
    let reach = friends::publish(graph(ctx), &ctx.router, id, event, &mut outbox);
    ctx.router.flush(&mut outbox);
    ctx.stats.events_in.fetch_add(1, Relaxed);
    if reach.online == 0 {
        ctx.stats.events_unheard.fetch_add(1, Relaxed);
    }
    PublishAnswer {
        id,
        friends: reach.friends,
        online: Some(reach.online),
        connections: Some(reach.connections),
    }
}

/// `POST /publish`: `publisher<TAB>event` lines, each published in turn, so
/// one publisher's events keep their order. A line is rejected for a bad id
/// or an event no subscriber could take (over `--max-pending`, or a CR).
pub(crate) fn events(ctx: &AdminCtx, body: &[u8]) -> PublishBatchAnswer {
    let graph = graph(ctx);
    let mut outbox = ctx.router.outbox(BatchKind::Fanout);
    let mut sum = Reach::default();
    let mut unheard = 0;
    let lines = parse_deliverable(&ctx.config, &ctx.stats, body, |id, event| {
        let reach = friends::publish(graph, &ctx.router, id, event, &mut outbox);
        unheard += u64::from(reach.online == 0);
        sum.add(reach);
    });
    ctx.router.flush(&mut outbox);
    ctx.stats.events_in.fetch_add(lines.accepted, Relaxed);
    ctx.stats.events_unheard.fetch_add(unheard, Relaxed);
    PublishBatchAnswer {
        accepted: lines.accepted,
        rejected: lines.rejected,
        friends: sum.friends,
        online: Some(sum.online),
        connections: Some(sum.connections),
        unheard: Some(unheard),
    }
}

/// `POST /fanout` (a group's worker): each line's event to every connection
/// of its ids that is online here. The front counts the events
/// (`events_in`, `events_unheard`); the reactors count the deliveries
/// (`fanout_out`). Lines before a malformed one are published.
pub(super) fn fanout(ctx: &AdminCtx, body: &[u8]) -> Result<FanoutAnswer, MalformedFanout> {
    let mut outbox = ctx.router.outbox(BatchKind::Fanout);
    let mut answer = FanoutAnswer::default();
    let parsed = parse_fanout(body, ctx.config.max_id, |ids, event| {
        let reached = ctx
            .router
            .publish_to_online(ids.iter().copied(), event, &mut outbox);
        if reached.online == 0 {
            answer.unheard.push(answer.lines);
        }
        answer.lines += 1;
        answer.online += reached.online;
        answer.connections += reached.connections;
    });
    ctx.router.flush(&mut outbox);
    parsed.map(|_| answer)
}

/// `POST /broadcast`: `message` to every connection of every reactor.
pub(crate) fn broadcast(ctx: &AdminCtx, message: &[u8]) -> BroadcastAnswer {
    ctx.router.broadcast(message);
    ctx.stats.broadcasts_in.fetch_add(1, Relaxed);
    BroadcastAnswer {
        reactors: Some(ctx.config.reactors as u64),
    }
}

/// The graph of a server that takes `/publish` (one without is refused at
/// the head, before its body is read).
fn graph(ctx: &AdminCtx) -> &FriendsGraph {
    ctx.config
        .friends
        .as_deref()
        .expect("/publish without a graph is refused at the head")
}
