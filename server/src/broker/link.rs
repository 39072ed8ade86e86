//! The NATS connection of one front: publishing `/send` with its echo as
//! the confirmation, and the subscription loop that routes what arrives.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::connection::State;
use async_nats::{Client, ConnectOptions, Event, HeaderMap};
use futures_util::StreamExt;
use tokio::sync::oneshot;

use c1m_common::BrokerState;

use super::{Carried, Routed, Sink, CONFIRM, KIND, ORIGIN, SINGLE_ID};

/// Bytes kept free under the server's `max_payload` for the headers.
const HEADER_ROOM: usize = 256;

/// A NATS message of a kind this version does not route.
const UNKNOWN_KIND: &str = "a NATS message of an unknown c1m-kind arrived (a newer \
     comet-server in the cluster?): run the same version everywhere";

/// Why a `/send` gets 503 in broker mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unavailable {
    /// Not connected to NATS now.
    Disconnected,
    /// Published, but no echo within [`CONFIRM`].
    Unconfirmed,
}

impl Unavailable {
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Unavailable::Disconnected => "the broker (NATS) is not reachable now; retry later",
            Unavailable::Unconfirmed => {
                "the broker (NATS) did not confirm the message in time; retry later"
            }
        }
    }
}

/// One front's link to NATS.
pub(crate) struct Broker {
    client: Client,
    subject: String,
    /// Names this front in the `c1m-origin` header of what it publishes.
    token: u64,
    next: AtomicU64,
    /// Publications waiting for their echo, by number.
    waiting: Mutex<HashMap<u64, oneshot::Sender<()>>>,
    connected: AtomicBool,
    connects: AtomicU64,
    published: AtomicU64,
    received: AtomicU64,
    dropped: AtomicU64,
    undeliverable: AtomicU64,
    last_error: Mutex<Option<String>>,
}

/// 50 ms doubling to 5 s, each +-50%: many fronts that lost the same server
/// do not come back in step.
fn reconnect_delay(attempts: usize) -> Duration {
    if attempts <= 1 {
        return Duration::ZERO;
    }
    let base = 50u64.saturating_mul(1 << (attempts - 2).min(7)).min(5_000);
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    Duration::from_millis(base / 2 + random % (base + 1))
}

impl Broker {
    /// Connects to `servers` (in the background: the server starts, and
    /// answers 503, while NATS is away) and subscribes to
    /// `<prefix>.send`, routing what arrives into `sink`. Must run inside a
    /// tokio runtime, which the link's tasks then live on.
    pub(crate) async fn start(
        servers: &[String],
        prefix: &str,
        sink: Sink,
    ) -> anyhow::Result<Arc<Broker>> {
        let events: Arc<Mutex<Option<Arc<Broker>>>> = Arc::default();
        let on_event = events.clone();
        let options = ConnectOptions::new()
            .name("comet-server")
            .retry_on_initial_connect()
            .max_reconnects(None)
            .reconnect_delay_callback(reconnect_delay)
            .ping_interval(Duration::from_secs(5))
            .event_callback(move |event| {
                let broker = on_event.lock().unwrap_or_else(|e| e.into_inner()).clone();
                async move {
                    if let Some(broker) = broker {
                        broker.on_event(event);
                    }
                }
            });
        let client = options.connect(servers).await?;
        let subject = format!("{prefix}.send");
        let subscriber = client.subscribe(subject.clone()).await?;
        let broker = Arc::new(Broker {
            client,
            subject,
            token: origin_token(),
            next: AtomicU64::new(0),
            waiting: Mutex::default(),
            connected: AtomicBool::new(false),
            connects: AtomicU64::new(0),
            published: AtomicU64::new(0),
            received: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            undeliverable: AtomicU64::new(0),
            last_error: Mutex::default(),
        });
        *events.lock().unwrap_or_else(|e| e.into_inner()) = Some(broker.clone());
        if broker.client.connection_state() == State::Connected {
            broker.on_event(Event::Connected);
        }
        let receiving = broker.clone();
        tokio::spawn(async move { receiving.receive(subscriber, sink).await });
        Ok(broker)
    }

    fn on_event(&self, event: Event) {
        match event {
            Event::Connected => {
                // The first connect may be seen twice (the state, the event).
                if !self.connected.swap(true, Relaxed) {
                    self.connects.fetch_add(1, Relaxed);
                }
            }
            Event::Disconnected | Event::Closed => self.connected.store(false, Relaxed),
            Event::ServerError(e) => self.note_error(e.to_string()),
            Event::ClientError(e) => self.note_error(e.to_string()),
            Event::SlowConsumer(_) => {
                // async-nats dropped messages for us: not delivered here.
                self.undeliverable.fetch_add(1, Relaxed);
                self.note_error("slow consumer: NATS messages were dropped".into());
            }
            Event::LameDuckMode | Event::Draining => {}
        }
    }

    fn note_error(&self, error: String) {
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(error);
    }

    /// Whether NATS is reachable now (else `/send` gets 503).
    pub(crate) fn connected(&self) -> bool {
        self.client.connection_state() == State::Connected
    }

    /// The counters for `/stats`.
    pub(crate) fn state(&self) -> BrokerState {
        BrokerState {
            connected: self.connected(),
            reconnects: self.connects.load(Relaxed).saturating_sub(1),
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            published: self.published.load(Relaxed),
            received: self.received.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
            undeliverable: self.undeliverable.load(Relaxed),
        }
    }

    /// Counts `lines` messages refused with 503.
    pub(crate) fn refused(&self, lines: u64) {
        self.undeliverable.fetch_add(lines, Relaxed);
    }

    /// Publishes a batch body of valid lines (already checked), split under
    /// the server's `max_payload`. Returns how many lines NATS confirmed;
    /// an error only when none was (then nothing of it is delivered, so a
    /// retry repeats nothing).
    pub(crate) async fn publish_batch(
        &self,
        carried: Carried,
        body: &[u8],
    ) -> Result<u64, Unavailable> {
        let max = self
            .client
            .server_info()
            .max_payload
            .saturating_sub(HEADER_ROOM)
            .max(1024);
        let (pieces, _) = super::split_lines(body, max);
        let mut confirmed = 0;
        for piece in pieces {
            let lines = piece.iter().filter(|&&b| b == b'\n').count() as u64;
            match self.publish(carried, None, piece).await {
                Ok(()) => confirmed += lines,
                Err(e) if confirmed == 0 => return Err(e),
                // Part of it went: say so, the rest counts as refused.
                Err(_) => break,
            }
        }
        Ok(confirmed)
    }

    /// Publishes one message for `id` (or one event from `id`).
    pub(crate) async fn publish_one(
        &self,
        carried: Carried,
        id: u64,
        message: &[u8],
    ) -> Result<(), Unavailable> {
        self.publish(carried, Some(id), message).await
    }

    /// Publishes a message for every connection of every group.
    pub(crate) async fn publish_broadcast(&self, message: &[u8]) -> Result<(), Unavailable> {
        self.publish(Carried::Broadcast, None, message).await
    }

    async fn publish(
        &self,
        carried: Carried,
        single: Option<u64>,
        payload: &[u8],
    ) -> Result<(), Unavailable> {
        if !self.connected() {
            return Err(Unavailable::Disconnected);
        }
        let n = self.next.fetch_add(1, Relaxed);
        let (tx, rx) = oneshot::channel();
        self.waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(n, tx);
        let mut headers = HeaderMap::new();
        headers.insert(ORIGIN, format!("{:x}.{n}", self.token).as_str());
        if let Some(id) = single {
            headers.insert(SINGLE_ID, id.to_string().as_str());
        }
        if let Some(kind) = carried.header() {
            headers.insert(KIND, kind);
        }
        let sent = self
            .client
            .publish_with_headers(self.subject.clone(), headers, payload.to_vec().into())
            .await;
        let confirmed = match sent {
            Ok(()) => matches!(tokio::time::timeout(CONFIRM, rx).await, Ok(Ok(()))),
            Err(_) => false,
        };
        self.waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&n);
        if confirmed {
            Ok(())
        } else {
            Err(Unavailable::Unconfirmed)
        }
    }

    /// The subscription loop: routes every message into the group, in the
    /// order NATS delivers them (so per publisher and id), then confirms
    /// this front's own publications.
    async fn receive(self: Arc<Self>, mut subscriber: async_nats::Subscriber, sink: Sink) {
        while let Some(message) = subscriber.next().await {
            let headers = message.headers.as_ref();
            let header = |name: &str| headers.and_then(|h| h.get(name)).map(|v| v.as_str());
            let single = header(SINGLE_ID).and_then(|id| id.parse().ok());
            let routed: Routed = match Carried::from_header(header(KIND)) {
                Some(carried) => sink.route(carried, single, &message.payload).await,
                None => Routed {
                    failed: 1,
                    problem: Some(UNKNOWN_KIND),
                    ..Routed::default()
                },
            };
            self.received.fetch_add(routed.messages, Relaxed);
            self.dropped.fetch_add(routed.dropped, Relaxed);
            self.undeliverable.fetch_add(routed.failed, Relaxed);
            if let Some(problem) = routed.problem {
                self.note_error(problem.to_owned());
            }
            let origin = header(ORIGIN).and_then(|o| o.split_once('.'));
            if let Some((token, n)) = origin {
                let ours = u64::from_str_radix(token, 16) == Ok(self.token);
                if let (true, Ok(n)) = (ours, n.parse::<u64>()) {
                    let waiter = self
                        .waiting
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&n);
                    if let Some(waiter) = waiter {
                        self.published.fetch_add(routed.messages.max(1), Relaxed);
                        let _ = waiter.send(());
                    }
                }
            }
        }
    }
}

/// A token that tells this front's publications from every other's: the
/// pid and the start time, hashed.
fn origin_token() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnect_delays_grow_to_five_seconds_with_jitter() {
        assert_eq!(reconnect_delay(1), Duration::ZERO);
        for attempts in 2..40 {
            let base = (50u64 << (attempts - 2).min(7)).min(5_000);
            let d = reconnect_delay(attempts).as_millis() as u64;
            assert!(d >= base / 2 && d <= base / 2 + base, "{attempts}: {d} ms");
        }
        let spread: std::collections::HashSet<u128> =
            (0..20).map(|_| reconnect_delay(10).as_millis()).collect();
        assert!(spread.len() > 1, "no jitter");
    }
}
