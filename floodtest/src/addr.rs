//! Source addresses and the non-blocking connect.
//!
//! Three ways to pick a connection's source (IP, port), as `--bind-mode`:
//!
//! - `explicit` (Part 3's patched client): the tool walks its own
//!   (destination, source IP, local port) space with a cursor, binding each
//!   pair with SO_REUSEADDR, so one pair serves once per destination. A pair
//!   refused with EADDRINUSE/EADDRNOTAVAIL is skipped (counted as a retry).
//!   Workers and child processes own disjoint slices of `--local-ports`, so
//!   they never race for a pair.
//! - `noport`: `bind(ip, 0)` with IP_BIND_ADDRESS_NO_PORT; the kernel picks
//!   the port at `connect()` time per 4-tuple, so each source IP has the whole
//!   ephemeral range per destination.
//! - `kernel`: no bind at all: one source IP, ephemeral ports.
//!
//! A source address that is not on this host is refused before any connect
//! ([`first_not_local`]); should one vanish mid-run, `bind()`'s
//! EADDRNOTAVAIL is counted as `addr_not_local`, never as a taken pair.
//!
//! Cost: the cursor is three integers per worker; nothing per connection.

use crate::class::ErrorClass;
use c1m_common::BindMode;
use c1m_common::PortRange;
use mio::net::TcpStream;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};

/// Where the next connection comes from and goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Route {
    /// `None` in kernel mode; port 0 in noport mode.
    pub(crate) source: Option<SocketAddrV4>,
    /// Index of the destination port (0..destinations).
    pub(crate) destination: u64,
}

/// Hands out routes for one worker.
#[derive(Debug, Clone)]
pub(crate) struct Sources {
    mode: BindMode,
    ips: Vec<Ipv4Addr>,
    ports: PortRange,
    destinations: u64,
    cursor: u64,
}

impl Sources {
    pub(crate) fn new(
        mode: BindMode,
        ips: Vec<Ipv4Addr>,
        ports: PortRange,
        destinations: u64,
    ) -> Self {
        assert!(!ips.is_empty() && destinations > 0);
        Self {
            mode,
            ips,
            ports,
            destinations,
            cursor: 0,
        }
    }

    /// Routes in explicit mode before the cursor wraps round.
    fn explicit_space(&self) -> u64 {
        self.destinations * self.ips.len() as u64 * u64::from(self.ports.len())
    }

    /// The next route. Explicit mode walks destinations fastest, then source
    /// IPs, then ports, and wraps round (pairs freed by closed connections
    /// come back); the other modes spread over destinations and IPs.
    pub(crate) fn next_route(&mut self) -> Route {
        let n = self.cursor;
        self.cursor += 1;
        let ips = self.ips.len() as u64;
        match self.mode {
            BindMode::Explicit => {
                let n = n % self.explicit_space();
                let pair = n / self.destinations;
                let ip = self.ips[(pair % ips) as usize];
                let port = u64::from(self.ports.first) + pair / ips;
                Route {
                    source: Some(SocketAddrV4::new(ip, port as u16)),
                    destination: n % self.destinations,
                }
            }
            BindMode::NoPort => Route {
                source: Some(SocketAddrV4::new(
                    self.ips[((n / self.destinations) % ips) as usize],
                    0,
                )),
                destination: n % self.destinations,
            },
            BindMode::Kernel => Route {
                source: None,
                destination: n % self.destinations,
            },
        }
    }

    /// How many consecutive taken pairs to skip before giving up on one
    /// attempt; bounded so a full space fails fast instead of spinning.
    pub(crate) fn max_skips(&self) -> u32 {
        match self.mode {
            BindMode::Explicit => self.explicit_space().min(64) as u32,
            _ => 0,
        }
    }
}

/// Why opening a connection failed, and at which step: the same errno
/// means different things at `bind()` and at `connect()`.
#[derive(Debug)]
pub(crate) enum OpenError {
    /// `bind()` to the source address failed.
    Bind(io::Error),
    /// Creating the socket, setting an option, or `connect()` failed.
    Other(io::Error),
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Bind(e) => write!(f, "bind: {e}"),
            OpenError::Other(e) => write!(f, "connect: {e}"),
        }
    }
}

impl OpenError {
    /// Whether this means "this source pair is taken, try the next one":
    /// EADDRINUSE anywhere, or EADDRNOTAVAIL from `connect()` (the 4-tuple
    /// is in use). EADDRNOTAVAIL from `bind()` is not that: the address
    /// is not on this host, and no other port of it will do better.
    pub(crate) fn pair_taken(&self) -> bool {
        match self {
            OpenError::Bind(e) => e.raw_os_error() == Some(libc::EADDRINUSE),
            OpenError::Other(e) => matches!(
                e.raw_os_error(),
                Some(libc::EADDRINUSE | libc::EADDRNOTAVAIL)
            ),
        }
    }

    /// The failure class it is counted under.
    pub(crate) fn class(&self) -> ErrorClass {
        match self {
            OpenError::Bind(e) if e.raw_os_error() == Some(libc::EADDRNOTAVAIL) => {
                ErrorClass::NotLocal
            }
            OpenError::Bind(e) | OpenError::Other(e) => ErrorClass::of(e),
        }
    }
}

/// The first of `ips` that is not an address of this host, found by
/// binding each one (port 0, no port reserved) before any connect: such a
/// source can never connect, and said after the run it reads like an
/// exhausted port space. Addresses in 127.0.0.0/8 are all local (the
/// kernel's loopback route), so only the others are tried.
pub(crate) fn first_not_local(ips: impl Iterator<Item = Ipv4Addr>) -> io::Result<Option<Ipv4Addr>> {
    for ip in ips.filter(|ip| !ip.is_loopback()) {
        let socket = Socket::new(Domain::IPV4, Type::STREAM.cloexec(), Some(Protocol::TCP))?;
        set_bind_address_no_port(&socket)?;
        match socket.bind(&SockAddr::from(SocketAddrV4::new(ip, 0))) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EADDRNOTAVAIL) => return Ok(Some(ip)),
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// Opens a non-blocking socket, binds it per `mode` and starts connecting.
/// Buffers are left at the kernel's defaults: enlarging them would cost
/// kernel memory on every held connection.
pub(crate) fn start_connect(
    mode: BindMode,
    source: Option<SocketAddrV4>,
    dest: SocketAddrV4,
) -> Result<TcpStream, OpenError> {
    let socket = Socket::new(
        Domain::IPV4,
        Type::STREAM.nonblocking().cloexec(),
        Some(Protocol::TCP),
    )
    .map_err(OpenError::Other)?;
    if let Some(source) = source {
        match mode {
            BindMode::Explicit => socket.set_reuse_address(true),
            BindMode::NoPort => set_bind_address_no_port(&socket),
            BindMode::Kernel => Ok(()),
        }
        .map_err(OpenError::Other)?;
        socket
            .bind(&SockAddr::from(source))
            .map_err(OpenError::Bind)?;
    }
    match socket.connect(&SockAddr::from(dest)) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(OpenError::Other(e)),
    }
    Ok(TcpStream::from_std(socket.into()))
}

/// IP_BIND_ADDRESS_NO_PORT (Linux 4.2+): `bind(ip, 0)` reserves no port; the
/// port is chosen at `connect()` against the full 4-tuple. socket2 0.6 has no
/// setter for it.
fn set_bind_address_no_port(socket: &Socket) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let one: libc::c_int = 1;
    // SAFETY: the descriptor is open for the duration of the call and the
    // option value is a c_int that outlives it, with its exact size passed.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(n: u8) -> Vec<Ipv4Addr> {
        (1..=n).map(|i| Ipv4Addr::new(127, 0, 1, i)).collect()
    }

    #[test]
    fn explicit_walks_every_route_once_before_wrapping() {
        let mut s = Sources::new(BindMode::Explicit, ips(3), "2000-2009".parse().unwrap(), 2);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..60 {
            let r = s.next_route();
            assert!(seen.insert((r.source, r.destination)), "{r:?} repeated");
        }
        // A pair serves each destination once, then the next IP is used.
        let mut again = Sources::new(BindMode::Explicit, ips(3), "2000-2009".parse().unwrap(), 2);
        let (a, b, c) = (again.next_route(), again.next_route(), again.next_route());
        assert_eq!(a.source, b.source);
        assert_ne!(a.destination, b.destination);
        assert_eq!(
            c.source,
            Some(SocketAddrV4::new(Ipv4Addr::new(127, 0, 1, 2), 2000))
        );
        assert_eq!(s.next_route(), again_first());
    }

    fn again_first() -> Route {
        Route {
            source: Some(SocketAddrV4::new(Ipv4Addr::new(127, 0, 1, 1), 2000)),
            destination: 0,
        }
    }

    #[test]
    fn noport_and_kernel_spread_over_ips_and_destinations() {
        let mut s = Sources::new(BindMode::NoPort, ips(2), "1-1".parse().unwrap(), 1);
        let a = s.next_route().source.unwrap();
        let b = s.next_route().source.unwrap();
        assert_eq!((a.port(), b.port()), (0, 0));
        assert_ne!(a.ip(), b.ip());
        let mut k = Sources::new(BindMode::Kernel, ips(1), "1-1".parse().unwrap(), 3);
        let routes: Vec<_> = (0..4).map(|_| k.next_route().destination).collect();
        assert_eq!(routes, [0, 1, 2, 0]);
        assert!(k.next_route().source.is_none());
    }

    /// An address of TEST-NET-3 (RFC 5737), assigned to no host.
    const NOWHERE: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 7);

    #[test]
    fn a_source_not_on_this_host_is_told_apart_from_a_taken_pair() {
        let dest = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9);
        let err =
            start_connect(BindMode::NoPort, Some(SocketAddrV4::new(NOWHERE, 0)), dest).unwrap_err();
        assert_eq!(err.class(), ErrorClass::NotLocal, "{err:?}");
        assert!(!err.pair_taken(), "no other port of it will do better");
        let taken = OpenError::Other(io::Error::from_raw_os_error(libc::EADDRNOTAVAIL));
        assert!(taken.pair_taken());
        assert_eq!(taken.class(), ErrorClass::AddrUnavailable);
        assert!(OpenError::Bind(io::Error::from_raw_os_error(libc::EADDRINUSE)).pair_taken());
        let ips = [Ipv4Addr::new(127, 0, 9, 9), NOWHERE];
        assert_eq!(first_not_local(ips.into_iter()).unwrap(), Some(NOWHERE));
        assert_eq!(first_not_local(ips[..1].iter().copied()).unwrap(), None);
    }

    #[test]
    fn noport_socket_option_is_accepted() {
        let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        set_bind_address_no_port(&s).unwrap();
    }
}
