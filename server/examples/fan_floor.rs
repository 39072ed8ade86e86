//! The floor of a broadcast: how long the kernel alone takes to carry one
//! message to N loopback connections, written by `--writers` threads (a
//! server's reactors) and read by `--readers` threads of another process
//! polling their sockets (floodtest's workers). No server's `POST
//! /broadcast` to N connections can end sooner on the same machine at the
//! same moment, so `server/benches/friends.sh` prints it beside the
//! server's figure.
//!
//! ```text
//! fan_floor --conns 19000 --writers 2 --readers 2 --runs 3
//! FAN_FLOOR conns=19000 run=1 last_us=61234 p50_us=30712
//! ```
//! Each connection gets one 16-byte record per run (the send time in
//! microseconds, the run number); `last_us` is the age of the last record
//! to arrive, from the moment the writers started. Two processes, because
//! one may hold at most 20,000 descriptors here: this one accepts and
//! writes, a child it starts (`--read ADDR`) connects and reads.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc;

use c1m_common::unix_us_now;
use mio::{Events, Interest, Poll, Token};

#[path = "support/arg.rs"]
mod arg;
use arg::arg;

fn main() -> std::io::Result<()> {
    let _ = c1m_common::raise_nofile_to_hard();
    let conns = arg("--conns", 19_000).clamp(1, 19_900) as usize;
    let runs = arg("--runs", 3).clamp(1, 100);
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--read") {
        let addr: SocketAddr = args[i + 1].parse().expect("--read ADDR");
        return read(addr, conns, arg("--readers", 2).clamp(1, 64) as usize, runs);
    }
    let writers = arg("--writers", 2).clamp(1, 64) as usize;
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let mut child = Command::new(std::env::current_exe()?)
        .args(["--read", &listener.local_addr()?.to_string()])
        .args(["--conns", &conns.to_string(), "--runs", &runs.to_string()])
        .args(["--readers", &arg("--readers", 2).to_string()])
        .stdout(Stdio::piped())
        .spawn()?;
    let mut sockets = Vec::with_capacity(conns);
    while sockets.len() < conns {
        let (socket, _) = listener.accept()?;
        socket.set_nodelay(true)?;
        sockets.push(socket);
    }
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    // The child says when its sockets are all registered, then after each run.
    let ready = lines.next().transpose()?.unwrap_or_default();
    assert_eq!(ready, "ready", "the reader did not start");
    let share = conns.div_ceil(writers);
    for run in 1..=runs {
        let start = unix_us_now();
        std::thread::scope(|scope| {
            for part in sockets.chunks_mut(share) {
                scope.spawn(move || {
                    let mut record = [0u8; 16];
                    record[..8].copy_from_slice(&start.to_le_bytes());
                    record[8..].copy_from_slice(&run.to_le_bytes());
                    for socket in part {
                        socket.write_all(&record).expect("write");
                    }
                });
            }
        });
        let line = lines.next().transpose()?.unwrap_or_default();
        println!("{line}");
    }
    drop(sockets);
    child.wait()?;
    Ok(())
}

/// The child: connects `conns` sockets, reads them from `readers` threads,
/// and prints one line per run once every socket has its record.
fn read(addr: SocketAddr, conns: usize, readers: usize, runs: u64) -> std::io::Result<()> {
    let mut sockets = Vec::with_capacity(conns);
    for _ in 0..conns {
        let socket = TcpStream::connect(addr)?;
        socket.set_nonblocking(true)?;
        sockets.push(mio::net::TcpStream::from_std(socket));
    }
    let (tx, rx) = mpsc::channel::<Vec<u64>>();
    let share = conns.div_ceil(readers);
    let mut threads = Vec::new();
    let mut rest = sockets;
    let (ready_tx, ready_rx) = mpsc::channel();
    while !rest.is_empty() {
        let part: Vec<mio::net::TcpStream> = rest.drain(..share.min(rest.len())).collect();
        let (tx, ready_tx) = (tx.clone(), ready_tx.clone());
        threads.push(std::thread::spawn(move || {
            poll_part(part, runs, tx, ready_tx)
        }));
    }
    for _ in 0..threads.len() {
        ready_rx.recv().expect("a reader thread ended early");
    }
    println!("ready");
    for run in 1..=runs {
        let mut ages: Vec<u64> = Vec::with_capacity(conns);
        for _ in 0..threads.len() {
            ages.extend(rx.recv().expect("a reader thread ended early"));
        }
        ages.sort_unstable();
        let last = ages.last().copied().unwrap_or(0);
        let p50 = ages.get(ages.len() / 2).copied().unwrap_or(0);
        println!("FAN_FLOOR conns={conns} run={run} last_us={last} p50_us={p50}");
        std::io::stdout().flush()?;
    }
    for t in threads {
        t.join().expect("reader thread")?;
    }
    Ok(())
}

/// One reader thread: every record's age, sent once per run.
fn poll_part(
    mut part: Vec<mio::net::TcpStream>,
    runs: u64,
    tx: mpsc::Sender<Vec<u64>>,
    ready: mpsc::Sender<()>,
) -> std::io::Result<()> {
    let mut poll = Poll::new()?;
    for (i, socket) in part.iter_mut().enumerate() {
        poll.registry()
            .register(socket, Token(i), Interest::READABLE)?;
    }
    let _ = ready.send(());
    let mut events = Events::with_capacity(1024);
    let mut ages = Vec::with_capacity(part.len());
    let mut record = [0u8; 16];
    let mut run = 1;
    while run <= runs {
        poll.poll(&mut events, None)?;
        for event in &events {
            let socket = &mut part[event.token().0];
            loop {
                // Loopback carries a 16-byte write as one segment.
                match socket.read(&mut record) {
                    Ok(16) => {
                        let sent = u64::from_le_bytes(record[..8].try_into().expect("8"));
                        ages.push(unix_us_now().saturating_sub(sent));
                    }
                    Ok(0) => return Ok(()),
                    Ok(n) => panic!("a record arrived split ({n} bytes)"),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                }
            }
        }
        if ages.len() == part.len() {
            let _ = tx.send(std::mem::take(&mut ages));
            run += 1;
        }
    }
    Ok(())
}
