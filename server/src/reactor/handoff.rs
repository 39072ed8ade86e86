//! Moving a connection to the worker that owns its id (`--workers`).
//!
//! Every worker of a group accepts on the shared port (SO_REUSEPORT), so a
//! connection lands on any of them; once its request head names the id,
//! the worker that accepted it sends the socket itself (`SCM_RIGHTS`) and
//! the head bytes to the owner, and forgets it (counted in `handed_off`, not
//! as a close). The owner registers the socket and serves the head as if it
//! had read it (`handed_in`). So every connection of an id lives in one
//! process and the router, sequence numbers and history stay local.
//!
//! The channel is a `SOCK_SEQPACKET` Unix socket on an abstract address
//! named after the group and the owner (`c1m-<front pid>-<index>.handoff`):
//! one listener per worker (on reactor 0), one connection per reactor and
//! peer, opened on first use. Seqpacket keeps message boundaries and, unlike
//! a datagram socket, is not capped by `net.unix.max_dgram_qlen` (10 here).
//! A send that would block, or a peer that is not there (restarting), never
//! blocks the reactor and never loses the connection: the parcel waits in
//! that peer's queue and is retried every [`RETRY`] until it goes.
//!
//! Cost: nothing per connection at rest. A parcel in flight is its
//! descriptor and its head (at most 8 KiB), only while it waits.

use std::collections::VecDeque;
use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, SocketAddrUnix, SocketFlags, SocketType,
};
use slab::Slab;

use super::read::MAX_INPUT;
use super::Reactor;
use crate::config::{socket_name, Membership};
use crate::request::Request;

/// Tokens at and above this are handoff sockets: the listener, then the
/// accepted peer connections (connection tokens are slab keys, far below).
pub(super) const HANDOFF_TOKENS: usize = usize::MAX / 2;

/// How often parcels waiting for a peer are retried.
const RETRY: Duration = Duration::from_millis(5);

/// A connection on its way: the socket and everything its client has sent
/// so far (its request head and any requests pipelined behind it, at most
/// [`MAX_INPUT`]).
pub(super) struct Parcel {
    pub(super) fd: OwnedFd,
    pub(super) head: Vec<u8>,
}

/// What one reactor needs to hand connections off and, on reactor 0, take
/// them in.
pub(super) struct Handoff {
    me: Membership,
    /// Reactor 0 only: where the other workers connect.
    listener: Option<OwnedFd>,
    /// Connections from the other workers' reactors.
    inbound: Slab<OwnedFd>,
    /// By worker index: the connection to its listener and what waits for it.
    peers: Vec<Peer>,
    retry_at: Option<Instant>,
    recv_buf: Vec<u8>,
}

#[derive(Default)]
struct Peer {
    sock: Option<OwnedFd>,
    queue: VecDeque<Parcel>,
}

/// The owner of `request`'s id when it is another worker of the group. A
/// `HEAD` is answered where it lands: it holds nothing.
pub(super) fn owner_elsewhere(membership: Option<Membership>, request: &Request) -> Option<usize> {
    let m = membership?;
    let owner = m.owner(request.route.id());
    (owner != m.index && !request.head_only).then_some(owner)
}

fn abstract_addr(name: &str) -> io::Result<SocketAddrUnix> {
    Ok(SocketAddrUnix::new_abstract_name(name.as_bytes())?)
}

fn seqpacket() -> io::Result<OwnedFd> {
    let flags = SocketFlags::NONBLOCK | SocketFlags::CLOEXEC;
    Ok(rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        flags,
        None,
    )?)
}

impl Handoff {
    /// The handoff side of reactor `reactor` of worker `me`; reactor 0 also
    /// listens for the other workers.
    pub(super) fn new(me: Membership, reactor: u16, registry: &Registry) -> io::Result<Self> {
        let listener = if reactor == 0 {
            let sock = seqpacket()?;
            rustix::net::bind(
                &sock,
                &abstract_addr(&socket_name(me.group, me.index, "handoff"))?,
            )?;
            rustix::net::listen(&sock, 1024)?;
            registry.register(
                &mut SourceFd(&sock.as_raw_fd()),
                Token(HANDOFF_TOKENS),
                Interest::READABLE,
            )?;
            Some(sock)
        } else {
            None
        };
        Ok(Self {
            me,
            listener,
            inbound: Slab::new(),
            peers: (0..me.workers).map(|_| Peer::default()).collect(),
            retry_at: None,
            recv_buf: vec![0; MAX_INPUT],
        })
    }

    /// Sends `parcel` to worker `owner` now, or queues it for the retry.
    pub(super) fn send(&mut self, owner: usize, parcel: Parcel) {
        let peer = &mut self.peers[owner];
        if peer.queue.is_empty() && self.me.try_send(owner, &mut peer.sock, &parcel) {
            return;
        }
        peer.queue.push_back(parcel);
        self.retry_at.get_or_insert_with(|| Instant::now() + RETRY);
    }

    /// When the queued parcels are next retried.
    pub(super) fn next_retry(&self) -> Option<Instant> {
        self.retry_at
    }

    /// Retries every queued parcel, in order per peer.
    pub(super) fn retry(&mut self, now: Instant) {
        if self.retry_at.is_none_or(|at| at > now) {
            return;
        }
        let mut left = false;
        for (owner, peer) in self.peers.iter_mut().enumerate() {
            while let Some(parcel) = peer.queue.front() {
                if !self.me.try_send(owner, &mut peer.sock, parcel) {
                    break;
                }
                peer.queue.pop_front();
            }
            left |= !peer.queue.is_empty();
        }
        self.retry_at = left.then(|| now + RETRY);
    }

    /// Handles readiness of handoff token `token`: accepts peers on the
    /// listener, or reads parcels from a peer into `parcels`. Returns how
    /// many arrived without their descriptor (the kernel drops it when this
    /// process is out of descriptors).
    pub(super) fn on_event(
        &mut self,
        token: usize,
        registry: &Registry,
        parcels: &mut Vec<Parcel>,
    ) -> u64 {
        if token == HANDOFF_TOKENS {
            self.accept_peers(registry);
            return 0;
        }
        let key = token - HANDOFF_TOKENS - 1;
        let Some(sock) = self.inbound.get(key) else {
            return 0;
        };
        let mut lost = 0;
        loop {
            let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
            let mut control = RecvAncillaryBuffer::new(&mut space);
            let mut iov = [IoSliceMut::new(&mut self.recv_buf)];
            let flags = RecvFlags::DONTWAIT | RecvFlags::CMSG_CLOEXEC;
            match rustix::net::recvmsg(sock, &mut iov, &mut control, flags) {
                Ok(msg) if msg.bytes == 0 => {
                    // The peer's reactor is gone (its worker restarted).
                    let sock = self.inbound.remove(key);
                    let _ = registry.deregister(&mut SourceFd(&sock.as_raw_fd()));
                    return lost;
                }
                Ok(msg) => {
                    let head = self.recv_buf[..msg.bytes.min(self.recv_buf.len())].to_vec();
                    let fd = control.drain().find_map(|m| match m {
                        RecvAncillaryMessage::ScmRights(mut fds) => fds.next(),
                        _ => None,
                    });
                    match fd {
                        Some(fd) => parcels.push(Parcel { fd, head }),
                        None => lost += 1,
                    }
                }
                Err(rustix::io::Errno::INTR) => {}
                Err(_) => return lost,
            }
        }
    }

    fn accept_peers(&mut self, registry: &Registry) {
        let Some(listener) = &self.listener else {
            return;
        };
        let flags = SocketFlags::NONBLOCK | SocketFlags::CLOEXEC;
        while let Ok(sock) = rustix::net::accept_with(listener, flags) {
            let entry = self.inbound.vacant_entry();
            let token = Token(HANDOFF_TOKENS + 1 + entry.key());
            if registry
                .register(&mut SourceFd(&sock.as_raw_fd()), token, Interest::READABLE)
                .is_ok()
            {
                entry.insert(sock);
            }
        }
    }
}

impl Reactor {
    /// Sends connection `key`, whose client has sent `sent` (a complete
    /// head first), to worker `owner`, and forgets it here.
    pub(super) fn hand_off(&mut self, key: usize, owner: usize, sent: Vec<u8>) {
        let mut conn = self.conns.remove(key);
        let _ = self.registry.deregister(conn.link.source());
        self.shared
            .stats
            .connections
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        self.local.handed_off += 1;
        let parcel = Parcel {
            fd: conn.link.into_socket().into(),
            head: sent,
        };
        if let Some(handoff) = &mut self.handoff {
            handoff.send(owner, parcel);
        }
    }

    /// Readiness of a handoff socket: takes in what other workers sent.
    pub(super) fn on_handoff(&mut self, token: usize) {
        let Some(handoff) = &mut self.handoff else {
            return;
        };
        let mut parcels = std::mem::take(&mut self.parcels);
        self.local.handoff_lost += handoff.on_event(token, &self.registry, &mut parcels);
        for parcel in parcels.drain(..) {
            self.adopt(parcel);
        }
        self.parcels = parcels;
    }

    /// Registers a handed-in connection and serves what its client sent
    /// as if it had been read here; then reads on.
    fn adopt(&mut self, parcel: Parcel) {
        let Some(key) = self.register(mio::net::TcpStream::from(parcel.fd), None) else {
            return;
        };
        self.local.handed_in += 1;
        self.conns[key].push_input(&parcel.head);
        self.on_readable(key);
    }
}

impl Membership {
    /// One attempt to send `parcel` to `owner`, connecting first if needed;
    /// false when it must wait (the peer is busy, absent or restarting).
    fn try_send(&self, owner: usize, peer: &mut Option<OwnedFd>, parcel: &Parcel) -> bool {
        if peer.is_none() {
            *peer = self.connect(owner).ok();
        }
        let Some(sock) = peer else {
            return false;
        };
        let fds = [parcel.fd.as_fd()];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        control.push(SendAncillaryMessage::ScmRights(&fds));
        let flags = SendFlags::DONTWAIT | SendFlags::NOSIGNAL;
        match rustix::net::sendmsg(sock, &[IoSlice::new(&parcel.head)], &mut control, flags) {
            Ok(_) => true,
            Err(rustix::io::Errno::AGAIN) => false,
            Err(_) => {
                // The peer went away (restarted): connect again next time.
                *peer = None;
                false
            }
        }
    }

    fn connect(&self, owner: usize) -> io::Result<OwnedFd> {
        let sock = seqpacket()?;
        let addr = abstract_addr(&socket_name(self.group, owner, "handoff"))?;
        rustix::net::connect(&sock, &addr)?;
        Ok(sock)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn member(index: usize, group: u32) -> Membership {
        Membership {
            index,
            workers: 2,
            group,
        }
    }

    #[test]
    fn a_socket_and_its_head_reach_the_owner() {
        let group = 4_000_000_000 - std::process::id();
        let mut poll = mio::Poll::new().unwrap();
        let mut owner = Handoff::new(member(1, group), 0, poll.registry()).unwrap();
        let other = mio::Poll::new().unwrap();
        let mut sender = Handoff::new(member(0, group), 1, other.registry()).unwrap();

        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        sender.send(
            1,
            Parcel {
                fd: accepted.into(),
                head: b"GET /test/1 HTTP/1.1\r\n\r\n".to_vec(),
            },
        );
        assert!(sender.next_retry().is_none(), "sent at once");

        // The owner accepts the peer, then reads the parcel.
        let mut parcels = Vec::new();
        let mut events = mio::Events::with_capacity(8);
        let deadline = Instant::now() + Duration::from_secs(5);
        while parcels.is_empty() {
            assert!(Instant::now() < deadline, "no parcel arrived");
            poll.poll(&mut events, Some(Duration::from_millis(100)))
                .unwrap();
            let tokens: Vec<usize> = events.iter().map(|e| e.token().0).collect();
            for t in tokens {
                assert_eq!(owner.on_event(t, poll.registry(), &mut parcels), 0);
            }
        }
        let parcel = parcels.pop().unwrap();
        assert_eq!(parcel.head, b"GET /test/1 HTTP/1.1\r\n\r\n");
        // The received descriptor is the same connection.
        let mut moved = std::net::TcpStream::from(parcel.fd);
        moved.set_nonblocking(false).unwrap();
        moved.write_all(b"hello").unwrap();
        let mut got = [0; 5];
        client.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hello");
    }

    #[test]
    fn a_parcel_for_an_absent_peer_waits_instead_of_being_lost() {
        let group = 3_000_000_000 - std::process::id();
        let poll = mio::Poll::new().unwrap();
        let mut sender = Handoff::new(member(0, group), 1, poll.registry()).unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let _client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        let parcel = Parcel {
            fd: accepted.into(),
            head: b"GET /test/1 HTTP/1.1\r\n\r\n".to_vec(),
        };
        sender.send(1, parcel);
        assert!(sender.next_retry().is_some());
        sender.retry(Instant::now() + RETRY);
        assert_eq!(sender.peers[1].queue.len(), 1, "still waiting");

        // The owner comes up: the retry delivers.
        let owner_poll = mio::Poll::new().unwrap();
        let _owner = Handoff::new(member(1, group), 0, owner_poll.registry()).unwrap();
        sender.retry(Instant::now() + RETRY * 2);
        assert!(sender.peers[1].queue.is_empty());
        assert!(sender.next_retry().is_none());
    }
}
