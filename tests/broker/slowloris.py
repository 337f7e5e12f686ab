#!/usr/bin/env python3
"""slowloris.py PORT SECONDS CONNS - hold CONNS connections to 127.0.0.1:PORT open
from 127.0.0.1 .. 127.0.0.6, each sending a request header one line at a time
(a line every 2 s, never the blank line that ends it), reconnecting whenever the
server drops one, for SECONDS. Meanwhile, every 2 s, a new client asks for
/healthz; print one line per probe ("probe MS STATUS") and, at the end,
"held N" (connections open at the end) and "dropped N" (times the server
closed one). Exit 0; the calling test judges the figures."""
import resource
import socket
import sys
import time

port, seconds, conns = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

sources = ["127.0.0.%d" % i for i in range(1, 7)]


def dial(i):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(True)
    s.settimeout(2)
    s.bind((sources[i % len(sources)], 0))
    s.connect(("127.0.0.1", port))
    s.send(b"GET /status HTTP/1.1\r\nHost: x\r\n")
    s.setblocking(False)
    return s


socks = [None] * conns
dropped = 0
for i in range(conns):
    try:
        socks[i] = dial(i)
    except OSError:
        socks[i] = None


def probe():
    t0 = time.monotonic()
    status = "none"
    try:
        c = socket.create_connection(("127.0.0.1", port), timeout=5)
        c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while b"\r\n" not in data:
            chunk = c.recv(4096)
            if not chunk:
                break
            data += chunk
        c.close()
        status = data.split(b" ")[1].decode() if data.startswith(b"HTTP/") else "closed"
    except OSError as e:
        status = "error:" + type(e).__name__
    return (time.monotonic() - t0) * 1000, status


end = time.monotonic() + seconds
next_probe = time.monotonic() + 1
next_trickle = time.monotonic() + 2
while time.monotonic() < end:
    now = time.monotonic()
    if now >= next_trickle:
        next_trickle = now + 2
        for i, s in enumerate(socks):
            try:
                if s is None:
                    raise OSError
                s.send(b"X-Slow: 1\r\n")
                # a server that closed it: the read side says so
                try:
                    if s.recv(4096) == b"":
                        raise OSError
                except BlockingIOError:
                    pass
            except OSError:
                if s is not None:
                    dropped += 1
                    s.close()
                try:
                    socks[i] = dial(i)
                except OSError:
                    socks[i] = None
    if now >= next_probe:
        next_probe = now + 2
        ms, status = probe()
        print("probe %.1f %s" % (ms, status), flush=True)
    time.sleep(0.05)
held = sum(1 for s in socks if s is not None)
print("held %d" % held)
print("dropped %d" % dropped, flush=True)
