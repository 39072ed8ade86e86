//! Tickets for the stats stream: what lets an `EventSource`, which cannot
//! send an `Authorization` header, read a token-protected admin.
//!
//! `POST /dashboard/ticket` (with the bearer token) issues 128 random bits
//! from the kernel; `GET /stats/stream?ticket=` spends one. A ticket is good
//! once and for [`TICKET_LIFE`], so one seen in a log or a browser's
//! history opens nothing later. At most [`MAX_TICKETS`] are live (16 bytes
//! and an instant each); issuing past that forgets the oldest.

use std::io::Read;
use std::time::{Duration, Instant};

/// How long a ticket may wait to be spent.
pub(crate) const TICKET_LIFE: Duration = Duration::from_secs(30);

/// Tickets live at once.
const MAX_TICKETS: usize = 64;

/// The live tickets, oldest first.
#[derive(Debug, Default)]
pub(crate) struct Tickets {
    live: Vec<([u8; 16], Instant)>,
}

impl Tickets {
    /// A new ticket, as 32 hex digits.
    pub(crate) fn issue(&mut self, now: Instant) -> std::io::Result<String> {
        let mut bits = [0u8; 16];
        std::fs::File::open("/dev/urandom")?.read_exact(&mut bits)?;
        self.forget_expired(now);
        if self.live.len() >= MAX_TICKETS {
            self.live.remove(0);
        }
        self.live.push((bits, now));
        Ok(bits.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// Spends `text` if it is a live ticket.
    pub(crate) fn redeem(&mut self, text: &str, now: Instant) -> bool {
        self.forget_expired(now);
        let Some(bits) = parse_hex(text) else {
            return false;
        };
        match self.live.iter().position(|(live, _)| *live == bits) {
            Some(at) => {
                self.live.remove(at);
                true
            }
            None => false,
        }
    }

    fn forget_expired(&mut self, now: Instant) {
        self.live
            .retain(|(_, issued)| now.saturating_duration_since(*issued) < TICKET_LIFE);
    }
}

fn parse_hex(text: &str) -> Option<[u8; 16]> {
    let text = text.as_bytes();
    if text.len() != 32 {
        return None;
    }
    let mut bits = [0u8; 16];
    for (byte, pair) in bits.iter_mut().zip(text.chunks(2)) {
        *byte = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ticket_is_good_once_and_only_while_young() {
        let mut tickets = Tickets::default();
        let now = Instant::now();
        let first = tickets.issue(now).unwrap();
        let second = tickets.issue(now).unwrap();
        assert_eq!(first.len(), 32);
        assert_ne!(first, second);
        assert!(tickets.redeem(&first, now));
        assert!(!tickets.redeem(&first, now), "spent");
        assert!(!tickets.redeem(&second, now + TICKET_LIFE), "expired");
        assert!(!tickets.redeem("not hex", now));
        let mut forged = tickets.issue(now).unwrap();
        forged.replace_range(0..1, if forged.starts_with('0') { "1" } else { "0" });
        assert!(!tickets.redeem(&forged, now));
    }

    #[test]
    fn at_most_max_tickets_are_live() {
        let mut tickets = Tickets::default();
        let now = Instant::now();
        let oldest = tickets.issue(now).unwrap();
        for _ in 0..MAX_TICKETS {
            tickets.issue(now).unwrap();
        }
        assert_eq!(tickets.live.len(), MAX_TICKETS);
        assert!(!tickets.redeem(&oldest, now));
    }
}
