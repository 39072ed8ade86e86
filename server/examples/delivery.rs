//! Bench client for delivery: holds N `/test/{id}` connections (one mio
//! thread), sends envelopes (`c1m_common::envelope`) to random ids through
//! `POST /send` batches on one keep-alive admin connection, and measures on
//! the receiving side how many arrive per second and how late (receive time
//! minus the envelope's `sent_us`, both on this machine's clock).
//!
//! ```text
//! delivery --addr 127.0.0.1:18000 --admin 127.0.0.1:18001 --conns 10000 --secs 5 --rate 0      # flood
//! delivery --addr 127.0.0.1:18000 --admin 127.0.0.1:18001 --conns 10000 --secs 10 --rate 16666 # paced
//! ```
//!
//! Prints one `RESULT` line: sent, received, delivered msg/s, latency
//! percentiles in microseconds.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use c1m_common::unix_us_now;
use c1m_common::{encode_envelope, push_batch_line, scan_envelopes, Header, StatsSnapshot};
use c1m_http::{parse_response, write_request_head, BodyDecoder, HeadLimits, HeaderSlots};
use hdrhistogram::Histogram;
use mio::{Events, Interest, Poll, Token};
use rand::Rng;

struct Opts {
    addr: SocketAddr,
    admin: SocketAddr,
    conns: u64,
    secs: f64,
    rate: u64,
    batch: usize,
    source: Option<IpAddr>,
}

fn opts() -> Opts {
    let mut o = Opts {
        addr: "127.0.0.1:8000".parse().unwrap(),
        admin: "127.0.0.1:8001".parse().unwrap(),
        conns: 10_000,
        secs: 5.0,
        rate: 0,
        batch: 1000,
        source: None,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let v = pair.get(1).map(String::as_str).unwrap_or("");
        match pair[0].as_str() {
            "--addr" => o.addr = v.parse().expect("--addr"),
            "--admin" => o.admin = v.parse().expect("--admin"),
            "--conns" => o.conns = c1m_common::parse_count(v).expect("--conns"),
            "--secs" => o.secs = v.parse().expect("--secs"),
            "--rate" => o.rate = c1m_common::parse_count(v).expect("--rate"),
            "--batch" => o.batch = v.parse().expect("--batch"),
            "--source" => o.source = Some(v.parse().expect("--source")),
            other => panic!("unknown argument {other}"),
        }
    }
    o
}

/// What the receiver thread measured.
struct Received {
    count: u64,
    /// Worst latency per second of the run, by send time.
    worst_per_sec: Vec<u64>,
    latency_us: Histogram<u64>,
    last_at: Instant,
}

fn connect_all(o: &Opts, poll: &Poll) -> Vec<mio::net::TcpStream> {
    (0..o.conns)
        .map(|id| {
            let socket =
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            if let Some(ip) = o.source {
                socket
                    .bind(&SocketAddr::new(ip, 0).into())
                    .expect("bind source");
            }
            socket.connect(&o.addr.into()).expect("connect");
            let mut s: TcpStream = socket.into();
            let mut request = Vec::new();
            write_request_head(
                &mut request,
                "GET",
                &format_args!("/test/{id}"),
                &"c1m",
                &[],
                None,
            );
            s.write_all(&request).unwrap();
            s.set_nonblocking(true).unwrap();
            let mut s = mio::net::TcpStream::from_std(s);
            poll.registry()
                .register(&mut s, Token(id as usize), Interest::READABLE)
                .unwrap();
            s
        })
        .collect()
}

fn receive(
    mut poll: Poll,
    conns: Vec<mio::net::TcpStream>,
    stop: Arc<AtomicBool>,
    got: Arc<AtomicU64>,
    welcomed: Arc<AtomicU64>,
) -> Received {
    let mut tails: Vec<Vec<u8>> = vec![Vec::new(); conns.len()];
    let mut greeted = vec![false; conns.len()];
    let mut buf = vec![0u8; 65536];
    let start_us = unix_us_now();
    let mut events = Events::with_capacity(1024);
    let mut r = Received {
        count: 0,
        worst_per_sec: Vec::new(),
        latency_us: Histogram::new_with_bounds(1, 60_000_000, 3).unwrap(),
        last_at: Instant::now(),
    };
    while !stop.load(Relaxed) {
        poll.poll(&mut events, Some(Duration::from_millis(50)))
            .unwrap();
        for ev in events.iter() {
            let i = ev.token().0;
            loop {
                match (&conns[i]).read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        let now = unix_us_now();
                        if !greeted[i] {
                            // The first bytes are the head and welcome chunk.
                            greeted[i] = true;
                            welcomed.fetch_add(1, Relaxed);
                        }
                        let tail = &mut tails[i];
                        tail.extend_from_slice(&buf[..n]);
                        let mut found = 0;
                        let used = scan_envelopes(tail, |e| {
                            found += 1;
                            let late = now.saturating_sub(e.header.sent_us).max(1);
                            let _ = r.latency_us.record(late);
                            let sec =
                                (e.header.sent_us.saturating_sub(start_us) / 1_000_000) as usize;
                            if sec < 3600 {
                                if r.worst_per_sec.len() <= sec {
                                    r.worst_per_sec.resize(sec + 1, 0);
                                }
                                r.worst_per_sec[sec] = r.worst_per_sec[sec].max(late);
                            }
                        });
                        tail.drain(..used);
                        if found > 0 {
                            r.count += found;
                            r.last_at = Instant::now();
                            got.fetch_add(found, Relaxed);
                        }
                    }
                    Err(_) => break,
                }
            }
        }
    }
    r
}

/// One keep-alive admin connection sending `POST /send` batches.
struct Sender {
    stream: TcpStream,
    body: Vec<u8>,
    response: Vec<u8>,
    seqs: Vec<u64>,
}

impl Sender {
    fn send_batch(&mut self, n: usize, rng: &mut impl Rng) {
        self.body.clear();
        let ids = self.seqs.len() as u64;
        for _ in 0..n {
            let id = rng.random_range(0..ids);
            self.seqs[id as usize] += 1;
            let header = Header {
                id,
                generator: 1,
                seq: self.seqs[id as usize],
                sent_us: unix_us_now(),
            };
            push_batch_line(&mut self.body, id, |out| {
                encode_envelope(&header, b"0123456789abcdef", out)
            })
            .expect("an envelope of letters and digits holds no newline");
        }
        self.response.clear();
        write_request_head(
            &mut self.response,
            "POST",
            &"/send",
            &"c1m",
            &[],
            Some(self.body.len()),
        );
        self.stream.write_all(&self.response).unwrap();
        self.stream.write_all(&self.body).unwrap();
        // Read one answer: it must be a 200, its body is not needed.
        self.response.clear();
        let (status, body) = read_answer(&mut self.stream, &mut self.response, "POST");
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    }
}

/// Reads one answer to a `method` request from `stream` into `buf`: its
/// status and de-framed body.
fn read_answer(stream: &mut TcpStream, buf: &mut Vec<u8>, method: &str) -> (u16, Vec<u8>) {
    const LIMITS: HeadLimits = HeadLimits::new(64 * 1024, 32);
    let mut chunk = [0u8; 4096];
    let mut more = |buf: &mut Vec<u8>| {
        let n = stream.read(&mut chunk).unwrap();
        buf.extend_from_slice(&chunk[..n]);
        n > 0
    };
    let (status, framing, mut at) = loop {
        let mut slots = HeaderSlots::new();
        if let Some(head) = parse_response(buf, &LIMITS, method, &mut slots).unwrap() {
            break (head.status, head.body, head.len);
        }
        assert!(more(buf), "closed before the answer's head");
    };
    let mut decoder = BodyDecoder::new(framing).unwrap();
    let mut body = Vec::new();
    loop {
        decoder
            .decode(&buf[at..], |b| body.extend_from_slice(b))
            .unwrap();
        at = buf.len();
        if decoder.is_done() {
            return (status, body);
        }
        if !more(buf) {
            decoder.finish().unwrap();
            return (status, body);
        }
    }
}

fn main() {
    let _ = c1m_common::raise_nofile_to_hard();
    let o = opts();
    let poll = Poll::new().unwrap();
    let conns = connect_all(&o, &poll);
    // Wait until the server has logged every connection in.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let stats: StatsSnapshot = serde_json::from_str(&http_get(o.admin, "/stats")).unwrap();
        if stats.logged_in == o.conns {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "connections not all logged in: {stats:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let got = Arc::new(AtomicU64::new(0));
    // Scheduler noise on this machine during the run: how late a thread
    // that sleeps 1 ms wakes up. Latency on a shared box cannot be better.
    let noise = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut late = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
            while !stop.load(Relaxed) {
                let t = Instant::now();
                std::thread::sleep(Duration::from_millis(1));
                let _ = late.record((t.elapsed().as_micros() as u64).saturating_sub(1000).max(1));
            }
            late
        })
    };
    let welcomed = Arc::new(AtomicU64::new(0));
    let receiver = {
        let (stop, got, welcomed) = (stop.clone(), got.clone(), welcomed.clone());
        std::thread::spawn(move || receive(poll, conns, stop, got, welcomed))
    };
    // Start sending only once every welcome is read, so the first messages
    // do not wait behind 10,000 welcome reads in this client.
    while welcomed.load(Relaxed) < o.conns {
        assert!(Instant::now() < deadline, "welcomes not all received");
        std::thread::sleep(Duration::from_millis(10));
    }
    let stream = TcpStream::connect(o.admin).unwrap();
    stream.set_nodelay(true).unwrap();
    let mut sender = Sender {
        stream,
        body: Vec::new(),
        response: Vec::new(),
        seqs: vec![0; o.conns as usize],
    };
    let mut rng = rand::rng();
    let start = Instant::now();
    let run_for = Duration::from_secs_f64(o.secs);
    let mut sent: u64 = 0;
    while start.elapsed() < run_for {
        let n = if o.rate == 0 {
            o.batch
        } else {
            // Paced: send what is due, at most one batch, every millisecond.
            let due = (start.elapsed().as_secs_f64() * o.rate as f64) as u64;
            if due <= sent {
                std::thread::sleep(Duration::from_micros(500));
                continue;
            }
            ((due - sent) as usize).min(o.batch)
        };
        sender.send_batch(n, &mut rng);
        sent += n as u64;
    }
    let send_secs = start.elapsed().as_secs_f64();
    // Let the last messages arrive (bounded).
    let drain_deadline = Instant::now() + Duration::from_secs(5);
    while got.load(Relaxed) < sent && Instant::now() < drain_deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Relaxed);
    let r = receiver.join().unwrap();
    let noise = noise.join().unwrap();
    if std::env::var_os("DELIVERY_PER_SECOND").is_some() {
        eprintln!("worst latency per second (us): {:?}", r.worst_per_sec);
    }
    let span = r.last_at.duration_since(start).as_secs_f64().max(send_secs);
    let h = &r.latency_us;
    println!(
        "RESULT mode={} conns={} sent={} received={} send_rate={:.0}/s delivered_rate={:.0}/s latency_us p50={} p99={} p999={} max={} sleep_oversleep_us p99={}",
        if o.rate == 0 { "flood".to_string() } else { format!("paced@{}", o.rate) },
        o.conns,
        sent,
        r.count,
        sent as f64 / send_secs,
        r.count as f64 / span,
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.99),
        h.value_at_quantile(0.999),
        h.max(),
        noise.value_at_quantile(0.99)
    );
}

/// The body of `GET path`, as text.
fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    let mut buf = Vec::new();
    write_request_head(
        &mut buf,
        "GET",
        &path,
        &"c1m",
        &[("Connection", &"close")],
        None,
    );
    s.write_all(&buf).unwrap();
    buf.clear();
    let (_, body) = read_answer(&mut s, &mut buf, "GET");
    String::from_utf8_lossy(&body).into_owned()
}
