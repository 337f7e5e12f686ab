#!/bin/bash
# event_loops.sh - the event-loop examples (libmq/examples/epoll_consumer.c,
# uv_consumer.c) run as a user would run them: a queue served by mqbroker,
# messages sent with mqctl before and while the example runs, a TCP client
# echoed in the same loop, no CPU burnt while idle, SIGTERM ends it (exit 0).
# Usage: tests/examples/event_loops.sh MQCTL MQBROKER EXAMPLE...
TEST=event_loops
# shellcheck source=../cli/common.sh
. "$(dirname "$0")/../cli/common.sh" "$1" "$2"
shift 2
[ $# -ge 1 ] || fail "no example given"

# echo_check PORT TEXT: a TCP client gets TEXT back from 127.0.0.1:PORT.
echo_check() {
	"$PYTHON" - "$1" "$2" <<'PY' || fail "no echo of '$2' from 127.0.0.1:$1"
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
want = sys.argv[2].encode()
s.sendall(want)
got = b""
while len(got) < len(want):
    b = s.recv(4096)
    if not b:
        break
    got += b
sys.exit(0 if got == want else 1)
PY
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

start_broker "$Q"
for ex in "$@"; do
	name=$(basename "$ex")
	[ -x "$ex" ] || fail "$ex is not an executable"
	expect 0 send -q "$Q" "early $name"
	port=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	out=$TMP/$name.out
	MQ_QUEUE=$Q run_bg EPID "$ex" "$port" >"$out" 2>"$TMP/$name.err"
	wait_until 10 grep -q "in one loop" "$out" || fail "$name did not start: $(cat "$out" "$TMP/$name.err")"
	wait_until 10 grep -qx "queue: early $name" "$out" || fail "$name did not print the message sent before it started: $(cat "$out")"
	expect 0 send -q "$Q" "m1" "m2"
	wait_until 10 grep -qx "queue: m2" "$out" || fail "$name did not print m1, m2: $(cat "$out")"
	echo_check "$port" "ping from a tcp client"
	# Idle (queue empty, no client): it sleeps in its loop.
	c0=$(cpu_ticks "$EPID")
	sleep 1
	c1=$(cpu_ticks "$EPID")
	[ $((c1 - c0)) -le 5 ] || fail "$name used $((c1 - c0)) ticks of CPU in 1 s idle (a busy loop?)"
	expect 0 send -q "$Q" "m3"
	wait_until 10 grep -qx "queue: m3" "$out" || fail "$name missed m3 after idling: $(cat "$out")"
	echo_check "$port" "second client"
	kill -TERM "$EPID"
	wait_exit "$EPID" 10
	[ "$RC" -eq 0 ] || fail "$name exited with $RC on SIGTERM: $(cat "$TMP/$name.err")"
	sanitizer_clean "$TMP/$name.err"
	printf 'queue: early %s\nqueue: m1\nqueue: m2\nqueue: m3\n' "$name" >"$TMP/want"
	grep '^queue: ' "$out" | cmp -s "$TMP/want" - || fail "$name printed: $(cat "$out")"
	grep -qx "${name#example_}: stopped" "$out" || fail "$name did not say it stopped: $(cat "$out")"
done
stop_broker "$BPID"
