//! Counting ESTABLISHED TCP sockets on one local port through netlink
//! `sock_diag`, the interface `ss` uses.
//!
//! What is counted: ESTABLISHED sockets the server accepted on `port`,
//! i.e. local port `port` and a local address that a listener on `port`
//! listens on (any address of its family for a 0.0.0.0 or `::` listener).
//! A client socket of another process that happens to use `port` from
//! another address (load generators binding 127.x.y.z sources do) is left
//! out. With no listener on `port`, every ESTABLISHED socket with that
//! local port counts.
//!
//! Each count is two dumps: the listeners on `port` (a walk of the small
//! listening hash, a few replies), then the ESTABLISHED sockets with a
//! bytecode filter built from them ([`crate::bytecode`]), so the kernel
//! sends back only the sockets counted, one fixed-size `inet_diag_msg`
//! each. Those we count by their netlink header and parse nothing else.
//!
//! Two request forms. The legacy `TCPDIAG_GETSOCK` request (kept by the
//! kernel for compatibility since 2.6, still used by `ss`) dumps IPv4 and
//! IPv6 sockets in ONE walk of the TCP established hash; the current
//! `SOCK_DIAG_BY_FAMILY` request takes one family per dump, so counting both
//! walks the hash twice. We use the legacy form and fall back to two
//! per-family dumps if a kernel refuses it.
//!
//! Cost: the walk visits every TCP socket of the network namespace (both
//! ends of every loopback connection, and TIME_WAIT ones), plus one reply
//! (124 bytes here, in 32 KiB batches) per matching socket.
//! `benches/sample_cost.sh` measures both parts; parsing `/proc/net/tcp`
//! instead (see [`crate::procnet`]) formats and reparses ~150 bytes of text
//! per socket, matching or not.
//!
//! The structs are written out by hand from the kernel uapi headers named on
//! each: a few small `#[repr(C)]` types are less code than a netlink
//! crate's builder and parser, and we read only the 16-byte header of each
//! counted reply (and 24 bytes of each listener's).
//!
//! A dump is not atomic: sockets opened or closed during the walk may be
//! missed or seen, as with `ss`. At a one-second interval that is noise.

use crate::bytecode::{self, push, ListenAddr, Wire};
use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// `SOCK_DIAG_BY_FAMILY` from `linux/sock_diag.h`.
const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// `TCPDIAG_GETSOCK` from `linux/inet_diag.h`: the legacy request, which
/// the kernel serves with family AF_UNSPEC (both families, one walk).
const TCPDIAG_GETSOCK: u16 = 18;
/// `TCP_ESTABLISHED` from `include/net/tcp_states.h` (the state numbering
/// `/proc/net/tcp` prints as `01`).
const TCP_ESTABLISHED: u32 = 1;
/// Where the socket id starts in a reply's `struct inet_diag_msg` (after
/// family, state, timer, retrans), and its local address within the id.
const MSG_ID_OFFSET: usize = 4;
const ID_SRC_OFFSET: usize = 4;
/// `INET_DIAG_REQ_BYTECODE` from `linux/inet_diag.h`.
const INET_DIAG_REQ_BYTECODE: u16 = 1;
/// `TCP_LISTEN` from `include/net/tcp_states.h` (`0A` in /proc/net/tcp).
const TCP_LISTEN: u32 = 10;
/// Batch size for reading the dump. The kernel fills at most 32 KiB per
/// batch (it sizes dump buffers from the reader's, capped there).
const RECV_BUF: usize = 64 * 1024;

/// `struct nlmsghdr` from `linux/netlink.h`.
#[repr(C)]
#[derive(Clone, Copy)]
struct NlMsgHdr {
    len: u32,
    kind: u16,
    flags: u16,
    seq: u32,
    pid: u32,
}

/// `struct inet_diag_sockid` from `linux/inet_diag.h` (ports and addresses
/// big-endian). Only `sport` is set: the kernel's hash walk skips other
/// ports before even running the bytecode.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct InetDiagSockId {
    sport: u16,
    dport: u16,
    src: [u32; 4],
    dst: [u32; 4],
    interface: u32,
    cookie: [u32; 2],
}

/// `struct inet_diag_req` from `linux/inet_diag.h` (the legacy request;
/// the kernel ignores `family` and dumps both).
#[repr(C)]
#[derive(Clone, Copy)]
struct InetDiagReq {
    family: u8,
    src_len: u8,
    dst_len: u8,
    ext: u8,
    id: InetDiagSockId,
    states: u32,
    dbs: u32,
}

/// `struct inet_diag_req_v2` from `linux/inet_diag.h`.
#[repr(C)]
#[derive(Clone, Copy)]
struct InetDiagReqV2 {
    family: u8,
    protocol: u8,
    ext: u8,
    pad: u8,
    states: u32,
    id: InetDiagSockId,
}

/// `struct nlattr` from `linux/netlink.h`.
#[repr(C)]
#[derive(Clone, Copy)]
struct NlAttr {
    len: u16,
    kind: u16,
}

impl Wire for NlMsgHdr {
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.len.to_ne_bytes());
        out.extend_from_slice(&self.kind.to_ne_bytes());
        out.extend_from_slice(&self.flags.to_ne_bytes());
        out.extend_from_slice(&self.seq.to_ne_bytes());
        out.extend_from_slice(&self.pid.to_ne_bytes());
    }
}

impl Wire for InetDiagSockId {
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.sport.to_ne_bytes());
        out.extend_from_slice(&self.dport.to_ne_bytes());
        for word in self.src.iter().chain(&self.dst) {
            out.extend_from_slice(&word.to_ne_bytes());
        }
        out.extend_from_slice(&self.interface.to_ne_bytes());
        for word in &self.cookie {
            out.extend_from_slice(&word.to_ne_bytes());
        }
    }
}

impl Wire for InetDiagReq {
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[self.family, self.src_len, self.dst_len, self.ext]);
        self.id.put(out);
        out.extend_from_slice(&self.states.to_ne_bytes());
        out.extend_from_slice(&self.dbs.to_ne_bytes());
    }
}

impl Wire for InetDiagReqV2 {
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[self.family, self.protocol, self.ext, self.pad]);
        out.extend_from_slice(&self.states.to_ne_bytes());
        self.id.put(out);
    }
}

impl Wire for NlAttr {
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.len.to_ne_bytes());
        out.extend_from_slice(&self.kind.to_ne_bytes());
    }
}

/// One dump request: netlink header, request body, one bytecode attribute.
fn request<Body: Wire>(kind: u16, body: &Body, bytecode: &[u8], seq: u32) -> Vec<u8> {
    let attr_len = size_of::<NlAttr>() + bytecode.len();
    let len = size_of::<NlMsgHdr>() + size_of::<Body>() + attr_len;
    let mut out = Vec::with_capacity(len);
    let hdr = NlMsgHdr {
        len: len as u32,
        kind,
        flags: (libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16,
        seq,
        pid: 0,
    };
    push(&mut out, &hdr);
    push(&mut out, body);
    let attr = NlAttr {
        len: attr_len as u16,
        kind: INET_DIAG_REQ_BYTECODE,
    };
    push(&mut out, &attr);
    out.extend_from_slice(bytecode);
    out
}

/// The legacy request: TCP sockets of both families in `states`.
fn legacy_request(states: u32, port: u16, bytecode: &[u8], seq: u32) -> Vec<u8> {
    let body = InetDiagReq {
        family: libc::AF_INET as u8,
        src_len: 0,
        dst_len: 0,
        ext: 0,
        id: port_id(port),
        states,
        dbs: 0,
    };
    request(TCPDIAG_GETSOCK, &body, bytecode, seq)
}

/// The v2 request: TCP sockets of one family in `states`.
fn v2_request(family: u8, states: u32, port: u16, bytecode: &[u8], seq: u32) -> Vec<u8> {
    let body = InetDiagReqV2 {
        family,
        protocol: libc::IPPROTO_TCP as u8,
        ext: 0,
        pad: 0,
        states,
        id: port_id(port),
    };
    request(SOCK_DIAG_BY_FAMILY, &body, bytecode, seq)
}

/// A socket id that names only the local port. The kernel's hash walks
/// compare it before anything else; the bytecode says the same for any
/// kernel path that ignores it.
fn port_id(port: u16) -> InetDiagSockId {
    InetDiagSockId {
        sport: port.to_be(),
        ..InetDiagSockId::default()
    }
}

/// A `NETLINK_SOCK_DIAG` socket kept open across samples, with its receive
/// buffer.
pub struct SockDiag {
    fd: OwnedFd,
    buf: Vec<u8>,
    seq: u32,
    /// Whether the legacy one-walk request works here (until it fails).
    legacy: bool,
}

impl SockDiag {
    /// Opens the netlink socket. Fails where netlink or `sock_diag` is not
    /// available (some sandboxes); the caller then falls back to /proc.
    pub fn open() -> io::Result<Self> {
        // SAFETY: plain socket(2); the result is checked before use.
        let raw = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
                libc::NETLINK_SOCK_DIAG,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // A dump never stalls on a healthy kernel; the timeout turns a
        // stuck one into an error instead of a hung sampler.
        let timeout = libc::timeval {
            tv_sec: 5,
            tv_usec: 0,
        };
        // SAFETY: `timeout` outlives the call and its size is passed.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&timeout as *const libc::timeval).cast(),
                size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(SockDiag {
            fd,
            buf: vec![0; RECV_BUF],
            seq: 0,
            legacy: true,
        })
    }

    /// ESTABLISHED TCP sockets, IPv4 and IPv6, accepted on `port` (see the
    /// module doc for exactly which).
    pub fn count_established(&mut self, port: u16) -> io::Result<u64> {
        let listeners = self.listeners(port)?;
        let program = bytecode::accepted_on(port, &listeners);
        self.dump(
            1 << TCP_ESTABLISHED,
            port,
            &program,
            || 0u64,
            |n, _| *n += 1,
        )
    }

    /// The local addresses of the TCP listeners on `port`.
    pub fn listeners(&mut self, port: u16) -> io::Result<Vec<ListenAddr>> {
        let program = bytecode::local_port(port);
        self.dump(1 << TCP_LISTEN, port, &program, Vec::new, |found, msg| {
            if let Some(l) = listen_addr(msg) {
                found.push(l);
            }
        })
    }

    /// Dumps the TCP sockets in `states` that `program` keeps, folding each
    /// reply's payload into a fresh `init()`. One legacy dump while the
    /// kernel takes it; else one v2 dump per family.
    fn dump<T>(
        &mut self,
        states: u32,
        port: u16,
        program: &[u8],
        init: impl Fn() -> T,
        visit: impl Fn(&mut T, &[u8]),
    ) -> io::Result<T> {
        if self.legacy {
            let mut acc = init();
            let seq = self.next_seq();
            let req = legacy_request(states, port, program, seq);
            match self.dump_one(&req, |msg| visit(&mut acc, msg)) {
                Ok(()) => return Ok(acc),
                // The legacy request is refused (EINVAL/ENOENT/EOPNOTSUPP
                // on a kernel that dropped it): per-family dumps from now on.
                // Only those: a timeout (EAGAIN from SO_RCVTIMEO) or
                // ENOBUFS says nothing about the request form.
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::EINVAL | libc::ENOENT | libc::EOPNOTSUPP)
                    ) =>
                {
                    self.legacy = false
                }
                Err(e) => return Err(e),
            }
        }
        let mut acc = init();
        for family in [libc::AF_INET as u8, libc::AF_INET6 as u8] {
            let seq = self.next_seq();
            let req = v2_request(family, states, port, program, seq);
            self.dump_one(&req, |msg| visit(&mut acc, msg))?;
        }
        Ok(acc)
    }

    /// Uses the per-family (v2) requests only: for comparing the two forms
    /// in tests and benchmarks.
    pub fn per_family(mut self) -> Self {
        self.legacy = false;
        self
    }

    /// Whether counts take one walk (legacy request) rather than two.
    pub fn one_walk(&self) -> bool {
        self.legacy
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Sends one dump request and hands each socket message's payload to
    /// `visit`.
    fn dump_one(&mut self, request: &[u8], mut visit: impl FnMut(&[u8])) -> io::Result<()> {
        // SAFETY: an all-zero sockaddr_nl is valid; we then set the family
        // (nl_pid 0 addresses the kernel).
        let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: `request` and `kernel` outlive the call; their sizes are
        // passed.
        let sent = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                request.as_ptr().cast(),
                request.len(),
                0,
                (&kernel as *const libc::sockaddr_nl).cast(),
                size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the request starts with a whole NlMsgHdr (built above).
        let hdr: NlMsgHdr = unsafe { std::ptr::read_unaligned(request.as_ptr().cast()) };
        loop {
            // SAFETY: `buf` is a valid writable buffer of the given length.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    self.buf.as_mut_ptr().cast(),
                    self.buf.len(),
                    0,
                )
            };
            if n < 0 {
                let err = io::Error::last_os_error();
                if err.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(err);
            }
            if read_batch(&self.buf[..n as usize], hdr.seq, hdr.kind, &mut visit)? {
                return Ok(());
            }
        }
    }
}

/// The listener's local address in one `inet_diag_msg` payload.
fn listen_addr(msg: &[u8]) -> Option<ListenAddr> {
    let family = *msg.first()?;
    if family != libc::AF_INET as u8 && family != libc::AF_INET6 as u8 {
        return None;
    }
    let at = MSG_ID_OFFSET + ID_SRC_OFFSET;
    let addr: [u8; 16] = msg.get(at..at + 16)?.try_into().ok()?;
    Some(ListenAddr { family, addr })
}

/// Walks the netlink messages of one received batch, handing the payload
/// of each socket message (type `kind`, the request's) to `visit`. Returns
/// true at the end of the dump. Messages of another sequence number (left
/// over from an earlier request that failed half-way) are skipped.
fn read_batch(
    batch: &[u8],
    seq: u32,
    kind: u16,
    visit: &mut impl FnMut(&[u8]),
) -> io::Result<bool> {
    let malformed = || io::Error::new(io::ErrorKind::InvalidData, "malformed netlink reply");
    let header_len = size_of::<NlMsgHdr>();
    let mut at = 0usize;
    while at + header_len <= batch.len() {
        // SAFETY: the bounds check above covers the header; read_unaligned
        // copes with any alignment.
        let hdr: NlMsgHdr = unsafe { std::ptr::read_unaligned(batch[at..].as_ptr().cast()) };
        let len = hdr.len as usize;
        if len < header_len || at + len > batch.len() {
            return Err(malformed());
        }
        if hdr.seq == seq {
            let payload = &batch[at + header_len..at + len];
            match hdr.kind {
                k if k == kind => visit(payload),
                k if k == libc::NLMSG_DONE as u16 || k == libc::NLMSG_ERROR as u16 => {
                    // Both carry an int: 0, or a negative errno.
                    let errno = payload
                        .get(..4)
                        .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                        .unwrap_or(0);
                    if errno < 0 {
                        return Err(io::Error::from_raw_os_error(-errno));
                    }
                    return Ok(true);
                }
                _ => {}
            }
        }
        // Messages are padded to 4 bytes (NLMSG_ALIGN).
        at += (len + 3) & !3;
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_layout_matches_the_uapi() {
        assert_eq!(size_of::<NlMsgHdr>(), 16);
        assert_eq!(size_of::<InetDiagSockId>(), 48);
        assert_eq!(size_of::<InetDiagReq>(), 60);
        assert_eq!(size_of::<InetDiagReqV2>(), 56);
        let program = bytecode::local_port(8000);
        let v2 = v2_request(libc::AF_INET as u8, 2, 8000, &program, 7);
        assert_eq!(v2.len(), 16 + 56 + 4 + 16);
        assert_eq!(&v2[..4], &92u32.to_ne_bytes());
        let legacy = legacy_request(2, 8000, &program, 7);
        assert_eq!(legacy.len(), 96);
        assert_eq!(&legacy[4..6], &TCPDIAG_GETSOCK.to_ne_bytes());
        // The id's sport, big-endian, right after family/lens/ext.
        assert_eq!(&legacy[16 + 4..16 + 6], &[0x1f, 0x40]);
        // states after the 48-byte id.
        assert_eq!(&legacy[16 + 52..16 + 56], &2u32.to_ne_bytes());
    }

    fn message(kind: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
        let len = 16 + payload.len();
        let mut m = Vec::new();
        m.extend_from_slice(&(len as u32).to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&0u16.to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(payload);
        m.resize((len + 3) & !3, 0);
        m
    }

    fn count(batch: &[u8], seq: u32, kind: u16) -> io::Result<(u64, bool)> {
        let mut n = 0;
        let done = read_batch(batch, seq, kind, &mut |_| n += 1)?;
        Ok((n, done))
    }

    #[test]
    fn counts_socket_messages_until_done() {
        let k = TCPDIAG_GETSOCK;
        let mut batch = Vec::new();
        batch.extend(message(k, 3, &[0; 72]));
        batch.extend(message(k, 2, &[0; 72])); // stale
        batch.extend(message(k, 3, &[0; 73])); // padded
        assert_eq!(count(&batch, 3, k).unwrap(), (2, false));
        assert_eq!(count(&batch, 3, SOCK_DIAG_BY_FAMILY).unwrap(), (0, false));
        batch.extend(message(libc::NLMSG_DONE as u16, 3, &0i32.to_ne_bytes()));
        assert_eq!(count(&batch, 3, k).unwrap(), (2, true));
    }

    #[test]
    fn reports_kernel_errors_and_garbage() {
        let err = message(libc::NLMSG_ERROR as u16, 1, &(-libc::EINVAL).to_ne_bytes());
        let e = count(&err, 1, SOCK_DIAG_BY_FAMILY).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
        let mut short = message(SOCK_DIAG_BY_FAMILY, 1, &[0; 8]);
        short[0] = 200; // claims more bytes than the batch has
        assert!(count(&short, 1, SOCK_DIAG_BY_FAMILY).is_err());
    }

    #[test]
    fn reads_a_listeners_address() {
        let mut msg = vec![0u8; 72];
        msg[0] = libc::AF_INET as u8;
        msg[8..12].copy_from_slice(&[127, 0, 0, 1]);
        let l = listen_addr(&msg).unwrap();
        assert_eq!(&l.addr[..4], &[127, 0, 0, 1]);
        assert!(!l.is_wildcard());
        msg[0] = 99;
        assert_eq!(listen_addr(&msg), None);
    }

    #[test]
    fn this_kernel_takes_both_programs() {
        // A listener on 127.0.0.1 with one connection, and a count through
        // the address program: the kernel must accept the bytecode.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let _client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let _server = listener.accept().unwrap();
        let mut diag = SockDiag::open().unwrap();
        let listeners = diag.listeners(port).unwrap();
        assert_eq!(listeners.len(), 1);
        assert_eq!(diag.count_established(port).unwrap(), 1);
        let mut per_family = SockDiag::open().unwrap().per_family();
        assert_eq!(per_family.listeners(port).unwrap(), listeners);
        assert_eq!(per_family.count_established(port).unwrap(), 1);
    }
}
