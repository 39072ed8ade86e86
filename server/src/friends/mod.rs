//! The subscription manager of Part 3: a friends graph loaded at start-up
//! (`--friends FILE`), and events that reach every online friend of their
//! publisher.

mod graph;

pub use graph::{FriendsGraph, GraphError};

use crate::router::{FannedOut, Outbox, Router};

/// What one event reached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Reach {
    /// The publisher's friends in the graph.
    pub(crate) friends: u64,
    /// Friends that had a connection: each got the event as a message.
    pub(crate) online: u64,
    /// Connection deliveries queued.
    pub(crate) connections: u64,
}

impl Reach {
    pub(crate) fn add(&mut self, other: Reach) {
        self.friends += other.friends;
        self.online += other.online;
        self.connections += other.connections;
    }
}

/// Queues `event` from `publisher` for every connection of each of its
/// online friends. Cost: the friend list is decoded as it is walked (no
/// copy), and each friend costs one router shard lock; the event's bytes
/// reach each reactor once.
pub(crate) fn publish(
    graph: &FriendsGraph,
    router: &Router,
    publisher: u64,
    event: &[u8],
    outbox: &mut Outbox,
) -> Reach {
    let friends = graph.friends(publisher);
    let degree = friends.remaining() as u64;
    let FannedOut {
        online,
        connections,
    } = router.publish_to_online(friends, event, outbox);
    Reach {
        friends: degree,
        online,
        connections,
    }
}
