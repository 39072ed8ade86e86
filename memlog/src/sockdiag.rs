//! Counting ESTABLISHED TCP sockets on one local port through netlink
//! `sock_diag`, the interface `ss` uses.
//!
//! The kernel does the filtering: the request asks for ESTABLISHED sockets
//! only (`idiag_states`) and carries a bytecode filter on the source (local)
//! port, so only matching sockets are sent back, one fixed-size
//! `inet_diag_msg` each. We count messages by their netlink header and parse
//! nothing else.
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
//! (~100 bytes, in 32 KiB batches) per matching socket.
//! `benches/sample_cost.sh` measures both parts; parsing `/proc/net/tcp`
//! instead (see [`crate::procnet`]) formats and reparses ~150 bytes of text
//! per socket, matching or not.
//!
//! The structs are written out by hand from the kernel uapi headers named on
//! each: five small `#[repr(C)]` types are less code than a netlink crate's
//! builder and parser, and we read only the 16-byte header of each reply.
//!
//! A dump is not atomic: sockets opened or closed during the walk may be
//! missed or seen, as with `ss`. At a one-second interval that is noise.

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
/// `INET_DIAG_REQ_BYTECODE` from `linux/inet_diag.h`.
const INET_DIAG_REQ_BYTECODE: u16 = 1;
/// `INET_DIAG_BC_S_GE` / `INET_DIAG_BC_S_LE` from `linux/inet_diag.h`. The
/// pair `sport >= p && sport <= p` is used rather than `INET_DIAG_BC_S_EQ`
/// because the pair is accepted by every kernel since 2.6, `S_EQ` only
/// since 4.16.
const INET_DIAG_BC_S_GE: u8 = 2;
const INET_DIAG_BC_S_LE: u8 = 3;
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

/// `struct inet_diag_bc_op` from `linux/inet_diag.h`: a conditional jump,
/// `yes`/`no` being byte offsets from this op. Falling exactly off the end
/// of the program accepts the socket; jumping 4 bytes past it rejects it.
#[repr(C)]
#[derive(Clone, Copy)]
struct BcOp {
    code: u8,
    yes: u8,
    no: u16,
}

/// The whole request: netlink header, request body (legacy or v2), one
/// bytecode attribute.
#[repr(C)]
#[derive(Clone, Copy)]
struct Request<Body> {
    hdr: NlMsgHdr,
    body: Body,
    attr: NlAttr,
    bytecode: [BcOp; 4],
}

/// Keeps `sport >= port && sport <= port`. Program (16 bytes):
/// `[S_GE][port][S_LE][port]`; each comparison is 8 bytes and on failure
/// jumps to the end + 4 (reject).
fn port_filter(port: u16) -> [BcOp; 4] {
    let operand = BcOp {
        code: 0,
        yes: 0,
        no: port,
    };
    [
        BcOp {
            code: INET_DIAG_BC_S_GE,
            yes: 8,
            no: 16 + 4,
        },
        operand,
        BcOp {
            code: INET_DIAG_BC_S_LE,
            yes: 8,
            no: 8 + 4,
        },
        operand,
    ]
}

impl<Body> Request<Body> {
    fn new(kind: u16, body: Body, port: u16, seq: u32) -> Self {
        Request {
            hdr: NlMsgHdr {
                len: size_of::<Self>() as u32,
                kind,
                flags: (libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16,
                seq,
                pid: 0,
            },
            body,
            attr: NlAttr {
                len: (size_of::<NlAttr>() + size_of::<[BcOp; 4]>()) as u16,
                kind: INET_DIAG_REQ_BYTECODE,
            },
            bytecode: port_filter(port),
        }
    }
}

/// The legacy request: ESTABLISHED TCP sockets of both families.
fn legacy_request(port: u16, seq: u32) -> Request<InetDiagReq> {
    let body = InetDiagReq {
        family: libc::AF_INET as u8,
        src_len: 0,
        dst_len: 0,
        ext: 0,
        id: port_id(port),
        states: 1 << TCP_ESTABLISHED,
        dbs: 0,
    };
    Request::new(TCPDIAG_GETSOCK, body, port, seq)
}

/// The v2 request: ESTABLISHED TCP sockets of one family.
fn v2_request(family: u8, port: u16, seq: u32) -> Request<InetDiagReqV2> {
    let body = InetDiagReqV2 {
        family,
        protocol: libc::IPPROTO_TCP as u8,
        ext: 0,
        pad: 0,
        states: 1 << TCP_ESTABLISHED,
        id: port_id(port),
    };
    Request::new(SOCK_DIAG_BY_FAMILY, body, port, seq)
}

/// A socket id that names only the local port. The established-hash walk
/// compares it before anything else; the bytecode filter says the same for
/// any kernel path that ignores it.
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

    /// ESTABLISHED TCP sockets, IPv4 and IPv6, whose local port is `port`.
    pub fn count_established(&mut self, port: u16) -> io::Result<u64> {
        if self.legacy {
            let seq = self.next_seq();
            match self.dump_count(&legacy_request(port, seq)) {
                Ok(n) => return Ok(n),
                // The legacy request is refused (EINVAL/ENOENT/EOPNOTSUPP
                // on a kernel that dropped it): per-family dumps from now on.
                Err(e) if e.raw_os_error().is_some() => self.legacy = false,
                Err(e) => return Err(e),
            }
        }
        let mut total = 0;
        for family in [libc::AF_INET as u8, libc::AF_INET6 as u8] {
            let seq = self.next_seq();
            total += self.dump_count(&v2_request(family, port, seq))?;
        }
        Ok(total)
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

    /// Sends one dump request and counts the socket messages in the reply.
    fn dump_count<Body>(&mut self, request: &Request<Body>) -> io::Result<u64> {
        // SAFETY: an all-zero sockaddr_nl is valid; we then set the family
        // (nl_pid 0 addresses the kernel).
        let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: `request` and `kernel` are plain-old-data that outlive the
        // call; their sizes are passed.
        let sent = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                (request as *const Request<Body>).cast(),
                size_of::<Request<Body>>(),
                0,
                (&kernel as *const libc::sockaddr_nl).cast(),
                size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        let (seq, kind) = (request.hdr.seq, request.hdr.kind);
        let mut count = 0u64;
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
            match count_batch(&self.buf[..n as usize], seq, kind)? {
                Batch::More(k) => count += k,
                Batch::Done(k) => return Ok(count + k),
            }
        }
    }
}

/// What one received batch held.
#[derive(Debug, PartialEq, Eq)]
enum Batch {
    /// This many socket messages; the dump goes on.
    More(u64),
    /// This many socket messages, then the end of the dump.
    Done(u64),
}

/// Counts the socket messages (of type `kind`, the request's) in one batch
/// by walking the netlink headers. Messages of another sequence number
/// (left over from an earlier request that failed half-way) are skipped.
fn count_batch(batch: &[u8], seq: u32, kind: u16) -> io::Result<Batch> {
    let malformed = || io::Error::new(io::ErrorKind::InvalidData, "malformed netlink reply");
    let header_len = size_of::<NlMsgHdr>();
    let mut count = 0u64;
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
            match hdr.kind {
                k if k == kind => count += 1,
                k if k == libc::NLMSG_DONE as u16 || k == libc::NLMSG_ERROR as u16 => {
                    // Both carry an int: 0, or a negative errno.
                    let errno = batch
                        .get(at + header_len..at + header_len + 4)
                        .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                        .unwrap_or(0);
                    if errno < 0 {
                        return Err(io::Error::from_raw_os_error(-errno));
                    }
                    return Ok(Batch::Done(count));
                }
                _ => {}
            }
        }
        // Messages are padded to 4 bytes (NLMSG_ALIGN).
        at += (len + 3) & !3;
    }
    Ok(Batch::More(count))
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
        assert_eq!(size_of::<BcOp>(), 4);
        let v2 = v2_request(libc::AF_INET as u8, 8000, 7);
        assert_eq!((v2.hdr.len, v2.attr.len, v2.body.states), (92, 20, 2));
        let legacy = legacy_request(8000, 7);
        assert_eq!((legacy.hdr.len, legacy.hdr.kind), (96, TCPDIAG_GETSOCK));
        assert_eq!(legacy.bytecode[1].no, 8000);
        assert_eq!(legacy.body.id.sport.to_ne_bytes(), [0x1f, 0x40]);
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

    #[test]
    fn counts_socket_messages_until_done() {
        let mut batch = Vec::new();
        batch.extend(message(SOCK_DIAG_BY_FAMILY, 3, &[0; 72]));
        batch.extend(message(SOCK_DIAG_BY_FAMILY, 2, &[0; 72])); // stale
        batch.extend(message(SOCK_DIAG_BY_FAMILY, 3, &[0; 73])); // padded
        let k = SOCK_DIAG_BY_FAMILY;
        assert_eq!(count_batch(&batch, 3, k).unwrap(), Batch::More(2));
        assert_eq!(
            count_batch(&batch, 3, TCPDIAG_GETSOCK).unwrap(),
            Batch::More(0)
        );
        batch.extend(message(libc::NLMSG_DONE as u16, 3, &0i32.to_ne_bytes()));
        assert_eq!(count_batch(&batch, 3, k).unwrap(), Batch::Done(2));
    }

    #[test]
    fn reports_kernel_errors_and_garbage() {
        let err = message(libc::NLMSG_ERROR as u16, 1, &(-libc::EINVAL).to_ne_bytes());
        let e = count_batch(&err, 1, SOCK_DIAG_BY_FAMILY).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
        let mut short = message(SOCK_DIAG_BY_FAMILY, 1, &[0; 8]);
        short[0] = 200; // claims more bytes than the batch has
        assert!(count_batch(&short, 1, SOCK_DIAG_BY_FAMILY).is_err());
    }
}
