//! Counting ESTABLISHED TCP sockets on one local port through netlink
//! `sock_diag`, the interface `ss` uses.
//!
//! The kernel does the filtering: the request asks for ESTABLISHED sockets
//! only (`idiag_states`) and carries a bytecode filter on the source (local)
//! port, so only matching sockets are sent back, one fixed-size
//! `inet_diag_msg` each. We count messages by their netlink header and parse
//! nothing else. One dump per address family (IPv4, then IPv6: the kernel
//! has no "both" handler), each a walk of the TCP established hash.
//!
//! Cost: the kernel's walk is linear in all TCP sockets of the network
//! namespace (both ends of every loopback connection), plus ~88 bytes copied
//! per matching socket in 32 KiB batches. `benches/sample_cost.sh` measures
//! it; parsing `/proc/net/tcp` instead (see [`crate::procnet`]) formats and
//! reparses ~150 bytes of text per socket, matching or not.
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
/// big-endian; all zero here: we filter with bytecode instead).
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

/// The whole request: header, request, one bytecode attribute.
#[repr(C)]
#[derive(Clone, Copy)]
struct Request {
    hdr: NlMsgHdr,
    req: InetDiagReqV2,
    attr: NlAttr,
    bytecode: [BcOp; 4],
}

impl Request {
    fn new(family: u8, port: u16, seq: u32) -> Self {
        // Program (16 bytes): [S_GE][port][S_LE][port]. Each comparison is
        // 8 bytes; on failure it jumps to end + 4 (reject).
        let bytecode = [
            BcOp {
                code: INET_DIAG_BC_S_GE,
                yes: 8,
                no: 16 + 4,
            },
            BcOp {
                code: 0,
                yes: 0,
                no: port,
            },
            BcOp {
                code: INET_DIAG_BC_S_LE,
                yes: 8,
                no: 8 + 4,
            },
            BcOp {
                code: 0,
                yes: 0,
                no: port,
            },
        ];
        Request {
            hdr: NlMsgHdr {
                len: size_of::<Request>() as u32,
                kind: SOCK_DIAG_BY_FAMILY,
                flags: (libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16,
                seq,
                pid: 0,
            },
            req: InetDiagReqV2 {
                family,
                protocol: libc::IPPROTO_TCP as u8,
                ext: 0,
                pad: 0,
                states: 1 << TCP_ESTABLISHED,
                id: InetDiagSockId::default(),
            },
            attr: NlAttr {
                len: (size_of::<NlAttr>() + size_of::<[BcOp; 4]>()) as u16,
                kind: INET_DIAG_REQ_BYTECODE,
            },
            bytecode,
        }
    }
}

/// A `NETLINK_SOCK_DIAG` socket kept open across samples, with its receive
/// buffer.
pub struct SockDiag {
    fd: OwnedFd,
    buf: Vec<u8>,
    seq: u32,
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
        })
    }

    /// ESTABLISHED TCP sockets, IPv4 and IPv6, whose local port is `port`.
    pub fn count_established(&mut self, port: u16) -> io::Result<u64> {
        let v4 = self.dump_count(libc::AF_INET as u8, port)?;
        let v6 = self.dump_count(libc::AF_INET6 as u8, port)?;
        Ok(v4 + v6)
    }

    /// Sends one dump request and counts the socket messages in the reply.
    fn dump_count(&mut self, family: u8, port: u16) -> io::Result<u64> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let request = Request::new(family, port, seq);
        // SAFETY: an all-zero sockaddr_nl is valid; we then set the family
        // (nl_pid 0 addresses the kernel).
        let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: `request` and `kernel` are plain-old-data that outlive the
        // call; their sizes are passed.
        let sent = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                (&request as *const Request).cast(),
                size_of::<Request>(),
                0,
                (&kernel as *const libc::sockaddr_nl).cast(),
                size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
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
            match count_batch(&self.buf[..n as usize], seq)? {
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

/// Counts the socket messages in one batch by walking the netlink headers.
/// Messages of another sequence number (left over from an earlier request
/// that failed half-way) are skipped.
fn count_batch(batch: &[u8], seq: u32) -> io::Result<Batch> {
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
                SOCK_DIAG_BY_FAMILY => count += 1,
                kind if kind == libc::NLMSG_DONE as u16 || kind == libc::NLMSG_ERROR as u16 => {
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
        assert_eq!(size_of::<InetDiagReqV2>(), 56);
        assert_eq!(size_of::<BcOp>(), 4);
        assert_eq!(size_of::<Request>(), 16 + 56 + 4 + 16);
        let r = Request::new(libc::AF_INET as u8, 8000, 7);
        assert_eq!(r.hdr.len, 92);
        assert_eq!(r.attr.len, 20);
        assert_eq!(r.req.states, 2);
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
        assert_eq!(count_batch(&batch, 3).unwrap(), Batch::More(2));
        batch.extend(message(libc::NLMSG_DONE as u16, 3, &0i32.to_ne_bytes()));
        assert_eq!(count_batch(&batch, 3).unwrap(), Batch::Done(2));
    }

    #[test]
    fn reports_kernel_errors_and_garbage() {
        let err = message(libc::NLMSG_ERROR as u16, 1, &(-libc::EINVAL).to_ne_bytes());
        let e = count_batch(&err, 1).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
        let mut short = message(SOCK_DIAG_BY_FAMILY, 1, &[0; 8]);
        short[0] = 200; // claims more bytes than the batch has
        assert!(count_batch(&short, 1).is_err());
    }
}
