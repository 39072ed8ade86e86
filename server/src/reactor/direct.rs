//! A small batch written by the publisher's own thread while the reactor
//! is idle, instead of through its mailbox.
//!
//! Through the mailbox a message crosses one more thread: the publisher
//! wakes the reactor (an eventfd write) and the reactor's thread must be
//! scheduled before the socket write; on this machine that wake-up is
//! ~12-20 µs at the median and more under load, a thread nginx+nchan does
//! not cross (it writes from the event loop that read the publish). So a
//! publisher (`Router::flush`) first tries the
//! reactor's lock: between two passes the reactor holds none (it waits on
//! its `Poll` unlocked), and the publisher writes the deliveries itself,
//! with the same code the reactor would run. The reactor's thread is not
//! woken at all.
//!
//! It falls back to the mailbox, as before, when the publisher is in a
//! burst (its flushes closer than `router::DIRECT_GAP`: the reactors then
//! write in parallel while it parses the next request), when the reactor
//! is busy (the lock is taken: a pass is running), when mail is waiting
//! for it (what was sent earlier is written first), for a batch of more
//! than [`DIRECT_MAX`] deliveries, and when a delivery needs the reactor's
//! loop after it (a long-poll answer, a replay in progress). A broadcast
//! never comes here: `Router::broadcast` always posts it.
//! Cost: one `Mutex` per reactor, nothing per connection; the reactor
//! takes its lock once per wake-up, a flush reads the clock once.

use super::conn::Phase;
use super::Reactor;
use crate::router::{Batch, Direct, DirectWrite};

/// Most deliveries a publisher writes itself; a batch over it goes to the
/// reactor, whose grouped writes then share the load with the publisher.
pub(crate) const DIRECT_MAX: usize = 16;

impl Direct for std::sync::Mutex<Reactor> {
    fn try_write(&self, batch: &mut Batch) -> DirectWrite {
        match self.try_lock() {
            Ok(mut reactor) => reactor.write_direct(batch),
            // A pass is running (or a panicked one left the lock poisoned:
            // the reactor's own loop decides what that means).
            Err(_) => DirectWrite::Busy,
        }
    }
}

impl Reactor {
    fn write_direct(&mut self, batch: &mut Batch) -> DirectWrite {
        // Mail waiting (a broadcast included, which counts 1; `mail_left`
        // implies some) is written first, by the loop.
        if self.queued.get() > 0
            || batch.deliveries.len() > DIRECT_MAX
            || batch
                .deliveries
                .iter()
                .any(|d| self.needs_loop(d.key, d.gen))
        {
            return DirectWrite::Busy;
        }
        let timer_before = self.next_timer();
        let mut order = std::mem::take(&mut self.order);
        order.clear();
        let deliveries = batch.deliveries.iter().enumerate();
        order.extend(deliveries.map(|(d, delivery)| (delivery.key, 0, d as u32)));
        self.deliver_ordered(&mut order, std::slice::from_ref(batch));
        self.order = order;
        self.local.direct_writes += 1;
        self.local.flush(&self.shared.stats);
        batch.deliveries.clear();
        batch.data.clear();
        // A write can leave the loop something to do (a `/ws` closed as a
        // slow consumer waits for its Close frame under a deadline): the
        // reactor, asleep until its old next timer, must look again.
        let earlier = match (timer_before, self.next_timer()) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(before), Some(after)) => after < before,
        };
        DirectWrite::Written {
            wake: earlier || !self.ready.is_empty(),
        }
    }

    /// Whether a delivery to connection (`key`, `gen`) must go through the
    /// loop: anything but a live stream (a slot closed or reused since is
    /// skipped by the write, as in the loop).
    fn needs_loop(&self, key: u32, gen: u32) -> bool {
        self.conns.get(key as usize).is_some_and(|conn| {
            conn.gen == gen
                && !(matches!(conn.phase, Phase::Stream(..)) && conn.replaying().is_none())
        })
    }
}

#[cfg(test)]
mod tests {
    use std::io::{ErrorKind, Read, Write};
    use std::net::TcpStream;
    use std::time::{Duration, Instant};

    use super::DIRECT_MAX;
    use crate::config::Config;
    use crate::router::{BatchKind, DIRECT_GAP};
    use crate::Server;

    /// Past the gap that tells a publisher's burst.
    const QUIET: Duration = Duration::from_micros(DIRECT_GAP.as_micros() as u64 + 10);

    /// Waits `d` on this thread (a sleep would oversleep it many times).
    fn spin(d: Duration) {
        let until = Instant::now() + d;
        while Instant::now() < until {
            std::hint::spin_loop();
        }
    }

    fn started() -> Server {
        let loopback = "127.0.0.1:0".parse().unwrap();
        let sub = crate::bind(loopback, 16, false).unwrap();
        let admin = crate::bind(loopback, 16, false).unwrap();
        let config = Config {
            reactors: 1,
            ..Config::default()
        };
        crate::start(config, sub, admin).unwrap()
    }

    /// A `/test/{id}` stream, once it is logged in.
    fn subscribe(server: &Server, id: u64) -> TcpStream {
        let mut c = TcpStream::connect(server.subscriber_addr()).unwrap();
        write!(c, "GET /test/{id} HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while server.router().connections(id) == 0 {
            assert!(Instant::now() < deadline, "never logged in");
            std::thread::yield_now();
        }
        c
    }

    /// Reads until `received` holds `needle`.
    fn read_until(c: &mut TcpStream, received: &mut Vec<u8>, needle: &str) {
        let mut buf = [0; 4096];
        while !String::from_utf8_lossy(received).contains(needle) {
            let n = c.read(&mut buf).expect("read");
            assert!(n > 0, "closed before {needle:?}");
            received.extend_from_slice(&buf[..n]);
        }
    }

    /// Publishes to `id` after quiet spells until the publisher writes one
    /// itself: the reactor may still be ending the pass that logged the
    /// stream in, and once it waits the publisher writes. Returns the
    /// messages sent (`m0.`, `m1.`, ...).
    fn until_direct(server: &Server, id: u64) -> u64 {
        let router = server.router();
        let mut sent = 0;
        while server.stats().direct_writes == 0 {
            assert!(sent < 1_000, "never written by the publisher");
            spin(QUIET);
            let mut outbox = router.outbox(BatchKind::Direct);
            router.publish(id, format!("m{sent}.").as_bytes(), &mut outbox);
            router.flush(&mut outbox);
            sent += 1;
        }
        sent
    }

    #[test]
    fn a_message_to_an_idle_reactor_is_in_the_socket_when_the_publish_returns() {
        let server = started();
        let mut c = subscribe(&server, 1);
        let mut received = Vec::new();
        read_until(&mut c, &mut received, "welcome");
        let sent = until_direct(&server, 1);
        // The last message was written before `flush` returned: the socket
        // holds it already, with no reactor turn in between.
        c.set_nonblocking(true).unwrap();
        let mut buf = [0; 65536];
        loop {
            match c.read(&mut buf) {
                Ok(n) if n > 0 => received.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                other => panic!("{other:?}"),
            }
        }
        let text = String::from_utf8_lossy(&received);
        assert!(text.contains(&format!("m{}.", sent - 1)), "{text:?}");
        assert_eq!(server.stats().messages_out, sent);
        server.shutdown().unwrap();
    }

    #[test]
    fn a_burst_of_messages_is_left_to_the_reactor() {
        let server = started();
        let mut c = subscribe(&server, 3);
        until_direct(&server, 3);
        let router = server.router();
        // Back to back, as a publisher reads a burst of requests: the
        // reactor is idle, yet at most a few (a preempted test thread
        // makes a gap) are written by the publisher.
        for n in 0..100 {
            let mut outbox = router.outbox(BatchKind::Direct);
            router.publish(3, format!("<{n}>").as_bytes(), &mut outbox);
            router.flush(&mut outbox);
        }
        let mut received = Vec::new();
        read_until(&mut c, &mut received, "<99>");
        let direct = server.stats().direct_writes - 1;
        assert!(
            direct < 50,
            "{direct} of a burst of 100 written by the publisher"
        );
        server.shutdown().unwrap();
    }

    #[test]
    fn a_message_after_a_batch_left_to_the_reactor_does_not_overtake_it() {
        let server = started();
        let mut c = subscribe(&server, 2);
        let router = server.router();
        let mut n = 0;
        for round in 0..200u32 {
            // Over DIRECT_MAX: through the mailbox, waking the reactor...
            let mut outbox = router.outbox(BatchKind::Direct);
            for _ in 0..=DIRECT_MAX {
                router.publish(2, format!("<{n}>").as_bytes(), &mut outbox);
                n += 1;
            }
            router.flush(&mut outbox);
            // ... and, once the publisher is out of its burst but (in some
            // rounds) before the reactor has written the batch, one message
            // it could write itself were the reactor idle: not before it.
            spin(QUIET + Duration::from_micros(u64::from(round % 50)));
            let mut outbox = router.outbox(BatchKind::Direct);
            router.publish(2, format!("<{n}>").as_bytes(), &mut outbox);
            n += 1;
            router.flush(&mut outbox);
        }
        let mut received = Vec::new();
        read_until(&mut c, &mut received, &format!("<{}>", n - 1));
        let text = String::from_utf8_lossy(&received);
        let mut at = 0;
        for m in 0..n {
            let next = text[at..]
                .find(&format!("<{m}>"))
                .unwrap_or_else(|| panic!("<{m}> out of order or missing"));
            at += next;
        }
        server.shutdown().unwrap();
    }
}
