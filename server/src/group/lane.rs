//! One worker's lane in the front: every message for the worker goes
//! through it, one `POST /send-each` in flight at a time, and the lines
//! that arrive meanwhile (from any caller: publishers, the broker) go
//! together in the next request.
//!
//! Why: with many workers a publisher's batch splits into parts of a line
//! or two each, and a worker request costs far more than a line (a Unix
//! socket round trip, the worker's admin thread and reactor woken, an
//! answer): ~75 µs of CPU per message with 53 workers at 16,666 msg/s,
//! against ~20 µs when ~16 lines share a request
//! (`server/benches/group_cost.sh`). Nothing waits on a timer: a worker
//! that keeps up gets each part at once; the requests grow only while one
//! is in flight, that is, as the worker falls behind, which is when the
//! saving is needed. Within a lane, lines keep their order.
//!
//! A caller's lines are answered within `--worker-timeout` of their
//! sending, however long they waited in the queue: a request gives up at
//! the deadline of the oldest lines it carries. So lines queued behind a
//! stuck worker's request get what is left of their own time, not a
//! whole timeout more after it. Lines whose time ran out before the lane
//! could send them (those sent just after a request that timed out have
//! next to none left) are answered `None` unsent: sent late, they could
//! be delivered after their caller was told they were not.
//!
//! Cost: a task, a channel and up to 64 KB of body per worker; the queue
//! holds at most one part per caller waiting on this worker (each awaits
//! its answer before sending more), so it is bounded by the admin
//! connections and the broker's requests in flight.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use c1m_common::SendEachAnswer;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::link::Link;

/// The body capacity a lane keeps between requests.
const KEPT_BODY: usize = 64 * 1024;

/// What each line of a part reached (connections per line), or `None`
/// when the worker did not answer.
type Reached = Option<Vec<u32>>;

/// One caller's lines for the worker, and where their outcome goes.
struct Part {
    /// `id<TAB>message\n` lines, checked by the front as the worker checks
    /// them, so the worker accepts every one.
    lines: Vec<u8>,
    count: usize,
    answer: oneshot::Sender<Reached>,
    /// `--worker-timeout` after the caller sent it.
    deadline: Instant,
}

/// The front's way to one worker's `/send-each`.
pub(crate) struct Lane {
    parts: mpsc::UnboundedSender<Part>,
    link: Arc<Link>,
}

impl Lane {
    /// Starts the lane's task on `runtime` (the front's admin runtime);
    /// each request body stays within `max_body` (the worker's
    /// `--max-body`) and is counted in `sends`.
    pub(crate) fn start(
        runtime: &tokio::runtime::Handle,
        link: Arc<Link>,
        max_body: usize,
        sends: Arc<AtomicU64>,
    ) -> Self {
        let (parts, queue) = mpsc::unbounded_channel();
        runtime.spawn(carry(link.clone(), queue, max_body, sends));
        Self { parts, link }
    }

    /// Sends `count` checked lines to the worker: the connections each
    /// reached, in order, or `None` when the worker did not answer.
    pub(crate) async fn send(&self, lines: Vec<u8>, count: usize) -> Reached {
        let (answer, answered) = oneshot::channel();
        let part = Part {
            lines,
            count,
            answer,
            deadline: self.link.deadline(),
        };
        self.parts.send(part).ok()?;
        answered.await.ok().flatten()
    }
}

/// The lane's task: takes what is queued (up to `max_body`), sends it as
/// one request, gives each part its lines' outcome, and again.
async fn carry(
    link: Arc<Link>,
    mut queue: mpsc::UnboundedReceiver<Part>,
    max_body: usize,
    sends: Arc<AtomicU64>,
) {
    let mut held: Option<Part> = None;
    let mut body = Vec::new();
    let mut waiting: Vec<(usize, oneshot::Sender<Reached>)> = Vec::new();
    loop {
        let first = match held.take() {
            Some(part) => part,
            None => match queue.recv().await {
                Some(part) => part,
                None => return,
            },
        };
        if first.deadline <= Instant::now() {
            let _ = first.answer.send(None);
            continue;
        }
        // The oldest lines' deadline is the request's (the queue is in
        // the order parts were sent).
        let deadline = first.deadline;
        body.clear();
        body.extend_from_slice(&first.lines);
        waiting.push((first.count, first.answer));
        while let Ok(part) = queue.try_recv() {
            if body.len() + part.lines.len() > max_body {
                held = Some(part);
                break;
            }
            body.extend_from_slice(&part.lines);
            waiting.push((part.count, part.answer));
        }
        let lines = waiting.iter().map(|(count, _)| count).sum();
        sends.fetch_add(1, Relaxed);
        let reached = ask(&link, deadline, &body, lines).await;
        let mut start = 0;
        for (count, answer) in waiting.drain(..) {
            let own = reached.as_ref().map(|r| r[start..start + count].to_vec());
            start += count;
            // A caller that went away (its connection closed) needs no answer.
            let _ = answer.send(own);
        }
        // An idle lane keeps no large body (one request may have had one).
        body.shrink_to(KEPT_BODY);
    }
}

/// One `POST /send-each` of `lines` lines, answered by `deadline`: what
/// each reached.
async fn ask(link: &Link, deadline: Instant, body: &[u8], lines: usize) -> Reached {
    let answer = link
        .request_until(deadline, "POST", "/send-each", body)
        .await
        .ok()?;
    if answer.status != 200 {
        return None;
    }
    let each: SendEachAnswer = serde_json::from_slice(&answer.body).ok()?;
    if each.connections.len() != lines {
        // Front and worker are one binary and check lines alike: a bug.
        eprintln!(
            "comet-server: front: a worker answered {} of {lines} lines; counting them \
             undeliverable",
            each.connections.len()
        );
        return None;
    }
    Some(each.connections)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::linux::net::SocketAddrExt;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A worker's admin socket under the test's control: each request body
    /// is handed to the test, and answered (each line reaching `id % 3`
    /// connections, plus `extra_entries` entries no line asked for) only
    /// when the test says so.
    struct HeldWorker {
        bodies: mpsc::UnboundedReceiver<Vec<u8>>,
        go: mpsc::UnboundedSender<()>,
        lane: Arc<Lane>,
        sends: Arc<AtomicU64>,
    }

    fn held_worker(name: &str, max_body: usize, extra_entries: usize) -> HeldWorker {
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let listener = std::os::unix::net::UnixListener::bind_addr(&addr).unwrap();
        listener.set_nonblocking(true).unwrap();
        let listener = tokio::net::UnixListener::from_std(listener).unwrap();
        let (bodies_tx, bodies) = mpsc::unbounded_channel();
        let (go, mut go_rx) = mpsc::unbounded_channel::<()>();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut buf = Vec::new();
            loop {
                let (head, length) = loop {
                    if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = std::str::from_utf8(&buf[..end]).unwrap().to_owned();
                        let length = head
                            .lines()
                            .find_map(|l| l.strip_prefix("Content-Length: "))
                            .map_or(0, |n| n.parse::<usize>().unwrap());
                        break (end + 4, length);
                    }
                    if stream.read_buf(&mut buf).await.unwrap() == 0 {
                        return;
                    }
                };
                while buf.len() < head + length {
                    stream.read_buf(&mut buf).await.unwrap();
                }
                let body: Vec<u8> = buf.drain(..head + length).skip(head).collect();
                let mut connections: Vec<u32> = body
                    .split(|&b| b == b'\n')
                    .filter(|l| !l.is_empty())
                    .map(|l| {
                        let tab = l.iter().position(|&b| b == b'\t').unwrap();
                        std::str::from_utf8(&l[..tab])
                            .unwrap()
                            .parse::<u32>()
                            .unwrap()
                            % 3
                    })
                    .collect();
                connections.extend(std::iter::repeat_n(9, extra_entries));
                bodies_tx.send(body).unwrap();
                if go_rx.recv().await.is_none() {
                    return;
                }
                let json = serde_json::to_vec(&SendEachAnswer { connections }).unwrap();
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", json.len());
                stream.write_all(head.as_bytes()).await.unwrap();
                stream.write_all(&json).await.unwrap();
            }
        });
        let link = Link::new(
            name.to_owned(),
            None,
            Duration::from_secs(60),
            Duration::from_secs(10),
        );
        let sends = Arc::new(AtomicU64::new(0));
        let runtime = tokio::runtime::Handle::current();
        let lane = Lane::start(&runtime, Arc::new(link), max_body, sends.clone());
        HeldWorker {
            bodies,
            go,
            lane: Arc::new(lane),
            sends,
        }
    }

    /// Sends `first` and, once the worker holds it, `later` (all queued
    /// before the worker answers): every part's outcome, and each request
    /// body the worker received.
    async fn first_then(
        worker: &mut HeldWorker,
        first: &str,
        later: &[&str],
    ) -> (Vec<Reached>, Vec<String>) {
        let count = |part: &str| part.lines().count();
        let lane = worker.lane.clone();
        let (lines, n) = (first.as_bytes().to_vec(), count(first));
        let in_flight = tokio::spawn(async move { lane.send(lines, n).await });
        let mut bodies = vec![worker.bodies.recv().await.unwrap()];
        let queued = futures_util::future::join_all(
            later
                .iter()
                .map(|part| worker.lane.send(part.as_bytes().to_vec(), count(part))),
        );
        let mut queued = std::pin::pin!(queued);
        // Polled once: every later part is in the lane's queue before the
        // worker is let answer the first.
        tokio::select! {
            biased;
            _ = &mut queued => unreachable!("answered before the worker was let answer"),
            () = std::future::ready(()) => {}
        }
        worker.go.send(()).unwrap();
        let answers = loop {
            tokio::select! {
                biased;
                answers = &mut queued => break answers,
                body = worker.bodies.recv() => {
                    bodies.push(body.unwrap());
                    worker.go.send(()).unwrap();
                }
            }
        };
        let mut all = vec![in_flight.await.unwrap()];
        all.extend(answers);
        let bodies = bodies
            .into_iter()
            .map(|b| String::from_utf8(b).unwrap())
            .collect();
        (all, bodies)
    }

    #[tokio::test]
    async fn lines_queued_behind_a_request_go_in_the_next_and_each_caller_gets_its_own() {
        let name = format!("c1m-lane-test-{}-a", std::process::id());
        let mut worker = held_worker(&name, 1 << 20, 0);
        let (answers, bodies) = first_then(
            &mut worker,
            "3\ta\n",
            &["4\tb\n5\tc\n", "6\td\n", "7\te\n8\tf\n"],
        )
        .await;
        assert_eq!(bodies, ["3\ta\n", "4\tb\n5\tc\n6\td\n7\te\n8\tf\n"]);
        let want: [&[u32]; 4] = [&[0], &[1, 2], &[0], &[1, 2]];
        for (got, want) in answers.iter().zip(want) {
            assert_eq!(got.as_deref(), Some(want));
        }
        assert_eq!(worker.sends.load(Relaxed), 2);
    }

    #[tokio::test]
    async fn a_request_stays_within_max_body() {
        let name = format!("c1m-lane-test-{}-b", std::process::id());
        let mut worker = held_worker(&name, 10, 0);
        let (answers, bodies) =
            first_then(&mut worker, "1\ta\n", &["2\tb\n", "3\tc\n", "4\td\n"]).await;
        assert_eq!(bodies, ["1\ta\n", "2\tb\n3\tc\n", "4\td\n"]);
        assert!(answers.iter().all(Option::is_some), "{answers:?}");
        assert_eq!(answers[3].as_deref(), Some(&[1][..]));
    }

    #[tokio::test]
    async fn lines_behind_a_stuck_worker_are_answered_within_the_timeout_of_their_sending() {
        let limit = Duration::from_millis(400);
        let name = format!("c1m-lane-test-{}-d", std::process::id());
        // A stuck worker: it takes every connection and request in, and
        // never answers.
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let listener = std::os::unix::net::UnixListener::bind_addr(&addr).unwrap();
        listener.set_nonblocking(true).unwrap();
        let listener = tokio::net::UnixListener::from_std(listener).unwrap();
        let (requests, mut requested) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut buf = vec![0; 4096];
                let _ = stream.read(&mut buf).await;
                let _ = requests.send(());
                held.push(stream);
            }
        });
        let link = Arc::new(Link::new(name, None, Duration::from_secs(60), limit));
        let runtime = tokio::runtime::Handle::current();
        let lane = Arc::new(Lane::start(&runtime, link, 1 << 20, Arc::default()));
        let first = lane.clone();
        let stuck = tokio::spawn(async move { first.send(b"1\ta\n".to_vec(), 1).await });
        requested.recv().await.unwrap();
        let sent = std::time::Instant::now();
        let behind = lane.send(b"2\tb\n".to_vec(), 1).await;
        let waited = sent.elapsed();
        assert_eq!(stuck.await.unwrap(), None);
        assert_eq!(behind, None);
        // What was left of its own time after the first request gave up
        // (so little that it may not have been sent at all), not a whole
        // limit more: that was ~2x the limit.
        assert!(waited < limit * 3 / 2, "answered after {waited:?}");
    }

    #[tokio::test]
    async fn an_answer_with_the_wrong_line_count_is_trusted_for_no_caller() {
        let name = format!("c1m-lane-test-{}-c", std::process::id());
        let mut worker = held_worker(&name, 1 << 20, 1);
        let (answers, _) = first_then(&mut worker, "1\ta\n", &["2\tb\n"]).await;
        assert_eq!(answers, [None, None]);
    }
}
