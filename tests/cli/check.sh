#!/bin/bash
# check.sh - mqctl check: healthy (0), missing (3), damaged (6: garbage, empty,
# truncated, another version, corrupt header), stale (7: broker killed or
# stopped), clients alive and dead, --unlink-stale (refused while a live client
# holds the queue, then removes it; never a healthy or damaged one), and what
# send/recv/stats say about a damaged segment (exit 6).
# Usage: check.sh MQCTL MQBROKER
set -euo pipefail
TEST=check
. "$(dirname "$0")/common.sh"

# verdict WANT ARGS...: mqctl check ARGS exits with WANT; findings and verdict
# go to stdout, stderr stays empty (errors of other commands go there).
verdict() {
	local want=$1
	shift
	mqctl check "$@"
	[ "$RC" -eq "$want" ] || fail "mqctl check $* exited with $RC, want $want: $(cat "$TMP/out" "$TMP/err")"
	[ ! -s "$TMP/err" ] || fail "mqctl check $* wrote to stderr: $(cat "$TMP/err")"
}

# Missing: exit 3, the verdict on stdout.
verdict 3 -q "$Q"
out_is "missing: queue $Q not found — is mqbroker running?\n"
verdict 3 -q "$Q" --unlink-stale

# Healthy: a live broker; one finding per line, then the verdict.
start_broker "$Q" --capacity 16 --max-msg 64
expect 0 send -q "$Q" one two
verdict 0 -q "$Q"
out_has "file: /dev/shm$Q, "
out_has "magic: ok"
out_has "version: 3"
out_has "geometry: 16 messages of up to 64 bytes, 128-byte chunks (ok)"
out_has "positions: head 0, tail 2, 2 queued, 0 leased"
out_has "chunks: 14 free, 2 queued, 0 requeued, 0 leased, 0 reserved, 0 being copied out"
out_has "send lock: free"
out_has "receive lock: free"
out_has "clients: none attached"
out_has "broker: pid $BPID, alive, heartbeat "
[ "$(tail -n 1 "$TMP/out")" = "healthy: queue $Q is valid and served by mqbroker pid $BPID" ] ||
	fail "verdict: $(tail -n 1 "$TMP/out")"
# --unlink-stale never removes a healthy queue.
verdict 0 -q "$Q" -u
out_has "not removed: queue $Q is not stale"
[ -e "/dev/shm$Q" ] || fail "check --unlink-stale removed a healthy queue"
# check does not attach: the client table stays empty.
expect 0 stats -q "$Q" --json --sample 0
json_expect "$TMP/out" clients=[]

# Clients: a live one (recv --follow), listed as alive.
run_bg FPID "$MQCTL" recv -q "$Q" --follow --format line >"$TMP/follow.out" 2>"$TMP/follow.err"
wait_until 10 grep -qx two "$TMP/follow.out" || fail "recv --follow printed: $(cat "$TMP/follow.out")"
verdict 0 -q "$Q"
out_has "client: pid $FPID (consumer, 0 sent, 2 received): alive"

# Stale: the broker killed (SIGKILL): valid segment, no live broker, exit 7.
kill_broker "$BPID"
verdict 7 -q "$Q"
out_has "broker: none running (pid $BPID recorded; it did not stop cleanly)"
out_has "client: pid $FPID (consumer, 0 sent, 2 received): alive"
[ "$(tail -n 1 "$TMP/out")" = "stale: queue $Q is valid but no mqbroker serves it (1 live client) — 'mqbroker -n $Q' adopts it, 'mqctl check -q $Q --unlink-stale' removes it" ] ||
	fail "verdict: $(tail -n 1 "$TMP/out")"
# --unlink-stale refuses while a live client holds it (exit 7, nothing removed).
verdict 7 -q "$Q" --unlink-stale
out_has "not removed: 1 live process still uses queue $Q (pid $FPID) — stop it first"
[ -e "/dev/shm$Q" ] || fail "check --unlink-stale removed a queue a live client holds"
# The stale queue still works without a broker.
expect 0 send -q "$Q" three
wait_until 10 grep -qx three "$TMP/follow.out" || fail "recv --follow without broker printed: $(cat "$TMP/follow.out")"
# A client that dies attached (SIGKILL, no broker to sweep it) is listed as dead.
kill -KILL "$FPID"
wait_exit "$FPID" 10
verdict 7 -q "$Q"
out_has "client: pid $FPID (consumer, 0 sent, 3 received): dead (the broker's sweep gives back what it held)"
out_has "(0 live clients)"
# Now nobody uses it: --unlink-stale removes it, exit 0, and it is gone.
verdict 0 -q "$Q" --unlink-stale
out_has "stale: queue $Q is valid but no mqbroker serves it"
[ "$(tail -n 1 "$TMP/out")" = "removed: stale queue $Q (0 messages lost)" ] || fail "last line: $(tail -n 1 "$TMP/out")"
[ ! -e "/dev/shm$Q" ] || fail "check --unlink-stale left /dev/shm$Q"
verdict 3 -q "$Q"

# A broker that stopped cleanly (SIGTERM) leaves a stale queue too (no pid
# recorded); a restarted broker makes it healthy again.
start_broker "$Q" --capacity 16 --max-msg 64
expect 0 send -q "$Q" kept
stop_broker "$BPID"
verdict 7 -q "$Q"
out_has "broker: none running"
out_lacks "recorded"
start_broker "$Q"
verdict 0 -q "$Q"
out_has "positions: head 0, tail 1, 1 queued, 0 leased"
stop_broker "$BPID"
verdict 7 -q "$Q"
verdict 0 -q "$Q" --unlink-stale
out_has "removed: stale queue $Q (1 message lost)"
[ ! -e "/dev/shm$Q" ] || fail "check --unlink-stale left /dev/shm$Q"

# Damaged: exit 6 with the reason, and never removed.
damaged() { # FILE-MAKER DESCRIPTION: expect check to say DESCRIPTION
	verdict 6 -q "$Q"
	out_has "segment: queue $Q: $1"
	out_has "damaged: queue $Q cannot be used — 'mqbroker -n $Q --recreate' replaces it (its messages are lost)"
	verdict 6 -q "$Q" --unlink-stale
	out_has "not removed: queue $Q is damaged, not stale"
	[ -e "/dev/shm$Q" ] || fail "check --unlink-stale removed a damaged queue"
}
# ... garbage
head -c 20000 /dev/urandom >"/dev/shm$Q"
chmod 600 "/dev/shm$Q"
damaged "not a libmq queue (magic 0x"
out_has "magic: 0x"
out_has ", not a libmq queue (want 0x314745534d51424c)"
out_has "broker: none running"
# send, recv and stats refuse it with exit 6, one line pointing at check.
for args in "send x" "recv -t 0" "stats" "watch -c 1"; do
	read -r -a words <<<"$args"
	expect 6 "${words[0]}" -q "$Q" "${words[@]:1}"
	err_has "mqctl: queue $Q: not a libmq queue (magic 0x"
	err_has " — run 'mqctl check -q $Q' for details"
done
# ... an empty file
: >"/dev/shm$Q"
damaged "truncated: 0 bytes, smaller than the"
out_has "header: 0 bytes, too short for a header"
# ... a valid queue truncated, of another layout version, with a corrupt header
make_valid() {
	rm -f "/dev/shm$Q"
	start_broker "$Q" --capacity 16 --max-msg 64
	kill_broker "$BPID"
	verdict 7 -q "$Q"
}
make_valid
truncate -s 36000 "/dev/shm$Q"
damaged "truncated: file has 36000 bytes, its header says 37632"
make_valid
printf '\004\000\000\000' | dd of="/dev/shm$Q" bs=1 seek=8 conv=notrunc status=none
damaged "layout version 4, this libmq reads version 3"
out_has "version: 4"
make_valid
printf '\377' | dd of="/dev/shm$Q" bs=1 seek=20 conv=notrunc status=none
damaged "corrupt header (geometry checksum mismatch)"
expect 6 recv -q "$Q" -t 0
err_has "corrupt header (geometry checksum mismatch) — run 'mqctl check -q $Q' for details"
