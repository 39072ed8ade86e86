"""A process whose memory and loopback connections a memlog test controls.

Prints `port P` (a listener on 127.0.0.1:P and, when IPv6 works, [::1]:P),
then answers each command on stdin with one line once it is done:
  open K    open K IPv4 connections to the listener and accept them -> ok N
  open6 K   the same over IPv6                                       -> ok N
  stray     one connection from 127.0.0.2:P (the same port) to P     -> ok N
  close K   close K connections, both ends                           -> ok N
  alloc M   allocate M MiB and write every page                      -> ok
  free      drop the allocation                                      -> ok
N is how many connections it holds. Exits on EOF, and after 120 s whatever
happens, so a stuck test cannot leave it behind.
"""
import resource
import signal
import socket
import sys

signal.alarm(120)
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

v4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
v4.bind(("127.0.0.1", 0))
v4.listen(4096)
port = v4.getsockname()[1]
try:
    v6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    v6.bind(("::1", port))
    v6.listen(4096)
except OSError:
    v6 = None

pairs = []
block = None
print(f"port {port}", flush=True)
for line in sys.stdin:
    cmd, *arg = line.split()
    n = int(arg[0]) if arg else 0
    if cmd in ("open", "open6"):
        listener, host = (v4, "127.0.0.1") if cmd == "open" else (v6, "::1")
        for _ in range(n):
            client = socket.create_connection((host, port))
            server, _ = listener.accept()
            pairs.append((client, server))
        print(f"ok {len(pairs)}", flush=True)
    elif cmd == "stray":
        # A client that uses the listener's port from another address
        # (127.0.0.2:PORT -> 127.0.0.1:PORT): both of its ends have local
        # port PORT, only the accepted end is the server's.
        client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        client.bind(("127.0.0.2", port))
        client.connect(("127.0.0.1", port))
        server, _ = v4.accept()
        pairs.append((client, server))
        print(f"ok {len(pairs)}", flush=True)
    elif cmd == "close":
        for _ in range(n):
            for s in pairs.pop():
                s.close()
        print(f"ok {len(pairs)}", flush=True)
    elif cmd == "alloc":
        block = bytearray(n << 20)
        for i in range(0, len(block), 4096):
            block[i] = 1
        print("ok", flush=True)
    elif cmd == "free":
        block = None
        print("ok", flush=True)
    else:
        print(f"unknown command {cmd}", flush=True)
