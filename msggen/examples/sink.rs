//! A counting `POST /send` sink for msggen's benchmarks when no comet-server
//! is at hand: answers every batch 200 with
//! `{"accepted":..,"delivered":..,"dropped":..}` and prints, once a second,
//! the messages received in that second.
//!
//! `cargo run --release -p c1m-msggen --example sink -- 127.0.0.1:18200`
//! prints `sink: listening on ADDR` when ready; it stops on SIGINT/SIGTERM
//! with a total.

#[path = "../tests/common/sink.rs"]
mod sink;

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18200".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let behavior = sink::Behavior {
        record: false,
        ..sink::Behavior::accept()
    };
    let state = sink::spawn(listener, behavior);
    println!("sink: listening on {addr}");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut second = tokio::time::interval(Duration::from_secs(1));
    second.tick().await;
    let (mut last, mut elapsed) = (0, 0);
    loop {
        tokio::select! {
            _ = second.tick() => {
                elapsed += 1;
                let now = state.messages.load(Relaxed);
                if now > last || last > 0 {
                    println!("sink: second {elapsed} messages {} total {now}", now - last);
                }
                last = now;
            }
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
        }
    }
    println!(
        "sink: total messages {} requests {}",
        state.messages.load(Relaxed),
        state.requests.load(Relaxed)
    );
    Ok(())
}
