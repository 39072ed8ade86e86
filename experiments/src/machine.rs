//! What the run ran on, for the report: cores, memory, kernel, and the load
//! average at the start (the machine may be shared, and figures from a busy
//! machine should say so).

/// The machine a run ran on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    /// Logical CPUs.
    pub cores: usize,
    /// CPU model name (`/proc/cpuinfo`).
    pub cpu_model: String,
    /// MemTotal (`/proc/meminfo`), KB.
    pub memory_kb: u64,
    /// `uname -srm`.
    pub kernel: String,
    /// The three load averages, as /proc/loadavg prints them.
    pub load_average: String,
}

impl Machine {
    /// Reads /proc and uname; a field that cannot be read is left empty
    /// rather than failing the report.
    pub fn read() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        Machine {
            cores: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or_else(|_| {
                    cpuinfo
                        .lines()
                        .filter(|l| l.starts_with("processor"))
                        .count()
                }),
            cpu_model: cpuinfo
                .lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
                .unwrap_or_default(),
            memory_kb: meminfo
                .lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            kernel: uname(),
            load_average: loadavg
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}

fn uname() -> String {
    // SAFETY: uname fills a zeroed struct of fixed-size NUL-terminated
    // arrays.
    unsafe {
        let mut u: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut u) != 0 {
            return String::new();
        }
        let field = |f: &[libc::c_char]| {
            std::ffi::CStr::from_ptr(f.as_ptr())
                .to_string_lossy()
                .into_owned()
        };
        format!(
            "{} {} {}",
            field(&u.sysname),
            field(&u.release),
            field(&u.machine)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_machine() {
        let m = Machine::read();
        assert!(m.cores >= 1);
        assert!(m.memory_kb > 0);
        assert!(m.kernel.starts_with("Linux "), "{}", m.kernel);
        assert_eq!(m.load_average.split(' ').count(), 3);
    }
}
