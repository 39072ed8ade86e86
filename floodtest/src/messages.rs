//! Envelopes in the body: delivery latency and lost messages.
//!
//! Every mode runs [`c1m_common::scan_envelopes`] over the body bytes (after
//! de-chunking), so an envelope is found whatever a server wraps around it.
//! Messages (`[c1m `) are checked for gaps per connection; events (`[c1e `,
//! a publisher's event fanned out to its friends) are only counted and
//! timed: a connection sees the events of its friends only, so a jump in a
//! publisher's numbering is no loss, and a table of publishers per
//! connection would cost more than the connection. Their loss is counted
//! in aggregate instead, against what the server said it queued (see
//! `docs/ENVELOPE.md`).
//!
//! Per connection this keeps, at rest:
//!
//! - [`Gaps`], 16 bytes inline: the last sequence number seen from one
//!   generator. A jump from `s` to `s + k + 1` counts `k` lost messages. The
//!   first message a connection sees only sets the baseline (messages sent
//!   before it connected were never its to lose), and a repeat or an older
//!   number is ignored.
//! - [`Spill`], behind an `Option<Box<_>>` that is `None` (8 bytes) unless a
//!   read boundary cut an envelope or the response head, or a second
//!   generator writes to the same connection. The carry is freed as soon as
//!   it empties, so a connection at rest holds no buffer.

use crate::stats::Tally;
use c1m_common::{scan_envelopes, Envelope, EnvelopeKind};

/// Sequence tracking for the first generator seen on a connection.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gaps {
    generator: u64,
    /// 0 until the first message (sequence numbers start at 1).
    last_seq: u64,
}

/// State that exists only while bytes are cut across reads, for the rare
/// connection that hears from several generators, or for a stream over
/// TLS (its session).
#[derive(Debug, Default)]
pub(crate) struct Spill {
    /// Bytes kept from the previous read: an incomplete response head or the
    /// start of an envelope.
    pub(crate) carry: Vec<u8>,
    /// (generator, last seq) for generators after the first.
    more: Vec<(u64, u64)>,
    /// A WebSocket control frame cut by a read (at most 125 bytes).
    pub(crate) control: Vec<u8>,
    /// Bytes to send the socket did not take (a Pong, a Close).
    pub(crate) unsent: Vec<u8>,
    /// The TLS session of an `https://` or `wss://` stream.
    pub(crate) tls: Option<Box<c1m_tls::ClientSession>>,
}

impl Spill {
    fn is_idle(&self) -> bool {
        self.carry.is_empty()
            && self.more.is_empty()
            && self.control.is_empty()
            && self.unsent.is_empty()
            && self.tls.is_none()
    }
}

/// Drops the spill when it holds nothing, so the record is back to 8 bytes
/// (a TLS stream's never is: its session lives there).
pub(crate) fn release_if_idle(spill: &mut Option<Box<Spill>>) {
    if spill.as_ref().is_some_and(|s| s.is_idle()) {
        *spill = None;
    }
}

/// Advances `last` to `seq` and returns how many messages were skipped.
fn advance(last: &mut u64, seq: u64) -> u64 {
    if seq <= *last {
        return 0;
    }
    let lost = seq - *last - 1;
    *last = seq;
    lost
}

impl Gaps {
    /// Records `seq` from `generator`; returns the messages lost before it.
    fn observe(&mut self, spill: &mut Option<Box<Spill>>, generator: u64, seq: u64) -> u64 {
        if self.last_seq == 0 {
            self.generator = generator;
            self.last_seq = seq;
            return 0;
        }
        if self.generator == generator {
            return advance(&mut self.last_seq, seq);
        }
        let more = &mut spill.get_or_insert_with(Box::default).more;
        match more.iter_mut().find(|(g, _)| *g == generator) {
            Some((_, last)) => advance(last, seq),
            None => {
                more.push((generator, seq));
                0
            }
        }
    }
}

fn account(env: Envelope<'_>, gaps: &mut Gaps, spill: &mut Option<Box<Spill>>, tally: &mut Tally) {
    let c = &mut tally.counters;
    c.messages += 1;
    match env.kind {
        EnvelopeKind::Message => {
            c.lost += gaps.observe(spill, env.header.generator, env.header.seq)
        }
        EnvelopeKind::Event => c.events += 1,
    }
    let latency = tally.now_us.saturating_sub(env.header.sent_us);
    tally.timings.latency.saturating_record(latency);
}

/// Finds the envelopes in `body` (with whatever the previous read left in
/// the carry in front of it) and keeps any cut-off tail for the next read.
pub(crate) fn scan_body(
    body: &[u8],
    gaps: &mut Gaps,
    spill: &mut Option<Box<Spill>>,
    tally: &mut Tally,
) {
    let mut carry = spill
        .as_mut()
        .map(|s| std::mem::take(&mut s.carry))
        .unwrap_or_default();
    if carry.is_empty() {
        let used = scan_envelopes(body, |env| account(env, gaps, spill, tally));
        if used < body.len() {
            carry.extend_from_slice(&body[used..]);
        }
    } else {
        carry.extend_from_slice(body);
        let used = scan_envelopes(&carry, |env| account(env, gaps, spill, tally));
        carry.drain(..used);
    }
    if !carry.is_empty() {
        spill.get_or_insert_with(Box::default).carry = carry;
    }
    release_if_idle(spill);
}

#[cfg(test)]
mod tests {
    use super::*;
    use c1m_common::{encode_envelope, Header};

    fn stream(msgs: &[(u64, u64)]) -> Vec<u8> {
        let mut out = b"HTTP junk before ".to_vec();
        for &(generator, seq) in msgs {
            let h = Header {
                id: 1,
                generator,
                seq,
                sent_us: 1_000,
            };
            encode_envelope(&h, b"payload", &mut out);
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    fn run(bytes: &[u8], cut: usize) -> (Tally, Option<Box<Spill>>) {
        let mut tally = Tally::new();
        tally.now_us = 1_500;
        let (mut gaps, mut spill) = (Gaps::default(), None);
        for piece in bytes.chunks(cut) {
            scan_body(piece, &mut gaps, &mut spill, &mut tally);
        }
        (tally, spill)
    }

    #[test]
    fn counts_gaps_whatever_the_read_boundaries() {
        let bytes = stream(&[(1, 1), (1, 2), (1, 5), (2, 10), (1, 6), (2, 13), (1, 6)]);
        for cut in [1, 2, 3, 7, 40, bytes.len()] {
            let (tally, spill) = run(&bytes, cut);
            assert_eq!(tally.counters.messages, 7, "cut {cut}");
            assert_eq!(tally.counters.lost, 2 + 2, "cut {cut}");
            assert_eq!(tally.timings.latency.max(), 500);
            // The second generator keeps the spill alive; no carry remains.
            assert!(spill.unwrap().carry.is_empty());
        }
    }

    #[test]
    fn events_are_counted_without_gaps_or_a_table_of_publishers() {
        let mut bytes = stream(&[(1, 1), (1, 2)]);
        // Events from many publishers, each a jump in its own numbering.
        for publisher in 0..50 {
            let h = Header {
                id: publisher,
                generator: 9,
                seq: publisher * 3 + 1,
                sent_us: 1_200,
            };
            c1m_common::encode_event(&h, b"event", &mut bytes);
        }
        bytes.extend_from_slice(&stream(&[(1, 3)]));
        for cut in [1, 9, bytes.len()] {
            let (tally, spill) = run(&bytes, cut);
            let c = tally.counters;
            assert_eq!((c.messages, c.events, c.lost), (53, 50, 0), "cut {cut}");
            assert!(spill.is_none(), "events keep nothing per connection");
        }
    }

    #[test]
    fn a_connection_at_rest_holds_no_spill() {
        let bytes = stream(&[(1, 3), (1, 4)]);
        for cut in [1, 5, bytes.len()] {
            let (tally, spill) = run(&bytes, cut);
            assert_eq!((tally.counters.messages, tally.counters.lost), (2, 0));
            assert!(spill.is_none(), "cut {cut}");
        }
    }
}
