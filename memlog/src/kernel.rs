//! System-wide kernel memory: what a million sockets cost outside the
//! server process. `Slab` and `MemAvailable` from `/proc/meminfo`, TCP
//! buffer pages from `/proc/net/sockstat`.
//!
//! Cost: two small files (~1.5 KB and ~300 bytes) read per sample; neither
//! grows with the number of sockets.

use std::fs;
use std::io;

/// Kernel figures of one sample, in KB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct KernelMem {
    pub(crate) slab_kb: u64,
    pub(crate) tcp_mem_kb: u64,
    pub(crate) mem_available_kb: u64,
}

/// Reads both files. `page_kb` converts sockstat's pages to KB.
pub(crate) fn read(page_kb: u64) -> io::Result<KernelMem> {
    let meminfo = fs::read_to_string("/proc/meminfo")?;
    let sockstat = fs::read_to_string("/proc/net/sockstat")?;
    let missing = |what: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("no {what} in /proc/meminfo or /proc/net/sockstat"),
        )
    };
    Ok(KernelMem {
        slab_kb: meminfo_kb(&meminfo, "Slab").ok_or_else(|| missing("Slab"))?,
        mem_available_kb: meminfo_kb(&meminfo, "MemAvailable")
            .ok_or_else(|| missing("MemAvailable"))?,
        tcp_mem_kb: sockstat_tcp_pages(&sockstat).ok_or_else(|| missing("TCP mem"))? * page_kb,
    })
}

/// The value of `Key:   1234 kB` in /proc/meminfo.
fn meminfo_kb(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(key)?.strip_prefix(':')?;
        rest.split_ascii_whitespace().next()?.parse().ok()
    })
}

/// `mem N` (pages) on the `TCP:` line of /proc/net/sockstat:
/// `TCP: inuse 5 orphan 0 tw 0 alloc 7 mem 260`.
fn sockstat_tcp_pages(text: &str) -> Option<u64> {
    let line = text.lines().find_map(|l| l.strip_prefix("TCP:"))?;
    let mut words = line.split_ascii_whitespace();
    while let Some(word) = words.next() {
        if word == "mem" {
            return words.next()?.parse().ok();
        }
    }
    None
}

/// The page size in KB (sockstat counts pages).
pub(crate) fn page_kb() -> u64 {
    c1m_common::page_size() / 1024
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_meminfo() {
        let text = "MemTotal:       24589432 kB\nMemAvailable:   24265788 kB\nSlab:             162880 kB\nSReclaimable:      50000 kB\n";
        assert_eq!(meminfo_kb(text, "Slab"), Some(162_880));
        assert_eq!(meminfo_kb(text, "MemAvailable"), Some(24_265_788));
        assert_eq!(meminfo_kb(text, "Mem"), None);
    }

    #[test]
    fn parses_sockstat() {
        let text =
            "sockets: used 15\nTCP: inuse 1 orphan 0 tw 0 alloc 1 mem 260\nUDP: inuse 0 mem 3\n";
        assert_eq!(sockstat_tcp_pages(text), Some(260));
        assert_eq!(sockstat_tcp_pages("UDP: inuse 0 mem 3\n"), None);
    }

    #[test]
    fn reads_this_machine() {
        let k = read(page_kb()).unwrap();
        assert!(k.slab_kb > 0 && k.mem_available_kb > 0);
    }
}
