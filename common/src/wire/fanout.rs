//! The body of `POST /fanout`, the request a group's front sends each worker
//! for events (`POST /publish`): per event, the publisher's friends that the
//! worker owns and the event, one line each.
//!
//! ```text
//! 4,10,22\t13\thello friends\n
//! ```
//!
//! The ids are decimal, comma-separated, at least one, each at most the
//! reader's `max_id`; then a tab, the event's length in bytes, a tab, the
//! event and a newline. The length frames the event, so an event of any
//! bytes (`POST /publish/{id}` takes newlines) crosses unchanged. The format
//! is internal to a group (front and workers are the same binary), so a
//! malformed line is not skipped: the rest of the body cannot be framed,
//! and parsing stops there with an error.
//!
//! Encoding appends to the caller's buffer; parsing reuses one id buffer and
//! borrows the events from the body.

use std::io::Write;

use c1m_http::parse_decimal;

/// Appends one line: `event` for `ids` (not empty).
pub fn push_fanout_line(out: &mut Vec<u8>, ids: &[u64], event: &[u8]) {
    debug_assert!(!ids.is_empty(), "a fan-out line names at least one id");
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        // Writing to a Vec cannot fail.
        let _ = write!(out, "{id}");
    }
    let _ = write!(out, "\t{}\t", event.len());
    out.extend_from_slice(event);
    out.push(b'\n');
}

/// Where a fan-out body stopped making sense.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("fan-out body: line {line} (byte {offset}) is malformed")]
pub struct MalformedFanout {
    /// 1-based line number.
    pub line: u64,
    /// Where that line starts in the body.
    pub offset: usize,
}

/// Calls `each(ids, event)` for every line of `body`, in order; the number
/// of lines, or where the first malformed one starts (the lines before it
/// were handed out).
pub fn parse_fanout(
    body: &[u8],
    max_id: u64,
    mut each: impl FnMut(&[u64], &[u8]),
) -> Result<u64, MalformedFanout> {
    let mut ids = Vec::new();
    let (mut at, mut line) = (0, 0);
    while at < body.len() {
        line += 1;
        let malformed = MalformedFanout { line, offset: at };
        let event = parse_line(&body[at..], max_id, &mut ids).ok_or(malformed)?;
        each(&ids, event.bytes);
        at += event.line_len;
    }
    Ok(line)
}

struct Event<'a> {
    bytes: &'a [u8],
    line_len: usize,
}

/// The line at the start of `rest`: its ids into `ids`, its event.
fn parse_line<'a>(rest: &'a [u8], max_id: u64, ids: &mut Vec<u64>) -> Option<Event<'a>> {
    let tab = rest.iter().position(|&b| b == b'\t')?;
    ids.clear();
    for id in rest[..tab].split(|&b| b == b',') {
        ids.push(parse_decimal(id).filter(|&id| id <= max_id)?);
    }
    let after_ids = &rest[tab + 1..];
    let tab2 = after_ids.iter().position(|&b| b == b'\t')?;
    let len = usize::try_from(parse_decimal(&after_ids[..tab2])?).ok()?;
    let start = tab + 1 + tab2 + 1;
    let end = start.checked_add(len)?;
    (rest.get(end) == Some(&b'\n')).then(|| Event {
        bytes: &rest[start..end],
        line_len: end + 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Each line handed out: its ids and its event.
    type Lines = Vec<(Vec<u64>, Vec<u8>)>;

    fn parsed(body: &[u8]) -> (Result<u64, MalformedFanout>, Lines) {
        let mut got = Vec::new();
        let r = parse_fanout(body, 1000, |ids, e| got.push((ids.to_vec(), e.to_vec())));
        (r, got)
    }

    #[test]
    fn a_line_carries_any_bytes_for_its_ids() {
        let mut body = Vec::new();
        push_fanout_line(&mut body, &[4, 10, 22], b"hello\nfriends\t!");
        push_fanout_line(&mut body, &[7], b"");
        assert_eq!(body, b"4,10,22\t15\thello\nfriends\t!\n7\t0\t\n");
        let (r, got) = parsed(&body);
        assert_eq!(r, Ok(2));
        assert_eq!(
            got,
            [
                (vec![4, 10, 22], b"hello\nfriends\t!".to_vec()),
                (vec![7], Vec::new())
            ]
        );
    }

    #[test]
    fn parsing_stops_at_the_first_malformed_line() {
        for (bad, why) in [
            (&b"1,2\t3\tabcd\n"[..], "length short of the event"),
            (b"1,2\t9\tabc\n", "length past the body"),
            (b"1,,2\t1\ta\n", "empty id"),
            (b"1001\t1\ta\n", "id over max_id"),
            (b"\t1\ta\n", "no id"),
            (b"1\tx\ta\n", "length not a number"),
            (b"1 2\n", "no tab"),
        ] {
            let mut body = b"5\t2\tok\n".to_vec();
            body.extend_from_slice(bad);
            let (r, got) = parsed(&body);
            assert_eq!(r, Err(MalformedFanout { line: 2, offset: 7 }), "{why}");
            assert_eq!(got.len(), 1, "{why}: the line before was handed out");
        }
    }

    proptest! {
        #[test]
        fn what_is_written_is_read_back(
            lines in proptest::collection::vec(
                (proptest::collection::vec(0u64..=1000, 1..20), proptest::collection::vec(any::<u8>(), 0..64)),
                0..20,
            )
        ) {
            let mut body = Vec::new();
            for (ids, event) in &lines {
                push_fanout_line(&mut body, ids, event);
            }
            let (r, got) = parsed(&body);
            prop_assert_eq!(r, Ok(lines.len() as u64));
            prop_assert_eq!(got, lines);
        }
    }
}
