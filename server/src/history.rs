//! The last N messages of one id, with their per-id sequence numbers, so a
//! reconnecting client (`/sse` with `Last-Event-ID`, `/poll?seq=`) gets
//! what it missed, or an explicit notice of what it cannot get.
//!
//! Cost: one boxed copy per kept message, only when `--history` is above 0;
//! with the default of 0 no id holds a ring.

use std::collections::VecDeque;

/// A bounded ring of `(seq, message)`.
#[derive(Debug)]
pub(crate) struct History {
    cap: usize,
    ring: VecDeque<(u64, Box<[u8]>)>,
}

/// What a client that last saw `after` gets on reconnecting.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Replay {
    /// Sequence numbers (first, last) that are gone from the history.
    pub lost: Option<(u64, u64)>,
    /// The kept messages after `after`, oldest first.
    pub messages: Vec<(u64, Box<[u8]>)>,
}

impl Replay {
    pub fn is_empty(&self) -> bool {
        self.lost.is_none() && self.messages.is_empty()
    }
}

impl History {
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            cap,
            ring: VecDeque::new(),
        }
    }

    pub(crate) fn push(&mut self, seq: u64, message: &[u8]) {
        if self.cap == 0 {
            return;
        }
        if self.ring.len() == self.cap {
            self.ring.pop_front();
        }
        self.ring.push_back((seq, message.into()));
    }

    /// What to replay to a client whose last message was `after`, when the
    /// id's newest sequence number is `current` (the router calls
    /// [`replay_from`], which also serves ids without history).
    #[cfg(test)]
    pub(crate) fn replay(&self, after: u64, current: u64) -> Replay {
        replay_from(Some(self), after, current)
    }
}

/// [`History::replay`] for an id that may keep no history at all.
pub(crate) fn replay_from(history: Option<&History>, after: u64, current: u64) -> Replay {
    if after >= current {
        // Up to date, or the client saw a previous server's numbering.
        return Replay::default();
    }
    let oldest_kept = history
        .and_then(|h| h.ring.front().map(|(seq, _)| *seq))
        .unwrap_or(current + 1);
    let lost = (after + 1 < oldest_kept).then(|| (after + 1, oldest_kept.min(current + 1) - 1));
    let messages = history
        .map(|h| {
            h.ring
                .iter()
                .filter(|(seq, _)| *seq > after)
                .map(|(seq, m)| (*seq, m.clone()))
                .collect()
        })
        .unwrap_or_default();
    Replay { lost, messages }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(cap: usize, upto: u64) -> History {
        let mut h = History::new(cap);
        for seq in 1..=upto {
            h.push(seq, format!("m{seq}").as_bytes());
        }
        h
    }

    #[test]
    fn replays_what_is_kept() {
        let h = filled(3, 5);
        let r = h.replay(3, 5);
        assert_eq!(r.lost, None);
        let seqs: Vec<u64> = r.messages.iter().map(|(s, _)| *s).collect();
        assert_eq!(seqs, [4, 5]);
        assert_eq!(&*r.messages[0].1, b"m4");
    }

    #[test]
    fn says_what_is_lost() {
        let h = filled(3, 10);
        let r = h.replay(2, 10);
        assert_eq!(r.lost, Some((3, 7)));
        assert_eq!(r.messages.len(), 3);
        let none = replay_from(None, 4, 9);
        assert_eq!(none.lost, Some((5, 9)));
        assert!(none.messages.is_empty());
    }

    #[test]
    fn up_to_date_clients_get_nothing() {
        let h = filled(3, 10);
        assert!(h.replay(10, 10).is_empty());
        assert!(h.replay(50, 10).is_empty());
        assert!(History::new(0).replay(0, 0).is_empty());
    }
}
