//! Framing for the four subscriber transports. Pure functions that append
//! bytes to a buffer; the reactor owns the sockets. `/ws` is in [`ws`].
//!
//! - `/test/{id}`: HTTP/1.1 chunked `text/html`, a welcome chunk, then one
//!   chunk per message with the body unchanged (as in the seeds).
//! - An HTTP/1.0 client cannot read chunked encoding, so its `/test` and
//!   `/sse` streams are close-delimited ([`Framing::Close`]): the same bytes
//!   without chunk lines, `Connection: close`, the end of the body is the
//!   close.
//! - `/sse/{id}`: `text/event-stream`, chunked, one event per message with
//!   `id: <seq>`; a lost range is an `event: lost` event; keep-alive is a
//!   comment line. On a stream of several ids (`/sse/1,2,3`) the field
//!   names the id too, `id: <id>:<seq>` ([`EventId`]), which is what the
//!   client's `Last-Event-ID` then says; on `/test` a message is its body
//!   either way (a message carries its own envelope).
//! - `/poll/{id}`: one `text/plain` answer with `Content-Length`: per
//!   message an entry `<seq>\t<length>\t<message>\n` (the length in bytes,
//!   so a message may hold tabs and line ends and still cannot pass for
//!   another entry), and `lost\t<first>-<last>\n` for a gap; the newest
//!   sequence number in `X-Seq`. The connection then closes, or with
//!   keep-alive waits for the client's next request.
//! - `/ws/{id}`: a WebSocket, one frame per message (see [`ws`]).
//!
//! What each can carry: `/test` chunks, `/poll` entries and `/ws` frames
//! are delimited by length, so any byte. An SSE event carries LF as several `data:`
//! lines, which an EventSource joins with LF again, but nothing can carry
//! CR, which ends a line for an EventSource (`a\rid: 9` would set the
//! event's id); so the admin refuses a message holding CR
//! ([`uncarriable`]). (EventSource also decodes the stream as UTF-8: bytes
//! that are not reach a browser as U+FFFD, though the wire carries them.)

use std::io::Write;

use c1m_http::ws::MessageState;
use c1m_http::{write_chunk, LAST_CHUNK};

use crate::history::Replay;

pub(crate) mod ws;

/// Which stream a connection carries; stored in its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Test,
    Sse,
    Poll,
    Ws,
}

/// How a stream's body is delimited; stored in its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// HTTP/1.1: chunked, ended by [`LAST_CHUNK`].
    Chunked,
    /// HTTP/1.0: raw bytes, ended by closing the connection.
    Close,
    /// WebSocket frames; what the client is sending between its frames (a
    /// fragmented message's kind and UTF-8 state, one byte) rides here, so
    /// a `/ws` record is as small as the others.
    WebSocket(MessageState),
}

impl Framing {
    /// Chunked for HTTP/1.1 requests, close-delimited for HTTP/1.0.
    pub(crate) fn for_request(http11: bool) -> Self {
        if http11 {
            Framing::Chunked
        } else {
            Framing::Close
        }
    }

    /// What ends the body before the connection closes at shutdown.
    pub(crate) fn terminator(self, out: &mut Vec<u8>) {
        match self {
            Framing::Chunked => out.extend_from_slice(LAST_CHUNK),
            Framing::Close => {}
            Framing::WebSocket(_) => ws::close(out, ws::Ending::Shutdown),
        }
    }
}

fn head(out: &mut Vec<u8>, framing: Framing, content_type: &str, extra: &str) {
    let delimit = match framing {
        Framing::Chunked => "Transfer-Encoding: chunked",
        // (A WebSocket stream's head is its 101, from `ws`.)
        Framing::Close | Framing::WebSocket(_) => "Connection: close",
    };
    let _ = write!(
        out,
        "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nCache-Control: no-cache\r\n{extra}{delimit}\r\n\r\n"
    );
}

/// The response head of a `/test` stream.
pub(crate) fn test_head(out: &mut Vec<u8>, framing: Framing) {
    head(out, framing, "text/html; charset=utf-8", "");
}

/// The response head of an `/sse` stream; `origin` may read it from
/// another origin (the dashboard's page, `Access-Control-Allow-Origin`).
pub(crate) fn sse_head(out: &mut Vec<u8>, framing: Framing, origin: Option<&str>) {
    const NO_BUFFERING: &str = "X-Accel-Buffering: no\r\n";
    match origin {
        Some(origin) => {
            let extra =
                format!("{NO_BUFFERING}Access-Control-Allow-Origin: {origin}\r\nVary: Origin\r\n");
            head(out, framing, "text/event-stream", &extra);
        }
        None => head(out, framing, "text/event-stream", NO_BUFFERING),
    }
}

/// Appends `payload` as one chunk (or as it is, close-delimited). An empty
/// payload writes nothing: as a chunk it would be the last one, ending the
/// stream while the connection stays logged in.
pub(crate) fn chunk(out: &mut Vec<u8>, framing: Framing, payload: &[u8]) {
    match framing {
        Framing::Chunked => write_chunk(out, payload),
        Framing::Close => out.extend_from_slice(payload),
        // Only the chunked transports call this.
        Framing::WebSocket(_) => ws::message(out, payload),
    }
}

/// Appends a chunk whose contents `fill` writes, measured after the fact.
/// `scratch` is a reusable buffer, so this does not allocate at rest.
pub(crate) fn chunk_with(
    out: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
    framing: Framing,
    fill: impl FnOnce(&mut Vec<u8>),
) {
    scratch.clear();
    fill(scratch);
    chunk(out, framing, scratch);
}

/// The first chunk of a `/test` stream: `c1m welcome, id: 7`, or for a
/// stream of several ids `c1m welcome, ids: 7,8,9`.
pub(crate) fn welcome(
    out: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
    framing: Framing,
    id: u64,
    more: &[u64],
) {
    chunk_with(out, scratch, framing, |s| {
        if more.is_empty() {
            let _ = writeln!(s, "c1m welcome, id: {id}");
        } else {
            let _ = write!(s, "c1m welcome, ids: {id}");
            for id in more {
                let _ = write!(s, ",{id}");
            }
            s.push(b'\n');
        }
    });
}

/// What an SSE event's `id:` field says: a message's place in its id's
/// numbering, `<seq>` on a stream of one id, `<id>:<seq>` on a stream of
/// several (`named`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EventId {
    pub(crate) named: Option<u64>,
    pub(crate) seq: u64,
}

impl From<u64> for EventId {
    fn from(seq: u64) -> Self {
        Self { named: None, seq }
    }
}

impl std::fmt::Display for EventId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.named {
            Some(id) => write!(f, "{id}:{}", self.seq),
            None => write!(f, "{}", self.seq),
        }
    }
}

/// Part 1's heartbeat chunk; on an SSE stream it is an `event: heartbeat`
/// (without an `id:`, so it does not move the client's Last-Event-ID).
pub(crate) fn heartbeat(
    out: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
    (kind, framing): (Kind, Framing),
    n: u32,
    id: u64,
) {
    if kind == Kind::Ws {
        return ws::heartbeat(out, scratch, n, id);
    }
    chunk_with(out, scratch, framing, |s| {
        if kind == Kind::Sse {
            let _ = write!(s, "event: heartbeat\ndata: Chunk {n} for id {id}\n\n");
        } else {
            let _ = writeln!(s, "Chunk {n} for id {id}");
        }
    });
}

/// One message on a stream of `kind` (not `Poll`, which answers once).
pub(crate) fn message(
    out: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
    (kind, framing): (Kind, Framing),
    at: EventId,
    body: &[u8],
) {
    match kind {
        Kind::Test => chunk(out, framing, body),
        Kind::Sse => chunk_with(out, scratch, framing, |s| sse_event(s, at, body)),
        Kind::Ws => ws::message(out, body),
        // A long-poll answers once, through `poll_answer`.
        Kind::Poll => debug_assert!(false, "long-poll answers go through poll_answer"),
    }
}

/// Why no transport can carry `message`, if that is so (see the module
/// doc); the admin refuses such a message.
pub(crate) fn uncarriable(message: &[u8]) -> Option<&'static str> {
    message.contains(&b'\r').then_some(
        "message holds a CR (0x0D) byte, which /sse cannot carry: an EventSource ends a line at CR",
    )
}

/// An SSE event; a body with line breaks becomes several `data:` lines
/// (the admin lets no CR through, see [`uncarriable`]).
fn sse_event(out: &mut Vec<u8>, at: EventId, body: &[u8]) {
    let _ = writeln!(out, "id: {at}");
    sse_data(out, body);
}

/// The `data:` lines of an SSE event and the blank line that ends it.
fn sse_data(out: &mut Vec<u8>, body: &[u8]) {
    debug_assert!(uncarriable(body).is_none());
    for line in body.split(|&b| b == b'\n') {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out.push(b'\n');
}

/// The SSE event telling a client that messages `first..=last` are gone.
pub(crate) fn sse_lost(
    out: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
    framing: Framing,
    named: Option<u64>,
    (first, last): (u64, u64),
) {
    let at = EventId { named, seq: last };
    chunk_with(out, scratch, framing, |s| {
        let _ = write!(
            s,
            "event: lost\nid: {at}\ndata: messages {first}-{last} are no longer in the history\n\n"
        );
    });
}

/// An SSE comment line, which keeps proxies and clients from timing out.
pub(crate) fn sse_keepalive(out: &mut Vec<u8>, framing: Framing) {
    chunk(out, framing, b": keep-alive\n\n");
}

/// The replay an `/sse` stream starts with (of the id `named` on a stream
/// of several).
pub(crate) fn sse_replay(
    out: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
    framing: Framing,
    named: Option<u64>,
    replay: &Replay,
) {
    if let Some(lost) = replay.lost {
        sse_lost(out, scratch, framing, named, lost);
    }
    for (seq, body) in &replay.messages {
        let at = EventId { named, seq: *seq };
        message(out, scratch, (Kind::Sse, framing), at, body);
    }
}

/// What a long-poll answer says besides its messages.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PollHead {
    /// `X-Seq` when the answer carries no message (with messages it is the
    /// last one's sequence number).
    pub(crate) newest: Option<u64>,
    /// A gap before the messages.
    pub(crate) lost: Option<(u64, u64)>,
    pub(crate) keep_alive: bool,
}

/// A whole long-poll answer: the lost range, then messages while the body
/// stays within `budget` bytes (always at least one), and in `X-Seq` the
/// last one's sequence number, so the client's next poll asks for the rest.
/// Returns how many messages it carries.
pub(crate) fn poll_answer<'a>(
    out: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
    head: PollHead,
    messages: impl IntoIterator<Item = (u64, &'a [u8])>,
    budget: usize,
) -> u64 {
    scratch.clear();
    if let Some((first, last)) = head.lost {
        let _ = writeln!(scratch, "lost\t{first}-{last}");
    }
    let (mut count, mut newest) = (0, head.newest);
    for (seq, body) in messages {
        if count > 0 && scratch.len() + poll_entry_cost(body) > budget {
            break;
        }
        let _ = write!(scratch, "{seq}\t{}\t", body.len());
        scratch.extend_from_slice(body);
        scratch.push(b'\n');
        (count, newest) = (count + 1, Some(seq));
    }
    poll_response(out, newest, scratch, head.keep_alive);
    count
}

/// A long-poll answer carrying a broadcast: one entry
/// `broadcast\t<length>\t<message>\n` (a broadcast has no sequence
/// number, so `X-Seq` is left out and the client's next poll names the seq
/// it had).
pub(crate) fn poll_broadcast(
    out: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
    message: &[u8],
    keep_alive: bool,
) {
    scratch.clear();
    let _ = write!(scratch, "broadcast\t{}\t", message.len());
    scratch.extend_from_slice(message);
    scratch.push(b'\n');
    poll_response(out, None, scratch, keep_alive);
}

/// A long-poll response: the head, then `body`.
fn poll_response(out: &mut Vec<u8>, newest: Option<u64>, body: &[u8], keep_alive: bool) {
    out.extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nCache-Control: no-cache\r\n");
    if let Some(newest) = newest {
        let _ = write!(out, "X-Seq: {newest}\r\n");
    }
    let connection = if keep_alive { "keep-alive" } else { "close" };
    let _ = write!(
        out,
        "Content-Length: {}\r\nConnection: {connection}\r\n\r\n",
        body.len()
    );
    out.extend_from_slice(body);
}

/// A broadcast on a stream: the body as it is on `/test`; on `/sse` an
/// event without `id:` (a broadcast is not in any id's numbering, so it
/// does not move the client's Last-Event-ID); on `/ws` a message frame.
pub(crate) fn broadcast(
    out: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
    (kind, framing): (Kind, Framing),
    body: &[u8],
) {
    match kind {
        Kind::Test => chunk(out, framing, body),
        Kind::Sse => chunk_with(out, scratch, framing, |s| sse_data(s, body)),
        Kind::Ws => ws::message(out, body),
        Kind::Poll => debug_assert!(false, "long-poll answers go through poll_broadcast"),
    }
}

/// Digits of a `u64` at most, for the framing costs below.
const U64_DIGITS: usize = 20;

/// An upper bound of `body`'s size as one `/poll` entry, for replay budgets.
pub(crate) fn poll_entry_cost(body: &[u8]) -> usize {
    U64_DIGITS + 1 + U64_DIGITS + 1 + body.len() + 1
}

/// An upper bound of `body`'s size as one SSE event in its chunk: the id
/// line (`<id>:<seq>` at most), `data: ` and LF per line, the blank line,
/// the chunk lines.
pub(crate) fn sse_event_cost(body: &[u8]) -> usize {
    let lines = body.iter().filter(|&&b| b == b'\n').count() + 1;
    let chunk_lines = 16 + 4;
    "id: :\n".len() + 2 * U64_DIGITS + lines * "data: \n".len() + body.len() + 1 + chunk_lines
}

/// The head of a `HEAD` request's answer for `kind`.
pub(crate) fn head_only(out: &mut Vec<u8>, kind: Kind, framing: Framing) {
    match kind {
        Kind::Test => test_head(out, framing),
        Kind::Sse => sse_head(out, framing, None),
        Kind::Poll => {
            let _ = write!(out, "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n");
        }
        // A WebSocket handshake is a GET: the request parser refuses HEAD.
        Kind::Ws => debug_assert!(false, "no HEAD on /ws"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(f: impl FnOnce(&mut Vec<u8>, &mut Vec<u8>)) -> String {
        let (mut out, mut scratch) = (Vec::new(), Vec::new());
        f(&mut out, &mut scratch);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn test_stream_chunks_carry_the_body_unchanged() {
        assert_eq!(
            text(|o, s| message(o, s, (Kind::Test, Framing::Chunked), 1.into(), b"hello")),
            "5\r\nhello\r\n"
        );
        assert_eq!(
            text(|o, s| welcome(o, s, Framing::Chunked, 42, &[])),
            "14\r\nc1m welcome, id: 42\n\r\n"
        );
        assert_eq!(
            text(|o, s| heartbeat(o, s, (Kind::Test, Framing::Chunked), 3, 9)),
            "11\r\nChunk 3 for id 9\n\r\n"
        );
        let sse = text(|o, s| heartbeat(o, s, (Kind::Sse, Framing::Chunked), 3, 9));
        assert!(sse.ends_with("\r\nevent: heartbeat\ndata: Chunk 3 for id 9\n\n\r\n"));
    }

    #[test]
    fn close_delimited_streams_carry_the_same_bytes_without_chunk_lines() {
        let head = text(|o, _| test_head(o, Framing::Close));
        assert!(head.contains("Connection: close\r\n"));
        assert!(!head.contains("Transfer-Encoding"));
        let close = (Kind::Sse, Framing::Close);
        assert_eq!(
            text(|o, s| message(o, s, close, 7.into(), b"hi")),
            "id: 7\ndata: hi\n\n"
        );
        assert_eq!(
            text(|o, s| message(o, s, (Kind::Test, Framing::Close), 1.into(), b"hello")),
            "hello"
        );
        let end = |framing: Framing| {
            let mut out = Vec::new();
            framing.terminator(&mut out);
            out
        };
        assert_eq!(end(Framing::Close), b"");
        assert_eq!(end(Framing::Chunked), LAST_CHUNK);
        assert_eq!(end(Framing::WebSocket(MessageState::default()))[0], 0x88);
    }

    #[test]
    fn sse_events_have_ids_and_split_lines() {
        let t = text(|o, s| message(o, s, (Kind::Sse, Framing::Chunked), 7.into(), b"a\nb"));
        assert_eq!(t, "17\r\nid: 7\ndata: a\ndata: b\n\n\r\n");
        assert!(uncarriable(b"a\nb\tc").is_none());
        assert!(uncarriable(b"a\rb").unwrap().contains("CR (0x0D)"));
        let lost = text(|o, s| sse_lost(o, s, Framing::Chunked, None, (2, 4)));
        assert!(lost.contains("event: lost\nid: 4\ndata: messages 2-4 are"));
        // A stream of several ids names the id in each event.
        let named = EventId {
            named: Some(42),
            seq: 7,
        };
        let t = text(|o, s| message(o, s, (Kind::Sse, Framing::Close), named, b"x"));
        assert_eq!(t, "id: 42:7\ndata: x\n\n");
        let lost = text(|o, s| sse_lost(o, s, Framing::Close, Some(42), (2, 4)));
        assert!(lost.starts_with("event: lost\nid: 42:4\n"), "{lost}");
        let welcome = text(|o, s| welcome(o, s, Framing::Close, 1, &[2, 3]));
        assert_eq!(welcome, "c1m welcome, ids: 1,2,3\n");
    }

    #[test]
    fn poll_answer_has_exact_length() {
        let head = PollHead {
            newest: Some(9),
            lost: Some((1, 2)),
            keep_alive: false,
        };
        let messages = [(3, &b"x"[..]), (4, &b"yz"[..])];
        let t = text(|o, s| {
            poll_answer(o, s, head, messages, usize::MAX);
        });
        let (head_text, body) = t.split_once("\r\n\r\n").unwrap();
        assert_eq!(body, "lost\t1-2\n3\t1\tx\n4\t2\tyz\n");
        assert!(head_text.contains(&format!("Content-Length: {}", body.len())));
        assert!(head_text.contains("X-Seq: 4"), "the last message's");
        assert!(head_text.contains("Connection: close"));
        // Cut to the budget: the first message always, X-Seq says where.
        let t = text(|o, s| assert_eq!(poll_answer(o, s, head, messages, 1), 1));
        assert!(t.ends_with("\r\n\r\nlost\t1-2\n3\t1\tx\n"), "{t:?}");
        assert!(t.contains("X-Seq: 3\r\n"));
        let empty = text(|o, s| assert_eq!(poll_answer(o, s, head, [], 1), 0));
        assert!(empty.contains("X-Seq: 9\r\n"));
    }

    #[test]
    fn framing_costs_bound_the_framed_size() {
        for body in [&b""[..], b"x", b"a\nb\n\nc", &[b'\n'; 100]] {
            let at = EventId {
                named: Some(u64::MAX),
                seq: u64::MAX,
            };
            let sse = text(|o, s| message(o, s, (Kind::Sse, Framing::Chunked), at, body));
            assert!(sse.len() <= sse_event_cost(body), "{body:?}");
            let head = PollHead {
                newest: None,
                lost: None,
                keep_alive: false,
            };
            let poll = text(|o, s| {
                poll_answer(o, s, head, [(u64::MAX, body)], usize::MAX);
            });
            let entry = poll.split_once("\r\n\r\n").unwrap().1;
            assert!(entry.len() <= poll_entry_cost(body), "{body:?}");
        }
    }
}
