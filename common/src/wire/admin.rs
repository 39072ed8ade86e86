//! comet-server's JSON answers to `POST /send/{id}`, `POST /send`,
//! `POST /publish/{id}`, `POST /publish`, `POST /broadcast` and
//! `GET /check/{id}`, and a group's workers' to its front (`/fanout`,
//! `/send-each`) (schemas: `docs/schema/admin-*.json`). The server serialises
//! these types; `msggen` and the tests read them back through the same ones.
//!
//! Each answer is one JSON object and a newline. A reader ignores fields it
//! does not know, and a field added later is optional, so a newer server
//! and an older tool (or the reverse) still understand each other.

use serde::{Deserialize, Serialize};

/// `POST /send/{id}`: the message was published to `id`'s connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct SendAnswer {
    /// The id the message was sent to.
    pub id: u64,
    /// Connections of `id` the message was queued on (0: nobody held it, and
    /// the server counted it as dropped).
    pub connections: u64,
}

/// `POST /send`: what became of a batch's lines.
///
/// `delivered`, `dropped` and `connections` are what this process saw; a
/// server that forwards ids it does not hold to other processes cannot know
/// them and leaves them out, so a reader takes their absence as "unknown",
/// not as zero.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct BatchAnswer {
    /// Lines published: a valid id, a tab, a message the server takes.
    pub accepted: u64,
    /// Lines refused: no tab, a bad id, a message over `--max-pending` or one
    /// holding a CR (which `/sse` cannot carry).
    /// They are not retried (the same lines would be refused again).
    pub rejected: u64,
    /// Accepted messages that reached at least one connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered: Option<u64>,
    /// Accepted messages for ids with no connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropped: Option<u64>,
    /// Connection deliveries queued (an id may have several connections).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connections: Option<u64>,
}

/// `POST /publish/{id}`: an event from `id` went to its online friends.
///
/// As with [`BatchAnswer`], `online` and `connections` are left out by a
/// server in broker mode (`--broker`): the event goes to every group
/// through NATS, and the friends it reached on other machines are not
/// known where it was posted. `friends` is known (every group holds the
/// same graph).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct PublishAnswer {
    /// The publisher.
    pub id: u64,
    /// The publisher's friends in the server's graph.
    pub friends: u64,
    /// Friends that had a connection: each got the event as a message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub online: Option<u64>,
    /// Connection deliveries queued (a friend may have several
    /// connections); the sum over events is what subscribers should
    /// receive, which is how a benchmark counts fan-out loss.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connections: Option<u64>,
}

/// `POST /publish`: what became of a batch of `publisher<TAB>event` lines.
/// The reach fields are sums over the accepted events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct PublishBatchAnswer {
    /// Events published: a valid id, a tab, an event the server takes.
    pub accepted: u64,
    /// Lines refused: no tab, a bad id, or an event over `--max-pending`.
    pub rejected: u64,
    /// Friends of the publishers, summed over the events.
    pub friends: u64,
    /// Online friends reached, summed over the events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub online: Option<u64>,
    /// Connection deliveries queued, summed over the events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connections: Option<u64>,
    /// Events whose publisher had no online friend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unheard: Option<u64>,
}

/// `POST /fanout` (a group's worker to its front, over the worker's Unix
/// admin socket): what the worker's part of a batch of events reached.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct FanoutAnswer {
    /// Lines of the body (events, each for some of the worker's ids).
    pub lines: u64,
    /// Ids of those lines that had a connection here, summed.
    pub online: u64,
    /// Connection deliveries queued, summed.
    pub connections: u64,
    /// The lines (0-based, in the body's order) that reached no id here:
    /// the front calls an event unheard when no worker heard it.
    pub unheard: Vec<u64>,
}

/// `POST /send-each` (a group's worker to its front, over the worker's
/// Unix admin socket): a `/send` body whose every line the front checked,
/// answered line by line so that the front, which sends several callers'
/// lines in one request, can tell each caller what its own lines reached.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct SendEachAnswer {
    /// For each accepted line, in the body's order, the connections it was
    /// queued on (0: the id had none here). A line the worker refused has
    /// no entry: the front then trusts no entry of the request.
    pub connections: Vec<u32>,
}

/// `POST /broadcast`: the message went to every connection of the server
/// (in broker mode, of every group: then `reactors` is left out, since
/// other machines' are not known here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct BroadcastAnswer {
    /// Reactors (event loops) the message was handed to; each writes it to
    /// every connection it holds, counted in `broadcast_out`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reactors: Option<u64>,
}

/// `GET /check/{id}`: whether `id` is connected here now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct CheckAnswer {
    /// The id asked about.
    pub id: u64,
    /// True when it has at least one connection.
    pub online: bool,
    /// Its connections (a user may have several tabs open).
    pub connections: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The documented answers (server/README.md) read as these types, and
    /// these types write them back byte for byte.
    #[test]
    fn answers_round_trip_their_documented_form() {
        for text in [
            r#"{"accepted":2,"rejected":0,"delivered":1,"dropped":1,"connections":2}"#,
            r#"{"accepted":2,"rejected":1}"#,
        ] {
            let answer: BatchAnswer = serde_json::from_str(text).unwrap();
            assert_eq!(serde_json::to_string(&answer).unwrap(), text);
        }
        let one: SendAnswer = serde_json::from_str(r#"{"id":42,"connections":2}"#).unwrap();
        assert_eq!(
            one,
            SendAnswer {
                id: 42,
                connections: 2
            }
        );
        // Each with its reach, and as a broker-mode server writes it.
        for publish in [
            r#"{"id":7,"friends":3,"online":2,"connections":3}"#,
            r#"{"id":7,"friends":3}"#,
        ] {
            let answer: PublishAnswer = serde_json::from_str(publish).unwrap();
            assert_eq!(serde_json::to_string(&answer).unwrap(), publish);
        }
        for batch in [
            r#"{"accepted":2,"rejected":0,"friends":9,"online":4,"connections":5,"unheard":1}"#,
            r#"{"accepted":2,"rejected":0,"friends":9}"#,
        ] {
            let answer: PublishBatchAnswer = serde_json::from_str(batch).unwrap();
            assert_eq!(serde_json::to_string(&answer).unwrap(), batch);
        }
        let check = r#"{"id":42,"online":true,"connections":2}"#;
        let presence: CheckAnswer = serde_json::from_str(check).unwrap();
        assert_eq!(serde_json::to_string(&presence).unwrap(), check);
    }

    #[test]
    fn a_newer_answer_with_more_fields_still_reads() {
        let answer: BatchAnswer =
            serde_json::from_str(r#"{"accepted":3,"rejected":0,"forwarded":3}"#).unwrap();
        assert_eq!((answer.accepted, answer.dropped), (3, None));
    }
}
