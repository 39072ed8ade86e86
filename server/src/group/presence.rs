//! `GET /presence` at a group's front: each id's presence lives in its
//! owner worker, so the front relays every worker's own `/presence` stream
//! into one [`Presence`] of its own, and serves its readers from that as
//! one process serves them (the same bounded queue per reader, the same
//! cut-off for one that falls behind). One id's lines come from one
//! worker, so they keep their order.
//!
//! The relay runs only while the front has a reader: the first reader
//! opens one stream per worker (and waits for all of them, so it misses
//! nothing from its first line on), the first change after the last
//! reader has gone closes them. So with no reader a worker pays what one
//! process pays (one atomic load per change). If a worker's stream ends
//! (it died, or cut the front off) every reader has lost lines: each is
//! closed and counted in `presence_closes`, and reconnects to a new relay.
//!
//! Cost: per relay, one Unix connection and one task per worker (53 at
//! 1M here); per reader, what one process spends.

use std::sync::Arc;

use tokio::sync::Mutex;

use super::link::Streamed;
use super::workers::Workers;
use crate::presence::{parse_line, Presence};
use c1m_http::{Reject, Status};

/// The front's presence: its readers and the relay feeding them.
pub(crate) struct Relay {
    pub(crate) presence: Presence,
    /// Whether the worker streams are open: held while they open, so two
    /// first readers open one relay.
    running: Mutex<bool>,
}

impl Relay {
    pub(crate) fn new(presence: Presence) -> Self {
        Self {
            presence,
            running: Mutex::new(false),
        }
    }

    /// Opens the relay if it is not running (a reader has subscribed).
    pub(crate) async fn ensure(self: &Arc<Self>, workers: &Workers) -> Result<(), Reject> {
        let mut running = self.running.lock().await;
        if *running {
            return Ok(());
        }
        let mut streams = Vec::with_capacity(workers.len());
        for w in 0..workers.len() {
            match workers.stream(w, "/presence").await {
                Ok(stream) => streams.push(stream),
                Err(e) => {
                    eprintln!("comet-server: front: worker {w}'s /presence: {e}");
                    let reason = "a worker did not open its presence stream (restarting?); retry";
                    return Err(Reject::new(Status::ServiceUnavailable, reason));
                }
            }
        }
        let (stop, _) = tokio::sync::watch::channel(false);
        for stream in streams {
            tokio::spawn(self.clone().relay(stream, stop.clone()));
        }
        *running = true;
        Ok(())
    }

    /// Notes one worker's changes until its stream ends, the last reader
    /// has gone, or another worker's relay stopped (`stop`).
    async fn relay(self: Arc<Self>, mut stream: Streamed, stop: tokio::sync::watch::Sender<bool>) {
        let mut stopped = stop.subscribe();
        let mut bytes = Vec::new();
        loop {
            let more = tokio::select! {
                more = stream.read(&mut bytes) => more,
                _ = stopped.changed() => return,
            };
            if !more {
                break;
            }
            // Whole lines only: a chunk may end inside one.
            let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            for line in bytes[..whole].split(|&b| b == b'\n') {
                if let Some(change) = parse_line(line) {
                    self.presence.note(change);
                }
            }
            bytes.drain(..whole);
            if self.presence.readers() == 0 {
                // Rechecked under the lock a new reader's `ensure` takes,
                // after its subscription: it keeps the relay, or opens a
                // new one.
                let mut running = self.running.lock().await;
                if self.presence.readers() == 0 {
                    *running = false;
                    let _ = stop.send(true);
                    return;
                }
            }
        }
        let mut running = self.running.lock().await;
        if *running && !*stop.borrow() {
            *running = false;
            let _ = stop.send(true);
            self.presence.cut_all();
        }
    }
}
