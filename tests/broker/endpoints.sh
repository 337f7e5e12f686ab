#!/bin/bash
# endpoints.sh - mqbroker's HTTP API through curl: exact /status values, /metrics parsed and equal to /status, errors (404, 405, 400, 414, 431, 505).
set -euo pipefail
TEST=endpoints
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"

web_root=$(realpath "$(dirname "$0")/../../web")
start_broker "$TMP/broker.log" -n "$Q" -c 16 -m 256 -l 127.0.0.1:0 --web-root "$web_root"
version=$("$BROKER" --version)
version=${version#mqbroker }

# metrics_match_status: /metrics is Prometheus text 0.0.4 with every DESIGN.md
# metric, and its values equal those of /status (call it while the queue is idle).
metrics_match_status() {
	http GET /status
	cp "$TMP/body" "$TMP/status.json"
	http GET /metrics
	[ "$CODE" = 200 ] || fail "GET /metrics answered $CODE, want 200"
	grep -qi '^content-type: text/plain; version=0.0.4' "$TMP/headers" ||
		fail "/metrics content type: $(grep -i content-type "$TMP/headers")"
	"$PYTHON" - "$TMP/body" "$TMP/status.json" "$Q" "$version" <<'EOF' || fail "/metrics (above); page: $(cat "$TMP/body")"
import json, re, sys
text = open(sys.argv[1], encoding="utf-8").read()
st = json.load(open(sys.argv[2]))
q, name, version = st["queues"][0], sys.argv[3], sys.argv[4]
assert text.endswith("\n"), "page does not end with a newline"
NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')
help_, type_, samples, order = {}, {}, [], []
for n, line in enumerate(text.split("\n")[:-1], 1):
    m = re.fullmatch(r"# (HELP|TYPE) (" + NAME + r") (.*)", line)
    if m:
        kind, fam, rest = m.groups()
        d = help_ if kind == "HELP" else type_
        assert fam not in d, f"line {n}: second {kind} for {fam}"
        if kind == "TYPE":
            assert rest in ("counter", "gauge", "histogram", "summary", "untyped"), f"line {n}: type {rest}"
        d[fam] = rest
        if not order or order[-1] != fam:
            assert fam not in order, f"line {n}: family {fam} split in two"
            order.append(fam)
        continue
    assert not line.startswith("#"), f"line {n}: stray comment {line!r}"
    m = re.fullmatch("(" + NAME + r")(?:\{(.*)\})? (\S+)", line)
    assert m, f"line {n}: not a sample: {line!r}"
    fam, labels, value = m.groups()
    base = fam
    for suffix in ("_bucket", "_sum", "_count"):
        if fam.endswith(suffix) and type_.get(fam[: -len(suffix)]) == "histogram":
            base = fam[: -len(suffix)]
    assert base in type_ and base in help_, f"line {n}: {fam} has no HELP/TYPE before it"
    assert order[-1] == base, f"line {n}: {fam} sample outside its family"
    lab = {}
    if labels:
        pos = 0
        while pos < len(labels):
            lm = LABEL.match(labels, pos)
            assert lm, f"line {n}: bad labels {labels!r}"
            lab[lm.group(1)] = lm.group(2)
            pos = lm.end()
            if pos < len(labels):
                assert labels[pos] == ",", f"line {n}: bad labels {labels!r}"
                pos += 1
    samples.append((fam, lab, float(value)))
for fam, t in type_.items():
    if t == "counter":
        assert fam.endswith("_total"), f"counter {fam} does not end in _total"
def value(fam, **lab):
    got = [v for f, l, v in samples if f == fam and l == lab]
    assert len(got) == 1, f"{fam}{lab}: {len(got)} samples"
    return got[0]
ql = {"queue": name}
want = {"mq_queue_depth": "depth", "mq_queue_capacity": "capacity",
        "mq_queue_high_water": "high_water", "mq_messages_enqueued_total": "enqueued_total",
        "mq_messages_dequeued_total": "dequeued_total",
        "mq_bytes_enqueued_total": "bytes_enqueued_total",
        "mq_bytes_dequeued_total": "bytes_dequeued_total",
        "mq_blocked_sends_total": "blocked_sends_total",
        "mq_blocked_receives_total": "blocked_recvs_total",
        "mq_client_recoveries_total": "recoveries_total"}
for fam, key in want.items():
    got = value(fam, **ql)
    assert got == q[key], f"{fam} is {got}, /status {key} is {q[key]}"
    assert type_[fam] == ("counter" if fam.endswith("_total") else "gauge"), f"{fam} type {type_[fam]}"
# Extras beyond DESIGN.md: when present, they too agree with /status.
extras = {"mq_queue_max_message_bytes": "max_msg_size", "mq_queue_full_total": "full_total",
          "mq_queue_empty_total": "empty_total", "mq_lock_repairs_total": "lock_repairs_total",
          "mq_clients_attached": "clients_attached"}
for fam, key in extras.items():
    if fam in type_ and key in q:
        assert value(fam, **ql) == q[key], f"{fam} is {value(fam, **ql)}, /status {key} is {q[key]}"
assert value("mq_clients", queue=name, role="producer") == q["producers"]
assert value("mq_clients", queue=name, role="consumer") == q["consumers"]
up = value("mq_broker_uptime_seconds")
assert 0 < up < 120 and up >= st["broker"]["uptime_s"] - 0.1, f"uptime {up} vs {st['broker']['uptime_s']}"
assert value("mq_build_info", version=version) == 1
EOF
}

# --- /healthz --------------------------------------------------------------
http GET /healthz
[ "$CODE" = 200 ] || fail "GET /healthz answered $CODE, want 200"
"$PYTHON" - "$TMP/body" "$BPID" <<'EOF' || fail "GET /healthz body: $(cat "$TMP/body")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d == {"status": "ok", "pid": int(sys.argv[2]), "queues": 1}, d
EOF
grep -qi '^content-type: application/json' "$TMP/headers" || fail "/healthz is not application/json: $(cat "$TMP/headers")"

# --- /status of a new queue: every DESIGN.md key, exact values ---------------
http GET /status
[ "$CODE" = 200 ] || fail "GET /status answered $CODE, want 200"
grep -qi '^content-type: application/json' "$TMP/headers" || fail "/status is not application/json: $(cat "$TMP/headers")"
"$PYTHON" - "$TMP/body" "$BPID" "$version" "$Q" <<'EOF' || fail "/status document: $(cat "$TMP/body")"
import json, sys
d = json.load(open(sys.argv[1]))
pid, version, name = int(sys.argv[2]), sys.argv[3], sys.argv[4]
b = d["broker"]
assert b["pid"] == pid, f"broker.pid {b['pid']}, want {pid}"
assert b["version"] == version, f"broker.version {b['version']!r}, want {version!r}"
assert isinstance(b["uptime_s"], (int, float)) and 0 <= b["uptime_s"] < 60, b["uptime_s"]
assert isinstance(d["queues"], list) and len(d["queues"]) == 1, d["queues"]
q = d["queues"][0]
keys = ["name", "capacity", "max_msg_size", "depth", "high_water", "enqueued_total",
        "dequeued_total", "bytes_enqueued_total", "bytes_dequeued_total",
        "blocked_sends_total", "blocked_recvs_total", "recoveries_total", "rates",
        "producers", "consumers", "clients"]
missing = [k for k in keys if k not in q]
assert not missing, f"keys missing from queues[0]: {missing}"
for r in ("enqueue_per_s", "dequeue_per_s"):
    assert set(q["rates"][r]) >= {"1s", "10s", "60s"}, q["rates"]
    for w, v in q["rates"][r].items():
        assert isinstance(v, (int, float)) and v == 0, f"rates.{r}.{w} is {v}, want 0"
want = {"name": name, "capacity": 16, "max_msg_size": 256, "depth": 0, "high_water": 0,
        "enqueued_total": 0, "dequeued_total": 0, "bytes_enqueued_total": 0,
        "bytes_dequeued_total": 0, "blocked_sends_total": 0, "blocked_recvs_total": 0,
        "recoveries_total": 0, "producers": 0, "consumers": 0, "clients": []}
bad = {k: q[k] for k in want if q[k] != want[k] or type(q[k]) is not type(want[k])}
assert not bad, f"wrong values {bad}, want {want}"
EOF

# --- traffic: 10 messages of 100 bytes in, 4 out ------------------------------
mqload_ok send "$Q" 10 --size 100 --id 1
mqload_ok recv "$Q" 4 --log "$TMP/recv.log"
[ "$(cat "$TMP/recv.log")" = "$(printf '1 %d\n' 0 1 2 3)" ] ||
	fail "received $(tr '\n' ',' <"$TMP/recv.log"), want producer 1 seq 0..3 in order"
status_expect depth=6 high_water=10 enqueued_total=10 dequeued_total=4 \
	bytes_enqueued_total=1000 bytes_dequeued_total=400 blocked_sends_total=0 \
	blocked_recvs_total=0 recoveries_total=0 producers=0 consumers=0 'clients=[]' \
	full_total=0 empty_total=0

# The rates follow: within a few ticks the 60 s enqueue rate is above 0.
rates_up() {
	[ "$(status_get 'd["queues"][0]["rates"]["enqueue_per_s"]["60s"] > 0 and d["queues"][0]["rates"]["dequeue_per_s"]["60s"] > 0')" = True ]
}
wait_until 5 rates_up || fail "rates still 0 five seconds after traffic: $(cat "$TMP/body")"

# --- attached clients: two producers and a consumer, alive ---------------------
run_bg H1 "$MQLOAD" hold "$Q" --send 2 --size 50 --id 2 --ready "$TMP/h1.ready" >/dev/null
run_bg H2 "$MQLOAD" hold "$Q" --recv 3 --ready "$TMP/h2.ready" >/dev/null
run_bg H3 "$MQLOAD" hold "$Q" --send 1 --size 50 --id 4 --ready "$TMP/h3.ready" >/dev/null
for h in 1 2 3; do
	wait_until 10 test -s "$TMP/h$h.ready" || fail "mqload hold $h did not get ready"
done
# H2 took the oldest three: producer 1's seq 4..6 (100 bytes each).
status_expect depth=6 high_water=10 enqueued_total=13 dequeued_total=7 \
	bytes_enqueued_total=1150 bytes_dequeued_total=700 producers=2 consumers=1 \
	clients_attached=3 recoveries_total=0
http GET /status
"$PYTHON" - "$TMP/body" "$H1" "$H2" "$H3" <<'EOF' || fail "/status clients: $(cat "$TMP/body")"
import json, sys
q = json.load(open(sys.argv[1]))["queues"][0]
h1, h2, h3 = (int(a) for a in sys.argv[2:5])
by_pid = {c["pid"]: c for c in q["clients"]}
assert sorted(by_pid) == sorted([h1, h2, h3]), f"client pids {sorted(by_pid)}, want {sorted([h1, h2, h3])}"
want = {h1: {"role": "producer", "alive": True, "sent_total": 2, "received_total": 0,
             "bytes_sent_total": 100, "bytes_received_total": 0},
        h2: {"role": "consumer", "alive": True, "sent_total": 0, "received_total": 3,
             "bytes_sent_total": 0, "bytes_received_total": 300},
        h3: {"role": "producer", "alive": True, "sent_total": 1, "received_total": 0,
             "bytes_sent_total": 50, "bytes_received_total": 0}}
for pid, w in want.items():
    got = {k: by_pid[pid].get(k) for k in w}
    assert got == w, f"client {pid}: {got}, want {w}"
EOF
# /metrics now, while the figures differ from one another (and nothing moves).
metrics_match_status

# A clean exit (SIGTERM: mqload detaches) removes them from the table.
kill -TERM "$H1" "$H2" "$H3"
for h in "$H1" "$H2" "$H3"; do
	wait_exit "$h" 10
	[ "$RC" -eq 0 ] || fail "mqload hold pid $h exited $RC on SIGTERM"
done
status_expect producers=0 consumers=0 'clients=[]' clients_attached=0 recoveries_total=0

# --- full and empty: blocked and non-blocking calls are counted ----------------
mqload_ok send "$Q" 10 --size 100 --id 3 # 6 + 10 = 16: full
status_expect depth=16 high_water=16 full_total=0 blocked_sends_total=0
mqload_fails 3 "mq_send on $Q: queue full (16 messages) (errno EAGAIN)" send "$Q" 1 --timeout 0
status_expect depth=16 full_total=1 blocked_sends_total=0 enqueued_total=23
mqload_fails 3 "mq_send on $Q: still full after 100 ms (errno ETIMEDOUT)" send "$Q" 1 --timeout 100
status_expect depth=16 full_total=2 blocked_sends_total=1 enqueued_total=23
mqload_ok recv "$Q" 16 --log "$TMP/drain.log"
want_drain=$( (printf '1 %d\n' 7 8 9; printf '2 %d\n' 0 1; echo "4 0"; for i in $(seq 0 9); do echo "3 $i"; done) | sort)
[ "$(sort "$TMP/drain.log")" = "$want_drain" ] || fail "drained $(tr '\n' ',' <"$TMP/drain.log")"
mqload_fails 3 "mq_recv on $Q: queue empty (errno EAGAIN)" recv "$Q" 1 --timeout 0
mqload_fails 3 "mq_recv on $Q: still empty after 100 ms (errno ETIMEDOUT)" recv "$Q" 1 --timeout 100
mqload_fails 3 "mq_recv on $Q: still empty after 50 ms" recv "$Q" 1 --timeout 50
status_expect depth=0 high_water=16 enqueued_total=23 dequeued_total=23 \
	bytes_enqueued_total=2150 bytes_dequeued_total=2150 full_total=2 blocked_sends_total=1 \
	empty_total=3 blocked_recvs_total=2 recoveries_total=0
metrics_match_status

# --- methods, unknown paths, the dashboard -------------------------------------
http HEAD /status
[ "$CODE" = 200 ] || fail "HEAD /status answered $CODE, want 200"
for path in /nope /status/x /metricsx /index.htm; do
	http GET "$path"
	[ "$CODE" = 404 ] || fail "GET $path answered $CODE, want 404"
	"$PYTHON" -c 'import json, sys; d = json.load(open(sys.argv[1])); assert d["error"] == "not found" and d["path"] == sys.argv[2], d' \
		"$TMP/body" "$path" || fail "GET $path: body is not the JSON error: $(cat "$TMP/body")"
	grep -qi '^content-type: application/json' "$TMP/headers" || fail "404 for $path is not JSON"
done
for req in "POST /status" "POST /metrics" "DELETE /healthz" "PUT /status" "POST /"; do
	read -r method path <<<"$req"
	http "$method" "$path"
	[ "$CODE" = 405 ] || fail "$req answered $CODE, want 405"
	grep -qiE '^allow: GET, HEAD' "$TMP/headers" || fail "$req: 405 without 'Allow: GET, HEAD': $(cat "$TMP/headers")"
	"$PYTHON" -c 'import json, sys; assert json.load(open(sys.argv[1]))["error"] == "method not allowed"' \
		"$TMP/body" || fail "$req: body is not the JSON error: $(cat "$TMP/body")"
done
http POST /status --data 'x=1'
[ "$CODE" = 405 ] || fail "POST /status with a body answered $CODE, want 405"
http POST /nope
[ "$CODE" = 404 ] || fail "POST /nope answered $CODE, want 404"
http GET /
[ "$CODE" = 200 ] || fail "GET / answered $CODE, want 200 (dashboard from $web_root)"
cmp -s "$TMP/body" "$web_root/index.html" || fail "GET / is not $web_root/index.html"
grep -qi '^content-type: text/html' "$TMP/headers" || fail "GET / is not text/html"
for path in /../CMakeLists.txt /%2e%2e/CMakeLists.txt /.git/config; do
	http GET "$path" --path-as-is
	[ "$CODE" = 404 ] || fail "GET $path (outside the web root) answered $CODE, want 404"
done

# --- malformed requests, straight on a socket ----------------------------------
"$PYTHON" - "$BPORT" <<'EOF' || fail "malformed requests (above)"
import socket, sys, time
port = int(sys.argv[1])

def status_line(data):
    """Send DATA on a new connection; the status line, or '' if closed unanswered."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(data)
        got = b""
        while b"\r\n" not in got:
            b = s.recv(4096)
            if not b:
                break
            got += b
    return got.split(b"\r\n")[0].decode("latin-1")

cases = [
    (b"GET /status\r\n\r\n", "400"),                                        # no HTTP version
    (b"GET  HTTP/1.1\r\nHost: x\r\n\r\n", "400"),                           # no URL
    (b"GET /status HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n", "400"),   # bad header line
    (b"GET /status HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", "400"),
    (b"GET /status HTTP/9.9\r\nHost: x\r\n\r\n", "505"),
    (b"GET /" + b"a" * 40000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", "414"),
    (b"GET /status HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 65536 + b"\r\n\r\n", "431"),
    (b"BREW /status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "405"),
]
bad = []
for data, want in cases:
    line = status_line(data)
    if not line.startswith("HTTP/1.1 " + want + " "):
        bad.append(f"{data[:40]!r}...: got {line!r}, want {want}")
# A request line of one word: libmicrohttpd closes without an answer (or 400).
line = status_line(b"GARBAGE\r\n\r\n")
if line not in ("", ) and not line.startswith("HTTP/1.1 400 "):
    bad.append(f"b'GARBAGE': got {line!r}, want 400 or a closed connection")
# A client that never finishes its request does not hold up the others.
stalled = socket.create_connection(("127.0.0.1", port), timeout=5)
stalled.sendall(b"GET /status HTTP/1.1\r\nHost: x\r\n")
t = time.monotonic()
line = status_line(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
if not line.startswith("HTTP/1.1 200 ") or time.monotonic() - t > 2:
    bad.append(f"/healthz next to a stalled client: {line!r} after {time.monotonic() - t:.1f} s")
stalled.close()
for b in bad:
    print("FAIL:", b, file=sys.stderr)
sys.exit(1 if bad else 0)
EOF

# Still serving, and the counters untouched by all that.
http GET /healthz
[ "$CODE" = 200 ] || fail "GET /healthz answered $CODE after the bad requests"
status_expect enqueued_total=23 dequeued_total=23 depth=0
stop_broker "$BPID" TERM "$TMP/broker.log"
echo PASS
