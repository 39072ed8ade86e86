//! Reading the machine: `/proc/sys`, `/proc/meminfo` and this process's
//! limits and capabilities, all under one root directory so tests point the
//! tool at a fake tree in a temp dir instead of the live kernel.
//!
//! Every read is a small file read on demand; nothing is cached, so `apply`
//! sees its own writes when it re-checks.

use anyhow::{bail, Context, Result};
use std::io;
use std::path::{Path, PathBuf};

/// `CAP_SYS_RESOURCE`: what raising a hard RLIMIT_NOFILE needs.
const CAP_SYS_RESOURCE: u32 = 24;

/// The tree the tool reads and writes: `/` for the live machine.
#[derive(Debug, Clone)]
pub struct Probe {
    root: PathBuf,
}

/// What `/proc/meminfo` says, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meminfo {
    pub total: u64,
    pub available: u64,
}

impl Probe {
    /// A probe of the tree under `root`, which must hold `proc/sys`.
    pub fn new(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        let sys = root.join("proc/sys");
        if !sys.is_dir() {
            bail!("{}: not a directory (is /proc mounted?)", sys.display());
        }
        Ok(Self { root })
    }

    /// The file behind a sysctl name: `net.core.somaxconn` is
    /// `proc/sys/net/core/somaxconn`.
    pub fn sysctl_path(&self, name: &str) -> PathBuf {
        self.root.join("proc/sys").join(name.replace('.', "/"))
    }

    /// The raw text of a sysctl, `None` when this kernel does not have it.
    pub fn read(&self, name: &str) -> Result<Option<String>> {
        read_optional(&self.sysctl_path(name))
    }

    /// A sysctl's whitespace-separated integers (`tcp_mem` has three).
    pub fn ints(&self, name: &str) -> Result<Option<Vec<u64>>> {
        let Some(text) = self.read(name)? else {
            return Ok(None);
        };
        let values = text
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<Vec<u64>, _>>()
            .with_context(|| format!("{name}: {:?} is not a list of integers", text.trim()))?;
        if values.is_empty() {
            bail!("{name}: empty");
        }
        Ok(Some(values))
    }

    /// A sysctl holding one integer.
    pub fn int(&self, name: &str) -> Result<Option<u64>> {
        Ok(self.ints(name)?.map(|v| v[0]))
    }

    /// A sysctl holding exactly `N` integers.
    pub fn array<const N: usize>(&self, name: &str) -> Result<Option<[u64; N]>> {
        match self.ints(name)? {
            None => Ok(None),
            Some(v) => match <[u64; N]>::try_from(v.as_slice()) {
                Ok(a) => Ok(Some(a)),
                Err(_) => bail!("{name}: expected {N} integers, read {}", v.len()),
            },
        }
    }

    /// Total and available memory, `None` without `/proc/meminfo`.
    pub fn meminfo(&self) -> Result<Option<Meminfo>> {
        let path = self.root.join("proc/meminfo");
        let Some(text) = read_optional(&path)? else {
            return Ok(None);
        };
        let field = |key: &str| -> Result<u64> {
            let line = text
                .lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
                .with_context(|| format!("{}: no {key} line", path.display()))?;
            let kib: u64 = line
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .with_context(|| format!("{}: {key}: {:?}", path.display(), line.trim()))?;
            Ok(kib * 1024)
        };
        Ok(Some(Meminfo {
            total: field("MemTotal")?,
            available: field("MemAvailable")?,
        }))
    }

    /// This process's (soft, hard) RLIMIT_NOFILE from `/proc/self/limits`
    /// (`unlimited` reads as `u64::MAX`); `None` when the file is missing.
    pub fn nofile(&self) -> Result<Option<(u64, u64)>> {
        let path = self.root.join("proc/self/limits");
        let Some(text) = read_optional(&path)? else {
            return Ok(None);
        };
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix("Max open files"))
            .with_context(|| format!("{}: no \"Max open files\" line", path.display()))?;
        let mut fields = line.split_whitespace().map(|f| match f {
            "unlimited" => Ok(u64::MAX),
            n => n.parse::<u64>(),
        });
        match (fields.next(), fields.next()) {
            (Some(Ok(soft)), Some(Ok(hard))) => Ok(Some((soft, hard))),
            _ => bail!("{}: Max open files: {:?}", path.display(), line.trim()),
        }
    }

    /// Whether this process holds CAP_SYS_RESOURCE (the `CapEff` mask of
    /// `/proc/self/status`), which raising a hard limit needs.
    pub fn cap_sys_resource(&self) -> Result<bool> {
        let path = self.root.join("proc/self/status");
        let Some(text) = read_optional(&path)? else {
            return Ok(false);
        };
        let Some(mask) = text.lines().find_map(|l| l.strip_prefix("CapEff:")) else {
            return Ok(false);
        };
        let mask = u64::from_str_radix(mask.trim(), 16)
            .with_context(|| format!("{}: CapEff {:?}", path.display(), mask.trim()))?;
        Ok(mask & (1 << CAP_SYS_RESOURCE) != 0)
    }

    /// Writes a sysctl the way `sysctl -w` does: the values space-separated.
    pub fn write(&self, name: &str, values: &[u64]) -> io::Result<()> {
        std::fs::write(self.sysctl_path(name), format!("{}\n", join(values, " ")))
    }
}

/// Integers joined by `sep`, as sysctl files and `sysctl.d` lines hold them.
pub(crate) fn join(values: &[u64], sep: &str) -> String {
    values
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(sep)
}

fn read_optional(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> (tempfile::TempDir, Probe) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("proc/sys")).unwrap();
        for (path, text) in files {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        let probe = Probe::new(dir.path()).unwrap();
        (dir, probe)
    }

    #[test]
    fn reads_sysctls_by_name() {
        let (_dir, p) = tree(&[("proc/sys/net/ipv4/tcp_mem", "287898\t383867\t575796\n")]);
        assert_eq!(
            p.array::<3>("net.ipv4.tcp_mem").unwrap(),
            Some([287_898, 383_867, 575_796])
        );
        assert_eq!(p.int("net.ipv4.tcp_mem").unwrap(), Some(287_898));
        assert_eq!(p.int("net.core.somaxconn").unwrap(), None);
        assert!(p.array::<2>("net.ipv4.tcp_mem").is_err());
    }

    #[test]
    fn rejects_garbage_and_a_root_without_proc() {
        let (_dir, p) = tree(&[("proc/sys/fs/file-max", "lots\n")]);
        let err = p.int("fs.file-max").unwrap_err().to_string();
        assert!(err.contains("fs.file-max"), "{err}");
        let empty = tempfile::tempdir().unwrap();
        assert!(Probe::new(empty.path()).is_err());
    }

    #[test]
    fn reads_meminfo_limits_and_capabilities() {
        let (_dir, p) = tree(&[
            (
                "proc/meminfo",
                "MemTotal:       24684084 kB\nMemFree: 1 kB\nMemAvailable:   24189232 kB\n",
            ),
            (
                "proc/self/limits",
                "Limit  Soft Limit  Hard Limit  Units\nMax open files            1024                 20000                files\n",
            ),
            ("proc/self/status", "Name:\tx\nCapEff:\t000001fffeffffff\n"),
        ]);
        let m = p.meminfo().unwrap().unwrap();
        assert_eq!(m.total, 24_684_084 * 1024);
        assert_eq!(m.available, 24_189_232 * 1024);
        assert_eq!(p.nofile().unwrap(), Some((1024, 20_000)));
        // Bit 24 is clear in 0x...feffffff: no CAP_SYS_RESOURCE.
        assert!(!p.cap_sys_resource().unwrap());
    }

    #[test]
    fn writes_what_it_reads() {
        let (_dir, p) = tree(&[("proc/sys/net/ipv4/ip_local_port_range", "32768\t60999\n")]);
        p.write("net.ipv4.ip_local_port_range", &[1024, 65535])
            .unwrap();
        assert_eq!(
            p.ints("net.ipv4.ip_local_port_range").unwrap(),
            Some(vec![1024, 65535])
        );
    }
}
