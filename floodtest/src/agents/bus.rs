//! The NATS link of an agent or a controller, seen from plain threads.
//!
//! floodtest's run is threads and mio event loops, not async: the link is
//! one async-nats client on a single-threaded tokio runtime in a thread of
//! its own, with channels either way. [`Bus::publish`] queues a message
//! (it never blocks the caller); what the subscriptions receive waits in
//! one inbox for [`Bus::recv_timeout`]. async-nats reconnects on its own
//! when the server comes back; a message published while it is away may be
//! lost (NATS core is at most once), which the reports' sequence numbers
//! reveal. Cost at rest: one thread and one TCP connection per process.

use anyhow::Context;
use futures_util::StreamExt;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::mpsc as async_mpsc;

/// A message a subscription received.
pub(crate) struct Received {
    pub(crate) subject: String,
    pub(crate) payload: Vec<u8>,
}

enum Out {
    Publish(String, Vec<u8>),
    Subscribe(String),
    /// Everything queued before it has been written to the server.
    Flush(mpsc::Sender<()>),
}

pub(crate) struct Bus {
    out: async_mpsc::UnboundedSender<Out>,
    inbox: mpsc::Receiver<Received>,
    thread: Option<JoinHandle<()>>,
}

/// How long connecting to the broker may take before it is an error.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a flush waits for a broker that has gone away.
const FLUSH_BOUND: Duration = Duration::from_secs(5);

impl Bus {
    /// Connects to `url` as `name` (what the server's monitoring shows);
    /// fails when the broker cannot be reached now.
    pub(crate) fn connect(url: &str, name: &str) -> anyhow::Result<Bus> {
        let (out, mut outgoing) = async_mpsc::unbounded_channel::<Out>();
        let (deliver, inbox) = mpsc::channel();
        let (ready, connected) = mpsc::channel();
        let (addr, name) = (url.to_owned(), name.to_owned());
        let thread = std::thread::Builder::new()
            .name("nats".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = ready.send(Err(anyhow::Error::from(e)));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let options = async_nats::ConnectOptions::new()
                        .name(name)
                        .connection_timeout(CONNECT_TIMEOUT)
                        .max_reconnects(None);
                    let client = match options.connect(addr.as_str()).await {
                        Ok(c) => c,
                        Err(e) => {
                            let _ = ready.send(Err(e.into()));
                            return;
                        }
                    };
                    let _ = ready.send(Ok(()));
                    while let Some(out) = outgoing.recv().await {
                        match out {
                            Out::Publish(subject, payload) => {
                                // Queued in the client; only a closed client fails.
                                let _ = client.publish(subject, payload.into()).await;
                            }
                            Out::Subscribe(subject) => {
                                let Ok(mut sub) = client.subscribe(subject).await else {
                                    continue;
                                };
                                let deliver = deliver.clone();
                                tokio::spawn(async move {
                                    while let Some(m) = sub.next().await {
                                        let r = Received {
                                            subject: m.subject.to_string(),
                                            payload: m.payload.to_vec(),
                                        };
                                        if deliver.send(r).is_err() {
                                            break;
                                        }
                                    }
                                });
                            }
                            Out::Flush(done) => {
                                let _ = tokio::time::timeout(FLUSH_BOUND, client.flush()).await;
                                let _ = done.send(());
                            }
                        }
                    }
                    // The Bus was dropped: what it queued goes out first
                    // (if the server is there to take it).
                    let _ = tokio::time::timeout(FLUSH_BOUND, client.flush()).await;
                });
            })
            .context("starting the NATS thread")?;
        connected
            .recv()
            .context("the NATS thread ended before connecting")?
            .with_context(|| format!("connecting to the broker {url}"))?;
        let bus = Bus {
            out,
            inbox,
            thread: Some(thread),
        };
        Ok(bus)
    }

    /// Subscribes to `subject` (a wildcard is fine); effective once
    /// [`Bus::flush`] returns.
    pub(crate) fn subscribe(&self, subject: &str) {
        let _ = self.out.send(Out::Subscribe(subject.to_owned()));
    }

    /// Queues a message.
    pub(crate) fn publish(&self, subject: &str, payload: Vec<u8>) {
        let _ = self.out.send(Out::Publish(subject.to_owned(), payload));
    }

    /// Waits (at most `bound`) until everything queued so far, subscriptions
    /// included, has reached the server.
    pub(crate) fn flush(&self, bound: Duration) {
        let (done, flushed) = mpsc::channel();
        if self.out.send(Out::Flush(done)).is_ok() {
            let _ = flushed.recv_timeout(bound);
        }
    }

    /// The next message received, waiting at most `timeout`.
    pub(crate) fn recv_timeout(&self, timeout: Duration) -> Option<Received> {
        self.inbox.recv_timeout(timeout).ok()
    }

    /// The next message already received.
    pub(crate) fn try_recv(&self) -> Option<Received> {
        self.inbox.try_recv().ok()
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        // Closing the channel ends the thread's loop after a last flush.
        let (out, _) = async_mpsc::unbounded_channel();
        drop(std::mem::replace(&mut self.out, out));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
