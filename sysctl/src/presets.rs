//! The seeds' kernel settings (Part 1, Part 3, icomet) and what each means
//! on the kernel this runs on: still useful, already the default, gone, or
//! harmful. The verdict mixes what is known about kernels since the seeds
//! were written (2009-2013, Linux 2.6/3.x) with what this machine reads.

use crate::probe::{join, Probe};
use crate::report::{bytes, count};
use anyhow::Result;
use serde::Serialize;

/// A seed's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    Part1,
    Part3,
    Icomet,
}

/// How a seed's value relates to a current kernel, known in advance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Higher is more permissive: useful only where it raises the current
    /// value in every field.
    Limit,
    /// A range that is useful if it contains the current one.
    Range,
    /// A mode, timer or buffer size: set exactly as the seed did.
    Setting,
    /// The name no longer exists.
    Obsolete,
    /// Do not set it on a current kernel.
    Harmful,
    /// The per-process descriptor limit (`ulimit -n`), not a sysctl.
    Rlimit,
}

struct Entry {
    name: &'static str,
    value: &'static [u64],
    kind: Kind,
    why: &'static str,
}

const fn e(name: &'static str, value: &'static [u64], kind: Kind, why: &'static str) -> Entry {
    Entry {
        name,
        value,
        kind,
        why,
    }
}

const RLIMIT: &str = "RLIMIT_NOFILE";

const BUFFER_MAX: &str =
    "caps what a program may ask for with SO_RCVBUF/SO_SNDBUF; idle connections never reach it";
const PORTS: &str = "every unprivileged port for kernel-chosen source ports";
const NETDEV: &str = "per-CPU receive queue; helps NIC bursts, loopback rarely fills it";

const PART1: &[Entry] = &[
    e("net.core.rmem_max", &[16_777_216], Kind::Limit, BUFFER_MAX),
    e("net.core.wmem_max", &[16_777_216], Kind::Limit, BUFFER_MAX),
    e("net.ipv4.tcp_rmem", &[4096, 87_380, 16_777_216], Kind::Setting, "gigabit tuning for bulk transfers; each of a million sockets may fill the default"),
    e("net.ipv4.tcp_wmem", &[4096, 65_536, 16_777_216], Kind::Setting, "gigabit tuning for bulk transfers; a large default send buffer per socket multiplies by the connections"),
    e("net.ipv4.tcp_syncookies", &[1], Kind::Setting, "answers a SYN-queue overflow with cookies; the default on current kernels"),
    e("net.ipv4.tcp_mem", &[50_576, 64_768, 98_152], Kind::Limit, "pages, not bytes: the seed meant to give TCP more memory, but current kernels size it from RAM and this is far less"),
    e("net.core.netdev_max_backlog", &[2500], Kind::Limit, NETDEV),
    e("net.ipv4.netfilter.ip_conntrack_max", &[1_048_576], Kind::Obsolete, "the ip_conntrack names are gone; today it is net.netfilter.nf_conntrack_max, needed only when conntrack tracks the port"),
    e(RLIMIT, &[999_999], Kind::Rlimit, "`ulimit -n 999999` in the shell that starts the server and client"),
    e("net.ipv4.ip_local_port_range", &[1024, 65535], Kind::Range, PORTS),
];

const PART3: &[Entry] = &[
    e("net.core.rmem_max", &[33_554_432], Kind::Limit, BUFFER_MAX),
    e("net.core.wmem_max", &[33_554_432], Kind::Limit, BUFFER_MAX),
    e("net.ipv4.tcp_rmem", &[4096, 16_384, 33_554_432], Kind::Setting, "a 16 KiB default receive buffer bounds what each of a million sockets holds; autotuning still grows busy ones"),
    e("net.ipv4.tcp_wmem", &[4096, 16_384, 33_554_432], Kind::Setting, "a 16 KiB default send buffer (the kernel default) with a high autotuning cap"),
    e("net.ipv4.tcp_mem", &[786_432, 1_048_576, 26_777_216], Kind::Limit, "pages: 3 GiB / 4 GiB / 102 GiB, chosen by trial on a 40 GB box"),
    e("net.ipv4.tcp_max_tw_buckets", &[360_000], Kind::Limit, "TIME_WAIT sockets kept before the kernel kills them early; matters only with connection churn"),
    e("net.core.netdev_max_backlog", &[2500], Kind::Limit, NETDEV),
    e("vm.min_free_kbytes", &[65_536], Kind::Limit, "memory kept free for atomic allocations such as packet receive; current kernels size it from RAM"),
    e("vm.swappiness", &[0], Kind::Harmful, "since Linux 3.5, 0 means no anonymous swapping until memory is nearly gone, so a run that outgrows RAM meets the OOM killer instead of slowing; 1-10 keeps the intent"),
    e("net.ipv4.ip_local_port_range", &[1024, 65535], Kind::Range, "Part 3's client bound explicit ports per source IP; this mattered only to kernel-chosen ports"),
];

const ICOMET: &[Entry] = &[
    e("net.ipv4.tcp_rmem", &[128, 4096, 102_400], Kind::Setting, "tiny buffers bound memory per connection at the cost of throughput; a min below the kernel's floor (SOCK_MIN_RCVBUF) is raised to it"),
    e("net.ipv4.tcp_wmem", &[1024, 4096, 102_400], Kind::Setting, "tiny send buffers: bounded memory per connection, slow bulk sends"),
    e("net.ipv4.tcp_mem", &[131_072, 262_144, 786_432], Kind::Limit, "pages: 512 MiB / 1 GiB / 3 GiB, sized for a 4 GB server; size it from this machine's RAM instead"),
    e("net.core.netdev_max_backlog", &[1024], Kind::Limit, NETDEV),
    e("net.core.somaxconn", &[1024], Kind::Limit, "the default was 128 then; since Linux 5.4 it is 4,096"),
    e("net.ipv4.tcp_max_syn_backlog", &[2048], Kind::Limit, "half-open connections; consulted only with tcp_syncookies=0"),
    e("net.ipv4.tcp_keepalive_intvl", &[30], Kind::Setting, "seconds between keepalive probes; only sockets with SO_KEEPALIVE, finds dead peers sooner"),
    e("net.ipv4.tcp_keepalive_probes", &[3], Kind::Setting, "probes before a silent peer is declared dead; only sockets with SO_KEEPALIVE"),
    e("fs.file-max", &[999_999], Kind::Limit, "system-wide open files; current kernels size it from RAM"),
    e("net.ipv4.tcp_tw_reuse", &[1], Kind::Setting, "reuse TIME_WAIT ports for new outgoing connections; the default 2 does it for loopback only"),
    e("net.ipv4.tcp_tw_recycle", &[1], Kind::Obsolete, "removed in Linux 4.12; before that it dropped SYNs from clients behind NAT"),
    e("net.ipv4.tcp_max_tw_buckets", &[5000], Kind::Harmful, "a 5,000 cap kills TIME_WAIT sockets early ('time wait bucket table overflow'), letting stale segments hit a reused 4-tuple; tcp_tw_reuse is the safe way"),
    e("net.ipv4.ip_local_port_range", &[1024, 65535], Kind::Range, PORTS),
];

impl Preset {
    pub fn name(self) -> &'static str {
        match self {
            Preset::Part1 => "part1",
            Preset::Part3 => "part3",
            Preset::Icomet => "icomet",
        }
    }

    /// Where the settings come from.
    pub fn source(self) -> &'static str {
        match self {
            Preset::Part1 => "mochiweb Part 1 (seed 000, 2008, Linux 2.6), the tuning before the 10K test",
            Preset::Part3 => "mochiweb Part 3 (seed 004, 2008, Linux 2.6), found by reading kern.log at 1M",
            Preset::Icomet => "a reader's icomet server config under ideawu's C1000K post (seed 002, Ubuntu 12.04, Linux 3.2)",
        }
    }

    fn entries(self) -> &'static [Entry] {
        match self {
            Preset::Part1 => PART1,
            Preset::Part3 => PART3,
            Preset::Icomet => ICOMET,
        }
    }
}

/// What to do with a seed's setting here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// This machine already has it (or better).
    Ok,
    /// Still useful and not set: `apply --preset` sets it.
    Set,
    /// Below what this kernel already has: setting it would lower a limit.
    Lowers,
    /// The setting does not exist on this kernel.
    Obsolete,
    /// Exists, but do not set it on a current kernel.
    Harmful,
    /// Not a sysctl this tool can write (a process limit).
    Manual,
}

impl Verdict {
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Ok => "OK",
            Verdict::Set => "SET",
            Verdict::Lowers => "LOWERS",
            Verdict::Obsolete => "OBSOLETE",
            Verdict::Harmful => "HARMFUL",
            Verdict::Manual => "MANUAL",
        }
    }
}

/// One seed setting, judged on this machine.
#[derive(Debug, Clone, Serialize)]
pub struct PresetRow {
    pub name: String,
    pub seed: String,
    pub current: String,
    pub verdict: Verdict,
    pub why: String,
    /// The values `apply` writes when the verdict is [`Verdict::Set`].
    #[serde(skip)]
    pub value: Vec<u64>,
}

/// A preset judged on this machine.
#[derive(Debug, Clone, Serialize)]
pub struct PresetReport {
    pub name: &'static str,
    pub source: &'static str,
    pub rows: Vec<PresetRow>,
}

impl PresetReport {
    /// What to write for `name` when the plan needs `values`: the seed's
    /// value instead when it is still useful and at least as high in every
    /// field, so asking for both never writes less than either asked.
    pub fn raise(&self, name: &str, values: &[u64]) -> Vec<u64> {
        self.rows
            .iter()
            .find(|r| r.name == name && r.verdict == Verdict::Set)
            .filter(|r| {
                r.value.len() == values.len() && r.value.iter().zip(values).all(|(p, v)| p >= v)
            })
            .map_or_else(|| values.to_vec(), |r| r.value.clone())
    }
}

/// Judges each of `preset`'s settings against the tree `probe` reads.
pub(crate) fn evaluate(preset: Preset, probe: &Probe, page_size: u64) -> Result<PresetReport> {
    let mem_total = probe.meminfo()?.map(|m| m.total);
    let mut rows = Vec::new();
    for entry in preset.entries() {
        let seed = join(entry.value, " ");
        let (current, verdict, note) = if entry.kind == Kind::Rlimit {
            rlimit(entry, probe)?
        } else {
            match probe.ints(entry.name)? {
                None => (
                    "missing".to_owned(),
                    Verdict::Obsolete,
                    Some("not present on this kernel".to_owned()),
                ),
                Some(cur) => {
                    let (verdict, note) = judge(entry, &cur, page_size, mem_total);
                    (join(&cur, " "), verdict, note)
                }
            }
        };
        let why = match note {
            Some(note) => format!("{}; {note}", entry.why),
            None => entry.why.to_owned(),
        };
        rows.push(PresetRow {
            name: entry.name.to_owned(),
            seed,
            current,
            verdict,
            why,
            value: entry.value.to_vec(),
        });
    }
    Ok(PresetReport {
        name: preset.name(),
        source: preset.source(),
        rows,
    })
}

fn judge(
    entry: &Entry,
    cur: &[u64],
    page_size: u64,
    mem_total: Option<u64>,
) -> (Verdict, Option<String>) {
    let seed = entry.value;
    let same = cur == seed;
    match entry.kind {
        Kind::Obsolete => (
            Verdict::Obsolete,
            Some("still readable here, but superseded".into()),
        ),
        Kind::Harmful => (Verdict::Harmful, None),
        Kind::Setting if same => (Verdict::Ok, None),
        Kind::Setting => (Verdict::Set, None),
        Kind::Range => {
            let contains =
                seed.len() == 2 && cur.len() == 2 && seed[0] <= cur[0] && seed[1] >= cur[1];
            match (same, contains) {
                (true, _) => (Verdict::Ok, None),
                (false, true) => (Verdict::Set, None),
                (false, false) => (
                    Verdict::Lowers,
                    Some(format!("narrower than this kernel's {}", join(cur, "-"))),
                ),
            }
        }
        Kind::Limit => {
            if entry.name == "net.ipv4.tcp_mem" {
                let max_bytes = seed[2] * page_size;
                if mem_total.is_some_and(|t| max_bytes > t) {
                    return (
                        Verdict::Harmful,
                        Some(format!(
                            "max {} is more than this machine's {} of RAM: buffers could exhaust memory before TCP backs off",
                            bytes(max_bytes),
                            bytes(mem_total.unwrap_or(0))
                        )),
                    );
                }
            }
            // Any field below the current one would lower a limit this
            // kernel (often sized from RAM) already gives.
            if same {
                (Verdict::Ok, None)
            } else if seed.len() == cur.len() && seed.iter().zip(cur).any(|(s, c)| s < c) {
                (
                    Verdict::Lowers,
                    Some(format!("this kernel already has {}", join(cur, " "))),
                )
            } else {
                (Verdict::Set, None)
            }
        }
        Kind::Rlimit => unreachable!("rlimit entries are judged by rlimit()"),
    }
}

fn rlimit(entry: &Entry, probe: &Probe) -> Result<(String, Verdict, Option<String>)> {
    let wanted = entry.value[0];
    let Some((soft, hard)) = probe.nofile()? else {
        return Ok(("missing".into(), Verdict::Manual, None));
    };
    let current = format!("{} {}", count(soft), count(hard));
    if soft >= wanted {
        return Ok((current, Verdict::Ok, None));
    }
    let note = if hard >= wanted {
        "below the hard limit: `ulimit -n` raises it without privilege".to_owned()
    } else if probe.cap_sys_resource()? {
        format!(
            "above the hard limit {}: this process may raise it (CAP_SYS_RESOURCE)",
            count(hard)
        )
    } else {
        format!(
            "above the hard limit {} and without CAP_SYS_RESOURCE: split over processes (--procs), or LimitNOFILE= / /etc/security/limits.conf as root",
            count(hard)
        )
    };
    Ok((current, Verdict::Manual, Some(note)))
}

impl Preset {
    /// Every preset, for listings and tests.
    pub const ALL: [Preset; 3] = [Preset::Part1, Preset::Part3, Preset::Icomet];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_seed_setting_is_explained() {
        for preset in Preset::ALL {
            for entry in preset.entries() {
                assert!(!entry.value.is_empty(), "{}", entry.name);
                assert!(entry.why.len() > 20, "{}: {}", entry.name, entry.why);
                if entry.kind == Kind::Range {
                    assert_eq!(entry.value.len(), 2, "{}", entry.name);
                }
            }
        }
    }

    #[test]
    fn known_obsolete_and_harmful_settings_are_flagged() {
        let kind =
            |p: Preset, name: &str| p.entries().iter().find(|e| e.name == name).map(|e| e.kind);
        assert_eq!(
            kind(Preset::Icomet, "net.ipv4.tcp_tw_recycle"),
            Some(Kind::Obsolete)
        );
        assert_eq!(
            kind(Preset::Icomet, "net.ipv4.tcp_max_tw_buckets"),
            Some(Kind::Harmful)
        );
        assert_eq!(kind(Preset::Part3, "vm.swappiness"), Some(Kind::Harmful));
        assert_eq!(
            kind(Preset::Part1, "net.ipv4.netfilter.ip_conntrack_max"),
            Some(Kind::Obsolete)
        );
    }

    #[test]
    fn limits_that_would_lower_are_caught() {
        let entry = &PART1[5]; // tcp_mem 50576 64768 98152
        assert_eq!(entry.name, "net.ipv4.tcp_mem");
        let (v, note) = judge(entry, &[287_898, 383_867, 575_796], 4096, Some(24 << 30));
        assert_eq!(v, Verdict::Lowers);
        assert!(note.unwrap().contains("287898 383867 575796"));
        let (v, _) = judge(entry, &[10, 20, 30], 4096, Some(24 << 30));
        assert_eq!(v, Verdict::Set);
        let (v, _) = judge(entry, &[50_576, 64_768, 98_152], 4096, None);
        assert_eq!(v, Verdict::Ok);
    }

    #[test]
    fn tcp_mem_beyond_ram_is_harmful() {
        let entry = PART3.iter().find(|e| e.name == "net.ipv4.tcp_mem").unwrap();
        let (v, note) = judge(entry, &[1, 2, 3], 4096, Some(24 << 30));
        assert_eq!(v, Verdict::Harmful);
        assert!(note.unwrap().contains("102.1 GiB"));
    }

    #[test]
    fn ranges_must_contain_the_current_one() {
        let entry = PART1.iter().find(|e| e.kind == Kind::Range).unwrap();
        assert_eq!(judge(entry, &[32_768, 60_999], 4096, None).0, Verdict::Set);
        assert_eq!(judge(entry, &[1024, 65_535], 4096, None).0, Verdict::Ok);
        assert_eq!(judge(entry, &[1000, 65_535], 4096, None).0, Verdict::Lowers);
    }
}
