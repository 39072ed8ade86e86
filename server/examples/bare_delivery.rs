//! The throughput floor of delivery: the least a server can do to carry
//! `delivery`'s messages. It takes the same `/test/{id}` connections and
//! the same `POST /send` batches as comet-server (and answers `/stats`
//! with the count logged in, which is all the client asks), and writes
//! the messages to their ids' sockets from the thread that read the
//! batches: no router, no reactor, no second thread. Like comet-server's
//! reactors when they are behind, it writes what one socket has waiting in
//! one write: messages gather per socket until [`GATHER`] are waiting (a
//! reactor's backlog limit) or the client pauses for a millisecond, then
//! every socket with some gets one write. What the same client receives
//! from it per second is what writing to those sockets costs on this
//! machine at that moment, so `server/benches/delivery.sh` gives
//! comet-server's rate as a share of it.
//!
//! ```text
//! bare_delivery --listen 127.0.0.1:18022 --admin 127.0.0.1:18023 --conns 10000
//! ```
//! It prints `listening` once both listeners are bound and serves until it
//! is killed. Writes block: a subscriber that does not read stalls it,
//! which the bench client never does.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use c1m_common::{parse_batch, StatsSnapshot};
use c1m_http::{parse_request, write_chunk, HeadLimits, HeaderSlots};

#[path = "support/arg.rs"]
mod arg;
use arg::arg;

const LIMITS: HeadLimits = HeadLimits::new(16 * 1024, 32);

/// Messages waiting before they are written: comet-server's per-reactor
/// backlog limit (`router/backlog.rs`).
const GATHER: usize = 64 * 1024;

/// The subscribers' sockets by id.
type Subscribers = Arc<RwLock<Vec<Option<TcpStream>>>>;

fn main() -> std::io::Result<()> {
    let _ = c1m_common::raise_nofile_to_hard();
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| {
        let i = args.iter().position(|a| a == flag);
        i.and_then(|i| args.get(i + 1))
            .unwrap_or_else(|| panic!("{flag} ADDR is required"))
            .clone()
    };
    let conns = arg("--conns", 10_000).clamp(1, 19_000) as usize;
    let subscribers = TcpListener::bind(value("--listen"))?;
    let admin = TcpListener::bind(value("--admin"))?;
    println!("listening");
    let sockets: Subscribers = Arc::new(RwLock::new((0..conns).map(|_| None).collect()));
    {
        let sockets = sockets.clone();
        std::thread::spawn(move || take_subscribers(subscribers, sockets));
    }
    for stream in admin.incoming() {
        let sockets = sockets.clone();
        std::thread::spawn(move || serve_admin(stream?, &sockets));
    }
    Ok(())
}

/// Answers each `/test/{id}` with a chunked head and a welcome chunk and
/// keeps the socket under its id.
fn take_subscribers(listener: TcpListener, sockets: Subscribers) -> std::io::Result<()> {
    for stream in listener.incoming() {
        let mut stream = stream?;
        stream.set_nodelay(true)?;
        let mut input = Vec::new();
        let Some((path, _)) = read_request(&mut stream, &mut input, &mut || {})? else {
            continue;
        };
        let id = path
            .strip_prefix("/test/")
            .and_then(|id| id.parse::<usize>().ok());
        let mut sockets = sockets.write().unwrap_or_else(|p| p.into_inner());
        let Some(slot) = id.and_then(|id| sockets.get_mut(id)) else {
            continue;
        };
        let mut out = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        write_chunk(&mut out, b"welcome\n");
        stream.write_all(&out)?;
        *slot = Some(stream);
    }
    Ok(())
}

/// One admin connection: `GET /stats` and `POST /send`, keep-alive.
fn serve_admin(mut stream: TcpStream, sockets: &Subscribers) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    // A pause of the client is when what is waiting goes out.
    stream.set_read_timeout(Some(Duration::from_millis(1)))?;
    let mut input = Vec::new();
    let mut waiting: Vec<Vec<u8>> = Vec::new();
    let mut count = 0;
    let write_waiting = |waiting: &mut Vec<Vec<u8>>, count: &mut usize| {
        let sockets = sockets.read().unwrap_or_else(|p| p.into_inner());
        for (out, socket) in waiting.iter_mut().zip(sockets.iter()) {
            if let (false, Some(socket)) = (out.is_empty(), socket) {
                let _ = (&*socket).write_all(out);
                out.clear();
            }
        }
        *count = 0;
    };
    loop {
        let request = read_request(&mut stream, &mut input, &mut || {
            write_waiting(&mut waiting, &mut count)
        })?;
        let Some((path, body)) = request else {
            break;
        };
        let answer = if path == "/send" {
            let conns = sockets.read().unwrap_or_else(|p| p.into_inner()).len();
            waiting.resize_with(conns, Vec::new);
            let lines = parse_batch(&body, conns as u64 - 1, |id, message| {
                write_chunk(&mut waiting[id as usize], message);
                count += 1;
            });
            if count >= GATHER {
                write_waiting(&mut waiting, &mut count);
            }
            format!("{{\"accepted\":{}}}", lines.accepted)
        } else {
            let sockets = sockets.read().unwrap_or_else(|p| p.into_inner());
            let logged_in = sockets.iter().filter(|s| s.is_some()).count() as u64;
            serde_json::to_string(&StatsSnapshot {
                logged_in,
                ..StatsSnapshot::default()
            })
            .expect("a snapshot serializes")
        };
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            answer.len()
        );
        stream.write_all(head.as_bytes())?;
        stream.write_all(answer.as_bytes())?;
    }
    write_waiting(&mut waiting, &mut count);
    Ok(())
}

/// Reads the next request from `stream` (what follows it stays in
/// `input`): its path and body, or `None` at the end of the connection.
/// `idle` runs each time a read times out.
fn read_request(
    stream: &mut TcpStream,
    input: &mut Vec<u8>,
    idle: &mut dyn FnMut(),
) -> std::io::Result<Option<(String, Vec<u8>)>> {
    let mut buf = [0u8; 64 * 1024];
    // Some(n): n bytes make the request whole.
    let mut whole = None;
    loop {
        if whole.is_none() {
            let mut slots = HeaderSlots::new();
            match parse_request(input, &LIMITS, &mut slots) {
                Ok(Some(head)) => {
                    // The bench client frames its bodies with Content-Length.
                    let body = match head.body {
                        c1m_http::BodyFraming::Length(n) => n as usize,
                        _ => 0,
                    };
                    whole = Some((head.path.to_string(), head.len, body));
                }
                Ok(None) => {}
                Err(_) => return Ok(None),
            }
        }
        if let Some((path, head, body)) = &whole {
            if input.len() >= head + body {
                let request = (path.clone(), input[*head..head + body].to_vec());
                input.drain(..head + body);
                return Ok(Some(request));
            }
        }
        match stream.read(&mut buf) {
            Ok(0) => return Ok(None),
            Ok(n) => input.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => idle(),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}
