#!/bin/bash
# lifecycle.sh - mqbroker's start and stop: bad flags and config files (2), second broker (3), bad segments (4), port in use (5), permission (6), SIGTERM/SIGINT (0), adopt, --recreate.
set -euo pipefail
TEST=lifecycle
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"

E="$TMP/err.log"

# --- usage errors: exit 2, a message naming the culprit, no queue created ------
usage_case() { # usage_case TEXT ARGS...
	local text=$1
	shift
	expect_exit 2 "$E" "$@"
	expect_log "$E" "$text"
	expect_log "$E" "Try 'mqbroker --help'"
}
usage_case "unknown option '--bogus'" -n "$Q" --bogus
usage_case "unknown option '-x'" -n "$Q" -x
usage_case "option '--capacity' needs a value" -n "$Q" --capacity
usage_case "unexpected argument 'extra'" -n "$Q" extra
usage_case "bad --capacity '0'" -n "$Q" --capacity 0
usage_case "bad --capacity '12x'" -n "$Q" --capacity 12x
usage_case "bad --capacity '-5'" -n "$Q" --capacity -5
usage_case "bad --capacity '16777217'" -n "$Q" --capacity 16777217
usage_case "bad --max-msg '0'" -n "$Q" --max-msg 0
usage_case "bad --max-msg '2G'" -n "$Q" --max-msg 2G
usage_case "bad --max-msg '1025M'" -n "$Q" --max-msg 1025M
usage_case "bad --max-msg '18014398509481985K'" -n "$Q" --max-msg 18014398509481985K # 2^54+1 KiB: wraps to 1 KiB unchecked
usage_case "bad queue name 'noslash'" --name noslash
usage_case "bad queue name '/a/b'" --name /a/b
usage_case "bad queue name '/'" --name /
usage_case "bad --mode '0999'" -n "$Q" --mode 0999
usage_case "bad --mode '01777'" -n "$Q" --mode 01777
usage_case "bad --listen 'nocolon'" -n "$Q" --listen nocolon
printf 'verbose = maybe\n' >"$TMP/bool.conf"
usage_case "$TMP/bool.conf:1: bad boolean 'maybe' (want yes or no)" -n "$Q" --config "$TMP/bool.conf"
[ ! -e "/dev/shm$Q" ] || fail "a usage error created $Q"
help=$("$BROKER" --help) || fail "mqbroker --help exited $?"
for code in "0 stopped cleanly" "1 runtime error" "2 usage or config error" "3 another mqbroker" \
	"4 the existing queue is incompatible" "5 cannot listen" "6 permission denied"; do
	[[ "$help" == *"$code"* ]] || fail "--help does not document exit status '$code'"
done
[[ "$("$BROKER" --version)" =~ ^mqbroker\ [0-9]+\.[0-9]+\.[0-9]+$ ]] || fail "--version: $("$BROKER" --version)"

# A listen address that cannot be parsed is a usage error too.
expect_exit 2 "$E" -n "$Q-l" -l 127.0.0.1:99999
expect_log "$E" "port 99999 out of range"
expect_exit 2 "$E" -n "$Q-l" -l 999.1.1.1:8080
expect_log "$E" "'999.1.1.1' is not an IPv4 address"
rm -f "/dev/shm$Q-l"
expect_exit 2 "$E" -n "$Q-l" -l 127.0.0.1:0 --group no-such-group-mqbt
expect_log "$E" "queue $Q-l: no such group 'no-such-group-mqbt'"
rm -f "/dev/shm$Q-l"

# --- config file: "key = value" lines, comments; flags win ---------------------
cat >"$TMP/good.conf" <<EOF
# mqbroker test configuration
capacity = 32
max-msg = 1K   # binary suffix, trailing comment

listen = 127.0.0.1:0
name = $Q-notthis
verbose = yes
EOF
start_broker "$TMP/cfg.log" --config "$TMP/good.conf" -n "$Q-cfg"
status_expect "name=\"$Q-cfg\"" capacity=32 max_msg_size=1024
expect_log "$TMP/cfg.log" "created $Q-cfg: capacity 32 messages of up to 1024 bytes"
[ ! -e "/dev/shm$Q-notthis" ] || fail "the config file's name won over --name"
stop_broker "$BPID" TERM "$TMP/cfg.log"
start_broker "$TMP/cfg2.log" --config "$TMP/good.conf" -n "$Q-cfg2" --capacity 64 -l 127.0.0.1:0
status_expect "name=\"$Q-cfg2\"" capacity=64 max_msg_size=1024
stop_broker "$BPID" TERM "$TMP/cfg2.log"
printf 'capacity = 8\n\nbogus = 1\n' >"$TMP/unknown.conf"
expect_exit 2 "$E" --config "$TMP/unknown.conf" -n "$Q-cfg3"
expect_log "$E" "$TMP/unknown.conf:3: unknown option 'bogus'"
printf '# x\ncapacity = lots\n' >"$TMP/badvalue.conf"
expect_exit 2 "$E" --config "$TMP/badvalue.conf" -n "$Q-cfg3"
expect_log "$E" "$TMP/badvalue.conf:2: bad --capacity 'lots'"
expect_exit 2 "$E" --config "$TMP/missing.conf" -n "$Q-cfg3"
expect_log "$E" "config: $TMP/missing.conf: cannot open: No such file or directory"
[ ! -e "/dev/shm$Q-cfg3" ] || fail "a bad config file created $Q-cfg3"

# --- a broker; a second one is refused; its port is taken ----------------------
start_broker "$TMP/a.log" -n "$Q" -c 16 -m 128 -l 127.0.0.1:0
A=$BPID
APORT=$BPORT
expect_log "$TMP/a.log" "created $Q: capacity 16 messages of up to 128 bytes, mode 0660"
[ "$(stat -c %a "/dev/shm$Q")" = 660 ] || fail "new queue has mode $(stat -c %a "/dev/shm$Q"), want 660"
mqload_ok send "$Q" 3 --size 100
expect_exit 3 "$E" -n "$Q" -l 127.0.0.1:0
expect_log "$E" "queue $Q is already served by mqbroker pid $A"
expect_exit 3 "$E" -n "$Q" -c 99 -l 127.0.0.1:0 # refused before any geometry question
expect_log "$E" "already served by mqbroker pid $A"
expect_exit 5 "$E" -n "$Q-port" -l "127.0.0.1:$APORT"
expect_log "$E" "cannot listen on 127.0.0.1:$APORT: address in use"
rm -f "/dev/shm$Q-port"
http GET /healthz
[ "$CODE" = 200 ] || fail "first broker stopped answering after the refused ones"
status_expect depth=3 enqueued_total=3 capacity=16 max_msg_size=128

# --- SIGTERM: exit 0, the queue stays with its messages ------------------------
stop_broker "$A" TERM "$TMP/a.log"
expect_log "$TMP/a.log" "stopping on Terminated; $Q stays with 3 messages"
[ -e "/dev/shm$Q" ] || fail "SIGTERM removed $Q"

# A new broker adopts it (geometry flags left out: the queue's own), then SIGINT.
start_broker "$TMP/b.log" -n "$Q" -l "127.0.0.1:$APORT" # the same port rebinds at once
expect_log "$TMP/b.log" "adopted $Q: 3 messages queued, 0 leased, 0 clients attached"
status_expect depth=3 enqueued_total=3 bytes_enqueued_total=300 capacity=16 max_msg_size=128
stop_broker "$BPID" INT "$TMP/b.log"
expect_log "$TMP/b.log" "stopping on Interrupt; $Q stays with 3 messages"

# Given geometry flags must match; matching ones adopt.
expect_exit 4 "$E" -n "$Q" -c 32 -l 127.0.0.1:0
expect_log "$E" "queue $Q exists with capacity 16, --capacity asks for 32; drop the flag to adopt it, or add --recreate to replace it (its 3 messages are lost)"
expect_exit 4 "$E" -n "$Q" -m 256 -l 127.0.0.1:0
expect_log "$E" "queue $Q exists with max message size 128 bytes, --max-msg asks for 256"
expect_log "$E" "--recreate"
start_broker "$TMP/c.log" -n "$Q" -c 16 -m 128 -l 127.0.0.1:0
expect_log "$TMP/c.log" "adopted $Q: 3 messages queued"
stop_broker "$BPID" TERM "$TMP/c.log"
# The messages survived two brokers and two refusals, whole and in order.
mqload_ok recv "$Q" 3 --timeout 1000 --log "$TMP/survivors.log"
[ "$(cat "$TMP/survivors.log")" = "$(printf '0 %d\n' 0 1 2)" ] ||
	fail "after the restarts the queue held $(tr '\n' ',' <"$TMP/survivors.log"), want seq 0,1,2"
mqload_fails 3 "mq_recv on $Q: queue empty (errno EAGAIN)" recv "$Q" 1 --timeout 0 # no fourth message

# --recreate replaces a queue of another geometry (its messages are dropped).
mqload_ok send "$Q" 2
start_broker "$TMP/d.log" -n "$Q" -c 32 --recreate -l 127.0.0.1:0
expect_log "$TMP/d.log" "replacing $Q as asked (--recreate): capacity 16 -> 32, max message 128 -> 128 bytes, 2 messages dropped"
expect_log "$TMP/d.log" "created $Q: capacity 32 messages of up to 128 bytes"
status_expect capacity=32 max_msg_size=128 depth=0 enqueued_total=0
stop_broker "$BPID" TERM "$TMP/d.log"

# --- unusable segments: exit 4 naming the queue and --recreate; file untouched --
bad_segment() { # bad_segment WHAT TEXT: the file $Q-bad is refused with TEXT
	chmod 0660 "/dev/shm$Q-bad" # the broker's mode: refused for what it holds, not its mode
	cp "/dev/shm$Q-bad" "$TMP/bad.copy"
	expect_exit 4 "$E" -n "$Q-bad" -l 127.0.0.1:0
	expect_log "$E" "queue $Q-bad: $2"
	expect_log "$E" "start with --recreate to replace it"
	cmp -s "/dev/shm$Q-bad" "$TMP/bad.copy" || fail "$1: the refused segment was changed"
}
: >"/dev/shm$Q-bad"
bad_segment "zero-length file" "truncated: 0 bytes, smaller than the 33664-byte header"
head -c 100000 /dev/urandom >"/dev/shm$Q-bad"
bad_segment "garbage file" "not a libmq queue (magic 0x"
cp "/dev/shm$Q" "/dev/shm$Q-bad"
size=$(stat -c %s "/dev/shm$Q")
truncate -s $((size - 64)) "/dev/shm$Q-bad"
bad_segment "truncated queue" "truncated: file has $((size - 64)) bytes, its header says $size"
truncate -s 4096 "/dev/shm$Q-bad"
bad_segment "queue cut inside its header" "truncated: 4096 bytes, smaller than the 33664-byte header"
cp "/dev/shm$Q" "/dev/shm$Q-bad"
printf '\004\000\000\000' | dd of="/dev/shm$Q-bad" bs=1 seek=8 conv=notrunc status=none
bad_segment "layout version 4" "layout version 4, this libmq reads version 3 (made by a newer libmq)"
cp "/dev/shm$Q" "/dev/shm$Q-bad"
printf '\377' | dd of="/dev/shm$Q-bad" bs=1 seek=17 conv=notrunc status=none
bad_segment "scribbled capacity" "corrupt header (geometry checksum mismatch)"
head -c 100000 /dev/urandom >"/dev/shm$Q-bad"
start_broker "$TMP/e.log" -n "$Q-bad" --recreate -c 8 -m 64 -l 127.0.0.1:0
expect_log "$TMP/e.log" "replacing $Q-bad as asked (--recreate): queue $Q-bad: not a libmq queue"
expect_log "$TMP/e.log" "created $Q-bad: capacity 8 messages of up to 64 bytes"
status_expect "name=\"$Q-bad\"" capacity=8 max_msg_size=64 depth=0
mqload_ok send "$Q-bad" 1 --size 64
status_expect depth=1 enqueued_total=1
stop_broker "$BPID" TERM "$TMP/e.log"

# --- --mode; permission denied: exit 6 ------------------------------------------
start_broker "$TMP/f.log" -n "$Q-perm" --mode 0600 -l 127.0.0.1:0
[ "$(stat -c '%a %u' "/dev/shm$Q-perm")" = "600 $(id -u)" ] ||
	fail "--mode 0600 made $(stat -c '%a %u' "/dev/shm$Q-perm")"
stop_broker "$BPID" TERM "$TMP/f.log"
if [ "$(id -u)" -eq 0 ]; then
	# Run as nobody a copy of the broker nobody can reach (the build tree may not be).
	mkdir "$TMP/nobody"
	cp "$BROKER" "$TMP/nobody/mqbroker"
	chmod 755 "$TMP" "$TMP/nobody"
	ROOT_BROKER=$BROKER
	BROKER="$TMP/nobody/mqbroker"
	AS_USER=(--reuid 65534 --regid 65534 --clear-groups)
	expect_exit 6 "$TMP/nobody/err.log" -n "$Q-perm" -l 127.0.0.1:0
	expect_log "$TMP/nobody/err.log" "queue $Q-perm: Permission denied"
	# nobody can still run a broker of its own queue.
	start_broker "$TMP/nobody/own.log" -n "$Q-nobody" -l 127.0.0.1:0
	[ "$(stat -c %u "/dev/shm$Q-nobody")" = 65534 ] || fail "nobody's queue is not nobody's"
	stop_broker "$BPID" TERM "$TMP/nobody/own.log"
	AS_USER=()
	BROKER=$ROOT_BROKER
else
	echo "SKIP: permission denied (exit 6) needs root to run the broker as another user"
fi
[ "$(stat -c '%a' "/dev/shm$Q-perm")" = 600 ] || fail "the refused broker changed $Q-perm"
echo PASS
