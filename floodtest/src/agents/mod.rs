//! One run over several client machines: `floodtest agent` on each, and a
//! controller (`floodtest --agents N --broker nats://...`) that hands out
//! the work and merges what comes back, over NATS.
//!
//! - [`agent`]: announces itself (name, host, descriptors, cores, source
//!   addresses), plans the share it is given exactly as one machine plans a
//!   run (the same refusals), runs it with the same workers and child
//!   processes, and reports every second; it closes its connections when
//!   its controller has been silent for `--agent-timeout`;
//! - [`controller`]: waits for the agents (bounded), checks their combined
//!   capacity, gives each a disjoint slice of the connections and ids and
//!   its source addresses, and starts them together once every one has
//!   accepted its share;
//! - [`fleet`]: the agents seen as one [`crate::fleet::Fleet`], so the
//!   usual controller loop, live view, CSV and summary serve them
//!   unchanged; histograms travel as buckets, so the merge is exact;
//! - [`wire`]: the versioned messages, [`bus`]: the NATS link.
//!
//! Cost: one NATS connection per process, a report per agent per second,
//! nothing per connection.

pub(crate) mod agent;
mod bus;
pub(crate) mod controller;
mod fleet;
mod wire;

use std::str::FromStr;

/// `--agents`: how many agents, or which.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wanted {
    /// The first N (by name) that announce themselves.
    Count(u64),
    /// These agents, by name.
    Names(Vec<String>),
}

/// The most agents one controller takes.
const MAX_AGENTS: u64 = 1000;

impl FromStr for Wanted {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.bytes().all(|b| b.is_ascii_digit()) && !s.is_empty() {
            return match s.parse::<u64>() {
                Ok(n) if (1..=MAX_AGENTS).contains(&n) => Ok(Wanted::Count(n)),
                _ => Err(format!("{s:?}: expected 1 to {MAX_AGENTS} agents")),
            };
        }
        let names: Vec<String> = s.split(',').map(str::to_owned).collect();
        for name in &names {
            check_name(name)?;
        }
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        if unique.len() != names.len() {
            return Err(format!("{s:?}: an agent is named twice"));
        }
        Ok(Wanted::Names(names))
    }
}

/// An agent's name is a NATS subject token: letters, digits, `-` and `_`.
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?}: an agent name is 1 to 64 letters, digits, '-' or '_'"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wanted_is_a_count_or_names() {
        assert_eq!("3".parse(), Ok(Wanted::Count(3)));
        assert_eq!(
            "a,b-2".parse(),
            Ok(Wanted::Names(vec!["a".into(), "b-2".into()]))
        );
        assert!("0".parse::<Wanted>().unwrap_err().contains("1 to 1000"));
        assert!("a,,b".parse::<Wanted>().is_err());
        assert!("a.b".parse::<Wanted>().unwrap_err().contains("letters"));
        assert!("a,a".parse::<Wanted>().unwrap_err().contains("twice"));
    }
}
