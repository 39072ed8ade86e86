//! A group's subscription manager (`--friends` with `--workers`): the front
//! holds the friends graph, once, and splits each event's friends by the
//! worker that owns them; each worker gets one `POST /fanout` per request
//! (`c1m_common::push_fanout_line`: its ids, then the event), publishes to
//! its online ids and says which lines reached none.
//!
//! Why the front: the graph of 1M users with 50 friends each takes ~111 MB;
//! held by each of 53 workers it would take ~6 GB, and each worker would
//! parse the 314 MB file at start-up. Here a worker holds nothing more, and
//! an event's bytes cross to each worker that has a friend of its publisher
//! once, not once per friend. Cost on the front: decoding the friends
//! (varints) and writing their ids as text, ~8 bytes per friend.
//!
//! A worker that does not answer (down, restarting) loses its part: its
//! connections went with it, so the lines count as `undeliverable` and the
//! answer is still 200, as `/send` does: a 503 would make the publisher
//! retry the whole batch and duplicate what the other workers delivered.

use std::sync::atomic::Ordering::Relaxed;

use c1m_common::{push_fanout_line, FanoutAnswer};
use futures_util::future::join_all;

use super::Workers;
use crate::friends::{FriendsGraph, Reach};

/// What a batch of events reached across the group.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Spread {
    /// Friends, online friends and deliveries, summed over the events.
    pub(crate) reach: Reach,
    /// Events no worker found an online friend for.
    pub(crate) unheard: u64,
    /// Lines (an event's share for one worker) that a worker did not
    /// answer: this batch's part of the group's `undeliverable`.
    pub(crate) failed: u64,
}

/// One worker's share of a batch: request bodies, each under the size
/// limit, and for each of their lines the event it carries.
#[derive(Default)]
struct Share {
    bodies: Vec<Vec<u8>>,
    events: Vec<Vec<usize>>,
}

impl Share {
    fn push(&mut self, ids: &[u64], event: &[u8], index: usize, max_body: usize) {
        let line = event.len() + ids.len() * 21 + 24;
        match self.bodies.last() {
            Some(body) if body.len() + line <= max_body => {}
            _ => {
                self.bodies.push(Vec::new());
                self.events.push(Vec::new());
            }
        }
        let last = self.bodies.len() - 1;
        push_fanout_line(&mut self.bodies[last], ids, event);
        self.events[last].push(index);
    }
}

/// Publishes `events` (publisher, event) to the publishers' online friends
/// across the group; one publisher's events keep their order. Each request
/// body stays within `max_body` (the workers' `--max-body`).
pub(crate) async fn publish(
    workers: &Workers,
    graph: &FriendsGraph,
    events: &[(u64, &[u8])],
    max_body: usize,
) -> Spread {
    let n = workers.len();
    let mut shares: Vec<Share> = (0..n).map(|_| Share::default()).collect();
    let mut owned: Vec<Vec<u64>> = vec![Vec::new(); n];
    let mut spread = Spread::default();
    for (index, &(publisher, event)) in events.iter().enumerate() {
        for friend in graph.friends(publisher) {
            owned[workers.owner(friend)].push(friend);
            spread.reach.friends += 1;
        }
        for (share, ids) in shares.iter_mut().zip(&mut owned) {
            if !ids.is_empty() {
                share.push(ids, event, index, max_body);
                ids.clear();
            }
        }
    }
    // Each worker's bodies in order (one publisher's events stay in order);
    // the workers at once.
    let sends = shares.iter().enumerate().map(|(w, share)| async move {
        let mut answers = Vec::with_capacity(share.bodies.len());
        for body in &share.bodies {
            answers.push(workers.fanout_to(w, body).await);
        }
        answers
    });
    let mut heard = vec![false; events.len()];
    for (share, answers) in shares.iter().zip(join_all(sends).await) {
        for (lines, answer) in share.events.iter().zip(answers) {
            let Some(answer) = answer else {
                spread.failed += lines.len() as u64;
                workers.undeliverable.fetch_add(lines.len() as u64, Relaxed);
                continue;
            };
            spread.reach.online += answer.online;
            spread.reach.connections += answer.connections;
            mark_heard(&mut heard, lines, &answer);
        }
    }
    spread.unheard = heard.iter().filter(|&&h| !h).count() as u64;
    spread
}

/// Marks as heard the events of `lines` whose line `answer` did not list
/// as unheard (`answer.unheard` is ascending).
fn mark_heard(heard: &mut [bool], lines: &[usize], answer: &FanoutAnswer) {
    let mut unheard = answer.unheard.iter().peekable();
    for (line, &event) in lines.iter().enumerate() {
        if unheard.next_if(|&&u| u == line as u64).is_none() {
            heard[event] = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::link::Link;
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn each_batch_counts_the_lines_its_own_down_workers_lost() {
        // Three workers whose sockets no one listens on: every share is
        // lost, at once.
        let links = (0..3)
            .map(|w| {
                let name = format!("c1m-fanout-test-{}-{w}", std::process::id());
                Link::new(name, None, Duration::from_secs(60), Duration::from_secs(5))
            })
            .collect();
        let slots = Arc::new((0..3).map(|_| Default::default()).collect());
        let runtime = tokio::runtime::Handle::current();
        let workers = Workers::new(links, &runtime, 1 << 20, slots);
        // 1's friends are on workers 2, 0 and 1 (an id's owner is id % 3);
        // 5's, 4 alone, on worker 1.
        let graph = FriendsGraph::from_pairs(&[(1, 2), (1, 3), (1, 4), (4, 5)]);
        let (wide, narrow) = tokio::join!(
            publish(&workers, &graph, &[(1, b"a")], 1 << 20),
            publish(&workers, &graph, &[(5, b"b"), (5, b"c")], 1 << 20),
        );
        assert_eq!((wide.failed, wide.unheard), (3, 1), "three workers' lines");
        assert_eq!((narrow.failed, narrow.unheard), (2, 2), "worker 1's lines");
        assert_eq!(workers.undeliverable.load(Relaxed), 5);
    }

    #[test]
    fn an_event_is_heard_where_any_worker_heard_it() {
        let mut heard = vec![false; 4];
        let answer = FanoutAnswer {
            lines: 3,
            unheard: vec![0, 2],
            ..FanoutAnswer::default()
        };
        mark_heard(&mut heard, &[1, 2, 3], &answer);
        assert_eq!(heard, [false, false, true, false]);
        mark_heard(&mut heard, &[0], &FanoutAnswer::default());
        assert_eq!(heard, [true, false, true, false]);
    }

    #[test]
    fn a_share_starts_a_new_body_before_the_limit() {
        let mut share = Share::default();
        for index in 0..10 {
            share.push(&[1, 2, 3], &[b'x'; 40], index, 200);
        }
        assert!(share.bodies.len() > 1);
        assert!(
            share.bodies.iter().all(|b| b.len() <= 200),
            "{:?}",
            share.bodies
        );
        let lines: Vec<usize> = share.events.concat();
        assert_eq!(lines, (0..10).collect::<Vec<_>>());
    }
}
