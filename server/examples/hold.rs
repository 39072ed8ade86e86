//! Bench client: opens N idle `/test/{id}` connections and holds them
//! for `--hold-secs` (default 600) or until it is killed. It never
//! reads: the welcome chunk waits in the kernel, so the client costs the
//! server nothing but the connection itself.
//!
//! `cargo run --release --example hold -- --addr 127.0.0.1:18000 --conns 9500 --first-id 0 --source 127.0.0.2`
//! prints `held N` once every connection is open and its request sent.

use std::io::Write;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Duration;

fn main() {
    let _ = c1m_common::raise_nofile_to_hard();
    let mut addr: SocketAddr = "127.0.0.1:8000".parse().unwrap();
    let (mut conns, mut first_id, mut hold_secs) = (1000u64, 0u64, 600u64);
    let mut source: Option<IpAddr> = None;
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let value = pair.get(1).map(String::as_str).unwrap_or("");
        match pair[0].as_str() {
            "--addr" => addr = value.parse().expect("--addr"),
            "--conns" => conns = c1m_common::parse_count(value).expect("--conns"),
            "--first-id" => first_id = value.parse().expect("--first-id"),
            "--source" => source = Some(value.parse().expect("--source")),
            "--hold-secs" => hold_secs = value.parse().expect("--hold-secs"),
            other => panic!("unknown argument {other}"),
        }
    }
    let mut held = Vec::with_capacity(conns as usize);
    for id in first_id..first_id + conns {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket");
        if let Some(ip) = source {
            socket
                .bind(&SocketAddr::new(ip, 0).into())
                .expect("bind source");
        }
        socket.connect(&addr.into()).expect("connect");
        let mut stream: TcpStream = socket.into();
        let mut request = Vec::new();
        let path = format_args!("/test/{id}");
        c1m_http::write_request_head(&mut request, "GET", &path, &"c1m", &[], None);
        stream.write_all(&request).expect("request");
        held.push(stream);
    }
    println!("held {}", held.len());
    std::thread::sleep(Duration::from_secs(hold_secs));
}
