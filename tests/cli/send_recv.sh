#!/bin/bash
# send_recv.sh - mqctl send and recv: arguments, stdin lines, -, -f FILE, --whole,
# every --format with exact output, the default format (raw for one message
# into a pipe, byte for byte; line for more, so they stay apart), raw with more
# than one message refused (exit 2) before any is taken, -n, timeouts (exit 4),
# --follow until a signal, $MQ_QUEUE, missing queue (exit 3), permission denied
# and write errors (exit 1), interrupted calls (128+N) and clean detaching.
# Usage: send_recv.sh MQCTL MQBROKER [MANPAGE]
set -euo pipefail
TEST=send_recv
. "$(dirname "$0")/common.sh"

start_broker "$Q" --capacity 16 --max-msg 64

# MESSAGE arguments: each one message, nothing printed; recv --format line.
expect 0 send -q "$Q" hello world
out_is ""
[ ! -s "$TMP/err" ] || fail "send wrote to stderr: $(cat "$TMP/err")"
depth_is 2
expect 0 recv -q "$Q" -n 2 --format line
out_is "hello\nworld\n"
depth_is 0

# recv prints raw bytes by default when stdout is not a terminal (no newline)
# and one message is taken.
expect 0 send -q "$Q" abc
expect 0 recv -q "$Q"
out_is "abc"

# Message boundaries. Into a pipe, more than one message comes out one per
# line: the default is line as soon as more than one may be printed.
expect 0 send -q "$Q" hello world
RC=0
timeout -s KILL 30 "$MQCTL" recv -q "$Q" -n 2 </dev/null 2>"$TMP/err" | cat >"$TMP/out" || RC=$?
[ "$RC" -eq 0 ] || fail "mqctl recv -n 2 | cat exited with $RC: $(cat "$TMP/err")"
out_is "hello\nworld\n"
# ... also when fewer come, and with --follow.
expect 0 send -q "$Q" hello world
expect 4 recv -q "$Q" -n 3 --timeout 0
out_is "hello\nworld\n"
expect 0 send -q "$Q" hello world
expect 4 recv -q "$Q" --follow --timeout 200
out_is "hello\nworld\n"
# One message (-n 1, the default) into a pipe or file: the bytes exactly,
# binary ones too, by default and with --format raw.
printf 'a\000b\nc\377\r\n' >"$TMP/binmsg"
IN="$TMP/binmsg" expect 0 send -q "$Q" --whole
expect 0 recv -q "$Q"
cmp -s "$TMP/binmsg" "$TMP/out" || fail "recv (default, one message) is not byte for byte: $(od -An -c "$TMP/out")"
IN="$TMP/binmsg" expect 0 send -q "$Q" --whole
RC=0
timeout -s KILL 30 "$MQCTL" recv -q "$Q" -n 1 --format raw </dev/null 2>"$TMP/err" | cat >"$TMP/out" || RC=$?
[ "$RC" -eq 0 ] || fail "mqctl recv -n 1 --format raw | cat exited with $RC: $(cat "$TMP/err")"
cmp -s "$TMP/binmsg" "$TMP/out" || fail "recv -n 1 --format raw is not byte for byte: $(od -An -c "$TMP/out")"
# --format raw with more than one message would run them together: refused
# (exit 2, one line) before anything is taken, even with --no-lease (which
# would lose them), so the messages stay, never delivered (no "deliveries").
expect 0 send -q "$Q" one two
for args in "-n 2" "-n 2 --no-lease" "--count 9 --timeout 0"; do
	read -r -a words <<<"$args"
	expect 2 recv -q "$Q" --format raw "${words[@]}"
	err_has "mqctl recv: --format raw would run the messages together: not with -n ${words[1]} (use -n 1, or --format line, hex or json) (see 'mqctl recv --help')"
	out_is ""
done
for args in "--follow" "-F -n 1 --timeout 0"; do
	read -r -a words <<<"$args"
	expect 2 recv -q "$Q" -o raw "${words[@]}"
	err_has "mqctl recv: --format raw would run the messages together: not with --follow (use --format line, hex or json)"
	out_is ""
done
depth_is 2
expect 0 stats -q "$Q" --json --sample 0
json_expect "$TMP/out" clients=[] in_flight=0
expect 0 recv -q "$Q" -n 2 --format json
out_is '{"len":3,"text":"one"}\n{"len":3,"text":"two"}\n'
# On a terminal the default is line, also for one message.
if command -v script >/dev/null; then
	expect 0 send -q "$Q" on-a-tty
	script -qec "$MQCTL recv -q $Q" /dev/null </dev/null >"$TMP/tty.out" 2>&1 || fail "mqctl recv on a pty: $(cat "$TMP/tty.out")"
	[ "$(od -An -c "$TMP/tty.out" | tr -s ' \n' ' ')" = " o n - a - t t y \r \n " ] ||
		fail "mqctl recv on a terminal printed $(od -An -c "$TMP/tty.out") (want on-a-tty and a newline)"
fi
# The help and the manual say so.
expect 0 recv --help
out_has "default: line when stdout is a terminal, raw when not"
out_has "and one message is taken (-n 1 without --follow),"
out_has "refused with -n above 1 or"
if [ -n "$MANPAGE" ] && command -v groff >/dev/null; then
	groff -man -Tascii -rHY=0 -rLL=2000n -P-c -P-b -P-u "$MANPAGE" 2>/dev/null | tr -s ' \n' ' ' >"$TMP/man.txt"
	for text in "The default is raw when standard output is not a terminal and one message is taken (-n 1" \
		"otherwise (a terminal, or more than one message) line" \
		"with -n above 1 or --follow it is refused (exit 2) before any message is taken"; do
		grep -qF -- "$text" "$TMP/man.txt" || fail "mqctl(1) does not say: $text"
	done
fi

# A message that starts with "-" goes after --; options may follow messages.
expect 0 send -q "$Q" -- -5 --not-an-option
expect 0 send first-word -q "$Q" --timeout 0
expect 0 recv -q "$Q" -n 3 --format line
out_is "-5\n--not-an-option\nfirst-word\n"

# Lines of stdin: one message per line without its \n; an empty line is an
# empty message; a last line without \n counts; \r stays.
printf 'one\n\nthree\r\nlast' >"$TMP/lines"
IN="$TMP/lines" expect 0 send -q "$Q"
depth_is 4
expect 0 recv -q "$Q" --count 4 --format hex
out_is "6f6e65\n\n74687265650d\n6c617374\n"

# Empty stdin: no message, status 0. --whole of empty stdin: one empty message.
IN=/dev/null expect 0 send -q "$Q"
depth_is 0
IN=/dev/null expect 0 send -q "$Q" --whole
depth_is 1
expect 0 recv -q "$Q" --format json
out_is '{"len":0,"text":""}\n'

# "-" among the arguments reads stdin at that place.
printf 'in1\nin2\n' >"$TMP/two"
IN="$TMP/two" expect 0 send -q "$Q" first - last
expect 0 recv -q "$Q" -n 4 -o line
out_is "first\nin1\nin2\nlast\n"

# -f FILE: lines of a file; -f FILE --whole: the file as one message; -f -: stdin.
printf 'f1\nf2\nf3\n' >"$TMP/file"
expect 0 send -q "$Q" -f "$TMP/file"
expect 0 recv -q "$Q" -n 3 --format line
out_is "f1\nf2\nf3\n"
expect 0 send -q "$Q" --file "$TMP/file" --whole
expect 0 recv -q "$Q" --format raw
out_is "f1\nf2\nf3\n"
IN="$TMP/two" expect 0 send -q "$Q" -f -
expect 0 recv -q "$Q" -n 2 --format line
out_is "in1\nin2\n"
expect 1 send -q "$Q" -f "$TMP/no-such-file"
err_has "cannot open $TMP/no-such-file: No such file or directory"

# --format line prints newlines inside a message as they are.
printf 'a\nb' >"$TMP/nl"
IN="$TMP/nl" expect 0 send -q "$Q" -w
expect 0 recv -q "$Q" --format line
out_is "a\nb\n"

# --format hex: lowercase, binary-safe.
printf '\000\377AB\n' >"$TMP/bin"
IN="$TMP/bin" expect 0 send -q "$Q" --whole
expect 0 recv -q "$Q" --format hex
out_is "00ff41420a\n"

# --format json: text when UTF-8 without control characters (" and \ escaped),
# else base64 data; one object per line, each valid JSON.
printf 'say "hi" \\ ok' >"$TMP/quote"
IN="$TMP/quote" expect 0 send -q "$Q" --whole
expect 0 send -q "$Q" 'héllo ✓'
printf 'tab\there' >"$TMP/tab"
IN="$TMP/tab" expect 0 send -q "$Q" --whole
IN="$TMP/bin" expect 0 send -q "$Q" --whole
printf '\303(' >"$TMP/badutf8"
IN="$TMP/badutf8" expect 0 send -q "$Q" --whole
expect 0 recv -q "$Q" -n 5 --format json
out_is '{"len":13,"text":"say \\"hi\\" \\\\ ok"}\n{"len":10,"text":"héllo ✓"}\n{"len":8,"data":"dGFiCWhlcmU="}\n{"len":5,"data":"AP9BQgo="}\n{"len":2,"data":"wyg="}\n'
"$PYTHON" - "$TMP/out" <<'EOF' || fail "recv --format json is not one JSON object per line: $(cat "$TMP/out")"
import base64, json, sys
lines = open(sys.argv[1], "rb").read().split(b"\n")
assert lines[-1] == b"", lines
objs = [json.loads(l) for l in lines[:-1]]
got = [o["text"].encode() if "text" in o else base64.b64decode(o["data"]) for o in objs]
want = [b'say "hi" \\ ok', "héllo ✓".encode(), b"tab\there", b"\0\xffAB\n", b"\xc3("]
assert got == want, got
assert [o["len"] for o in objs] == [len(w) for w in want]
EOF

# Timeouts and an empty queue: exit 4, one line; received messages still printed.
expect 4 recv -q "$Q" --timeout 0
err_has "queue $Q is empty"
start=$(date +%s%N)
expect 4 recv -q "$Q" --timeout 300
err_has "queue $Q: no message within 300 ms"
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
[ "$elapsed_ms" -ge 300 ] || fail "recv --timeout 300 gave up after $elapsed_ms ms"
expect 0 send -q "$Q" m1 m2
expect 4 recv -q "$Q" -n 3 -t 0 --format line
out_is "m1\nm2\n"
err_has "queue $Q is empty (2 of 3 received)"

# A full queue: send --timeout 0 / MS gives up with exit 4 and nothing more queued.
for i in $(seq 1 15); do printf 'x%d\n' "$i"; done >"$TMP/fifteen"
IN="$TMP/fifteen" expect 0 send -q "$Q"
depth_is 15
printf 'y1\ny2\ny3\n' >"$TMP/three"
IN="$TMP/three" expect 4 send -q "$Q" --timeout 0
err_has "line 1 sent, line 2 not sent: queue $Q is full (--timeout 0); nothing after it sent — is a consumer running?"
depth_is 16
expect 4 send -q "$Q" --timeout 0 more
err_has "message 1 not sent: queue $Q is full (--timeout 0)"
err_has "; nothing sent"
expect 4 send -q "$Q" -t 200 a b
err_has "message 1 not sent: queue $Q still full after 200 ms; nothing sent — is a consumer running?"
IN="$TMP/two" expect 4 send -q "$Q" --whole --timeout 0
err_has "stdin not sent: queue $Q is full (--timeout 0) — is a consumer running?"
depth_is 16
# A send blocked on the full queue and stopped by SIGTERM: 143, one line, a
# clean detach (no dead client left behind).
run_bg SPID "$MQCTL" send -q "$Q" blocked 2>"$TMP/send.err"
stats_wait 10 "d['clients_attached'] == 1"
kill -TERM "$SPID"
wait_exit "$SPID" 10
[ "$RC" -eq 143 ] || fail "blocked send on SIGTERM exited with $RC, want 143: $(cat "$TMP/send.err")"
grep -qxF "mqctl: message 1 not sent: interrupted by Terminated; nothing sent" "$TMP/send.err" ||
	fail "blocked send on SIGTERM said: $(cat "$TMP/send.err")"
stats_wait 10 "d['clients'] == [] and d['recoveries_total'] == 0 and d['depth'] == 16"
# send waits for space (default: as long as it takes) and goes on once there is.
run_bg SPID "$MQCTL" send -q "$Q" late1 late2 2>"$TMP/send.err"
sleep 0.3
exited "$SPID" && fail "send returned while the queue was full"
expect 0 recv -q "$Q" -n 2 --format line
out_is "x1\nx2\n"
wait_exit "$SPID" 10
[ "$RC" -eq 0 ] || fail "waiting send exited with $RC: $(cat "$TMP/send.err")"
sanitizer_clean "$TMP/send.err"
expect 0 recv -q "$Q" -n 16 --format line
[ "$(tail -n 2 "$TMP/out")" = "$(printf 'late1\nlate2')" ] || fail "late messages missing: $(cat "$TMP/out")"
depth_is 0

# $MQ_QUEUE names the queue without -q; -q wins over it.
MQ_QUEUE="$Q" expect 0 send envmsg
MQ_QUEUE="$Q-nonexistent" expect 0 recv -q "$Q" --format line
out_is "envmsg\n"
MQ_QUEUE="$Q-nonexistent" expect 3 recv
err_has "queue $Q-nonexistent not found — is mqbroker running?"

# A missing queue: exit 3 for every command that uses one, one line saying so.
for args in "send x" "recv" "stats" "watch --count 1"; do
	read -r -a words <<<"$args"
	expect 3 "${words[0]}" -q "$Q-missing" "${words[@]:1}"
	err_has "mqctl: queue $Q-missing not found — is mqbroker running? (mqbroker -n $Q-missing creates it)"
done

# --follow: keep receiving until SIGTERM / SIGINT, then exit 0, having
# printed every message; meanwhile it is a consumer in the client table.
for sig in TERM INT; do
	run_bg FPID "$MQCTL" recv -q "$Q" --follow --format line >"$TMP/follow.out" 2>"$TMP/follow.err"
	expect 0 send -q "$Q" f1 f2 f3
	wait_until 10 grep -qx f3 "$TMP/follow.out" || fail "recv --follow printed $(cat "$TMP/follow.out")"
	stats_wait 10 "d['consumers'] == 1 and d['clients_attached'] == 1 and len(d['clients']) == 1"
	expect 0 stats -q "$Q" --json --sample 0
	json_expect "$TMP/out" "clients.0.pid=$FPID" 'clients.0.role="consumer"' clients.0.alive=true \
		clients.0.received_total=3 clients.0.sent_total=0
	# It waits in poll(2) on the queue's descriptor (mq_pollfd, an eventfd)
	# and the stop pipe, without spinning: idle for 1 s, it uses no CPU.
	ls -l "/proc/$FPID/fd" | grep -q 'anon_inode:\[eventfd\]' ||
		fail "recv --follow holds no eventfd (mq_pollfd): $(ls -l "/proc/$FPID/fd")"
	cpu0=$(awk '{print $14 + $15}' "/proc/$FPID/stat")
	sleep 1
	cpu1=$(awk '{print $14 + $15}' "/proc/$FPID/stat")
	[ $((cpu1 - cpu0)) -le 5 ] || fail "recv --follow used $((cpu1 - cpu0)) ticks of CPU in 1 s idle (busy loop?)"
	expect 0 send -q "$Q" f4
	wait_until 10 grep -qx f4 "$TMP/follow.out" || fail "recv --follow missed f4 after idling: $(cat "$TMP/follow.out")"
	kill "-$sig" "$FPID"
	wait_exit "$FPID" 10
	[ "$RC" -eq 0 ] || fail "recv --follow exited with $RC on SIG$sig (want 0): $(cat "$TMP/follow.err")"
	sanitizer_clean "$TMP/follow.err"
	printf 'f1\nf2\nf3\nf4\n' >"$TMP/want"
	cmp -s "$TMP/want" "$TMP/follow.out" || fail "recv --follow printed $(cat "$TMP/follow.out")"
done
# --follow --timeout: exit 4 once no message came for MS.
expect 0 send -q "$Q" g1
expect 4 recv -q "$Q" -F --timeout 300 --format line
out_is "g1\n"
err_has "queue $Q: no message within 300 ms (1 received)"
# It detached cleanly every time: nobody in the table, no recovery counted.
expect 0 stats -q "$Q" --json --sample 0
json_expect "$TMP/out" clients=[] recoveries_total=0

# A blocked recv stopped by a signal: 128+N, one line, and a clean detach.
for sig in TERM:143 INT:130; do
	run_bg RPID "$MQCTL" recv -q "$Q" -n 2 >"$TMP/recv.out" 2>"$TMP/recv.err"
	stats_wait 10 "d['clients_attached'] == 1"
	kill "-${sig%:*}" "$RPID"
	wait_exit "$RPID" 10
	[ "$RC" -eq "${sig#*:}" ] || fail "recv on SIG${sig%:*} exited with $RC, want ${sig#*:}: $(cat "$TMP/recv.err")"
	grep -qF "interrupted by" "$TMP/recv.err" || fail "recv on SIG${sig%:*} said: $(cat "$TMP/recv.err")"
	grep -qF "0 of 2 messages received" "$TMP/recv.err" || fail "recv on SIG${sig%:*} said: $(cat "$TMP/recv.err")"
done
expect 0 stats -q "$Q" --json --sample 0
json_expect "$TMP/out" clients=[] recoveries_total=0

# Runtime errors, exit 1: stdout that cannot be written and a queue this user
# may not open. recv leases each message and acks it only once written: the
# message whose output failed stays queued and comes again (deliveries 2).
expect 0 send -q "$Q" kept
RC=0
timeout -s KILL 30 "$MQCTL" recv -q "$Q" >/dev/full 2>"$TMP/err" </dev/null || RC=$?
[ "$RC" -eq 1 ] || fail "recv > /dev/full exited with $RC, want 1: $(cat "$TMP/err")"
err_has "cannot write message 1 (4 bytes) to stdout: No space left on device; it stays in the queue and is delivered again"
depth_is 1
RC=0
timeout -s KILL 30 "$MQCTL" recv -q "$Q" --format line >&- 2>"$TMP/err" </dev/null || RC=$?
[ "$RC" -eq 1 ] || fail "recv with stdout closed exited with $RC, want 1: $(cat "$TMP/err")"
depth_is 1
expect 0 recv -q "$Q" --format json
out_is '{"len":4,"text":"kept","deliveries":3}\n'
depth_is 0
expect 0 stats -q "$Q" --json --sample 0
json_expect "$TMP/out" in_flight=0
# --no-lease: taken for good before printing; a failed write loses it, and says so.
expect 0 send -q "$Q" lost
RC=0
timeout -s KILL 30 "$MQCTL" recv -q "$Q" --no-lease >/dev/full 2>"$TMP/err" </dev/null || RC=$?
[ "$RC" -eq 1 ] || fail "recv --no-lease > /dev/full exited with $RC, want 1: $(cat "$TMP/err")"
err_has "cannot write message 1 (4 bytes) to stdout: No space left on device; it has left queue $Q and is lost"
depth_is 0
# --nack: print the first COUNT and give them all back; the queue is as it was
# (but for the delivery counts); not with --follow or --no-lease.
expect 0 send -q "$Q" one two three
expect 0 recv -q "$Q" -n 2 --nack --format line
out_is "one\ntwo\n"
depth_is 3
expect 0 stats -q "$Q" --json --sample 0
json_expect "$TMP/out" in_flight=0 nacked_total=4 # 2 failed writes, 2 --nack
expect 0 recv -q "$Q" -n 3 --format json
out_is '{"len":3,"text":"one","deliveries":2}\n{"len":3,"text":"two","deliveries":2}\n{"len":5,"text":"three"}\n'
expect 4 recv -q "$Q" -n 5 --nack --timeout 0
err_has "queue $Q is empty"
expect 2 recv -q "$Q" --nack --follow
err_has "not with --follow"
expect 2 recv -q "$Q" --nack --no-lease
err_has "not with --no-lease"
# As nobody (the queue is 0660 root): a copy of mqctl nobody may run.
cp "$MQCTL" "$TMP/mqctl-copy"
chmod 755 "$TMP" "$TMP/mqctl-copy"
for args in "send x" "recv -t 0" "stats" "check"; do
	read -r -a words <<<"$args"
	RC=0
	setpriv --reuid 65534 --regid 65534 --clear-groups "$TMP/mqctl-copy" "${words[0]}" -q "$Q" \
		"${words[@]:1}" >"$TMP/out" 2>"$TMP/err" </dev/null || RC=$?
	[ "$RC" -eq 1 ] || fail "mqctl $args as nobody exited with $RC, want 1: $(cat "$TMP/err")"
	err_has "ermission denied"
	[ "$(grep -c '' "$TMP/err")" -eq 1 ] || fail "mqctl $args as nobody: want one line: $(cat "$TMP/err")"
	sanitizer_clean "$TMP/err"
done

stop_broker "$BPID"

# A recv killed (SIGKILL) while it writes a message out loses nothing: the
# message was leased, and comes again once the broker sees the holder gone.
# The message (100 KB) is larger than a pipe holds, and the pipe's reader
# never reads, so the kill lands inside the write.
start_broker "$Q-big" --capacity 4 --max-msg 128K
head -c 100000 /dev/urandom >"$TMP/big"
IN="$TMP/big" expect 0 send -q "$Q-big" --whole
mkfifo "$TMP/pipe"
run_bg READER sh -c 'exec sleep 60 <"$1"' sh "$TMP/pipe" # opens the pipe, never reads
run_bg RECV sh -c 'exec "$1" recv -q "$2" --format raw >"$3"' sh "$MQCTL" "$Q-big" "$TMP/pipe"
stats_wait 10 "d['in_flight'] == 1" "$Q-big"
kill -KILL "$RECV"
wait_exit "$RECV" 5
stats_wait 10 "d['in_flight'] == 0 and d['depth'] == 1" "$Q-big"
expect 0 recv -q "$Q-big" --format raw
cmp -s "$TMP/out" "$TMP/big" || fail "the message delivered again differs from the one sent"
expect 0 stats -q "$Q-big" --json --sample 0
json_expect "$TMP/out" depth=0 redelivered_total=1 acked_total=1
stop_broker "$BPID"
