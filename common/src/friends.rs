//! The friends file (`msggen/FRIENDS.md`): its header, the line writer
//! `msggen graph` uses, and the one reader of its lines, which
//! comet-server's graph loader and `msggen graph`'s tests share.
//!
//! ```text
//! user,friend
//! 1,2
//! 1,7
//! 2,3
//! ```
//!
//! [`read_friends`] streams the file through one 1 MiB buffer and hands
//! every friendship to a callback: no allocation per line, so the 314 MB
//! file of 10^6 users at 50 friends each reads at the speed of the disk
//! cache. It checks every rule of the format (header, two decimals and a
//! comma, `user < friend`, sorted by user then friend without repeats, ids
//! under a caller's limit) and refuses the first line that breaks one,
//! naming it, so a reader can rely on the order: a user's friends below it
//! all come before its own lines, and its own lines are ascending.

use std::io::{self, Read};

use c1m_http::parse_decimal as parse_id;

/// The first line of every friends file.
pub const FRIENDS_HEADER: &str = "user,friend";

/// Bytes read at a time.
const CHUNK: usize = 1 << 20;

/// No valid line is longer: two 20-digit decimals and a comma.
const MAX_LINE: usize = 41;

/// The largest id a reader accepts, and why (for the refusal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdLimit {
    /// Ids above this are refused.
    pub max: u64,
    /// What the limit is, in the words of the refusal: `--max-id`, or
    /// "what the free memory can index".
    pub why: &'static str,
}

/// What a whole friends file held.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FriendsFile {
    /// Friendship lines (each is two directed edges).
    pub friendships: u64,
    /// The largest id on any line; 0 for a file with only the header.
    pub max_id: u64,
    /// Distinct users on the left of a line (users with a friend above them).
    pub users_with_lines: u64,
}

/// Why a line breaks the format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LineProblem {
    /// The first line is not [`FRIENDS_HEADER`].
    #[error("expected the header `user,friend`")]
    Header,
    /// Not two unsigned decimals and a comma (or over 41 bytes).
    #[error("expected `user,friend`: two unsigned decimals separated by a comma")]
    Syntax,
    /// A blank line.
    #[error("empty line: every line after the header is one friendship")]
    Empty,
    /// `user >= friend`.
    #[error("{user},{friend}: the smaller id comes first and no one is their own friend")]
    NotBelow {
        /// The line's first id.
        user: u64,
        /// The line's second id.
        friend: u64,
    },
    /// The line does not come after the one before it.
    #[error("{user},{friend} after {prev_user},{prev_friend}: lines are sorted by user, then friend, and none repeats")]
    Order {
        /// The line's first id.
        user: u64,
        /// The line's second id.
        friend: u64,
        /// The previous line's first id.
        prev_user: u64,
        /// The previous line's second id.
        prev_friend: u64,
    },
    /// An id over the reader's limit.
    #[error("id {id} is over {max}, {why}")]
    IdOverLimit {
        /// The id.
        id: u64,
        /// The limit ([`IdLimit::max`]).
        max: u64,
        /// What the limit is ([`IdLimit::why`]).
        why: &'static str,
    },
}

/// Why a friends file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FriendsError {
    /// Reading failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// A line breaks the format (lines count from 1, the header included).
    #[error("line {line}: {problem}")]
    Line {
        /// 1-based line number.
        line: u64,
        /// What is wrong with it.
        problem: LineProblem,
    },
}

/// Appends the line `user,friend\n` (without `fmt`: tens of millions of
/// lines are written).
pub fn push_friendship(out: &mut Vec<u8>, user: u64, friend: u64) {
    push_decimal(out, user);
    out.push(b',');
    push_decimal(out, friend);
    out.push(b'\n');
}

fn push_decimal(out: &mut Vec<u8>, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Reads a friends file, calling `each(user, friend)` for every line after
/// the header, in file order. The file may end with or without a newline.
pub fn read_friends<R: Read>(
    mut input: R,
    limit: IdLimit,
    mut each: impl FnMut(u64, u64),
) -> Result<FriendsFile, FriendsError> {
    let mut buf = vec![0u8; CHUNK];
    let mut lines = Lines {
        number: 0,
        prev: None,
        limit,
        file: FriendsFile::default(),
    };
    let mut filled = 0;
    loop {
        let n = match input.read(&mut buf[filled..]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        filled += n;
        let mut pos = 0;
        loop {
            // The common case in one scan; anything else (the header, a
            // bad line, a line cut by the buffer's end) the slow way.
            if lines.number > 0 {
                if let Some((user, friend, used)) = quick_line(&buf[pos..filled]) {
                    lines.accept(user, friend, &mut each)?;
                    pos += used;
                    continue;
                }
            }
            let Some(end) = buf[pos..filled].iter().position(|&b| b == b'\n') else {
                break;
            };
            lines.take(&buf[pos..pos + end], &mut each)?;
            pos += end + 1;
        }
        if n == 0 {
            if pos < filled || lines.number == 0 {
                lines.take(&buf[pos..filled], &mut each)?;
            }
            return Ok(lines.file);
        }
        if filled - pos > MAX_LINE {
            // No newline in sight: refused now, so the buffer never grows.
            return Err(lines.refuse_next(LineProblem::Syntax));
        }
        buf.copy_within(pos..filled, 0);
        filled -= pos;
    }
}

/// The checks that carry from line to line.
struct Lines {
    /// Lines taken so far.
    number: u64,
    prev: Option<(u64, u64)>,
    limit: IdLimit,
    file: FriendsFile,
}

impl Lines {
    fn refuse_next(&self, problem: LineProblem) -> FriendsError {
        FriendsError::Line {
            line: self.number + 1,
            problem,
        }
    }

    fn take(&mut self, line: &[u8], each: &mut impl FnMut(u64, u64)) -> Result<(), FriendsError> {
        if self.number == 0 {
            if line != FRIENDS_HEADER.as_bytes() {
                return Err(self.refuse_next(LineProblem::Header));
            }
            self.number = 1;
            return Ok(());
        }
        let (user, friend) = parse_line(line).map_err(|p| self.refuse_next(p))?;
        self.accept(user, friend, each)
    }

    /// Takes a syntactically valid line after the header.
    fn accept(
        &mut self,
        user: u64,
        friend: u64,
        each: &mut impl FnMut(u64, u64),
    ) -> Result<(), FriendsError> {
        self.check(user, friend).map_err(|p| self.refuse_next(p))?;
        self.number += 1;
        if self.prev.is_none_or(|(u, _)| u != user) {
            self.file.users_with_lines += 1;
        }
        self.prev = Some((user, friend));
        self.file.friendships += 1;
        self.file.max_id = self.file.max_id.max(friend);
        each(user, friend);
        Ok(())
    }

    /// The rules between a line's ids and against the line before.
    fn check(&self, user: u64, friend: u64) -> Result<(), LineProblem> {
        if user >= friend {
            return Err(LineProblem::NotBelow { user, friend });
        }
        if friend > self.limit.max {
            return Err(LineProblem::IdOverLimit {
                id: friend,
                max: self.limit.max,
                why: self.limit.why,
            });
        }
        if let Some((prev_user, prev_friend)) = self.prev {
            if (user, friend) <= (prev_user, prev_friend) {
                return Err(LineProblem::Order {
                    user,
                    friend,
                    prev_user,
                    prev_friend,
                });
            }
        }
        Ok(())
    }
}

/// A line without its newline: two decimals and a comma.
fn parse_line(line: &[u8]) -> Result<(u64, u64), LineProblem> {
    if line.is_empty() {
        return Err(LineProblem::Empty);
    }
    let comma = line
        .iter()
        .position(|&b| b == b',')
        .ok_or(LineProblem::Syntax)?;
    let user = parse_id(&line[..comma]).ok_or(LineProblem::Syntax)?;
    let friend = parse_id(&line[comma + 1..]).ok_or(LineProblem::Syntax)?;
    Ok((user, friend))
}

/// `user,friend\n` at the start of `buf`, each id 1 to 19 digits (so no
/// overflow check is needed), in one pass over the bytes: the ids and the
/// bytes used with the newline. `None` for anything else, which the caller
/// reads again the slow way ([`parse_line`]) to say what is wrong.
fn quick_line(buf: &[u8]) -> Option<(u64, u64, usize)> {
    let (user, comma) = quick_decimal(buf)?;
    if buf.get(comma) != Some(&b',') {
        return None;
    }
    let (friend, len) = quick_decimal(&buf[comma + 1..])?;
    let newline = comma + 1 + len;
    (buf.get(newline) == Some(&b'\n')).then_some((user, friend, newline + 1))
}

/// The 1 to 19 digits at the start of `buf` and how many there were.
fn quick_decimal(buf: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    let mut len = 0;
    for &b in buf {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        if len == 19 {
            return None;
        }
        value = value * 10 + u64::from(d);
        len += 1;
    }
    (len > 0).then_some((value, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANY: IdLimit = IdLimit {
        max: u64::MAX,
        why: "any",
    };

    fn read(text: &str) -> Result<(FriendsFile, Vec<(u64, u64)>), FriendsError> {
        let mut pairs = Vec::new();
        let file = read_friends(text.as_bytes(), ANY, |u, f| pairs.push((u, f)))?;
        Ok((file, pairs))
    }

    fn refusal(text: &str, limit: IdLimit) -> (u64, LineProblem) {
        match read_friends(text.as_bytes(), limit, |_, _| {}) {
            Err(FriendsError::Line { line, problem }) => (line, problem),
            other => panic!("{text:?} was not refused: {other:?}"),
        }
    }

    #[test]
    fn reads_what_the_writer_writes() {
        let mut text = b"user,friend\n".to_vec();
        for (u, f) in [(1, 2), (1, 7), (2, 3), (5, 18446744073709551615)] {
            push_friendship(&mut text, u, f);
        }
        let text = String::from_utf8(text).unwrap();
        let (file, pairs) = read(&text).unwrap();
        assert_eq!(pairs, [(1, 2), (1, 7), (2, 3), (5, u64::MAX)]);
        assert_eq!(
            file,
            FriendsFile {
                friendships: 4,
                max_id: u64::MAX,
                users_with_lines: 3
            }
        );
        // Without the last newline, and with the header alone.
        assert_eq!(read(text.trim_end()).unwrap().1.len(), 4);
        assert_eq!(read("user,friend").unwrap().0, FriendsFile::default());
        assert_eq!(read("user,friend\n").unwrap().0.friendships, 0);
    }

    #[test]
    fn lines_cut_by_the_buffer_are_read_whole() {
        // Enough lines to cross several 1 MiB reads at odd offsets.
        let mut text = b"user,friend\n".to_vec();
        let mut expected = 0u64;
        for u in 1..12_000u64 {
            for f in (u + 1..u + 60).step_by(7) {
                push_friendship(&mut text, u * 1_000_003, f * 1_000_003 + 17);
                expected += 1;
            }
        }
        assert!(text.len() > 2 * CHUNK);
        // A reader that returns odd-sized pieces.
        struct Dribble<'a>(&'a [u8]);
        impl Read for Dribble<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = buf.len().min(self.0.len()).min(77_777);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut seen = 0;
        let file = read_friends(Dribble(&text), ANY, |_, _| seen += 1).unwrap();
        assert_eq!((file.friendships, seen), (expected, expected));
    }

    #[test]
    fn refuses_the_first_bad_line_by_number() {
        let cases: &[(&str, u64, LineProblem)] = &[
            ("", 1, LineProblem::Header),
            ("friend,user\n1,2\n", 1, LineProblem::Header),
            ("user,friend\r\n1,2\n", 1, LineProblem::Header),
            ("user,friend\n1,2\n1;3\n", 3, LineProblem::Syntax),
            ("user,friend\n1,2\n\n2,3\n", 3, LineProblem::Empty),
            ("user,friend\n1,2\r\n", 2, LineProblem::Syntax),
            ("user,friend\n-1,2\n", 2, LineProblem::Syntax),
            ("user,friend\n1,2,3\n", 2, LineProblem::Syntax),
            (
                "user,friend\n1,99999999999999999999\n",
                2,
                LineProblem::Syntax,
            ),
            (
                "user,friend\n3,3\n",
                2,
                LineProblem::NotBelow { user: 3, friend: 3 },
            ),
            (
                "user,friend\n4,2\n",
                2,
                LineProblem::NotBelow { user: 4, friend: 2 },
            ),
            (
                "user,friend\n1,5\n1,5\n",
                3,
                LineProblem::Order {
                    user: 1,
                    friend: 5,
                    prev_user: 1,
                    prev_friend: 5,
                },
            ),
            (
                "user,friend\n2,5\n1,9\n",
                3,
                LineProblem::Order {
                    user: 1,
                    friend: 9,
                    prev_user: 2,
                    prev_friend: 5,
                },
            ),
        ];
        for (text, line, problem) in cases {
            assert_eq!(refusal(text, ANY), (*line, *problem), "{text:?}");
        }
    }

    #[test]
    fn refuses_ids_over_the_limit_and_overlong_lines() {
        let limit = IdLimit {
            max: 100,
            why: "--max-id",
        };
        let (line, problem) = refusal("user,friend\n1,100\n2,101\n", limit);
        assert_eq!(line, 3);
        assert_eq!(
            problem.to_string(),
            "id 101 is over 100, --max-id",
            "the refusal names the limit"
        );
        let long = format!("user,friend\n1,2\n{}", "9".repeat(CHUNK * 2));
        assert_eq!(refusal(&long, ANY), (3, LineProblem::Syntax));
        let err = read_friends("user,friend\nx\n".as_bytes(), ANY, |_, _| {}).unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 2: expected `user,friend`: two unsigned decimals separated by a comma"
        );
    }
}
