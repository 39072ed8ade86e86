//! The run being planned, from the command line: how many connections,
//! which ends live on this machine, how many processes share them and how
//! the client picks its addresses. Every limit is judged against this.

use c1m_common::{
    procs_needed, AddressPlan, BindMode, MemoryEstimate, Role, DEFAULT_USER_BYTES_PER_CONN,
};
use c1m_common::{Ipv4List, PortRange};

/// A planned run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Connections held at once.
    pub conns: u64,
    pub role: Role,
    /// Processes per role given by `--procs N`; `None` is `--procs auto`:
    /// as many as the hard RLIMIT_NOFILE requires, as `floodtest` starts.
    pub procs: Option<u64>,
    pub source_ips: Ipv4List,
    /// Distinct destination (IP, port) pairs the client connects to.
    pub destinations: u64,
    pub bind_mode: BindMode,
    /// The ports an explicit-bind client walks through.
    pub local_ports: PortRange,
    pub server_user_bytes: u64,
    pub client_user_bytes: u64,
}

impl Plan {
    /// A plan with the tools' defaults (those of `floodtest`): both ends
    /// here, `--procs auto`, one source IP, one destination, kernel-chosen
    /// ports.
    pub fn new(conns: u64, role: Role) -> Self {
        Self {
            conns,
            role,
            procs: None,
            source_ips: "127.0.0.1".parse().expect("a literal address"),
            destinations: 1,
            bind_mode: BindMode::Kernel,
            local_ports: PortRange {
                first: 1024,
                last: 65535,
            },
            server_user_bytes: DEFAULT_USER_BYTES_PER_CONN,
            client_user_bytes: DEFAULT_USER_BYTES_PER_CONN,
        }
    }

    /// Kernel sockets on this machine.
    pub fn sockets(&self) -> u64 {
        self.role.sockets(self.conns)
    }

    /// Processes per role: `--procs N`, or for `auto` as many as a hard
    /// RLIMIT_NOFILE of `hard` requires (one when it is unknown).
    pub fn procs_under(&self, hard: Option<u64>) -> u64 {
        match self.procs {
            Some(n) => n.max(1),
            None => hard.map_or(1, |h| procs_needed(self.conns, h)),
        }
    }

    /// The client's address space under the given ephemeral port range.
    pub fn addresses(&self, ephemeral_ports: PortRange) -> AddressPlan {
        AddressPlan {
            bind_mode: self.bind_mode,
            source_ips: self.source_ips.len(),
            local_ports: self.local_ports,
            ephemeral_ports,
            destinations: self.destinations,
        }
    }

    pub fn memory(&self) -> MemoryEstimate {
        MemoryEstimate::new(
            self.conns,
            self.role,
            self.server_user_bytes,
            self.client_user_bytes,
        )
    }

    /// The command-line words that reproduce this plan, for headers.
    pub fn describe(&self) -> String {
        let role = match self.role {
            Role::Server => "server",
            Role::Client => "client",
            Role::Both => "both",
        };
        let mut s = format!("--conns {} --role {role}", self.conns);
        match self.procs {
            Some(p) => s += &format!(" --procs {p}"),
            None => s += " --procs auto",
        }
        if self.role.has_client() {
            let mode = match self.bind_mode {
                BindMode::Explicit => "explicit",
                BindMode::NoPort => "noport",
                BindMode::Kernel => "kernel",
            };
            s += &format!(
                " --bind-mode {mode} --source-ips {} --destinations {}",
                self.source_ips, self.destinations
            );
        }
        s
    }
}

/// `count` loopback source addresses from 127.0.0.1 on, as `--source-ips`
/// takes them.
pub(crate) fn loopback_sources(count: u64) -> String {
    let first = u32::from(std::net::Ipv4Addr::new(127, 0, 0, 1));
    let last = first.saturating_add(u32::try_from(count.max(1) - 1).unwrap_or(u32::MAX));
    format!("127.0.0.1-{}", std::net::Ipv4Addr::from(last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_sources_cross_octets() {
        assert_eq!(loopback_sources(1), "127.0.0.1-127.0.0.1");
        assert_eq!(loopback_sources(36), "127.0.0.1-127.0.0.36");
        assert_eq!(loopback_sources(300), "127.0.0.1-127.0.1.44");
        let parsed: Ipv4List = loopback_sources(300).parse().unwrap();
        assert_eq!(parsed.len(), 300);
    }

    #[test]
    fn defaults_follow_floodtest() {
        let p = Plan::new(1_000_000, Role::Both);
        assert_eq!(p.sockets(), 2_000_000);
        assert_eq!(p.procs_under(Some(20_000)), 51);
        assert_eq!(p.procs_under(Some(2_000_000)), 1);
        assert_eq!(p.procs_under(None), 1);
        assert_eq!(
            Plan {
                procs: Some(7),
                ..p.clone()
            }
            .procs_under(Some(20_000)),
            7
        );
        assert_eq!(
            p.describe(),
            "--conns 1000000 --role both --procs auto --bind-mode kernel --source-ips 127.0.0.1 --destinations 1"
        );
    }
}
