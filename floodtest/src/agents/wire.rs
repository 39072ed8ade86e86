//! The messages between a controller (`floodtest --agents`) and its agents
//! (`floodtest agent`), in one place both ends use, and the NATS subjects
//! they travel on. JSON, one message per NATS message.
//!
//! Every message carries [`PROTOCOL`]. A receiver reads the version before
//! anything else ([`decode`]) and refuses a message of another version with
//! both numbers, so a controller and an agent of different floodtest
//! releases refuse each other rather than misread a plan.
//!
//! | subject | from | messages |
//! | --- | --- | --- |
//! | [`DISCOVER`] | controller | [`ToAgent::Discover`] |
//! | [`ANNOUNCE`] | agent | [`FromAgent::Announce`] (at start and on each discover) |
//! | [`agent_subject`] | controller | prepare (the plan), start, release, stop, beat |
//! | [`run_subject`] | agent | ready or refused, reports, the final report |
//!
//! Cost: a report per agent per second (its cumulative counters and the
//! histograms' buckets recorded since its previous report; a few KB), a
//! beat per agent per second from the controller.

use crate::stats::Snapshot;
use c1m_common::AgentSummary;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The version of these messages; a change to any of them bumps it.
pub(crate) const PROTOCOL: u32 = 1;

/// Where a controller looks for agents.
pub(crate) const DISCOVER: &str = "c1m.flood.discover";
/// Where agents say who they are.
pub(crate) const ANNOUNCE: &str = "c1m.flood.announce";

/// The controller's commands to one agent.
pub(crate) fn agent_subject(name: &str) -> String {
    format!("c1m.flood.agent.{name}")
}

/// Agents' answers and reports for one run.
pub(crate) fn run_subject(run: &str) -> String {
    format!("c1m.flood.run.{run}")
}

/// What an agent is and may use, as it announces itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Announce {
    pub(crate) name: String,
    pub(crate) host: String,
    /// RLIMIT_NOFILE once raised to the hard limit.
    pub(crate) fd_limit: u64,
    pub(crate) cores: u64,
    /// `floodtest agent --source-ips` as given (a CIDR stays one line):
    /// the addresses its share binds (`None`: the controller's).
    pub(crate) source_ips: Option<String>,
    /// `net.ipv4.ip_local_port_range` there.
    pub(crate) ephemeral: (u16, u16),
}

/// One agent's share of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RunPlan {
    /// The run's id: its reports go to [`run_subject`] of it.
    pub(crate) run: String,
    pub(crate) agent: String,
    /// This agent is `index` of `of`.
    pub(crate) index: u64,
    pub(crate) of: u64,
    /// The controller's flags as the user gave them, parsed by the same
    /// [`crate::Args`] on the agent (one parser, not a second schema of
    /// every flag that could drift from the first).
    pub(crate) flags: Vec<String>,
    /// This agent's connections, from index `first_index` of the run.
    pub(crate) conns: u64,
    pub(crate) first_index: u64,
    /// The run's ids (`--ids`, or 1 to the run's `--conns`): a connection
    /// gets the id it would get on one machine.
    pub(crate) ids: String,
    /// The source addresses this agent binds (its own, or the
    /// controller's `--source-ips`).
    pub(crate) source_ips: String,
    /// How often the agent reports, milliseconds.
    pub(crate) report_ms: u64,
    /// The silence after which each side gives the other up, milliseconds.
    pub(crate) timeout_ms: u64,
}

/// Controller to agent.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum ToAgent {
    /// Who is there? Agents answer with an announce.
    Discover,
    /// Check this share (the descriptors, the addresses) and get ready;
    /// nothing connects yet.
    Prepare(RunPlan),
    /// Every agent is ready: connect (the start barrier).
    Start { run: String },
    /// Pass the current `--pause-every` step.
    Release { run: String },
    /// Close the connections and send the final report.
    Stop { run: String },
    /// The controller is still there.
    Beat { run: String },
}

/// Agent to controller.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum FromAgent {
    Announce(Announce),
    /// The share was planned: `procs` processes of `workers` workers.
    Ready {
        run: String,
        agent: String,
        procs: u64,
        workers: u64,
    },
    /// The share cannot run here, and why (the refusal a single machine
    /// would print, with its fix).
    Refused {
        run: String,
        agent: String,
        why: String,
    },
    /// Cumulative counters, histograms since the previous report; `seq`
    /// counts reports from 0, so the controller sees one lost on the way.
    Report {
        run: String,
        agent: String,
        seq: u64,
        snap: Box<Snapshot>,
    },
    /// The last report (closed connections and their figures) with the
    /// agent's own summary of its share.
    Final {
        run: String,
        agent: String,
        seq: u64,
        snap: Box<Snapshot>,
        summary: Box<AgentSummary>,
    },
}

/// A message with its version: `{"protocol": 1, "body": {...}}`.
#[derive(Serialize, Deserialize)]
struct Versioned<T> {
    protocol: u32,
    body: T,
}

/// Just the version, read before the rest.
#[derive(Deserialize)]
struct Version {
    protocol: u32,
}

/// A message of another version (or not one of ours at all).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DecodeError {
    Version(u32),
    Malformed(String),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Version(theirs) => write!(
                f,
                "speaks agent protocol {theirs}, this floodtest speaks {PROTOCOL}; fix: run the same \
                 floodtest release on the controller and every agent"
            ),
            DecodeError::Malformed(why) => write!(f, "sent a message that is not floodtest's: {why}"),
        }
    }
}

pub(crate) fn encode<T: Serialize>(body: &T) -> Vec<u8> {
    serde_json::to_vec(&Versioned {
        protocol: PROTOCOL,
        body,
    })
    .expect("the messages serialise to JSON")
}

/// Reads a message, its version first.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    let version: Version =
        serde_json::from_slice(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    if version.protocol != PROTOCOL {
        return Err(DecodeError::Version(version.protocol));
    }
    serde_json::from_slice::<Versioned<T>>(bytes)
        .map(|v| v.body)
        .map_err(|e| DecodeError::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> RunPlan {
        RunPlan {
            run: "r1".into(),
            agent: "a".into(),
            index: 1,
            of: 3,
            flags: vec!["--url".into(), "http://127.0.0.1:8000/test/{id}".into()],
            conns: 500,
            first_index: 500,
            ids: "1-1500".into(),
            source_ips: "127.0.2.1".into(),
            report_ms: 1000,
            timeout_ms: 10_000,
        }
    }

    #[test]
    fn messages_round_trip_with_their_version() {
        let bytes = encode(&ToAgent::Prepare(plan()));
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            text.starts_with(r#"{"protocol":1,"body":{"kind":"prepare""#),
            "{text}"
        );
        match decode::<ToAgent>(&bytes).unwrap() {
            ToAgent::Prepare(p) => assert_eq!(p, plan()),
            other => panic!("{other:?}"),
        }
        let mut snap = Snapshot::empty();
        snap.counters.opened = 9;
        snap.timings.latency.record(1234).unwrap();
        let report = FromAgent::Report {
            run: "r1".into(),
            agent: "a".into(),
            seq: 4,
            snap: Box::new(snap),
        };
        match decode::<FromAgent>(&encode(&report)).unwrap() {
            FromAgent::Report { seq, snap, .. } => {
                assert_eq!((seq, snap.counters.opened), (4, 9));
                assert_eq!(
                    snap.timings.latency.max(),
                    snap.timings.latency.highest_equivalent(1234)
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn another_version_is_refused_with_both_numbers_before_its_body_is_read() {
        // A body this release could not read: the version is what is reported.
        let other = br#"{"protocol":2,"body":{"kind":"prepare","shards":[1,2]}}"#;
        let err = decode::<ToAgent>(other).unwrap_err();
        assert_eq!(err, DecodeError::Version(2));
        let text = err.to_string();
        assert!(
            text.contains("protocol 2, this floodtest speaks 1"),
            "{text}"
        );
        assert!(
            text.contains("fix: run the same floodtest release"),
            "{text}"
        );
        let err = decode::<ToAgent>(b"hello").unwrap_err();
        assert!(matches!(err, DecodeError::Malformed(_)), "{err:?}");
    }
}
