#!/usr/bin/env python3
"""Hostile peers of comet-server for scripts/reliability.sh: raw-socket cases
the Rust tests cannot express at this size (thousands of resets at once,
slowloris on both listeners while others are served) or that are easier to
read as bytes on the wire (framing and smuggling shapes, limits).

Each case prints one tab-separated row per check: case, what was done,
expected, observed, PASS or FAIL. Loopback only; every wait is bounded.

    peers.py SUB_ADDR ADMIN_ADDR SERVER_PID CASE [ARGS...]
"""

import json
import re
import select
import socket
import struct
import sys
import time

SUB, ADMIN, PID = None, None, None


def addr(text):
    host, port = text.rsplit(":", 1)
    return host, int(port)


def row(case, done, expected, observed, ok):
    print("\t".join([case, done, expected, observed, "PASS" if ok else "FAIL"]), flush=True)
    return ok


def exchange(where, raw, timeout=3.0, until_close=True):
    """Sends raw bytes, returns what came back before the close (or timeout)."""
    s = socket.create_connection(where, timeout=timeout)
    try:
        s.sendall(raw)
        got = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            got += chunk
            if not until_close and b"\r\n\r\n" in got:
                break
        return got
    finally:
        s.close()


def statuses(data):
    return [int(m) for m in re.findall(rb"HTTP/1\.[01] (\d{3}) ", data)]


def admin(method, path, body=b""):
    head = f"{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: {len(body)}\r\n\r\n"
    data = exchange(ADMIN, head.encode() + body)
    head, _, payload = data.partition(b"\r\n\r\n")
    return (statuses(head) or [0])[0], payload


def stats():
    status, body = admin("GET", "/stats")
    return json.loads(body) if status == 200 else {}


def wait_stats(cond, limit):
    deadline = time.monotonic() + limit
    while True:
        s = stats()
        if cond(s) or time.monotonic() > deadline:
            return s
        time.sleep(0.05)


def rss_kib():
    with open(f"/proc/{PID}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


# --- framing and smuggling shapes -------------------------------------------

H = "Host: t\r\n"
POLL = "GET /poll/7?seq=0 HTTP/1.1\r\n"  # answered at once: id 7 has history


def framing():
    smuggled = "GET /poll/8?seq=0 HTTP/1.1\r\nHost: t\r\n\r\n"
    admin_smuggled = "GET /check/7 HTTP/1.1\r\nHost: t\r\n\r\n"
    cases = [
        # (case, listener, bytes, expected statuses, what the expectation means)
        ("CL.TE", SUB, POLL + H + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", [400], "400, closed"),
        ("TE.CL", SUB, POLL + H + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", [400], "400, closed"),
        ("CL.0", SUB, POLL + H + f"Content-Length: {len(smuggled)}\r\n\r\n" + smuggled, [400], "400, the body never a request"),
        ("duplicate CL", SUB, POLL + H + "Content-Length: 0\r\nContent-Length: 1\r\n\r\n", [400], "400"),
        ("invalid CL", SUB, POLL + H + "Content-Length: +0\r\n\r\n", [400], "400"),
        ("obs-fold", SUB, POLL + H + "X-A: a\r\n b\r\n\r\n", [400], "400"),
        ("bare CR", SUB, POLL + H + "X-A: a\rb\r\n\r\n", [400], "400"),
        ("bare LF", SUB, POLL.replace("\r\n", "\n") + "Host: t\nConnection: close\n\n", [200], "one answer (LF ends a line, RFC 9112 2.2)"),
        ("absolute-form", SUB, "GET http://t/poll/7?seq=0 HTTP/1.1\r\n" + H + "Connection: close\r\n\r\n", [200], "200 (routed by its path)"),
        ("missing Host", SUB, POLL + "\r\n", [400], "400"),
        ("two Hosts", SUB, POLL + H + H + "\r\n", [400], "400"),
        ("pipelined", SUB, (POLL + H + "\r\n") + (POLL + H + "Connection: close\r\n\r\n"), [200, 200], "both answered, in order"),
        ("CL.TE", ADMIN, "POST /send/7 HTTP/1.1\r\n" + H + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", [400], "400, closed"),
        ("TE.CL", ADMIN, "POST /send/7 HTTP/1.1\r\n" + H + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", [400], "400, closed"),
        ("chunked body", ADMIN, "POST /send/7 HTTP/1.1\r\n" + H + "Transfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n", [411], "411 (Content-Length only)"),
        ("CL.0", ADMIN, "GET /stats HTTP/1.1\r\n" + H + f"Connection: close\r\nContent-Length: {len(admin_smuggled)}\r\n\r\n" + admin_smuggled, [200], "one answer, the body never a request"),
        ("duplicate CL", ADMIN, "POST /send/7 HTTP/1.1\r\n" + H + "Content-Length: 1\r\nContent-Length: 2\r\n\r\nxy", [400], "400"),
        ("obs-fold", ADMIN, "GET /stats HTTP/1.1\r\n" + H + "X-A: a\r\n b\r\n\r\n", [400], "400"),
        ("bare LF", ADMIN, "GET /stats HTTP/1.1\nHost: t\nConnection: close\n\n", [200], "one answer"),
        ("absolute-form", ADMIN, "GET http://t/stats HTTP/1.1\r\n" + H + "Connection: close\r\n\r\n", [200], "200"),
        ("missing Host", ADMIN, "GET /stats HTTP/1.1\r\n\r\n", [400], "400"),
        ("pipelined", ADMIN, "GET /stats HTTP/1.1\r\n" + H + "\r\n" + "GET /check/7 HTTP/1.1\r\n" + H + "Connection: close\r\n\r\n", [200, 200], "both answered, in order"),
    ]
    ok = True
    for name, where, raw, want, meaning in cases:
        got = exchange(where, raw.encode())
        seen = statuses(got)
        listener = "subscriber" if where == SUB else "admin"
        good = seen == want
        if name == "pipelined" and where == ADMIN:
            good = good and got.rstrip().endswith(b"}") and b'"id":7' in got.split(b"HTTP/1.1 200")[-1]
        ok &= row(f"framing {name} ({listener})", f"{len(raw)} bytes", meaning, str(seen), good)
    ok &= still_serving("framing")
    return ok


def still_serving(case):
    got = exchange(SUB, (POLL + H + "Connection: close\r\n\r\n").encode())
    status, _ = admin("GET", "/stats")
    good = statuses(got) == [200] and status == 200
    return row(f"{case}: still serving", "a plain poll and /stats after", "200 and 200",
               f"{statuses(got)} and {status}", good)


# --- limits -------------------------------------------------------------------

def limits(max_id):
    max_id = int(max_id)
    ok = True

    def head_status(path, extra=""):
        got = exchange(SUB, f"HEAD {path} HTTP/1.1\r\n{H}{extra}Connection: close\r\n\r\n".encode())
        return (statuses(got) or [0])[0]

    checks = [
        ("head of 8 KiB + 1", head_status("/test/1", "X-Pad: " + "a" * 8200 + "\r\n"), 431),
        ("request line of 9 KiB", head_status("/test/1?" + "a" * 9000), 431),
        ("32 header fields", head_status("/test/1", "".join(f"X-{i}: v\r\n" for i in range(30))), 200),
        ("33 header fields", head_status("/test/1", "".join(f"X-{i}: v\r\n" for i in range(32))), 431),
        (f"id {max_id} (--max-id)", head_status(f"/test/{max_id}"), 200),
        (f"id {max_id + 1}", head_status(f"/test/{max_id + 1}"), 400),
        ("id 2^64", head_status("/test/18446744073709551616"), 400),
        ("id 25 digits, zero-padded", head_status("/test/" + "7".zfill(25)), 200),
        ("id -1", head_status("/test/-1"), 400),
        ("id +1", head_status("/test/+1"), 400),
        ("id empty", head_status("/test/"), 400),
        ("admin /send id 25 digits", admin("POST", "/send/" + "7".zfill(25), b"x")[0], 200),
        (f"admin /send/{max_id + 1}", admin("POST", f"/send/{max_id + 1}", b"x")[0], 400),
    ]
    for name, seen, want in checks:
        ok &= row(f"limit {name}", "one request", str(want), str(seen), seen == want)
    status, body = admin("POST", "/send", ("7".zfill(25) + "\tpadded\n").encode())
    accepted = json.loads(body).get("accepted") if status == 200 else None
    ok &= row("limit batch id 25 digits", "POST /send, one line", "accepted 1 (as /send/{id})",
              f"{status}, accepted {accepted}", accepted == 1)
    ok &= still_serving("limits")
    return ok


# --- half-close, reset floods ---------------------------------------------------

def connect_many(n, path_of, rcvbuf=None):
    socks = []
    for i in range(n):
        s = socket.socket()
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.connect(SUB)
        s.sendall(f"GET {path_of(i)} HTTP/1.1\r\n{H}\r\n".encode())
        socks.append(s)
    return socks


def half_close(n):
    n = int(n)
    base = stats().get("accepted", 0)
    socks = connect_many(n, lambda i: ["/test", "/sse", "/poll"][i % 3] + f"/{100 + i}")
    for s in socks:
        s.shutdown(socket.SHUT_WR)
    s = wait_stats(lambda s: s.get("accepted", 0) - base == n and s.get("connections") == 0, 15)
    for sock in socks:
        sock.close()
    ok = row("half-close", f"{n} requests then FIN (/test, /sse, /poll)", "all logged out, connections 0",
             f"accepted {s.get('accepted', 0) - base}, connections {s.get('connections')}, logged in {s.get('logged_in')}",
             s.get("connections") == 0 and s.get("logged_in") == 0)
    return ok & still_serving("half-close")


def reset_flood(n, rounds):
    n, rounds = int(n), int(rounds)
    ok = True
    idle = rss_kib()
    after = []
    linger = struct.pack("ii", 1, 0)
    before = stats().get("logged_in", 0)
    for r in range(1, rounds + 1):
        t0 = time.monotonic()
        socks = connect_many(n, lambda i: f"/test/{i + 1}")
        s = wait_stats(lambda s: s.get("logged_in", 0) - before >= n, 30)
        held = s.get("logged_in", 0) - before
        peak = rss_kib()
        for sock in socks:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            sock.close()
        s = wait_stats(lambda s: s.get("logged_in") == before, 30)
        after.append(rss_kib())
        ok &= row(f"reset flood round {r}/{rounds}", f"{n} streams, then all reset at once (SO_LINGER 0)",
                  f"{n} held, then none",
                  f"held {held}, then {s.get('logged_in') - before} (connections {s.get('connections')}), RSS idle/held/after {idle}/{peak}/{after[-1]} KiB, {time.monotonic() - t0:.1f}s",
                  held == n and s.get("logged_in") == before)
    # The first round sizes the slab, router and allocator arenas; later
    # rounds must reuse that memory, not add to it.
    growth = after[-1] - after[0]
    ok &= row("reset flood RSS", f"{rounds} rounds of {n}",
              "no growth after round 1 (< 2 MiB), back within 4 MiB of idle",
              f"after round 1 {after[0]} KiB, after round {rounds} {after[-1]} KiB ({growth:+d} KiB); idle before {idle} KiB",
              growth < 2048 and after[-1] - idle < 4096)
    return ok & still_serving("reset flood")


# --- slowloris ----------------------------------------------------------------

def slowloris(n_sub, n_admin, header_timeout_s):
    """n_admin stays under --max-admin-conns: past it the admin answers 503
    by design (its memory is bounded by that count), so the others could
    not be served for a header timeout."""
    n_sub, n_admin, limit = int(n_sub), int(n_admin), float(header_timeout_s)
    base = stats()
    slow = []
    plan = [(SUB, b"GET /test/1 HTTP/1.1\r\n")] * n_sub + [(ADMIN, b"GET /stats HTTP/1.1\r\n")] * n_admin
    for where, first in plan:
        s = socket.create_connection(where, timeout=3)
        s.sendall(first)
        s.setblocking(False)
        slow.append(s)
    t0 = time.monotonic()
    served, worst, closed_at = 0, 0.0, {}
    # Drip one header byte per slow connection every 200 ms, and serve
    # ordinary clients on both listeners between drips.
    while time.monotonic() - t0 < limit + 3 and len(closed_at) < len(slow):
        for k, s in enumerate(slow):
            if k in closed_at:
                continue
            try:
                s.send(b"X")
                r, _, _ = select.select([s], [], [], 0)
                if r and s.recv(4096) == b"":
                    closed_at[k] = time.monotonic() - t0
            except (BrokenPipeError, ConnectionResetError):
                closed_at[k] = time.monotonic() - t0
            except BlockingIOError:
                pass
        t = time.monotonic()
        got = exchange(SUB, (POLL + H + "Connection: close\r\n\r\n").encode())
        status, _ = admin("GET", "/stats")
        if statuses(got) == [200] and status == 200:
            served += 1
            worst = max(worst, time.monotonic() - t)
        time.sleep(0.2)
    for s in slow:
        s.close()
    last = max(closed_at.values(), default=float("nan"))
    ok = row("slowloris (both listeners)", f"{n_sub} subscriber + {n_admin} admin heads dripped a byte per 200 ms",
             f"all closed by --header-timeout ({limit:g}s) + 1s",
             f"{len(closed_at)}/{len(slow)} closed, the last at {last:.1f}s",
             len(closed_at) == len(slow) and last <= limit + 1)
    ok &= row("slowloris: others served", "a poll and a /stats each round meanwhile", "every one answered, each < 1s",
              f"{served} rounds answered, slowest {worst * 1000:.0f} ms", served > 0 and worst < 1.0)
    s = wait_stats(lambda s: s.get("connections") == 0, 10)
    ok &= row("slowloris: counted", "/stats after", "header_timeouts grew, connections 0",
              f"header_timeouts +{s.get('header_timeouts', 0) - base.get('header_timeouts', 0)}, connections {s.get('connections')}",
              s.get("connections") == 0 and s.get("header_timeouts", 0) > base.get("header_timeouts", 0))
    return ok


# --- reconnect with history ----------------------------------------------------

def sse_after(ident, last_event_id, want_events):
    """The SSE events of /sse/{ident} after Last-Event-ID, read until want_events came."""
    sock = socket.create_connection(SUB, timeout=5)
    sock.sendall(f"GET /sse/{ident} HTTP/1.1\r\n{H}Last-Event-ID: {last_event_id}\r\n\r\n".encode())
    got, deadline = b"", time.monotonic() + 5
    while time.monotonic() < deadline and got.count(b"\n\n") < want_events + 1:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            break
        got += chunk
    sock.close()
    # Chunked framing: the events are in the chunk data; take id/event/data lines.
    events, cur = [], {}
    for line in got.split(b"\r\n\r\n", 1)[-1].split(b"\n"):
        m = re.match(rb"(id|event|data): ?(.*)", line.strip(b"\r"))
        if m:
            cur[m.group(1).decode()] = m.group(2).decode()
        elif line.strip(b"\r") == b"" and cur:
            events.append(cur)
            cur = {}
    return [e for e in events if e.get("event") != "heartbeat" and ("id" in e or e.get("event") == "lost")]


def history(depth):
    depth = int(depth)
    ok = True
    ident = 424242
    sent = [f"m{i}" for i in range(1, 21)]
    for m in sent:
        admin("POST", f"/send/{ident}", m.encode())
    events = sse_after(ident, 5, 15)
    data = [e.get("data") for e in events]
    ok &= row("history: reconnect within", f"20 sent, reconnect with Last-Event-ID 5 (--history {depth})",
              "m6..m20, each once, in order", f"{len(data)} events, first {data[:1]}, last {data[-1:]}",
              data == sent[5:])
    ident += 1
    total = depth + 10
    for i in range(1, total + 1):
        admin("POST", f"/send/{ident}", f"n{i}".encode())
    events = sse_after(ident, 1, depth + 1)
    lost = [e for e in events if e.get("event") == "lost"]
    rest = [e.get("data") for e in events if e.get("event") != "lost"]
    want_rest = [f"n{i}" for i in range(total - depth + 1, total + 1)]
    ok &= row("history: reconnect past it", f"{total} sent, reconnect with Last-Event-ID 1",
              f"one 'event: lost' for 2-{total - depth}, then the {depth} kept, in order",
              f"lost {[e.get('data') for e in lost]}, then {len(rest)} events",
              len(lost) == 1 and f"messages 2-{total - depth} " in lost[0].get("data", "") and rest == want_rest)
    return ok


# --- reconnect rate after a SIGKILL ------------------------------------------------

def reconnects(n, backoff_s, what):
    """Samples this (new) server's accepted count at 20 Hz until n clients
    are back; with jitter they come back spread over half a backoff."""
    n, backoff = int(n), float(backoff_s)
    t0, samples = time.monotonic(), []
    while time.monotonic() - t0 < backoff * 4 + 10:
        s = stats()
        samples.append((time.monotonic() - t0, s.get("accepted", 0), s.get("logged_in", 0)))
        if s.get("logged_in", 0) >= n:
            break
        time.sleep(0.05)

    def when(count):
        return next((t for t, a, _ in samples if a >= count), float("nan"))

    spread = when(0.9 * n) - when(0.1 * n)
    bins = {}
    prev = 0
    for t, a, _ in samples:
        bins[int(t * 10)] = bins.get(int(t * 10), 0) + a - prev
        prev = a
    peak = max(bins.values(), default=0)
    back = samples[-1][2] if samples else 0
    return row(f"SIGKILL {what}: reconnect rate", f"{n} floodtest --reconnect streams, backoff {backoff:g}s",
               f"all back; 10%-90% over >= {backoff / 5:g}s; no 100 ms with over half",
               f"{back} back, 10%-90% in {spread * 1000:.0f} ms, peak {peak} in 100 ms",
               back >= n and spread >= backoff / 5 and peak <= n / 2)


def main():
    global SUB, ADMIN, PID
    SUB, ADMIN, PID = addr(sys.argv[1]), addr(sys.argv[2]), int(sys.argv[3])
    case, args = sys.argv[4], sys.argv[5:]
    ok = {"framing": framing, "limits": limits, "half-close": half_close,
          "reset-flood": reset_flood, "slowloris": slowloris, "history": history,
          "reconnects": reconnects}[case](*args)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
