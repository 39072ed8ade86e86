"""Holds loopback connections for memlog's sample-cost benchmark.

  hold.py listen PORT          SO_REUSEPORT listener on 127.0.0.1:PORT that
                               accepts and keeps every connection
  hold.py connect PORT SRC N   opens N connections from SRC (a 127.x.y.z
                               address) to 127.0.0.1:PORT, then keeps them
  hold.py subscribe PORT SRC N FIRST
                               the same, each sending a comet-server
                               `GET /test/ID` (ids FIRST, FIRST+1, ...), so
                               a real server holds them as streams

Each prints one line when ready (`listening`, `ready N`), then holds until
its stdin closes, or 600 s pass, whichever is first: it always ends by
itself. Connects only to 127.0.0.1.
"""
import resource
import selectors
import signal
import socket
import struct
import sys

signal.alarm(600)
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

role, port = sys.argv[1], int(sys.argv[2])
held = []
# Closing with RST (linger 0) leaves no TIME_WAIT sockets behind: they
# would stay in the kernel's hash for 60 s and slow the next run's walk.
LINGER_0 = struct.pack("ii", 1, 0)
sel = selectors.DefaultSelector()
sel.register(sys.stdin, selectors.EVENT_READ, "stdin")

if role == "listen":
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(4096)
    listener.setblocking(False)
    sel.register(listener, selectors.EVENT_READ, "listener")
    print("listening", flush=True)
elif role in ("connect", "subscribe"):
    src, count = sys.argv[3], int(sys.argv[4])
    first = int(sys.argv[5]) if role == "subscribe" else 0
    for i in range(count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_0)
        s.bind((src, 0))
        s.connect(("127.0.0.1", port))
        if role == "subscribe":
            # What the server sends back stays unread in the socket's
            # buffer: a stream's head, a few hundred bytes.
            s.sendall(f"GET /test/{first + i} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        held.append(s)
    print(f"ready {len(held)}", flush=True)
else:
    sys.exit(f"unknown role {role}")

while True:
    for key, _ in sel.select():
        if key.data == "stdin":
            if not sys.stdin.readline():
                sys.exit(0)
        else:
            while True:
                try:
                    conn, _ = key.fileobj.accept()
                except BlockingIOError:
                    break
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_0)
                held.append(conn)
