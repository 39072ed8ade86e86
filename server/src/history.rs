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

/// What a client that last saw `after` gets on reconnecting, or the next
/// slice of it.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Replay {
    /// Sequence numbers (first, last) that are gone from the history.
    pub(crate) lost: Option<(u64, u64)>,
    /// Kept messages after `after`, oldest first, as many as the
    /// [`Budget`] allowed.
    pub(crate) messages: Vec<(u64, Box<[u8]>)>,
    /// The sequence number to go on from when the budget cut the replay
    /// short; `None` when it reaches the id's newest message.
    pub(crate) next: Option<u64>,
}

impl Replay {
    pub(crate) fn is_empty(&self) -> bool {
        self.lost.is_none() && self.messages.is_empty()
    }
}

/// How much of a replay is copied at once (under the router's shard lock,
/// so never the whole history): messages while the sum of their framed
/// sizes, as the transport's `cost` puts them, stays within `bytes`; always
/// at least one, so a replay moves on however large a message is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Budget {
    pub(crate) bytes: usize,
    pub(crate) cost: fn(&[u8]) -> usize,
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
        let all = Budget {
            bytes: usize::MAX,
            cost: <[u8]>::len,
        };
        replay_from(Some(self), after, current, all)
    }
}

/// [`History::replay`] for an id that may keep no history at all, cut to
/// `budget`. The ring holds consecutive sequence numbers, so the first
/// message after `after` is found by its index, not by a walk.
pub(crate) fn replay_from(
    history: Option<&History>,
    after: u64,
    current: u64,
    budget: Budget,
) -> Replay {
    if after >= current {
        // Up to date, or the client saw a previous server's numbering.
        return Replay::default();
    }
    let oldest_kept = history
        .and_then(|h| h.ring.front().map(|(seq, _)| *seq))
        .unwrap_or(current + 1);
    let lost = (after + 1 < oldest_kept).then(|| (after + 1, oldest_kept.min(current + 1) - 1));
    let mut replay = Replay {
        lost,
        ..Replay::default()
    };
    let Some(history) = history else {
        return replay;
    };
    let first = usize::try_from((after + 1).saturating_sub(oldest_kept)).unwrap_or(usize::MAX);
    let mut spent = 0usize;
    for (seq, message) in history.ring.range(first.min(history.ring.len())..) {
        let cost = (budget.cost)(message);
        if !replay.messages.is_empty() && spent.saturating_add(cost) > budget.bytes {
            replay.next = Some(*seq);
            break;
        }
        spent = spent.saturating_add(cost);
        replay.messages.push((*seq, message.clone()));
    }
    replay
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
        let all = Budget {
            bytes: usize::MAX,
            cost: <[u8]>::len,
        };
        let none = replay_from(None, 4, 9, all);
        assert_eq!(none.lost, Some((5, 9)));
        assert!(none.messages.is_empty());
    }

    #[test]
    fn a_replay_is_copied_a_budget_at_a_time() {
        let h = filled(100, 10);
        // Two bytes each ("m1" .. "m9"), three for "m10".
        let five_bytes = Budget {
            bytes: 5,
            cost: <[u8]>::len,
        };
        let r = replay_from(Some(&h), 3, 10, five_bytes);
        let seqs: Vec<u64> = r.messages.iter().map(|(s, _)| *s).collect();
        assert_eq!((seqs, r.next), (vec![4, 5], Some(6)));
        let r = replay_from(Some(&h), 9, 10, five_bytes);
        assert_eq!((r.messages.len(), r.next), (1, None));
        // A message larger than the budget still goes, alone.
        let tiny = Budget {
            bytes: 1,
            cost: <[u8]>::len,
        };
        let r = replay_from(Some(&h), 0, 10, tiny);
        assert_eq!((r.messages.len(), r.next), (1, Some(2)));
        // From a point the ring has dropped: the gap, then what is kept.
        let h = filled(3, 10);
        let r = replay_from(Some(&h), 2, 10, five_bytes);
        assert_eq!(r.lost, Some((3, 7)));
        assert_eq!(r.messages[0].0, 8);
    }

    #[test]
    fn up_to_date_clients_get_nothing() {
        let h = filled(3, 10);
        assert!(h.replay(10, 10).is_empty());
        assert!(h.replay(50, 10).is_empty());
        assert!(History::new(0).replay(0, 0).is_empty());
    }
}
