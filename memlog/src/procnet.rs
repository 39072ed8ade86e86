//! Counting ESTABLISHED TCP sockets on one local port by reading
//! `/proc/net/tcp` and `/proc/net/tcp6`: the fallback where netlink
//! `sock_diag` is unavailable, and the reference the netlink count is
//! tested against.
//!
//! Cost: the kernel formats a ~150-byte line for every TCP socket in the
//! namespace, matching or not, and we scan each one: at a million loopback
//! connections that is two million lines, ~300 MB of text, per sample. Lines
//! are read one at a time into one reused buffer, so memory stays flat.
//!
//! Exactness: the file is not a snapshot. The kernel walks its hash table
//! while other processes open and close sockets and resumes the walk by
//! position between reads, so under churn a line can appear twice or not
//! at all (we have seen 3 extra in 1,800 while other tests ran).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

/// `01` in the `st` column: TCP_ESTABLISHED; `0A`: TCP_LISTEN.
const ESTABLISHED: u8 = 0x01;
const LISTEN: u8 = 0x0A;

/// ESTABLISHED sockets accepted on `port`, IPv4 and IPv6, with the same
/// meaning as [`crate::sockdiag::SockDiag::count_established`]: local port
/// `port` and a local address a listener on `port` listens on; with no
/// listener, every ESTABLISHED socket with that local port.
pub fn count_established(port: u16) -> io::Result<u64> {
    let v4 = tally(Path::new("/proc/net/tcp"), port)?;
    // A kernel without IPv6 has no tcp6 file: nothing to count there.
    let v6 = match tally(Path::new("/proc/net/tcp6"), port) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Tally::default(),
        other => other?,
    };
    if v4.listeners.is_empty() && v6.listeners.is_empty() {
        Ok(v4.established.values().sum::<u64>() + v6.established.values().sum::<u64>())
    } else {
        Ok(v4.accepted() + v6.accepted())
    }
}

/// One file's sockets on the port: listener addresses, and ESTABLISHED
/// counts by local address (hex as the file prints it).
#[derive(Default)]
struct Tally {
    listeners: Vec<String>,
    established: HashMap<String, u64>,
}

impl Tally {
    /// ESTABLISHED sockets on this file's listener addresses (all of them
    /// behind a wildcard listener).
    fn accepted(&self) -> u64 {
        if self.listeners.iter().any(|a| a.bytes().all(|b| b == b'0')) {
            return self.established.values().sum();
        }
        let mut addrs: Vec<&String> = self.listeners.iter().collect();
        addrs.sort();
        addrs.dedup(); // SO_REUSEPORT workers share one address
        addrs.iter().filter_map(|a| self.established.get(*a)).sum()
    }
}

fn tally(path: &Path, port: u16) -> io::Result<Tally> {
    let mut reader = BufReader::with_capacity(256 * 1024, File::open(path)?);
    let mut line = String::new();
    let mut found = Tally::default();
    reader.read_line(&mut line)?; // the column header
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(found);
        }
        let Some((addr, local_port, state)) = parse_line(&line) else {
            continue;
        };
        if local_port != port {
            continue;
        }
        match state {
            LISTEN => found.listeners.push(addr.to_owned()),
            ESTABLISHED => match found.established.get_mut(addr) {
                Some(n) => *n += 1,
                None => {
                    found.established.insert(addr.to_owned(), 1);
                }
            },
            _ => {}
        }
    }
}

/// Local address (hex), local port and state of one socket line:
/// `   0: 0100007F:1F40 0100007F:A2C4 01 ...` (`ADDR:PORT` in hex).
fn parse_line(line: &str) -> Option<(&str, u16, u8)> {
    let mut fields = line.split_ascii_whitespace();
    let _slot = fields.next()?;
    let local = fields.next()?;
    let _remote = fields.next()?;
    let state = fields.next()?;
    let (addr, port) = local.rsplit_once(':')?;
    Some((
        addr,
        u16::from_str_radix(port, 16).ok()?,
        u8::from_str_radix(state, 16).ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ipv4_and_ipv6_lines() {
        let v4 = "   3: 0100007F:1F40 0100007F:A2C4 01 00000000:00000000 00:00000000 00000000     0        0 123 1 0000000000000000 20 4 30 10 -1\n";
        assert_eq!(parse_line(v4), Some(("0100007F", 8000, 1)));
        let v6 = "   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 99 1 0000000000000000 100 0 0 10 0\n";
        assert_eq!(
            parse_line(v6),
            Some(("00000000000000000000000000000000", 8080, 0x0A))
        );
        assert_eq!(parse_line("  sl  local_address"), None);
    }

    #[test]
    fn counts_only_sockets_on_listener_addresses() {
        let mut t = Tally::default();
        t.established.insert("0100007F".into(), 5); // accepted on 127.0.0.1
        t.established.insert("0500007F".into(), 1); // a client on 127.0.0.5
        t.listeners = vec!["0100007F".into(), "0100007F".into()];
        assert_eq!(t.accepted(), 5);
        t.listeners.push("00000000".into());
        assert_eq!(t.accepted(), 6, "a wildcard listener takes any address");
    }

    #[test]
    fn counts_nothing_on_an_unused_port() {
        // Port 1 is privileged and unused here; the files must still parse.
        assert_eq!(count_established(1).unwrap(), 0);
    }
}
