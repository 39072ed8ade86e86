//! One sender: a keep-alive connection, the ids it owns, and their sequence
//! numbers.
//!
//! Sender `k` of `S` is generator `G*S + k` and owns the id offsets with
//! `offset % S == k`; it numbers each id's messages 1, 2, 3, ... in the
//! order it writes them, and it writes one batch at a time on one
//! connection, so the server receives each (generator, id)'s messages in
//! sequence. State: 8 bytes per owned id (`seqs`), the batch being sent
//! (16 bytes a message) and its body buffer (reused).
//!
//! Each batch is stamped (`sent_us`, one clock read for the batch) when it is
//! written. A failed attempt (connection refused or broken, timeout, 5xx,
//! 408 or 429) reconnects and sends the same messages again with the same
//! sequence numbers and a new stamp, after a backoff of 50 ms doubling up to
//! 2 s, at most `--retries` times; another 4xx is not retried. Messages of a
//! batch that failed for good keep their sequence numbers, so a subscriber
//! sees the gap
//! and `failed` in the summary accounts for it. A retry never reorders: the
//! next batch waits for this one. It may duplicate: when the request was
//! written but the answer never came (timeout, a close after the write), the
//! server may already have delivered it, and the retry delivers the same
//! (generator, id, seq) again, which a subscriber counts as a duplicate,
//! not as loss.

use crate::http::{Conn, Reply, RequestError, Target};
use crate::ids::local_index;
use crate::queue::{Queue, Stop};
use crate::stats::{FailureClass, Stats};
use c1m_common::unix_us_now;
use c1m_common::{encode_envelope, push_batch_line, GeneratorSummary, Header, MAX_ENVELOPE_HEADER};
use std::io::Write;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where batches go.
#[derive(Debug, Clone)]
pub(crate) enum Destination {
    /// `POST /send` on the target's keep-alive connections.
    Http(Target),
    /// `--target -`: each batch's lines to standard output, on the same
    /// schedule, for piping into another tool. A slow reader slows the
    /// senders down (backlog failures then say so).
    Stdout,
}

/// What every sender shares.
#[derive(Debug)]
pub(crate) struct SenderConfig {
    pub(crate) destination: Destination,
    pub(crate) token: Option<String>,
    pub(crate) first_id: u64,
    pub(crate) senders: u32,
    /// Most messages in one batch (from --batch-max and --batch-bytes).
    pub(crate) batch_lines: usize,
    pub(crate) payload: Vec<u8>,
    pub(crate) retries: u32,
    pub(crate) timeout: Duration,
}

/// The longest line one message can take in a batch body.
pub(crate) fn max_line_len(payload_len: usize) -> usize {
    // id, tab, envelope header with 20-digit fields, payload, `]`, newline.
    20 + 1 + MAX_ENVELOPE_HEADER + payload_len + 1 + 1
}

/// First retry backoff; doubles each retry up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

fn backoff(retry: u32) -> Duration {
    FIRST_BACKOFF
        .saturating_mul(1 << retry.saturating_sub(1).min(16))
        .min(MAX_BACKOFF)
}

/// Sender `k`: generator `G*S + k`, owning the offsets `k, k + S, ...`.
pub(crate) struct Sender {
    pub(crate) generator: u64,
    pub(crate) config: Arc<SenderConfig>,
    pub(crate) queue: Arc<Queue>,
    pub(crate) stats: Arc<Stats>,
    pub(crate) stop: Arc<Stop>,
    /// A connection opened before the clock started, if that worked.
    pub(crate) conn: Option<Conn>,
    /// Last sequence number per owned id, indexed by `offset / senders`.
    pub(crate) seqs: Vec<u64>,
    /// When this connection last wrote a batch, for the inter-send gaps.
    pub(crate) last_write: Option<Instant>,
}

/// A sender's result: its account and its per-id last sequence numbers.
pub(crate) struct Finished {
    pub(crate) summary: GeneratorSummary,
    pub(crate) seqs: Vec<u64>,
}

impl Sender {
    /// Sends batches until the queue is closed and empty, or the stop is set.
    pub(crate) async fn run(mut self) -> Finished {
        let mut offsets = Vec::with_capacity(self.config.batch_lines);
        let mut batch: Vec<(u32, u64)> = Vec::with_capacity(self.config.batch_lines);
        let mut body = Vec::new();
        let mut summary = GeneratorSummary {
            generator: self.generator,
            ..Default::default()
        };
        while !self.stop.is_set() {
            offsets.clear();
            if !self.queue.take(self.config.batch_lines, &mut offsets).await {
                break;
            }
            if self.stop.is_set() {
                self.stats.unsent.fetch_add(offsets.len() as u64, Relaxed);
                break;
            }
            batch.clear();
            for &offset in &offsets {
                let seq = &mut self.seqs[local_index(offset, self.config.senders)];
                *seq += 1;
                batch.push((offset, *seq));
            }
            summary.numbered += batch.len() as u64;
            match self.send(&batch, &mut body).await {
                Ok(()) => summary.sent += batch.len() as u64,
                Err(_) => summary.failed += batch.len() as u64,
            }
        }
        self.stats
            .unsent
            .fetch_add(self.queue.discard() as u64, Relaxed);
        summary.ids_used = self.seqs.iter().filter(|&&s| s > 0).count() as u64;
        summary.max_seq = self.seqs.iter().copied().max().unwrap_or(0);
        Finished {
            summary,
            seqs: self.seqs,
        }
    }

    /// Sends one batch, retrying; counts it as sent or failed.
    async fn send(&mut self, batch: &[(u32, u64)], body: &mut Vec<u8>) -> Result<(), FailureClass> {
        let n = batch.len() as u64;
        let mut retry = 0;
        loop {
            let class =
                match tokio::time::timeout(self.config.timeout, self.attempt(batch, body)).await {
                    Ok(Ok(reply)) => {
                        // Refused lines keep their sequence numbers: a gap
                        // for the subscriber, `rejected` in the summary.
                        let rejected = reply.rejected.unwrap_or(0).min(n);
                        self.stats.sent.fetch_add(n - rejected, Relaxed);
                        if rejected > 0 {
                            self.stats.failed.add(FailureClass::Rejected, rejected);
                        }
                        if let Some(dropped) = reply.dropped {
                            self.stats.dropped.fetch_add(dropped, Relaxed);
                        }
                        if !reply.keep_alive {
                            self.conn = None;
                        }
                        return Ok(());
                    }
                    Ok(Err(e)) => e.class(),
                    Err(_elapsed) => FailureClass::Timeout,
                };
            self.conn = None;
            self.stats.errors.add(class, 1);
            // `--target - | head`: the reader is gone and no retry brings
            // it back; end the run as a signal would.
            if matches!(self.config.destination, Destination::Stdout)
                && class == FailureClass::Reset
                && self.stop.set()
            {
                eprintln!("msggen: standard output was closed: stopping");
            }
            if !class.retryable() || retry >= self.config.retries || self.stop.is_set() {
                self.stats.failed.add(class, n);
                return Err(class);
            }
            retry += 1;
            self.stats.retries.fetch_add(1, Relaxed);
            tokio::select! {
                () = tokio::time::sleep(backoff(retry)) => {}
                () = self.stop.wait() => {
                    self.stats.failed.add(class, n);
                    return Err(class);
                }
            }
        }
    }

    /// Connects if needed, then stamps, writes and awaits one batch.
    async fn attempt(
        &mut self,
        batch: &[(u32, u64)],
        body: &mut Vec<u8>,
    ) -> Result<Reply, RequestError> {
        let config = Arc::clone(&self.config);
        if let Destination::Http(target) = &config.destination {
            if self.conn.as_ref().is_some_and(Conn::is_stale) {
                self.conn = None;
            }
            if self.conn.is_none() {
                self.conn = Some(Conn::connect(target.addr).await?);
            }
        }
        body.clear();
        let sent_us = unix_us_now();
        let at = Instant::now();
        let (first_id, payload) = (config.first_id, &config.payload);
        write_body(body, batch, first_id, self.generator, sent_us, payload);
        let since_previous = self.last_write.map(|previous| at - previous);
        self.last_write = Some(at);
        self.stats
            .record_write(at, batch.len() as u64, since_previous);
        match (&config.destination, &mut self.conn) {
            (Destination::Http(target), Some(conn)) => {
                let head = target.batch_head(body.len(), config.token.as_deref());
                conn.post(&head, body).await
            }
            (Destination::Http(_), None) => unreachable!("connected above"),
            (Destination::Stdout, _) => {
                // A blocking write: tell tokio, so the other tasks move on.
                tokio::task::block_in_place(|| {
                    let mut out = std::io::stdout().lock();
                    out.write_all(body)?;
                    out.flush()
                })?;
                Ok(Reply {
                    status: 200,
                    dropped: None,
                    rejected: None,
                    keep_alive: true,
                })
            }
        }
    }
}

/// Writes a batch body: one `id<TAB>envelope\n` line per message
/// ([`push_batch_line`], the format's one writer).
pub(crate) fn write_body(
    out: &mut Vec<u8>,
    messages: &[(u32, u64)],
    first_id: u64,
    generator: u64,
    sent_us: u64,
    payload: &[u8],
) {
    for &(offset, seq) in messages {
        let id = first_id + u64::from(offset);
        let header = Header {
            id,
            generator,
            seq,
            sent_us,
        };
        push_batch_line(out, id, |out| encode_envelope(&header, payload, out))
            .expect("an envelope around a payload of letters and digits holds no newline");
    }
}

/// A printable ASCII payload of `len` bytes: letters and digits, so no tab
/// or newline can break a batch line.
pub(crate) fn payload(len: usize) -> Vec<u8> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    ALPHABET.iter().copied().cycle().take(len).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_lines_carry_decodable_envelopes() {
        let mut out = Vec::new();
        write_body(&mut out, &[(0, 1), (41, 7)], 1, 3, 99, b"hi");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "1\t[c1m 1 3 1 99 2|hi]\n42\t[c1m 42 3 7 99 2|hi]\n"
        );
    }

    #[test]
    fn lines_fit_the_bound() {
        let p = payload(100);
        let mut out = Vec::new();
        write_body(
            &mut out,
            &[(u32::MAX, u64::MAX)],
            u64::MAX - u64::from(u32::MAX),
            u64::MAX,
            u64::MAX,
            &p,
        );
        assert!(out.len() < max_line_len(100));
        assert!(p.iter().all(|b| b.is_ascii_graphic()));
    }

    #[test]
    fn backoff_doubles_to_a_cap() {
        assert_eq!(backoff(1), Duration::from_millis(50));
        assert_eq!(backoff(2), Duration::from_millis(100));
        assert_eq!(backoff(5), Duration::from_millis(800));
        assert_eq!(backoff(30), MAX_BACKOFF);
    }
}
