//! Capacity arithmetic: how many connections a client's addresses and a
//! process's descriptors allow. One implementation, used by `floodtest`'s
//! pre-flight check (refuse before connecting) and by `c1m-sysctl check`.
//!
//! A TCP connection is unique by its 4-tuple (source IP, source port,
//! destination IP, destination port), so the ceiling is the product of
//! what each side can vary, bounded by how the client picks its source port.

use crate::parse::PortRange;

/// How the client chooses its source address and port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindMode {
    /// The tool binds each (source IP, local port) pair itself with
    /// SO_REUSEADDR (Part 3's patched client); a pair can be reused once per
    /// destination.
    Explicit,
    /// `bind(ip, 0)` with IP_BIND_ADDRESS_NO_PORT: the kernel picks an
    /// ephemeral port at connect time, per 4-tuple.
    NoPort,
    /// No bind: one source IP chosen by routing, ephemeral ports.
    Kernel,
}

/// The address space a client run may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressPlan {
    /// How the client picks its source address and port.
    pub bind_mode: BindMode,
    /// Number of source IPs (ignored by [`BindMode::Kernel`]).
    pub source_ips: u64,
    /// Ports the tool binds itself in [`BindMode::Explicit`].
    pub local_ports: PortRange,
    /// `net.ipv4.ip_local_port_range`, used by the kernel-chosen modes.
    pub ephemeral_ports: PortRange,
    /// Distinct destination (IP, port) pairs.
    pub destinations: u64,
}

impl AddressPlan {
    /// The most connections that can be open at once (saturating: a plan
    /// of absurd dimensions is "unbounded", not an overflow).
    pub fn capacity(&self) -> u64 {
        let per_destination = match self.bind_mode {
            BindMode::Explicit => self
                .source_ips
                .saturating_mul(u64::from(self.local_ports.len())),
            BindMode::NoPort => self
                .source_ips
                .saturating_mul(u64::from(self.ephemeral_ports.len())),
            BindMode::Kernel => u64::from(self.ephemeral_ports.len()),
        };
        per_destination.saturating_mul(self.destinations)
    }

    /// Source IPs needed for `conns`, with the other dimensions unchanged.
    pub fn source_ips_needed(&self, conns: u64) -> u64 {
        let per_ip = match self.bind_mode {
            BindMode::Explicit => u64::from(self.local_ports.len()),
            BindMode::NoPort | BindMode::Kernel => u64::from(self.ephemeral_ports.len()),
        }
        .saturating_mul(self.destinations);
        conns.div_ceil(per_ip.max(1))
    }
}

/// Descriptors a process keeps for itself (stdio, listeners, epoll, pipes,
/// files), so the connections per process are `limit - FD_RESERVE`.
pub const FD_RESERVE: u64 = 64;

/// Connections one process can hold under an RLIMIT_NOFILE of `fd_limit`.
pub fn conns_per_process(fd_limit: u64) -> u64 {
    fd_limit.saturating_sub(FD_RESERVE)
}

/// Processes needed to hold `conns` connections, each under `fd_limit`.
pub fn procs_needed(conns: u64, fd_limit: u64) -> u64 {
    conns.div_ceil(conns_per_process(fd_limit).max(1)).max(1)
}

/// Kernel memory of one idle TCP socket with empty buffers, measured here at
/// about 4-5 KB (struct tcp_sock, the file, dentry and inode, epoll item).
pub const KERNEL_BYTES_PER_SOCKET: u64 = 4_800;

/// Kernel memory for `conns` connections; a loopback connection has both
/// ends on this machine, so it costs two sockets.
pub fn kernel_bytes(conns: u64, loopback: bool) -> u64 {
    conns
        .saturating_mul(KERNEL_BYTES_PER_SOCKET)
        .saturating_mul(if loopback { 2 } else { 1 })
}

/// Descriptors each of `procs` processes must be allowed to hold its share
/// of `conns` connections (plus [`FD_RESERVE`]): the figure its
/// RLIMIT_NOFILE, and `fs.nr_open` above that, must reach.
pub fn fds_per_process(conns: u64, procs: u64) -> u64 {
    conns.div_ceil(procs.max(1)).saturating_add(FD_RESERVE)
}

/// Which ends of the connections run on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Only the accepting side (the clients are elsewhere).
    Server,
    /// Only the connecting side (the server is elsewhere).
    Client,
    /// Both ends, over loopback: every connection is two sockets here.
    Both,
}

impl Role {
    /// Whether this machine runs the server end.
    pub fn has_server(self) -> bool {
        matches!(self, Role::Server | Role::Both)
    }

    /// Whether this machine runs the client end.
    pub fn has_client(self) -> bool {
        matches!(self, Role::Client | Role::Both)
    }

    /// Kernel sockets `conns` connections put on this machine.
    pub fn sockets(self, conns: u64) -> u64 {
        conns.saturating_mul(if self == Role::Both { 2 } else { 1 })
    }
}

/// User-space bytes a lean event-loop tool keeps per idle connection (a
/// slab record, its id and parser state), the default of the estimate for
/// each role until a measurement says otherwise.
pub const DEFAULT_USER_BYTES_PER_CONN: u64 = 1_024;

/// Memory `conns` idle connections cost on this machine, split by who pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct MemoryEstimate {
    /// Connections held.
    pub conns: u64,
    /// Kernel sockets on this machine ([`Role::sockets`]).
    pub sockets: u64,
    /// [`KERNEL_BYTES_PER_SOCKET`] for each socket.
    pub kernel_bytes: u64,
    /// The server processes' user space (0 when the server is elsewhere).
    pub server_user_bytes: u64,
    /// The client processes' user space (0 when the clients are elsewhere).
    pub client_user_bytes: u64,
}

impl MemoryEstimate {
    /// The estimate for `conns` connections with `role`'s ends here, each
    /// role's user space costing the given bytes per connection.
    pub fn new(
        conns: u64,
        role: Role,
        server_user_per_conn: u64,
        client_user_per_conn: u64,
    ) -> Self {
        let user = |here: bool, per_conn: u64| {
            if here {
                conns.saturating_mul(per_conn)
            } else {
                0
            }
        };
        Self {
            conns,
            sockets: role.sockets(conns),
            kernel_bytes: kernel_bytes(conns, role == Role::Both),
            server_user_bytes: user(role.has_server(), server_user_per_conn),
            client_user_bytes: user(role.has_client(), client_user_per_conn),
        }
    }

    /// Kernel and user-space bytes together.
    pub fn total(&self) -> u64 {
        self.kernel_bytes
            .saturating_add(self.server_user_bytes)
            .saturating_add(self.client_user_bytes)
    }

    /// Bytes per connection, all ends on this machine included.
    pub fn per_connection(&self) -> u64 {
        self.total() / self.conns.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(bind_mode: BindMode, source_ips: u64, destinations: u64) -> AddressPlan {
        AddressPlan {
            bind_mode,
            source_ips,
            local_ports: "1024-65535".parse().unwrap(),
            ephemeral_ports: "32768-60999".parse().unwrap(),
            destinations,
        }
    }

    #[test]
    fn part3_addressing_passes_a_million() {
        // Part 3: 17 source IPs, explicit ports, one destination.
        let p = plan(BindMode::Explicit, 17, 1);
        assert_eq!(p.capacity(), 17 * 64_512);
        assert!(p.capacity() >= 1_000_000);
        assert_eq!(p.source_ips_needed(1_000_000), 16);
    }

    #[test]
    fn kernel_mode_ignores_source_ips() {
        assert_eq!(plan(BindMode::Kernel, 10, 1).capacity(), 28_232);
        assert_eq!(plan(BindMode::NoPort, 3, 2).capacity(), 3 * 28_232 * 2);
    }

    #[test]
    fn processes_for_a_descriptor_limit() {
        assert_eq!(conns_per_process(20_000), 19_936);
        assert_eq!(procs_needed(1_000_000, 20_000), 51);
        assert_eq!(procs_needed(10_000, 20_000), 1);
        assert_eq!(procs_needed(0, 20_000), 1);
    }

    #[test]
    fn loopback_costs_two_sockets() {
        assert_eq!(kernel_bytes(1_000, true), 2 * kernel_bytes(1_000, false));
    }

    #[test]
    fn descriptors_per_process_include_the_reserve() {
        assert_eq!(fds_per_process(1_000_000, 1), 1_000_064);
        assert_eq!(fds_per_process(1_000_000, 51), 19_608 + 64);
        assert!(fds_per_process(1_000_000, procs_needed(1_000_000, 20_000)) <= 20_000);
        assert_eq!(fds_per_process(10, 0), 74);
    }

    #[test]
    fn roles_count_their_sockets() {
        assert_eq!(Role::Both.sockets(1_000), 2_000);
        assert_eq!(Role::Server.sockets(1_000), 1_000);
        assert!(Role::Both.has_server() && Role::Both.has_client());
        assert!(!Role::Client.has_server() && !Role::Server.has_client());
    }

    #[test]
    fn memory_estimate_per_role() {
        let both = MemoryEstimate::new(1_000_000, Role::Both, 1_024, 1_024);
        assert_eq!(both.kernel_bytes, 9_600_000_000);
        assert_eq!(both.server_user_bytes, 1_024_000_000);
        assert_eq!(both.client_user_bytes, 1_024_000_000);
        assert_eq!(both.total(), 11_648_000_000);
        assert_eq!(both.per_connection(), 11_648);
        let server = MemoryEstimate::new(1_000_000, Role::Server, 2_048, 1_024);
        assert_eq!(server.sockets, 1_000_000);
        assert_eq!(server.total(), 4_800_000_000 + 2_048_000_000);
        assert_eq!(server.client_user_bytes, 0);
        assert_eq!(
            MemoryEstimate::new(0, Role::Client, 1, 1).per_connection(),
            0
        );
    }

    /// Absurd inputs (a typo, a fuzzed flag) saturate: figures stay
    /// comparable against real limits instead of panicking or wrapping.
    #[test]
    fn extremes_saturate() {
        let max = u64::MAX;
        assert_eq!(plan(BindMode::NoPort, max, max).capacity(), max);
        assert_eq!(plan(BindMode::Explicit, 2, max).capacity(), max);
        assert_eq!(plan(BindMode::Kernel, 1, max).source_ips_needed(max), 1);
        assert_eq!(kernel_bytes(max, true), max);
        assert_eq!(fds_per_process(max, 1), max);
        assert_eq!(Role::Both.sockets(max), max);
        let m = MemoryEstimate::new(max, Role::Both, max, max);
        assert_eq!((m.total(), m.per_connection()), (max, 1));
    }
}
