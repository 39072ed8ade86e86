//! The body of `POST /send`: one `id<TAB>message\n` line per message.
//!
//! ```text
//! 42\t[c1m 42 3 17 1732243200123456 5|hello]\n
//! 7\tany bytes but a newline\n
//! ```
//!
//! `msggen` writes it with [`push_batch_line`]; comet-server reads it with
//! [`parse_batch`], in place: a message is a slice of the body, never copied.
//!
//! - The id is `c1m_http::parse_decimal`'s decimal (digits within u64,
//!   zero padding allowed: the rule of a `/send/{id}` path) and at most the
//!   reader's `max_id`.
//! - The message is every byte after the first tab up to the newline. So a
//!   batch message cannot contain a newline, nor end with `\r` (a trailing
//!   `\r` is taken as part of a `\r\n` line end, for batches typed by hand).
//!   `POST /send/{id}` carries one message of any bytes.
//! - Empty lines are skipped, and the last line may lack its newline.
//! - A line without a tab or with a bad id is rejected and counted; the
//!   lines around it are still read.
//!
//! Encoding appends to the caller's buffer; parsing allocates nothing.

use std::io::Write;

use c1m_http::parse_decimal as parse_id;

/// A message a batch line cannot carry: it holds a newline, or ends with `\r`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "a batch message cannot contain a newline or end with \\r: send it alone to POST /send/{{id}}"
)]
pub struct UnsendableMessage;

/// Appends the line `id<TAB>message\n` to `out`, the message written in
/// place by `message` (so an envelope is encoded straight into the body).
/// A message a line cannot carry is refused and `out` left as it was.
pub fn push_batch_line(
    out: &mut Vec<u8>,
    id: u64,
    message: impl FnOnce(&mut Vec<u8>),
) -> Result<(), UnsendableMessage> {
    let line_start = out.len();
    // Writing to a Vec cannot fail.
    let _ = write!(out, "{id}\t");
    let message_start = out.len();
    message(out);
    let written = &out[message_start..];
    if written.contains(&b'\n') || written.ends_with(b"\r") {
        out.truncate(line_start);
        return Err(UnsendableMessage);
    }
    out.push(b'\n');
    Ok(())
}

/// What parsing a batch found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BatchLines {
    /// Lines with a valid id and a tab.
    pub accepted: u64,
    /// Non-empty lines without a tab or with a bad id.
    pub rejected: u64,
}

/// Calls `each(id, message)` for every valid line of `body`, in order, the
/// message borrowed from `body`; ids above `max_id` are bad ids.
pub fn parse_batch<'a>(
    body: &'a [u8],
    max_id: u64,
    mut each: impl FnMut(u64, &'a [u8]),
) -> BatchLines {
    let mut counts = BatchLines::default();
    for line in body.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let parsed = line.iter().position(|&b| b == b'\t').and_then(|tab| {
            let id = parse_id(&line[..tab]).filter(|&id| id <= max_id)?;
            Some((id, &line[tab + 1..]))
        });
        match parsed {
            Some((id, message)) => {
                counts.accepted += 1;
                each(id, message);
            }
            None => counts.rejected += 1,
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parsed(body: &[u8], max_id: u64) -> (BatchLines, Vec<(u64, Vec<u8>)>) {
        let mut got = Vec::new();
        let counts = parse_batch(body, max_id, |id, m| got.push((id, m.to_vec())));
        (counts, got)
    }

    #[test]
    fn lines_are_parsed_in_place_and_bad_ones_counted() {
        let (counts, got) = parsed(
            b"1\thello\n2\tworld\r\n\nbad line\n9999\tx\n3\t\n4\ta\tb",
            1000,
        );
        assert_eq!(
            counts,
            BatchLines {
                accepted: 4,
                rejected: 2
            }
        );
        assert_eq!(
            got,
            [
                (1, b"hello".to_vec()),
                (2, b"world".to_vec()),
                (3, Vec::new()),
                (4, b"a\tb".to_vec()),
            ]
        );
        let mut borrowed = None;
        let body = b"5\tin place\n";
        parse_batch(body, 10, |_, m| borrowed = Some(m.as_ptr()));
        assert_eq!(
            borrowed,
            Some(body[2..].as_ptr()),
            "the message is not copied"
        );
    }

    #[test]
    fn ids_follow_the_one_id_rule() {
        let (counts, _) = parsed(b"+1\tx\n 2\tx\n3 \tx\n18446744073709551616\tx\n", u64::MAX);
        assert_eq!(counts.rejected, 4);
        // Zero-padded past 20 digits, as `/send/{id}` accepts it (issue 13).
        let (counts, got) = parsed(b"0000000000000000000000007\tpadded\n", 10);
        assert_eq!(counts.accepted, 1);
        assert_eq!(got, [(7, b"padded".to_vec())]);
    }

    #[test]
    fn push_batch_line_writes_terminated_lines_and_refuses_what_it_cannot_carry() {
        let mut out = Vec::new();
        push_batch_line(&mut out, 42, |o| o.extend_from_slice(b"hi")).unwrap();
        push_batch_line(&mut out, 7, |_| {}).unwrap();
        assert_eq!(out, b"42\thi\n7\t\n");
        for bad in [&b"a\nb"[..], b"ends\r", b"\n"] {
            let refused = push_batch_line(&mut out, 1, |o| o.extend_from_slice(bad));
            assert_eq!(refused, Err(UnsendableMessage));
            assert_eq!(out, b"42\thi\n7\t\n", "a refused line leaves no trace");
        }
    }

    /// Bytes a batch message may hold: anything but `\n`, not ending in `\r`.
    fn message() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            any::<u8>().prop_filter("no newline", |&b| b != b'\n'),
            0..40,
        )
        .prop_filter("no trailing \\r", |m| !m.ends_with(b"\r"))
    }

    proptest! {
        #[test]
        fn parse_batch_returns_what_push_batch_line_wrote(
            lines in proptest::collection::vec((any::<u64>(), message()), 0..20)
        ) {
            let mut body = Vec::new();
            for (id, m) in &lines {
                push_batch_line(&mut body, *id, |o| o.extend_from_slice(m)).unwrap();
            }
            let (counts, got) = parsed(&body, u64::MAX);
            prop_assert_eq!(counts, BatchLines { accepted: lines.len() as u64, rejected: 0 });
            prop_assert_eq!(got, lines);
        }

        #[test]
        fn parse_never_panics_and_yields_no_newline(body in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut seen = 0;
            let counts = parse_batch(&body, 1_000, |id, m| {
                assert!(id <= 1_000 && !m.contains(&b'\n'));
                seen += 1;
            });
            prop_assert_eq!(counts.accepted, seen);
        }
    }
}
