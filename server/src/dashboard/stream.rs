//! `GET /stats/stream`: one server-sent event a second, each carrying what
//! `GET /stats` answers at that moment, taken through the listener's own
//! [`Handler`] (so a group's front sends the sum and every worker, broker
//! mode its `broker` state, from the one code path `/stats` uses).
//!
//! The body is close-delimited (`Connection: close`): the stream ends when
//! the reader goes away, which the next write notices. Cost: one admin
//! connection slot and one snapshot a second per reader.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use crate::admin::{AdminRoute, Handler};

/// Time between two events.
const EVERY: Duration = Duration::from_secs(1);

/// Writes the stream until the reader goes away.
pub(crate) async fn stats<S, H>(stream: &mut S, ctx: &H, cors: &str)
where
    S: AsyncRead + AsyncWrite + Unpin,
    H: Handler,
{
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\
         X-Accel-Buffering: no\r\n{cors}Connection: close\r\n\r\n: c1m stats, one event a second\n\n"
    );
    if stream.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut answer = Vec::new();
    loop {
        tick.tick().await;
        answer.clear();
        ctx.answer(AdminRoute::Stats, b"", true, &mut answer).await;
        let Some(event) = event(&answer) else {
            return;
        };
        if stream.write_all(&event).await.is_err() || stream.flush().await.is_err() {
            return;
        }
    }
}

/// The event carrying the JSON body of a `/stats` answer (one line: the
/// JSON has no line break but its last).
fn event(answer: &[u8]) -> Option<Vec<u8>> {
    let at = answer.windows(4).position(|w| w == b"\r\n\r\n")?;
    let json = answer[at + 4..].trim_ascii_end();
    if !answer.starts_with(b"HTTP/1.1 200") || json.contains(&b'\n') {
        return None;
    }
    let mut out = Vec::with_capacity(json.len() + 24);
    out.extend_from_slice(b"event: stats\ndata: ");
    out.extend_from_slice(json);
    out.extend_from_slice(b"\n\n");
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_carries_the_json_body_of_a_stats_answer() {
        let mut answer = Vec::new();
        crate::admin::respond(
            &mut answer,
            "application/json",
            b"{\"connections\":3}\n",
            true,
        );
        assert_eq!(
            event(&answer).unwrap(),
            b"event: stats\ndata: {\"connections\":3}\n\n"
        );
        assert_eq!(event(b"HTTP/1.1 503 Service Unavailable\r\n\r\nno\n"), None);
    }
}
