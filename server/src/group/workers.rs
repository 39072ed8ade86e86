//! The front's view of its workers: which one owns an id, and admin
//! requests split by owner, sent to the workers at once and summed, so the
//! answer is what one process holding every connection would have said.
//! Messages go through each worker's [`Lane`].

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use futures_util::future::join_all;

use super::lane::Lane;
use super::link::{Answer, Link, Streamed};
use super::supervise::Slots;
use c1m_common::StatsSnapshot;
use c1m_common::{push_batch_line, BroadcastAnswer, FanoutAnswer, SendAnswer};

/// The workers of a group, as the front reaches them.
pub(crate) struct Workers {
    links: Vec<Arc<Link>>,
    /// Every message for worker `w` goes through `lanes[w]`.
    lanes: Vec<Lane>,
    /// Pids and restarts, kept by the supervisor.
    pub(crate) slots: Arc<Slots>,
    /// Messages for a worker that did not answer (down or restarting): its
    /// connections are gone with it, so they count as dropped too.
    pub(crate) undeliverable: AtomicU64,
    /// `/send-each` requests the lanes made.
    pub(crate) sends: Arc<AtomicU64>,
}

impl Workers {
    /// The lanes' tasks run on `runtime` (the front's admin runtime); a
    /// lane's request stays within `max_body`.
    pub(crate) fn new(
        links: Vec<Link>,
        runtime: &tokio::runtime::Handle,
        max_body: usize,
        slots: Arc<Slots>,
    ) -> Self {
        let links: Vec<Arc<Link>> = links.into_iter().map(Arc::new).collect();
        let sends = Arc::new(AtomicU64::new(0));
        let lanes = links
            .iter()
            .map(|link| Lane::start(runtime, link.clone(), max_body, sends.clone()))
            .collect();
        Self {
            links,
            lanes,
            slots,
            undeliverable: AtomicU64::new(0),
            sends,
        }
    }

    /// How many workers the group has.
    pub(crate) fn len(&self) -> usize {
        self.links.len()
    }

    /// Sends worker `w` a `POST /fanout` body; `None` when it did not answer.
    pub(crate) async fn fanout_to(&self, w: usize, body: &[u8]) -> Option<FanoutAnswer> {
        let answer = self.links[w].request("POST", "/fanout", body).await.ok()?;
        if answer.status != 200 {
            return None;
        }
        serde_json::from_slice(&answer.body).ok()
    }

    /// Opens worker `w`'s streamed answer to `GET path`.
    pub(crate) async fn stream(&self, w: usize, path: &str) -> std::io::Result<Streamed> {
        self.links[w].stream(path).await
    }

    /// The worker that owns `id` (the same rule the workers apply).
    pub(crate) fn owner(&self, id: u64) -> usize {
        (id % self.links.len() as u64) as usize
    }

    /// Forwards one request to the owner of `id`; `None` when it did not answer.
    pub(crate) async fn to_owner(
        &self,
        id: u64,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Option<Answer> {
        self.links[self.owner(id)]
            .request(method, path, body)
            .await
            .ok()
    }

    /// Sends checked `(id, message)` lines (from a `/send` body, so no
    /// message holds a newline) through their owners' lanes, at once.
    pub(crate) async fn send_lines(&self, lines: &[(u64, &[u8])]) -> Sent {
        let mut parts: Vec<(Vec<u8>, usize)> = vec![(Vec::new(), 0); self.links.len()];
        for &(id, message) in lines {
            let (part, count) = &mut parts[self.owner(id)];
            let pushed = push_batch_line(part, id, |out| out.extend_from_slice(message));
            debug_assert!(pushed.is_ok(), "a parsed batch line is a batch line again");
            *count += 1;
        }
        let sends = parts
            .into_iter()
            .enumerate()
            .filter(|(_, (_, count))| *count > 0)
            .map(
                |(w, (part, count))| async move { (count, self.lanes[w].send(part, count).await) },
            );
        let mut sent = Sent::default();
        for (count, reached) in join_all(sends).await {
            match reached {
                Some(each) => each.into_iter().for_each(|n| sent.add(u64::from(n))),
                // The worker is down: its lines reached no connection.
                None => sent.fail(count as u64),
            }
        }
        self.undeliverable.fetch_add(sent.failed, Relaxed);
        sent
    }

    /// Sends one message to `id`'s owner: the connections it reached, or
    /// `None` when the worker did not answer (counted undeliverable).
    pub(crate) async fn send_one(&self, id: u64, message: &[u8]) -> Option<u64> {
        let w = self.owner(id);
        let mut line = Vec::with_capacity(message.len() + 24);
        let reached =
            if push_batch_line(&mut line, id, |out| out.extend_from_slice(message)).is_ok() {
                let each = self.lanes[w].send(line, 1).await;
                each.and_then(|each| each.first().copied()).map(u64::from)
            } else {
                // A message holding a newline is no line: it goes alone.
                let path = format!("/send/{id}");
                let answer = self.to_owner(id, "POST", &path, message).await;
                answer
                    .filter(|a| a.status == 200)
                    .and_then(|a| serde_json::from_slice::<SendAnswer>(&a.body).ok())
                    .map(|a| a.connections)
            };
        if reached.is_none() {
            self.undeliverable.fetch_add(1, Relaxed);
        }
        reached
    }

    /// `POST /broadcast` for the whole group: the message to every worker,
    /// their reactors summed (a worker that did not answer adds none).
    pub(crate) async fn broadcast(&self, message: &[u8]) -> BroadcastAnswer {
        let asks = self.links.iter().map(|link| async move {
            let answer = link.request("POST", "/broadcast", message).await.ok()?;
            serde_json::from_slice::<BroadcastAnswer>(&answer.body).ok()
        });
        let reactors = join_all(asks)
            .await
            .into_iter()
            .flatten()
            .filter_map(|a| a.reactors)
            .sum();
        BroadcastAnswer {
            reactors: Some(reactors),
        }
    }

    /// Every worker's `/stats`, in index order (`None`: no answer).
    pub(crate) async fn stats(&self) -> Vec<Option<StatsSnapshot>> {
        let asks = self.links.iter().map(|link| async move {
            let answer = link.request("GET", "/stats", b"").await.ok()?;
            serde_json::from_slice(&answer.body).ok()
        });
        join_all(asks).await
    }
}

/// What a group's workers did with messages sent to them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sent {
    /// Messages that reached at least one connection.
    pub(crate) delivered: u64,
    /// Messages that reached none (no connection, or their worker down).
    pub(crate) dropped: u64,
    /// Connection deliveries queued.
    pub(crate) connections: u64,
    /// Of `dropped`, those whose worker did not answer.
    pub(crate) failed: u64,
}

impl Sent {
    /// A message that reached `connections` connections.
    fn add(&mut self, connections: u64) {
        self.connections += connections;
        if connections == 0 {
            self.dropped += 1;
        } else {
            self.delivered += 1;
        }
    }

    /// `lines` messages whose worker did not answer.
    fn fail(&mut self, lines: u64) {
        self.dropped += lines;
        self.failed += lines;
    }
}
