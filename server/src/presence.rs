//! Who comes and goes, as a stream: `GET /presence` on the admin listener
//! (icomet's `/psub`) answers with one line per change, `online <id>` when
//! an id gets its first connection and `offline <id>` when its last one
//! ends, from the moment the reader connects.
//!
//! The router reports each change under the id's shard lock, so one id's
//! lines alternate in the order they happened. The reactors must never
//! wait for a reader: a change is offered to each reader's bounded queue
//! with `try_send`, and a reader whose queue is full has
//! fallen behind: it is cut off (its connection closed, counted in
//! `presence_closes`), never waited for. The queue holds
//! `--presence-queue` changes (16 K by default); what the kernel's socket
//! buffers take (64 KiB on the server's side) comes on top.
//!
//! Cost: with no reader, one relaxed atomic load per login or logout that
//! changes an id's presence. Per reader: its task and connection on the
//! admin side (it holds one of `--max-admin-conns`), its queue, which
//! holds at most `--presence-queue` changes (16 bytes each) and is
//! allocated as it fills, and a kernel send buffer fixed at 64 KiB.

use std::os::fd::AsFd;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch, Notify};

use crate::stats::Stats;
use c1m_http::{write_chunk, LAST_CHUNK};

/// The kernel send buffer asked for a presence stream (Linux doubles it).
const SEND_BUFFER: usize = 32 * 1024;

/// Changes written to a reader in one chunk, at most.
const LINES_PER_WRITE: usize = 1024;

/// One change of an id's presence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    Online(u64),
    Offline(u64),
}

/// The readers of `/presence`, shared by the router (which reports
/// changes) and the admin side (which serves the streams).
pub(crate) struct Presence {
    /// Readers now: the check every change pays when there are none.
    readers: AtomicUsize,
    subscribers: Mutex<Vec<Subscriber>>,
    /// Changes each reader may have queued (`--presence-queue`).
    queue: usize,
    stats: Arc<Stats>,
}

struct Subscriber {
    tx: mpsc::Sender<Change>,
    /// Told when the reader is cut off, so it closes even while it is
    /// blocked writing to a client that does not read.
    cut: Arc<Notify>,
}

/// A reader's end: its changes, and the signal that it was cut off.
pub(crate) struct Subscription {
    rx: mpsc::Receiver<Change>,
    cut: Arc<Notify>,
}

impl Presence {
    pub(crate) fn new(queue: usize, stats: Arc<Stats>) -> Self {
        Self {
            readers: AtomicUsize::new(0),
            subscribers: Mutex::new(Vec::new()),
            queue: queue.max(1),
            stats,
        }
    }

    fn subscribers(&self) -> std::sync::MutexGuard<'_, Vec<Subscriber>> {
        // Every update is one push or retain: a panic cannot leave it torn.
        self.subscribers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new reader: it receives every change from now on.
    pub(crate) fn subscribe(&self) -> Subscription {
        let (tx, rx) = mpsc::channel(self.queue);
        let cut = Arc::new(Notify::new());
        let mut subscribers = self.subscribers();
        subscribers.push(Subscriber {
            tx,
            cut: cut.clone(),
        });
        self.readers.store(subscribers.len(), Relaxed);
        self.stats.presence_readers.fetch_add(1, Relaxed);
        Subscription { rx, cut }
    }

    /// Readers subscribed (a reader that has gone counts until the next
    /// change).
    pub(crate) fn readers(&self) -> usize {
        self.readers.load(Relaxed)
    }

    /// Cuts off every reader (counted in `presence_closes`): the changes
    /// they would have had are lost (a group's worker stream ended).
    pub(crate) fn cut_all(&self) {
        let mut subscribers = self.subscribers();
        for s in subscribers.drain(..) {
            if !s.tx.is_closed() {
                self.stats.presence_closes.fetch_add(1, Relaxed);
                s.cut.notify_one();
            }
        }
        self.readers.store(0, Relaxed);
    }

    /// Offers `change` to every reader; never blocks. A reader whose queue
    /// is full is cut off; one that has gone is forgotten.
    pub(crate) fn note(&self, change: Change) {
        if self.readers.load(Relaxed) == 0 {
            return;
        }
        let mut subscribers = self.subscribers();
        subscribers.retain(|s| match s.tx.try_send(change) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.stats.presence_closes.fetch_add(1, Relaxed);
                s.cut.notify_one();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        });
        self.readers.store(subscribers.len(), Relaxed);
    }
}

/// Serves one `/presence` reader, subscribed to `presence` (before the
/// caller made sure its changes flow), until it closes, falls behind, or
/// the server stops (then the stream ends cleanly). `http11`: chunked,
/// else close-delimited.
pub(crate) async fn serve<S>(
    stream: &mut S,
    presence: &Presence,
    subscription: Subscription,
    http11: bool,
    mut stop: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + AsFd + Unpin,
{
    // The queue is the reader's buffer; the kernel's is kept small (an
    // explicit size also stops its autotuning to megabytes), so what a
    // reader that stopped reading holds stays bounded.
    let _ = socket2::SockRef::from(&stream.as_fd()).set_send_buffer_size(SEND_BUFFER);
    let Subscription { mut rx, cut } = subscription;
    let _gauge = Gauge(&presence.stats);
    let delimit = if http11 {
        "Transfer-Encoding: chunked"
    } else {
        "Connection: close"
    };
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nCache-Control: no-cache\r\n{delimit}\r\n\r\n"
    );
    let (mut lines, mut out) = (Vec::new(), Vec::new());
    if stream.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    let mut probe = [0u8; 512];
    loop {
        let first = tokio::select! {
            change = rx.recv() => change,
            // A reader sends nothing: a read that returns is its close
            // (or bytes we do not want).
            _ = stream.read(&mut probe) => return,
            _ = cut.notified() => return,
            _ = stop.changed() => {
                if http11 {
                    let _ = stream.write_all(LAST_CHUNK).await;
                }
                return;
            }
        };
        let Some(first) = first else { return };
        lines.clear();
        push_line(&mut lines, first);
        for _ in 1..LINES_PER_WRITE {
            match rx.try_recv() {
                Ok(change) => push_line(&mut lines, change),
                Err(_) => break,
            }
        }
        out.clear();
        if http11 {
            write_chunk(&mut out, &lines);
        } else {
            out.extend_from_slice(&lines);
        }
        tokio::select! {
            written = stream.write_all(&out) => if written.is_err() { return },
            _ = cut.notified() => return,
        }
    }
}

/// Keeps `presence_readers` true however [`serve`] ends.
struct Gauge<'a>(&'a Stats);

impl Drop for Gauge<'_> {
    fn drop(&mut self) {
        self.0.presence_readers.fetch_sub(1, Relaxed);
    }
}

fn push_line(out: &mut Vec<u8>, change: Change) {
    use std::io::Write;
    let _ = match change {
        Change::Online(id) => writeln!(out, "online {id}"),
        Change::Offline(id) => writeln!(out, "offline {id}"),
    };
}

/// One line of a presence stream (without its newline), as written by
/// [`push_line`]; `None` for anything else.
pub(crate) fn parse_line(line: &[u8]) -> Option<Change> {
    let line = std::str::from_utf8(line).ok()?;
    let (what, id) = line.split_once(' ')?;
    let id = id.parse().ok()?;
    match what {
        "online" => Some(Change::Online(id)),
        "offline" => Some(Change::Offline(id)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nobody_reading_costs_one_load_and_a_full_reader_is_cut_off() {
        let stats = Arc::new(Stats::default());
        const QUEUE: usize = 100;
        let presence = Presence::new(QUEUE, stats.clone());
        presence.note(Change::Online(1));
        assert_eq!(presence.readers.load(Relaxed), 0);
        let mut fast = presence.subscribe();
        let slow = presence.subscribe();
        for id in 0..QUEUE as u64 {
            presence.note(Change::Online(id));
            assert_eq!(fast.rx.try_recv(), Ok(Change::Online(id)));
        }
        assert_eq!(presence.readers.load(Relaxed), 2, "both queues just fit");
        presence.note(Change::Offline(7));
        assert_eq!(presence.readers.load(Relaxed), 1, "the slow one is cut off");
        assert_eq!(stats.snapshot().presence_closes, 1);
        assert_eq!(fast.rx.try_recv(), Ok(Change::Offline(7)));
        drop(fast);
        presence.note(Change::Offline(8));
        assert_eq!(
            presence.readers.load(Relaxed),
            0,
            "a gone reader is forgotten"
        );
        assert_eq!(
            stats.snapshot().presence_closes,
            1,
            "and not counted as cut off"
        );
        drop(slow);
    }

    #[test]
    fn lines_say_what_changed() {
        let mut out = Vec::new();
        push_line(&mut out, Change::Online(42));
        push_line(&mut out, Change::Offline(42));
        assert_eq!(out, b"online 42\noffline 42\n");
        let back: Vec<Option<Change>> = out[..out.len() - 1]
            .split(|&b| b == b'\n')
            .map(parse_line)
            .collect();
        assert_eq!(back, [Some(Change::Online(42)), Some(Change::Offline(42))]);
        for bad in [&b"online"[..], b"online x", b"gone 4", b"online -1", b""] {
            assert_eq!(parse_line(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn cutting_every_reader_counts_the_ones_still_there() {
        let stats = Arc::new(Stats::default());
        let presence = Presence::new(8, stats.clone());
        let reading = presence.subscribe();
        drop(presence.subscribe());
        assert_eq!(presence.readers(), 2);
        presence.cut_all();
        assert_eq!(presence.readers(), 0);
        assert_eq!(
            stats.snapshot().presence_closes,
            1,
            "the gone one is not counted"
        );
        presence.note(Change::Online(1));
        drop(reading);
    }
}
