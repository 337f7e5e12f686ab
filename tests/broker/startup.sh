#!/bin/bash
# startup.sh - what mqbroker checks before it touches a queue (issue 12, findings 8 and 9): a config file that is too long a line, has a NUL, is no regular file, is too big, names an unknown or repeated option is refused with FILE:LINE and exit 2, promptly, and creates nothing; a --listen that cannot be bound leaves no queue behind; names and values are logged escaped.
set -euo pipefail
TEST=startup
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"

CONF="$TMP/mqbroker.conf"

# refused_conf TEXT...: mqbroker --config (with -n $Q) exits 2 within 5 s,
# its log has TEXT, and no queue was made.
refused_conf() {
	local t0 ms
	t0=$(date +%s%N)
	expect_exit 2 "$TMP/err.log" -n "$Q" -l 127.0.0.1:0 --config "$1"
	ms=$((($(date +%s%N) - t0) / 1000000))
	[ "$ms" -lt 5000 ] || fail "--config $1 took ${ms} ms to be refused"
	expect_log "$TMP/err.log" "$2"
	[ ! -e "/dev/shm$Q" ] || fail "--config $1 was refused, but /dev/shm$Q was made"
}

# The finding: a comment longer than 1023 bytes had its tail applied ("mode =
# 0666" made the queue world-writable). Now the whole line is refused.
{
	echo "capacity = 8"
	printf '# %s mode = 0666\n' "$(head -c 1100 /dev/zero | tr '\0' x)"
} >"$CONF"
refused_conf "$CONF" "config: $CONF:2: line of 1114 bytes, longer than 1024"

# capacity = 10\0junk was read as 10.
printf 'capacity = 10\0junk\n' >"$CONF"
refused_conf "$CONF" "config: $CONF:1: a NUL byte (column 14)"

# Not regular files: a directory was accepted, /dev/zero spun for ever.
refused_conf /etc "config: /etc: not a regular file (a directory)"
refused_conf /dev/zero "config: /dev/zero: not a regular file (a character device)"
mkfifo "$TMP/fifo"
refused_conf "$TMP/fifo" "config: $TMP/fifo: not a regular file (a FIFO)"

# Too big, unknown keys, repeated keys, bad values: FILE:LINE and the reason.
head -c 70000 /dev/zero | tr '\0' '#' >"$CONF"
refused_conf "$CONF" "config: $CONF: 70000 bytes, more than the 65536 a config file may have"
printf 'capacity = 8\ncolour = blue\n' >"$CONF"
refused_conf "$CONF" "$CONF:2: unknown option 'colour'"
printf 'capacity = 8\nmode = 0600\ncapacity = 16\n' >"$CONF"
refused_conf "$CONF" "$CONF:3: 'capacity' is given twice (first on line 1)"
printf 'capacity = 10junk\n' >"$CONF"
refused_conf "$CONF" "$CONF:1: bad --capacity '10junk'"
# A bad line late in the file: nothing of the lines before it was applied
# (nothing was made at all).
printf 'capacity = 8\nmax-msg = 64\nlisten = 127.0.0.1:0\nverbose = maybe\n' >"$CONF"
refused_conf "$CONF" "$CONF:4: bad boolean 'maybe'"

# A good file is applied; flags win over it.
printf '# test\ncapacity = 8\nmax-msg = 64\nmode = 0640\n' >"$CONF"
start_broker "$TMP/b.log" -n "$Q" -l 127.0.0.1:0 --config "$CONF" --mode 0600
expect_log "$TMP/b.log" "created $Q: capacity 8 messages of up to 64 bytes, mode 0600"
stop_broker "$BPID" TERM "$TMP/b.log"
rm -f "/dev/shm$Q"

# --listen that cannot be bound (an address not on this host): exit 5, and
# the queue this run created is gone again.
expect_exit 5 "$TMP/err.log" -n "$Q" -l 10.9.9.9:1
[ ! -e "/dev/shm$Q" ] || fail "a start that could not listen left /dev/shm$Q behind"
# ... while a queue that was there before stays, with its messages.
start_broker "$TMP/b.log" -n "$Q" -l 127.0.0.1:0 -c 8 -m 64
"$MQLOAD" send "$Q" 2 --size 32 >/dev/null
stop_broker "$BPID" TERM "$TMP/b.log"
expect_exit 5 "$TMP/err.log" -n "$Q" -l 10.9.9.9:1
[ -e "/dev/shm$Q" ] || fail "a failed start removed a queue it had adopted"
"$MQLOAD" recv "$Q" 2 --timeout 1000 >/dev/null || fail "the adopted queue lost its messages"
rm -f "/dev/shm$Q"

# Names and values reach the log escaped, never raw.
expect_exit 2 "$TMP/err.log" -n "$(printf '/q\033[2Jx')" -c bad
grep -q $'\033' "$TMP/err.log" && fail "an escape character reached the log raw: $(cat -v "$TMP/err.log")"
printf 'name = /ok\ncapacity = 1\x1b[31m\n' >"$CONF"
refused_conf "$CONF" "$CONF:2: control character 0x1b (column 13)"
expect_exit 2 "$TMP/err.log" -n "$Q" --config "$(printf '%s/bad\033name' "$TMP")"
grep -q $'\033' "$TMP/err.log" && fail "an escape character in a path reached the log raw: $(cat -v "$TMP/err.log")"
expect_log "$TMP/err.log" 'bad\x1bname: cannot open: No such file or directory'

# Many queues (issue 15): every bad --queue and queue line is refused with
# its reason (exit 2) before any queue is touched.
bad_queue() {
	local text=$1
	shift
	expect_exit 2 "$TMP/err.log" -l 127.0.0.1:0 "$@"
	expect_log "$TMP/err.log" "$text"
	for x in "$Q" "$Q-a" "$Q-b"; do
		[ ! -e "/dev/shm$x" ] || fail "mqbroker $* was refused, but /dev/shm$x was made"
	done
}
bad_queue "bad queue name 'nope'" --queue "$Q-a" --queue nope
bad_queue "bad queue name '/a/b'" --queue /a/b
bad_queue "bad --queue '$Q-a:0' (want NAME[:CAPACITY[:MAX_MSG]]; CAPACITY 1..16777216 messages)" --queue "$Q-a:0"
bad_queue "bad --queue '$Q-a:8:9G' (want NAME[:CAPACITY[:MAX_MSG]]; MAX_MSG 1..1073741824 bytes" --queue "$Q-a:8:9G"
bad_queue "bad --queue '$Q-a:8:64:1'" --queue "$Q-a:8:64:1"
bad_queue "queue $Q-a is given twice" --queue "$Q-a" --queue "$Q-a:16"
bad_queue "option '--queue' needs a value" --queue
bad_queue "--name $Q and --queue (or queue lines) both name queues" -n "$Q" --queue "$Q-a"
printf 'queue = %s capacity
' "$Q-a" >"$CONF"
bad_queue "$CONF:1: queue line: 'capacity' needs a value" --config "$CONF"
printf 'queue = %s colour blue
' "$Q-a" >"$CONF"
bad_queue "$CONF:1: queue line: unknown setting 'colour' (want capacity, max_msg, mode or group)" --config "$CONF"
printf 'queue = %s mode 0999
' "$Q-a" >"$CONF"
bad_queue "$CONF:1: queue line: bad mode '0999'" --config "$CONF"
printf 'queue = %s max_msg 0
' "$Q-a" >"$CONF"
bad_queue "$CONF:1: queue line: bad max_msg '0'" --config "$CONF"
printf 'queue = %s group no-such-group-here
' "$Q-a" >"$CONF"
bad_queue "queue $Q-a: no such group 'no-such-group-here'" --config "$CONF"
printf 'queue =
' >"$CONF"
bad_queue "$CONF:1: queue line '' names no queue" --config "$CONF"
printf 'queue = %s
queue = %s capacity 8
' "$Q-a" "$Q-a" >"$CONF"
bad_queue "$CONF:2: queue $Q-a is given twice" --config "$CONF"
printf 'name = %s
queue = %s
' "$Q" "$Q-a" >"$CONF"
bad_queue "both name queues" --config "$CONF"
# No queue can be served: the first one's reason and exit status.
head -c 40000 /dev/urandom >"/dev/shm$Q-a"
head -c 40000 /dev/urandom >"/dev/shm$Q-b"
expect_exit 4 "$TMP/err.log" -l 127.0.0.1:0 --queue "$Q-a" --queue "$Q-b"
expect_log "$TMP/err.log" "no queue could be served"
rm -f "/dev/shm$Q-a" "/dev/shm$Q-b"
echo "PASS: $TEST"
