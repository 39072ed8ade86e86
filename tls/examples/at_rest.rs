//! What a held TLS session costs at rest, allocation by allocation, for
//! rustls's buffered connections and for this crate's [`Session`]: N client
//! and server sessions handshake over in-memory socket pairs, exchange one
//! request and one chunk as a held `/test` stream does, and then every live
//! heap allocation is attributed to the side whose call made it (a header in
//! front of each allocation carries the tag). Prints bytes per session and
//! the allocation sizes that make them up.
//!
//! `cargo run --release -p c1m-tls --example at_rest -- [N]`
//!
//! (The cipher suite does not change the figure: ring's AEAD key is one
//! size whatever the algorithm; ChaCha20-Poly1305 measured the same.)

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use rustls::client::UnbufferedClientConnection;
use rustls::pki_types::ServerName;
use rustls::server::UnbufferedServerConnection;
use rustls::{ClientConfig, ClientConnection, ServerConfig, ServerConnection};

use c1m_tls::{ClientSession, Records, ServerSession, Session, MAX_RECORD_PLAINTEXT};

#[path = "../tests/support/certs.rs"]
#[allow(unreachable_pub)]
mod certs;
#[path = "../tests/support/pipe.rs"]
#[allow(dead_code, unreachable_pub)]
mod pipe;
use certs::configs;
use pipe::{pair, End};

/// Which side a live allocation belongs to.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
#[repr(u8)]
enum Tag {
    Other = 0,
    Server = 1,
    Client = 2,
}

thread_local! {
    static TAG: Cell<Tag> = const { Cell::new(Tag::Other) };
}

/// Live bytes per tag, and (once recording) live allocation counts by size.
static LIVE: [AtomicI64; 3] = [AtomicI64::new(0), AtomicI64::new(0), AtomicI64::new(0)];
static SIZES: Mutex<Option<BTreeMap<(u8, usize), i64>>> = Mutex::new(None);

/// Each allocation gets 16 bytes in front: its size and its tag.
struct Tagged;
const HEADER: usize = 16;

// SAFETY: every allocation is System's with room for a 16-byte header in
// front, and dealloc undoes exactly what alloc did.
unsafe impl GlobalAlloc for Tagged {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let tag = TAG.with(|t| t.get());
        let outer = Layout::from_size_align(layout.size() + HEADER, layout.align().max(HEADER))
            .expect("layout");
        // SAFETY: outer has a non-zero size.
        let base = unsafe { System.alloc(outer) };
        if base.is_null() {
            return base;
        }
        // SAFETY: the header lies inside the allocation, 16-byte aligned.
        unsafe {
            (base as *mut usize).write(layout.size());
            base.add(8).write(tag as u8);
        }
        LIVE[tag as usize].fetch_add(layout.size() as i64, Ordering::Relaxed);
        if tag != Tag::Other {
            record(tag, layout.size(), 1);
        }
        // SAFETY: HEADER < outer.size().
        unsafe { base.add(HEADER) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: ptr came from alloc above, HEADER bytes after its base.
        let base = unsafe { ptr.sub(HEADER) };
        // SAFETY: the tag byte alloc wrote, inside the same allocation.
        let tag = unsafe { base.add(8).read() };
        LIVE[tag as usize].fetch_sub(layout.size() as i64, Ordering::Relaxed);
        if tag != Tag::Other as u8 {
            record_raw(tag, layout.size(), -1);
        }
        let outer = Layout::from_size_align(layout.size() + HEADER, layout.align().max(HEADER))
            .expect("layout");
        // SAFETY: allocated with this layout by System.
        unsafe { System.dealloc(base, outer) }
    }
}

fn record(tag: Tag, size: usize, delta: i64) {
    record_raw(tag as u8, size, delta)
}

/// Counts by size, with the tag cleared while the map itself allocates.
fn record_raw(tag: u8, size: usize, delta: i64) {
    let was = TAG.with(|t| t.replace(Tag::Other));
    if let Ok(mut sizes) = SIZES.try_lock() {
        if let Some(map) = sizes.as_mut() {
            *map.entry((tag, size)).or_insert(0) += delta;
        }
    }
    TAG.with(|t| t.set(was));
}

#[global_allocator]
static ALLOC: Tagged = Tagged;

/// Runs `f` with its allocations tagged `tag`.
fn as_side<R>(tag: Tag, f: impl FnOnce() -> R) -> R {
    TAG.with(|t| t.set(tag));
    let r = f();
    TAG.with(|t| t.set(Tag::Other));
    r
}

const REQUEST: &[u8] = b"GET /test/1 HTTP/1.1\r\nHost: localhost\r\n\r\n";
const ANSWER: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n";

/// A server and a client at rest after one request and one answer.
trait HeldPair: Sized {
    fn open(server: &Arc<ServerConfig>, client: &Arc<ClientConfig>) -> Self;
    fn cipher_suite(&self) -> String;
}

/// rustls's buffered connections, driven over the pipes.
struct Buffered {
    server: (ServerConnection, End),
    client: (ClientConnection, End),
}

/// Moves a buffered connection's ciphertext both ways; plaintext it reads goes to `got`.
fn step_buffered<D>(conn: &mut rustls::ConnectionCommon<D>, end: &mut End, got: &mut Vec<u8>) {
    loop {
        match conn.read_tls(end) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                conn.process_new_packets().expect("process");
            }
        }
    }
    let mut buf = [0u8; 4096];
    while let Ok(n) = conn.reader().read(&mut buf) {
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    while conn.wants_write() {
        conn.write_tls(end).expect("write_tls");
    }
}

impl HeldPair for Buffered {
    fn open(server: &Arc<ServerConfig>, client: &Arc<ClientConfig>) -> Self {
        let (server_end, client_end) = pair();
        let name = ServerName::try_from("localhost").expect("name");
        let mut pair = Buffered {
            server: (
                as_side(Tag::Server, || ServerConnection::new(server.clone())).expect("server"),
                server_end,
            ),
            client: (
                as_side(Tag::Client, || ClientConnection::new(client.clone(), name))
                    .expect("client"),
                client_end,
            ),
        };
        as_side(Tag::Client, || pair.client.0.writer().write_all(REQUEST)).expect("request");
        let (mut request, mut answer) = (Vec::new(), Vec::new());
        for _ in 0..50 {
            as_side(Tag::Client, || {
                step_buffered(&mut pair.client.0, &mut pair.client.1, &mut answer)
            });
            as_side(Tag::Server, || {
                step_buffered(&mut pair.server.0, &mut pair.server.1, &mut request)
            });
            if request == REQUEST && answer.is_empty() && !pair.server.0.wants_write() {
                as_side(Tag::Server, || pair.server.0.writer().write_all(ANSWER)).expect("answer");
            }
            if answer == ANSWER {
                return pair;
            }
        }
        panic!("the buffered pair did not finish its exchange");
    }

    fn cipher_suite(&self) -> String {
        format!(
            "{:?}",
            self.server.0.negotiated_cipher_suite().map(|s| s.suite())
        )
    }
}

/// This crate's sessions, driven over the pipes.
struct Sessions {
    server: (ServerSession, End),
    client: (ClientSession, End),
}

/// Reads what the pipe holds into `got` and writes what the session holds.
fn step_session<C: Records>(session: &mut Session<C>, end: &mut End, got: &mut Vec<u8>) {
    let mut buf = vec![0u8; MAX_RECORD_PLAINTEXT];
    loop {
        match session.read(end, &mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("read: {e}"),
        }
    }
    session.flush(end).expect("flush");
}

impl HeldPair for Sessions {
    fn open(server: &Arc<ServerConfig>, client: &Arc<ClientConfig>) -> Self {
        let (server_end, client_end) = pair();
        let name = ServerName::try_from("localhost").expect("name");
        let server = as_side(Tag::Server, || {
            UnbufferedServerConnection::new(server.clone())
        })
        .expect("server");
        let client = as_side(Tag::Client, || {
            UnbufferedClientConnection::new(client.clone(), name)
        })
        .expect("client");
        let mut pair = Sessions {
            server: (Session::new(server), server_end),
            client: (Session::new(client), client_end),
        };
        as_side(Tag::Client, || {
            pair.client.0.write(&mut pair.client.1, REQUEST)
        })
        .expect("request");
        let (mut request, mut answer) = (Vec::new(), Vec::new());
        for _ in 0..50 {
            as_side(Tag::Server, || {
                step_session(&mut pair.server.0, &mut pair.server.1, &mut request)
            });
            if request == REQUEST && answer.is_empty() && !pair.server.0.wants_write() {
                as_side(Tag::Server, || {
                    pair.server.0.write(&mut pair.server.1, ANSWER)
                })
                .expect("answer");
            }
            as_side(Tag::Client, || {
                step_session(&mut pair.client.0, &mut pair.client.1, &mut answer)
            });
            if answer == ANSWER {
                return pair;
            }
        }
        panic!("the sessions did not finish their exchange");
    }

    fn cipher_suite(&self) -> String {
        format!(
            "{:?}",
            self.server
                .0
                .connection()
                .negotiated_cipher_suite()
                .map(|s| s.suite())
        )
    }
}

/// Opens `n` pairs and prints what the server and client sides hold.
fn measure<P: HeldPair>(
    what: &str,
    n: usize,
    server: &Arc<ServerConfig>,
    client: &Arc<ClientConfig>,
    inline: [usize; 2],
) {
    // One pair first, so one-time allocations (caches, tables) are not counted.
    drop(P::open(server, client));
    *SIZES.lock().expect("sizes") = Some(BTreeMap::new());
    let before = [1, 2].map(|i| LIVE[i].load(Ordering::Relaxed));
    let pairs: Vec<_> = (0..n).map(|_| P::open(server, client)).collect();
    let sizes = SIZES.lock().expect("sizes").take().expect("map");
    let after = [1, 2].map(|i| LIVE[i].load(Ordering::Relaxed));
    println!("{what}: {n} pairs at rest, {}", pairs[0].cipher_suite());
    for (i, side) in ["server", "client"].iter().enumerate() {
        let heap = (after[i] - before[i]) / n as i64;
        println!(
            "  {side}: {} B = {heap} B of heap + {} B of the session itself (boxed by the reactors)",
            heap + inline[i] as i64,
            inline[i]
        );
        for ((tag, size), count) in &sizes {
            if *tag == i as u8 + 1 && *count >= n as i64 / 2 {
                println!(
                    "    {size:>6} B x {:.2} per session",
                    *count as f64 / n as f64
                );
            }
        }
    }
    drop(pairs);
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map_or(1000, |s| s.parse().expect("N"));
    let (server, client) = configs();
    measure::<Buffered>(
        "rustls buffered",
        n,
        &server,
        &client,
        [
            std::mem::size_of::<ServerConnection>(),
            std::mem::size_of::<ClientConnection>(),
        ],
    );
    measure::<Sessions>(
        "c1m_tls::Session",
        n,
        &server,
        &client,
        [
            std::mem::size_of::<ServerSession>(),
            std::mem::size_of::<ClientSession>(),
        ],
    );
}
