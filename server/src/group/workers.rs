//! The front's view of its workers: which one owns an id, and admin
//! requests split by owner, sent to the workers at once and summed, so the
//! answer is what one process holding every connection would have said.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use futures_util::future::join_all;

use super::link::{Answer, Link, Streamed};
use super::supervise::Slots;
use crate::broker::Routed;
use c1m_common::StatsSnapshot;
use c1m_common::{parse_batch, BatchAnswer, BroadcastAnswer, FanoutAnswer, SendAnswer};

/// The workers of a group, as the front reaches them.
pub(crate) struct Workers {
    links: Vec<Link>,
    max_id: u64,
    /// Pids and restarts, kept by the supervisor.
    pub(crate) slots: Arc<Slots>,
    /// Messages for a worker that did not answer (down or restarting): its
    /// connections are gone with it, so they count as dropped too.
    pub(crate) undeliverable: AtomicU64,
}

impl Workers {
    pub(crate) fn new(links: Vec<Link>, max_id: u64, slots: Arc<Slots>) -> Self {
        Self {
            links,
            max_id,
            slots,
            undeliverable: AtomicU64::new(0),
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

    /// `POST /send` for the whole group: the lines split by owner, each
    /// part one request to its worker, the answers summed.
    pub(crate) async fn send_batch(&self, body: &[u8]) -> BatchAnswer {
        let mut parts: Vec<Vec<u8>> = vec![Vec::new(); self.links.len()];
        let mut lines_of = vec![0u64; self.links.len()];
        let front = parse_batch(body, self.max_id, |id, message| {
            let owner = self.owner(id);
            let part = &mut parts[owner];
            part.extend_from_slice(id.to_string().as_bytes());
            part.push(b'\t');
            part.extend_from_slice(message);
            part.push(b'\n');
            lines_of[owner] += 1;
        });
        let sends = parts
            .iter()
            .enumerate()
            .filter(|(_, part)| !part.is_empty())
            .map(
                |(w, part)| async move { (w, self.links[w].request("POST", "/send", part).await) },
            );
        let mut total = BatchAnswer {
            rejected: front.rejected,
            delivered: Some(0),
            dropped: Some(0),
            connections: Some(0),
            ..BatchAnswer::default()
        };
        for (w, answer) in join_all(sends).await {
            let part = answer
                .ok()
                .filter(|a| a.status == 200)
                .and_then(|a| serde_json::from_slice::<BatchAnswer>(&a.body).ok());
            match part {
                Some(part) => add(&mut total, part),
                None => {
                    // The worker is down: its lines reached no connection.
                    self.undeliverable.fetch_add(lines_of[w], Relaxed);
                    add(
                        &mut total,
                        BatchAnswer {
                            accepted: lines_of[w],
                            dropped: Some(lines_of[w]),
                            ..BatchAnswer::default()
                        },
                    );
                }
            }
        }
        total
    }

    /// A batch received from the broker, routed into the group.
    pub(crate) async fn route_batch(&self, body: &[u8]) -> Routed {
        let before = self.undeliverable.load(Relaxed);
        let sent = self.send_batch(body).await;
        Routed {
            messages: sent.accepted,
            dropped: sent.dropped.unwrap_or(0),
            failed: self.undeliverable.load(Relaxed).saturating_sub(before),
            ..Routed::default()
        }
    }

    /// One message for `id` received from the broker.
    pub(crate) async fn route_one(&self, id: u64, message: &[u8]) -> Routed {
        let path = format!("/send/{id}");
        let answer = self.to_owner(id, "POST", &path, message).await;
        let reached = answer
            .filter(|a| a.status == 200)
            .and_then(|a| serde_json::from_slice::<SendAnswer>(&a.body).ok());
        match reached {
            Some(one) => Routed {
                messages: 1,
                dropped: u64::from(one.connections == 0),
                ..Routed::default()
            },
            None => {
                self.undeliverable.fetch_add(1, Relaxed);
                Routed {
                    messages: 1,
                    dropped: 1,
                    failed: 1,
                    problem: None,
                }
            }
        }
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

/// Adds another part of the same batch (another worker's lines) to `total`.
fn add(total: &mut BatchAnswer, part: BatchAnswer) {
    let sum = |a: Option<u64>, b: Option<u64>| Some(a.unwrap_or(0) + b.unwrap_or(0));
    total.accepted += part.accepted;
    total.rejected += part.rejected;
    total.delivered = sum(total.delivered, part.delivered);
    total.dropped = sum(total.dropped, part.dropped);
    total.connections = sum(total.connections, part.connections);
}
