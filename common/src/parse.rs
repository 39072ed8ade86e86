//! Parsers every tool uses for the same kinds of argument, so `10k`,
//! `1-10000`, `10s` and `127.1.0.0/24` mean the same thing everywhere.
//!
//! Each returns [`ParseError`], whose message names the input and the form
//! expected; they plug into clap with `#[arg(value_parser = parse_count)]`
//! or through the `FromStr` impls.

use std::net::Ipv4Addr;
use std::str::FromStr;
use std::time::Duration;

/// An argument that does not have the expected form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?}: {expected}")]
pub struct ParseError {
    input: String,
    expected: &'static str,
}

impl ParseError {
    fn new(input: &str, expected: &'static str) -> Self {
        Self {
            input: input.to_owned(),
            expected,
        }
    }
}

const COUNT_FORM: &str = "expected a count such as 10000, 10_000, 10k, 1.5M or 2G";

/// A count: `10000`, `10_000`, `10k`, `1.5M`, `2G` (decimal: k = 1,000).
pub fn parse_count(input: &str) -> Result<u64, ParseError> {
    let err = || ParseError::new(input, COUNT_FORM);
    let s: String = input.trim().chars().filter(|&c| c != '_').collect();
    let (number, scale) = match s.char_indices().last() {
        Some((i, 'k' | 'K')) => (&s[..i], 1_000u64),
        Some((i, 'm' | 'M')) => (&s[..i], 1_000_000),
        Some((i, 'g' | 'G')) => (&s[..i], 1_000_000_000),
        Some(_) => (&s[..], 1),
        None => return Err(err()),
    };
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(err());
    }
    match number.split_once('.') {
        None => number
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(scale))
            .ok_or_else(err),
        Some((whole, frac)) => {
            // 1.5M is exact in integers: 1 * 1_000_000 + 5 * 100_000.
            if scale == 1 || frac.is_empty() || frac.contains('.') {
                return Err(err());
            }
            let whole: u64 = if whole.is_empty() {
                0
            } else {
                whole.parse().map_err(|_| err())?
            };
            let mut frac_value = 0u64;
            let mut unit = scale;
            for d in frac.bytes() {
                unit /= 10;
                if unit == 0 && d != b'0' {
                    return Err(err());
                }
                frac_value += u64::from(d - b'0') * unit;
            }
            whole
                .checked_mul(scale)
                .and_then(|w| w.checked_add(frac_value))
                .ok_or_else(err)
        }
    }
}

/// A duration: `10s`, `5m`, `1h30m`, `250ms`; a bare number is seconds.
pub fn parse_duration(input: &str) -> Result<Duration, ParseError> {
    let s = input.trim();
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(s)
        .map_err(|_| ParseError::new(input, "expected a duration such as 10s, 5m, 1h30m or 250ms"))
}

/// An inclusive range of subscriber ids: `1-10000`, `1-10k`, or one id `7`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    /// The first id in the range.
    pub first: u64,
    /// The last id in the range (inclusive).
    pub last: u64,
}

impl IdRange {
    /// Panics when `first > last` (empty) or the range is all of `u64`
    /// (its length would not fit one).
    pub fn new(first: u64, last: u64) -> Self {
        assert!(first <= last, "IdRange {first}-{last} is empty");
        assert!(
            first > 0 || last < u64::MAX,
            "IdRange {first}-{last} holds 2^64 ids"
        );
        Self { first, last }
    }

    /// How many ids the range holds.
    pub fn len(&self) -> u64 {
        self.last - self.first + 1
    }

    /// A range always holds at least one id.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The `index`-th id, wrapping round when `index >= len()`.
    pub fn nth_wrapping(&self, index: u64) -> u64 {
        self.first + index % self.len()
    }

    /// Splits the range into `parts` contiguous, disjoint slices whose
    /// lengths differ by at most one (fewer if the range is shorter).
    pub fn split(&self, parts: u64) -> Vec<IdRange> {
        split_even(self.first, self.last, parts)
            .into_iter()
            .map(|(first, last)| IdRange { first, last })
            .collect()
    }
}

fn split_even(first: u64, last: u64, parts: u64) -> Vec<(u64, u64)> {
    let len = last - first + 1;
    let parts = parts.clamp(1, len);
    let (base, extra) = (len / parts, len % parts);
    let mut start = first;
    (0..parts)
        .map(|i| {
            let n = base + u64::from(i < extra);
            let slice = (start, start + (n - 1));
            // Past the last slice this may wrap (a range ending at
            // u64::MAX); the value is then never used.
            start = slice.1.wrapping_add(1);
            slice
        })
        .collect()
}

impl FromStr for IdRange {
    type Err = ParseError;
    fn from_str(input: &str) -> Result<Self, ParseError> {
        const FORM: &str = "expected an id range such as 1-10000, 1-10k, or one id";
        let (first, last) = match input.trim().split_once('-') {
            Some((a, b)) => (a, b),
            None => (input, input),
        };
        let first = parse_count(first).map_err(|_| ParseError::new(input, FORM))?;
        let last = parse_count(last).map_err(|_| ParseError::new(input, FORM))?;
        if first > last {
            return Err(ParseError::new(input, "the first id is after the last"));
        }
        if first == 0 && last == u64::MAX {
            return Err(ParseError::new(
                input,
                "2^64 ids do not fit a count: start at 1",
            ));
        }
        Ok(IdRange { first, last })
    }
}

impl std::fmt::Display for IdRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

/// An inclusive range of TCP ports: `1024-65535` or one port `8000`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    /// The first port in the range.
    pub first: u16,
    /// The last port in the range (inclusive).
    pub last: u16,
}

impl PortRange {
    /// How many ports the range holds (at least 1).
    pub fn len(&self) -> u32 {
        u32::from(self.last) - u32::from(self.first) + 1
    }

    /// A range always holds at least one port.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The ports in order.
    pub fn iter(&self) -> impl Iterator<Item = u16> + Clone {
        self.first..=self.last
    }

    /// Splits into `parts` contiguous, disjoint ranges (fewer if shorter).
    pub fn split(&self, parts: u64) -> Vec<PortRange> {
        split_even(u64::from(self.first), u64::from(self.last), parts)
            .into_iter()
            .map(|(first, last)| PortRange {
                first: first as u16,
                last: last as u16,
            })
            .collect()
    }
}

impl FromStr for PortRange {
    type Err = ParseError;
    fn from_str(input: &str) -> Result<Self, ParseError> {
        const FORM: &str = "expected a port range such as 1024-65535, or one port 1-65535";
        let (a, b) = input.trim().split_once('-').unwrap_or((input, input));
        let first: u16 = a.trim().parse().map_err(|_| ParseError::new(input, FORM))?;
        let last: u16 = b.trim().parse().map_err(|_| ParseError::new(input, FORM))?;
        if first == 0 || first > last {
            return Err(ParseError::new(input, FORM));
        }
        Ok(PortRange { first, last })
    }
}

impl std::fmt::Display for PortRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

/// A list of IPv4 addresses, written as comma-separated single addresses,
/// ranges (`127.0.0.2-127.0.0.18`) and CIDRs (`127.1.0.0/24`, every address
/// in the block: on loopback each one is a usable source).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv4List {
    /// Inclusive (first, last) blocks in the order given.
    blocks: Vec<(u32, u32)>,
}

impl Ipv4List {
    /// A list of one address.
    pub fn single(addr: Ipv4Addr) -> Self {
        let a = u32::from(addr);
        Self {
            blocks: vec![(a, a)],
        }
    }

    /// How many addresses the list holds (duplicates counted).
    pub fn len(&self) -> u64 {
        self.blocks.iter().map(|&(a, b)| u64::from(b - a) + 1).sum()
    }

    /// Whether the list holds no address.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// Every address, block by block in the order given.
    pub fn iter(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        self.blocks
            .iter()
            .flat_map(|&(a, b)| (a..=b).map(Ipv4Addr::from))
    }

    /// True when every address is in 127.0.0.0/8.
    pub fn all_loopback(&self) -> bool {
        self.iter().all(|a| a.is_loopback())
    }
}

impl FromStr for Ipv4List {
    type Err = ParseError;
    fn from_str(input: &str) -> Result<Self, ParseError> {
        const FORM: &str =
            "expected IPv4 addresses, ranges or CIDRs, comma-separated: 127.0.0.1,127.0.0.2-127.0.0.18,127.1.0.0/24";
        let err = || ParseError::new(input, FORM);
        let mut blocks = Vec::new();
        for part in input.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let block = if let Some((addr, prefix)) = part.split_once('/') {
                let addr: Ipv4Addr = addr.parse().map_err(|_| err())?;
                let prefix: u32 = prefix.parse().map_err(|_| err())?;
                if prefix > 32 {
                    return Err(err());
                }
                let mask = if prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - prefix)
                };
                let net = u32::from(addr) & mask;
                (net, net | !mask)
            } else if let Some((a, b)) = part.split_once('-') {
                let a: Ipv4Addr = a.trim().parse().map_err(|_| err())?;
                let b: Ipv4Addr = b.trim().parse().map_err(|_| err())?;
                let (a, b) = (u32::from(a), u32::from(b));
                if a > b {
                    return Err(err());
                }
                (a, b)
            } else {
                let a = u32::from(part.parse::<Ipv4Addr>().map_err(|_| err())?);
                (a, a)
            };
            blocks.push(block);
        }
        if blocks.is_empty() {
            return Err(err());
        }
        Ok(Self { blocks })
    }
}

impl std::fmt::Display for Ipv4List {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, &(a, b)) in self.blocks.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if a == b {
                write!(f, "{}", Ipv4Addr::from(a))?;
            } else {
                write!(f, "{}-{}", Ipv4Addr::from(a), Ipv4Addr::from(b))?;
            }
        }
        Ok(())
    }
}

/// A header field given on the command line (`--header 'Name: value'`),
/// checked so it cannot break the request it goes into: the name is an
/// RFC 9110 token, the value holds no CR, LF or NUL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderField {
    /// The field name as given.
    pub name: String,
    /// The value, without the whitespace around it.
    pub value: String,
}

const HEADER_FORM: &str = "expected NAME:VALUE such as 'Authorization: Bearer s3cret'";

impl FromStr for HeaderField {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        let (name, value) = s
            .split_once(':')
            .ok_or_else(|| ParseError::new(s, HEADER_FORM))?;
        // RFC 9110 5.6.2: token = 1*tchar.
        let tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        if name.is_empty() || !name.bytes().all(tchar) {
            return Err(ParseError::new(s, "the header name must be a token (letters, digits, - and the like) before the colon"));
        }
        if value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
            return Err(ParseError::new(
                s,
                "a header value cannot hold CR, LF or NUL",
            ));
        }
        Ok(Self {
            name: name.to_owned(),
            value: value.trim_matches([' ', '\t']).to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts() {
        for (s, n) in [
            ("10000", 10_000),
            ("10_000", 10_000),
            ("10k", 10_000),
            ("10K", 10_000),
            ("1M", 1_000_000),
            ("1.5M", 1_500_000),
            ("0.25k", 250),
            ("2G", 2_000_000_000),
            ("0", 0),
        ] {
            assert_eq!(parse_count(s), Ok(n), "{s}");
        }
        for s in [
            "",
            "k",
            "1.5",
            "1..5k",
            "-1",
            "ten",
            "1.0001k",
            "99999999999999999999",
        ] {
            assert!(parse_count(s).is_err(), "{s} should fail");
        }
    }

    #[test]
    fn count_error_says_the_form() {
        let msg = parse_count("ten").unwrap_err().to_string();
        assert_eq!(
            msg,
            "\"ten\": expected a count such as 10000, 10_000, 10k, 1.5M or 2G"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn id_ranges() {
        let r: IdRange = "1-10k".parse().unwrap();
        assert_eq!((r.first, r.last, r.len()), (1, 10_000, 10_000));
        let one: IdRange = "7".parse().unwrap();
        assert_eq!((one.first, one.last), (7, 7));
        assert!("10-1".parse::<IdRange>().is_err());
        assert!("a-b".parse::<IdRange>().is_err());
        assert_eq!(r.nth_wrapping(10_000), 1);
    }

    #[test]
    fn id_range_edges() {
        let top: IdRange = "1-18446744073709551615".parse().unwrap();
        assert_eq!(top.len(), u64::MAX);
        assert_eq!(top.nth_wrapping(u64::MAX), 1);
        assert_eq!(top.split(2)[1].last, u64::MAX);
        let all = "0-18446744073709551615".parse::<IdRange>().unwrap_err();
        assert!(all.to_string().contains("start at 1"), "{all}");
        assert_eq!(" 3 - 5 ".parse::<IdRange>().map(|r| r.len()), Ok(3));
        assert_eq!(IdRange::new(1, 10_000).to_string(), "1-10000");
        assert!(!IdRange::new(7, 7).is_empty());
    }

    #[test]
    fn port_range_iterates_and_prints() {
        let p: PortRange = "65534-65535".parse().unwrap();
        assert_eq!(p.iter().collect::<Vec<_>>(), [65534, 65535]);
        assert_eq!(p.to_string(), "65534-65535");
        assert_eq!("80".parse::<PortRange>().unwrap().to_string(), "80");
        assert!(!p.is_empty());
        assert_eq!(p.split(5).len(), 2);
    }

    #[test]
    fn ipv4_list_edges() {
        let one = Ipv4List::single(Ipv4Addr::LOCALHOST);
        assert_eq!((one.len(), one.is_empty()), (1, false));
        assert_eq!(one.to_string(), "127.0.0.1");
        let all: Ipv4List = "0.0.0.0/0".parse().unwrap();
        assert_eq!(all.len(), 1 << 32);
        let host: Ipv4List = "127.0.0.9/32".parse().unwrap();
        assert_eq!(host.to_string(), "127.0.0.9");
        // Host bits of a CIDR are dropped: the block is the network's.
        let net: Ipv4List = "127.1.0.77/30".parse().unwrap();
        assert_eq!(net.to_string(), "127.1.0.76-127.1.0.79");
        for bad in [",", "127.0.0.1/", "127.0.0.1/-1", "127.0.0.1-", "1.2.3"] {
            assert!(bad.parse::<Ipv4List>().is_err(), "{bad}");
        }
    }

    #[test]
    fn id_range_splits_cover_without_overlap() {
        let r = IdRange::new(1, 10);
        let parts = r.split(3);
        assert_eq!(
            parts,
            vec![IdRange::new(1, 4), IdRange::new(5, 7), IdRange::new(8, 10)]
        );
        assert_eq!(IdRange::new(1, 2).split(5).len(), 2);
    }

    #[test]
    fn port_ranges() {
        let p: PortRange = "1024-65535".parse().unwrap();
        assert_eq!(p.len(), 64_512);
        let one: PortRange = "8000".parse().unwrap();
        assert_eq!((one.first, one.last, one.len()), (8000, 8000, 1));
        for bad in ["0-10", "10-1", "70000", "x"] {
            assert!(bad.parse::<PortRange>().is_err(), "{bad}");
        }
        assert_eq!(p.split(2)[1].first, 1024 + 32_256);
    }

    #[test]
    fn ipv4_lists() {
        let l: Ipv4List = "127.0.0.2-127.0.0.18".parse().unwrap();
        assert_eq!(l.len(), 17);
        let c: Ipv4List = "127.1.0.0/24".parse().unwrap();
        assert_eq!(c.len(), 256);
        assert_eq!(c.iter().next(), Some(Ipv4Addr::new(127, 1, 0, 0)));
        let m: Ipv4List = "127.0.0.1, 127.0.0.5-127.0.0.6,127.2.0.0/31"
            .parse()
            .unwrap();
        assert_eq!(
            m.iter().collect::<Vec<_>>(),
            vec![
                Ipv4Addr::new(127, 0, 0, 1),
                Ipv4Addr::new(127, 0, 0, 5),
                Ipv4Addr::new(127, 0, 0, 6),
                Ipv4Addr::new(127, 2, 0, 0),
                Ipv4Addr::new(127, 2, 0, 1),
            ]
        );
        assert!(m.all_loopback());
        assert!(!"10.0.0.1".parse::<Ipv4List>().unwrap().all_loopback());
        assert_eq!(
            m.to_string(),
            "127.0.0.1,127.0.0.5-127.0.0.6,127.2.0.0-127.2.0.1"
        );
        for bad in ["", "127.0.0.9-127.0.0.1", "127.0.0.0/33", "localhost"] {
            assert!(bad.parse::<Ipv4List>().is_err(), "{bad}");
        }
    }

    #[test]
    fn parses_header_fields() {
        let h: HeaderField = "Authorization:  Bearer s3cret ".parse().unwrap();
        assert_eq!(
            (h.name.as_str(), h.value.as_str()),
            ("Authorization", "Bearer s3cret")
        );
        let empty: HeaderField = "X-Empty:".parse().unwrap();
        assert_eq!(empty.value, "");
        for bad in ["no colon", ": value", "Bad Name: v", "X: a\r\nInjected: 1"] {
            assert!(bad.parse::<HeaderField>().is_err(), "{bad}");
        }
    }
}
