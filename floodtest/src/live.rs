//! What the live view says while the run goes on: the progress bar's
//! message on a terminal, and the plain line written every
//! `--report-interval` off one. Pure functions of a [`Live`] view, so a test
//! pins them (the bar must fit 80 columns).
//!
//! The two phases read differently. While connections are being opened the
//! connect rate is the news; once the ramp is over it would only ever say
//! 0 (or repeat a stale figure), so the hold shows how long it has held and
//! how long is left instead. A figure with no data behind it (p99 before
//! any message) is `-`, never 0.

use crate::units::{clock, count, micros};
use std::time::Duration;

/// Width of the indicatif bar in the ramp's template (`{bar:20} {msg}`).
pub(crate) const BAR_WIDTH: usize = 20;

/// The figures one look at the run shows; rates are over the window since
/// the previous look.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Live {
    pub(crate) open: u64,
    pub(crate) target: u64,
    pub(crate) phase: Phase,
    pub(crate) connect_rate: f64,
    pub(crate) chunk_rate: f64,
    pub(crate) message_rate: f64,
    pub(crate) lost: u64,
    pub(crate) failed: u64,
    /// `name=count ...` of the failure classes, for the plain line.
    pub(crate) failed_classes: String,
    /// Delivery latency p99 over the window; `None` with no message in it.
    pub(crate) p99_us: Option<u64>,
}

/// Where the run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Opening connections (or paused between steps).
    Ramp,
    /// Every connection started and answered: holding for `--duration`
    /// (`left` is `None` without one: until Ctrl-C).
    Hold {
        held: Duration,
        left: Option<Duration>,
    },
}

impl Live {
    fn p99(&self) -> String {
        self.p99_us.map_or_else(|| "-".to_owned(), micros)
    }

    /// `hold 12s (48s left)`, or `hold 12s, Ctrl-C ends`.
    fn hold(held: Duration, left: Option<Duration>) -> String {
        match left {
            // Both rounded to the nearest second, so they add up to the hold.
            Some(left) => format!(
                "hold {} ({} left)",
                clock(held.as_secs_f64().round() as u64),
                clock(left.as_secs_f64().round() as u64)
            ),
            None => format!(
                "hold {}, Ctrl-C ends",
                clock(held.as_secs_f64().round() as u64)
            ),
        }
    }

    /// The bar's message: compact, so that with the bar (in the ramp) or
    /// alone (in the hold) it fits 80 columns.
    pub(crate) fn bar_message(&self) -> String {
        match self.phase {
            Phase::Ramp => format!(
                "{}/{} open {} conn/s fail {} p99 {}",
                count(self.open as f64),
                count(self.target as f64),
                count(self.connect_rate),
                count(self.failed as f64),
                self.p99()
            ),
            Phase::Hold { held, left } => format!(
                "{} {} open {} msg/s lost {} fail {} p99 {}",
                Self::hold(held, left),
                count(self.open as f64),
                count(self.message_rate),
                count(self.lost as f64),
                count(self.failed as f64),
                self.p99()
            ),
        }
    }

    /// The plain line's figures (after the elapsed time, before the seeds'
    /// `Stats:`), with the failure classes spelled out.
    pub(crate) fn line(&self) -> String {
        let phase = match self.phase {
            Phase::Ramp => format!("ramp | {:.0} conn/s", self.connect_rate),
            Phase::Hold { held, left } => Self::hold(held, left),
        };
        format!(
            "{phase} | open {}/{} | failed {} ({}) | chunks {:.0}/s msgs {:.0}/s lost {} | p99 {}",
            self.open,
            self.target,
            self.failed,
            self.failed_classes,
            self.chunk_rate,
            self.message_rate,
            self.lost,
            self.p99()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The widest figures a million-connection day-long run shows.
    fn widest(phase: Phase) -> Live {
        Live {
            open: 999_999,
            target: 1_000_000,
            phase,
            connect_rate: 99_999.0,
            chunk_rate: 1e6,
            message_rate: 99_999.0,
            lost: 999_999,
            failed: 999_999,
            failed_classes: "status_404=999999".to_owned(),
            p99_us: Some(99_999),
        }
    }

    #[test]
    fn the_bar_fits_80_columns_in_every_phase() {
        let ramp = widest(Phase::Ramp).bar_message();
        assert!(BAR_WIDTH + 1 + ramp.chars().count() <= 80, "{ramp}");
        for left in [Some(Duration::from_secs(86_399)), None] {
            let hold = widest(Phase::Hold {
                held: Duration::from_secs(86_399),
                left,
            })
            .bar_message();
            assert!(
                hold.chars().count() <= 80,
                "{} columns: {hold}",
                hold.chars().count()
            );
        }
    }

    #[test]
    fn no_data_is_a_dash_and_the_hold_counts_down_not_the_connect_rate() {
        let mut live = widest(Phase::Ramp);
        live.p99_us = None;
        live.open = 5_123;
        live.target = 10_000;
        live.connect_rate = 1_990.0;
        assert_eq!(
            live.bar_message(),
            "5.12k/10.0k open 1.99k conn/s fail 1.00M p99 -"
        );
        live.phase = Phase::Hold {
            held: Duration::from_secs(12),
            left: Some(Duration::from_millis(47_800)),
        };
        let bar = live.bar_message();
        assert!(bar.starts_with("hold 12s (48s left) 5.12k open "), "{bar}");
        assert!(!bar.contains("conn/s"), "{bar}");
        let line = live.line();
        assert!(
            line.starts_with(
                "hold 12s (48s left) | open 5123/10000 | failed 999999 (status_404=999999)"
            ),
            "{line}"
        );
        assert!(line.ends_with("| p99 -"), "{line}");
        live.phase = Phase::Ramp;
        assert!(
            live.line()
                .starts_with("ramp | 1990 conn/s | open 5123/10000"),
            "{}",
            live.line()
        );
    }
}
