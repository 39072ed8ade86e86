//! The friends graph in memory: every user's friends, both directions of
//! each friendship, as sorted lists of gaps in LEB128 varints.
//!
//! Layout: user `id`'s list is `lists[offsets[id]..offsets[id + 1]]`, its
//! friends in ascending order, each written as the gap from the one before
//! (the first from 0) in 7-bit groups, low group first, the high bit set on
//! every byte but a number's last. Users are indexed by id, so ids are
//! dense: `--max-id`-sized arrays, not a hash map.
//!
//! Cost at rest: 4 bytes per id up to the largest id in the file, plus 1 to
//! 5 bytes per friend of each user (a gap under 128 takes 1 byte, under
//! 16,384 two, under 2^21 three). Plain `u32` lists would take 4 bytes a
//! friend: 200 MB for 10^6 users at 50 friends each (50 M entries), where
//! these take ~2 bytes a friend (the figures are in `server/README.md`).
//! A user's degree is the number of bytes without the high bit, so the
//! graph needs no degree array.
//!
//! Loading reads the file twice through [`c1m_common::read_friends`]: the
//! first pass sizes each list (it tracks the last friend written per user,
//! 4 bytes an id), the second writes them in place. Both work because the
//! file is sorted: a user's friends below it appear (as lines `f,user`)
//! before its own lines `user,f`, which are ascending, so every list is
//! filled in ascending order. While loading it holds 8 more bytes per id.

use std::fs::File;
use std::io;
use std::path::Path;

use c1m_common::{read_friends, FriendsError, IdLimit};

/// Bytes per id the first pass may hold: an 8-byte [`Tail`] array grown
/// by doubling, so up to twice the ids seen.
const LOAD_BYTES_PER_ID: u64 = 16;

/// The friends of every user (`--friends`), loaded once and shared
/// read-only by the admin side.
pub struct FriendsGraph {
    /// `offsets[id]..offsets[id + 1]`: where user `id`'s list is in `lists`.
    offsets: Box<[u32]>,
    lists: Box<[u8]>,
    friendships: u64,
}

impl std::fmt::Debug for FriendsGraph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FriendsGraph")
            .field("max_id", &self.max_id())
            .field("friendships", &self.friendships)
            .field("bytes", &self.bytes())
            .finish()
    }
}

/// Why `--friends` could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// The file cannot be opened.
    #[error("cannot open it: {0}")]
    Open(io::Error),
    /// Reading failed, or a line breaks the format or a limit.
    #[error("{0}")]
    File(#[from] FriendsError),
    /// The lists would pass what 32-bit offsets address.
    #[error("its friend lists take {bytes} bytes, over the 4 GiB that 32-bit offsets address: split the users over several servers")]
    TooLarge {
        /// Bytes the lists need.
        bytes: u64,
    },
    /// Not enough free memory for the lists.
    #[error("loading it needs {needed} bytes and {available} are available: free memory or load a smaller graph")]
    NoMemory {
        /// Bytes the load needs.
        needed: u64,
        /// `MemAvailable`.
        available: u64,
    },
    /// The second pass read something else than the first.
    #[error("the file changed between the two passes of the load")]
    Changed,
}

impl FriendsGraph {
    /// Loads a friends file (`msggen/FRIENDS.md`); refuses a malformed one
    /// naming its first bad line, and one whose ids pass `max_id`, 2^32 - 2
    /// or what the free memory can index.
    pub fn load(path: &Path, max_id: u64) -> Result<FriendsGraph, GraphError> {
        let available = c1m_common::mem_available().unwrap_or(u64::MAX);
        Self::load_within(path, max_id, available)
    }

    /// [`FriendsGraph::load`] with `available` bytes of free memory.
    fn load_within(path: &Path, max_id: u64, available: u64) -> Result<FriendsGraph, GraphError> {
        let limit = id_limit(max_id, available);
        let open = || File::open(path).map_err(GraphError::Open);

        // Pass 1: each list's length in bytes (`at` counts them).
        let mut tails: Vec<Tail> = Vec::new();
        let file = in_batches(open()?, limit, |pairs| {
            let most = pairs.iter().map(|&(_, f)| f).max().unwrap_or(0) as usize;
            if most >= tails.len() {
                // Advised before the new part is touched: the array is
                // read and written at random.
                tails.reserve(most + 1 - tails.len());
                c1m_common::advise_huge_pages(tails.spare_capacity_mut());
                tails.resize(most + 1, Tail::default());
            }
            for_each_entry(pairs, |owner, value| {
                let tail = &mut tails[owner as usize];
                tail.at = tail.at.saturating_add(varint_len(value - tail.next));
                tail.next = value + 1;
            });
        })?;
        let ids = tails.len();
        let mut offsets = Vec::with_capacity(ids + 1);
        let mut total: u64 = 0;
        offsets.push(0u32);
        for tail in &mut tails {
            total += u64::from(tail.at);
            let end = u32::try_from(total).map_err(|_| GraphError::TooLarge { bytes: total })?;
            // Pass 2 writes each list from its start.
            *tail = Tail {
                next: 0,
                at: *offsets.last().unwrap_or(&0),
            };
            offsets.push(end);
        }
        let needed = total + LOAD_BYTES_PER_ID / 2 * ids as u64;
        if needed > available {
            return Err(GraphError::NoMemory { needed, available });
        }

        // Pass 2: the lists, written in place. A list that would overrun
        // into the next one is caught at the end (every list must end where
        // the next begins), one past the last by the slice's bound.
        let mut lists = vec![0u8; total as usize].into_boxed_slice();
        c1m_common::advise_huge_pages(&lists);
        let mut changed = false;
        let again = in_batches(open()?, limit, |pairs| {
            for_each_entry(pairs, |owner, value| {
                let Some(tail) = tails.get_mut(owner as usize).filter(|t| value >= t.next) else {
                    changed = true;
                    return;
                };
                let rest = lists.get_mut(tail.at as usize..);
                match rest.and_then(|rest| put_varint(rest, value - tail.next)) {
                    Some(used) => tail.at += used as u32,
                    None => changed = true,
                }
                tail.next = value + 1;
            });
        })?;
        let complete = tails.iter().zip(&offsets[1..]).all(|(t, &end)| t.at == end);
        if changed || again != file || !complete {
            return Err(GraphError::Changed);
        }
        Ok(FriendsGraph {
            offsets: offsets.into_boxed_slice(),
            lists,
            friendships: file.friendships,
        })
    }

    /// A graph from friendship pairs (tests).
    #[cfg(test)]
    pub(crate) fn from_pairs(pairs: &[(u64, u64)]) -> FriendsGraph {
        let mut text = c1m_common::FRIENDS_HEADER.as_bytes().to_vec();
        text.push(b'\n');
        for &(u, f) in pairs {
            c1m_common::push_friendship(&mut text, u, f);
        }
        let file = tempfile_with(&text);
        FriendsGraph::load(file.path(), u64::MAX).expect("test pairs form a valid graph")
    }

    /// The friends of `id`, ascending; none for an id not in the file.
    pub(crate) fn friends(&self, id: u64) -> Friends<'_> {
        let list = usize::try_from(id)
            .ok()
            .filter(|&i| i < self.offsets.len() - 1)
            .map_or(&[][..], |i| {
                &self.lists[self.offsets[i] as usize..self.offsets[i + 1] as usize]
            });
        Friends { list, next: 0 }
    }

    /// Friendship lines loaded (each one is a friend for both users).
    pub fn friendships(&self) -> u64 {
        self.friendships
    }

    /// The largest id the graph indexes (0 for an empty graph).
    pub fn max_id(&self) -> u64 {
        self.offsets.len().saturating_sub(2) as u64
    }

    /// Bytes the graph holds (offsets and lists).
    pub fn bytes(&self) -> usize {
        self.offsets.len() * 4 + self.lists.len()
    }
}

/// Lines handed to a pass at a time (see [`in_batches`]).
const BATCH: usize = 256;

/// [`read_friends`] in batches of [`BATCH`] lines. A pass's work per line
/// is one access to a random user's [`Tail`] (a cache miss: the array is
/// 8 MB at 10^6 users); a batch makes those accesses independent of the
/// parsing, so the CPU has many misses in flight instead of one (this made
/// the 10^6-user load several times faster). Ids fit `u32` (the limit).
fn in_batches(
    input: File,
    limit: IdLimit,
    mut apply: impl FnMut(&[(u32, u32)]),
) -> Result<c1m_common::FriendsFile, FriendsError> {
    let mut pairs = Vec::with_capacity(BATCH);
    let file = read_friends(input, limit, |user, friend| {
        pairs.push((user as u32, friend as u32));
        if pairs.len() == BATCH {
            apply(&pairs);
            pairs.clear();
        }
    })?;
    apply(&pairs);
    Ok(file)
}

/// Calls `each(owner, friend)` for both directions of every pair, so that
/// each owner's friends come in ascending order: first every pair's
/// `(friend, user)` (those for one owner come in file order, so ascending),
/// then every `(user, friend)`. A user's own lines `user,f` follow all the
/// lines `u,user` in the file, and its friends below it all come before
/// those above it, so the two halves of a batch keep its list in order.
fn for_each_entry(pairs: &[(u32, u32)], mut each: impl FnMut(u32, u32)) {
    for &(user, friend) in pairs {
        each(friend, user);
    }
    for &(user, friend) in pairs {
        each(user, friend);
    }
}

/// The largest id a load accepts: `--max-id`, the `u32` index (with one
/// more slot for the end offset), and 16 bytes an id of free memory.
fn id_limit(max_id: u64, available: u64) -> IdLimit {
    let by_memory = available / LOAD_BYTES_PER_ID;
    let by_index = u64::from(u32::MAX) - 1;
    if max_id <= by_index && max_id <= by_memory {
        IdLimit {
            max: max_id,
            why: "the server's --max-id",
        }
    } else if by_index <= by_memory {
        IdLimit {
            max: by_index,
            why: "the largest id the graph indexes (32 bits)",
        }
    } else {
        IdLimit {
            max: by_memory,
            why: "the largest id the free memory can index while loading (16 bytes an id)",
        }
    }
}

/// Where a user's list stands while loading: the smallest id its next gap
/// counts from, and its length (pass 1) or write position (pass 2). One
/// array of these, so each line touches one cache line per user.
#[derive(Debug, Default, Clone, Copy)]
struct Tail {
    next: u32,
    at: u32,
}

/// An iterator over one user's friends.
#[derive(Debug, Clone)]
pub(crate) struct Friends<'a> {
    list: &'a [u8],
    /// The smallest id the next gap counts from.
    next: u64,
}

impl Iterator for Friends<'_> {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        let mut gap = 0u64;
        let mut shift = 0;
        loop {
            let (&byte, rest) = self.list.split_first()?;
            self.list = rest;
            gap |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        let id = self.next + gap;
        self.next = id + 1;
        Some(id)
    }
}

impl Friends<'_> {
    /// How many friends are left, without decoding them: one byte of each
    /// number lacks the continuation bit.
    pub(crate) fn remaining(&self) -> usize {
        self.list.iter().filter(|&&b| b & 0x80 == 0).count()
    }
}

/// Bytes `v` takes as a varint.
fn varint_len(v: u32) -> u32 {
    match v {
        0..=0x7f => 1,
        0x80..=0x3fff => 2,
        0x4000..=0x1f_ffff => 3,
        0x20_0000..=0xfff_ffff => 4,
        _ => 5,
    }
}

/// Writes `v` at the start of `out`; the bytes used, or `None` if it does
/// not fit.
fn put_varint(out: &mut [u8], mut v: u32) -> Option<usize> {
    let mut i = 0;
    loop {
        let slot = out.get_mut(i)?;
        i += 1;
        if v < 0x80 {
            *slot = v as u8;
            return Some(i);
        }
        *slot = (v as u8 & 0x7f) | 0x80;
        v >>= 7;
    }
}

#[cfg(test)]
pub(crate) fn tempfile_with(bytes: &[u8]) -> tempfile::NamedTempFile {
    use std::io::Write;
    let mut file = tempfile::NamedTempFile::new().expect("a temporary file");
    file.write_all(bytes).expect("writing a temporary file");
    file
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_hold_both_directions_ascending() {
        let g = FriendsGraph::from_pairs(&[(1, 2), (1, 300), (1, 70_000), (2, 3), (3, 300)]);
        let friends = |id| g.friends(id).collect::<Vec<_>>();
        assert_eq!(friends(1), [2, 300, 70_000]);
        assert_eq!(friends(2), [1, 3]);
        assert_eq!(friends(3), [2, 300]);
        assert_eq!(friends(300), [1, 3]);
        assert_eq!(friends(70_000), [1]);
        assert_eq!(friends(4), Vec::<u64>::new(), "a user without friends");
        assert_eq!(friends(70_001), Vec::<u64>::new(), "past the largest id");
        assert_eq!(friends(u64::MAX), Vec::<u64>::new());
        assert_eq!(g.friends(1).remaining(), 3);
        assert_eq!((g.friendships(), g.max_id()), (5, 70_000));
        // 1's list: gaps 2, 297, 69,699: 1 + 2 + 3 bytes.
        assert_eq!(g.offsets[2] - g.offsets[1], 6);
    }

    #[test]
    fn varints_round_trip_at_every_width() {
        for v in [
            0,
            1,
            127,
            128,
            16_383,
            16_384,
            2_097_151,
            2_097_152,
            u32::MAX,
        ] {
            let mut buf = [0u8; 5];
            let used = put_varint(&mut buf, v).unwrap();
            assert_eq!(used as u32, varint_len(v), "{v}");
            let mut it = Friends {
                list: &buf[..used],
                next: 0,
            };
            assert_eq!(it.next(), Some(u64::from(v)));
            assert_eq!(it.next(), None);
            assert_eq!(
                put_varint(&mut buf[..used - 1], v),
                None,
                "too short for {v}"
            );
        }
    }

    #[test]
    fn a_random_graph_loads_exactly() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let mut pairs: Vec<(u64, u64)> = (0..20_000)
            .map(|_| {
                let a = rng.random_range(1..5_000u64);
                let b = rng.random_range(1..3_000_000u64);
                (a.min(b), a.max(b))
            })
            .filter(|(a, b)| a != b)
            .collect();
        pairs.sort_unstable();
        pairs.dedup();
        let g = FriendsGraph::from_pairs(&pairs);
        let mut expected: std::collections::BTreeMap<u64, Vec<u64>> = Default::default();
        for &(a, b) in &pairs {
            expected.entry(a).or_default().push(b);
            expected.entry(b).or_default().push(a);
        }
        for (id, mut list) in expected {
            list.sort_unstable();
            assert_eq!(g.friends(id).collect::<Vec<_>>(), list, "user {id}");
        }
    }

    fn refusal(text: &str, max_id: u64) -> String {
        let file = tempfile_with(text.as_bytes());
        FriendsGraph::load_within(file.path(), max_id, u64::MAX)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn refuses_malformed_and_oversized_files() {
        assert_eq!(
            refusal("user,friend\n1,2\n2,1\n", u64::MAX),
            "line 3: 2,1: the smaller id comes first and no one is their own friend"
        );
        assert_eq!(
            refusal("user,friend\n1,2\n1,20\n", 10),
            "line 3: id 20 is over 10, the server's --max-id"
        );
        assert_eq!(
            refusal("user,friend\n1,4294967295\n", u64::MAX),
            "line 2: id 4294967295 is over 4294967294, the largest id the graph indexes (32 bits)"
        );
        let missing = FriendsGraph::load(Path::new("/nonexistent/friends.csv"), 10).unwrap_err();
        assert!(matches!(missing, GraphError::Open(_)), "{missing}");
        // Little free memory: the ids it can index while loading, then the
        // whole graph.
        let file = tempfile_with(b"user,friend\n1,2\n1,200\n");
        let small = FriendsGraph::load_within(file.path(), u64::MAX, 1_600).unwrap_err();
        assert_eq!(
            small.to_string(),
            "line 3: id 200 is over 100, the largest id the free memory can index while loading (16 bytes an id)"
        );
        let pairs: Vec<(u64, u64)> = (1..30u64)
            .flat_map(|a| (a + 1..=30).map(move |b| (a, b)))
            .collect();
        let mut dense = b"user,friend\n".to_vec();
        for (a, b) in pairs {
            c1m_common::push_friendship(&mut dense, a, b);
        }
        let file = tempfile_with(&dense);
        let tight = FriendsGraph::load_within(file.path(), u64::MAX, 1_000).unwrap_err();
        assert!(matches!(tight, GraphError::NoMemory { .. }), "{tight}");
    }
}
