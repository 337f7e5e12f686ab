#!/bin/bash
# watch_tty.sh - mqctl on a real terminal (tmux): watch draws the queue (name,
# depth bar, rates, the oldest message's age, time in queue, clients) on the
# alternate screen in raw mode, redraws as the queue changes, and exits 0 on q,
# on Ctrl-C and on SIGTERM with the terminal restored (main screen, cursor
# shown, the same stty settings); with two -q, one block per queue; recv
# prints lines by default on a terminal. Exits 77 (skipped) without tmux.
# Usage: watch_tty.sh MQCTL MQBROKER
set -euo pipefail
TEST=watch_tty
. "$(dirname "$0")/common.sh"

if ! command -v tmux >/dev/null; then
	echo "SKIP: $TEST: needs tmux (Debian: apt-get install tmux)" >&2
	exit 77
fi
# A tmux server of our own (its own socket, no config), killed by the trap.
SOCK="mqct-$TEST-$$"
CLEANUPS+=("tmux -L '$SOCK' kill-server")
tm() {
	tmux -L "$SOCK" -f /dev/null "$@"
}
# pane_has TEXT: the visible pane holds TEXT (fixed string).
pane_has() {
	tm capture-pane -p -t w >"$TMP/pane"
	grep -qF -- "$1" "$TMP/pane"
}
# pane_wait TEXT: wait until the pane shows TEXT.
pane_wait() {
	wait_until 15 pane_has "$1" || fail "the terminal never showed \"$1\"; it shows:
$(cat "$TMP/pane")"
}
# type_line TEXT: type TEXT and Enter into the pane's shell.
type_line() {
	tm send-keys -t w -l "$1"
	tm send-keys -t w Enter
}
# screen_is ALT CURSOR: tmux's view of the pane: alternate screen on (1) or
# off (0), cursor shown (1) or hidden (0).
screen_is() {
	[ "$(tm display-message -p -t w '#{alternate_on} #{cursor_flag}')" = "$1 $2" ]
}

start_broker "$Q" --capacity 100 --max-msg 64
expect 0 send -q "$Q" m1 m2 m3 m4 m5 m6 m7

tm new-session -d -s w -x 120 -y 30 "env PS1='$ ' bash --norc --noprofile -i"
pane_wait '$'
TTY=$(tm display-message -p -t w '#{pane_tty}')

# Run 1: the view, a redraw, a live client, then q.
type_line "stty -g >$TMP/stty.before1; '$MQCTL' watch -q $Q --interval 200; echo \"[rc1=\$?]\"; stty -g >$TMP/stty.after1"
pane_wait "mqctl watch $Q   every 0.2 s"
pane_wait "] 7 / 100 (7.0%)"
pane_has "depth    [" || fail "no depth bar: $(cat "$TMP/pane")"
pane_has "broker   pid $BPID, alive" || fail "no broker line: $(cat "$TMP/pane")"
pane_has "(q: quit)" || fail "no key help: $(cat "$TMP/pane")"
grep -qE '^oldest   [0-9.]+ (ms|s) waiting$' "$TMP/pane" || pane_wait " s waiting"
grep -qE '^oldest   [0-9.]+ (ms|s) waiting$' "$TMP/pane" || fail "no oldest line: $(cat "$TMP/pane")"
pane_wait "in queue no message measured in the last "
wait_until 10 screen_is 1 0 || fail "watch is not on the alternate screen with the cursor hidden"
stty -a -F "$TTY" >"$TMP/stty.raw"
grep -qw -- -icanon "$TMP/stty.raw" && grep -qw -- -echo "$TMP/stty.raw" ||
	fail "watch did not put the terminal in raw mode: $(cat "$TMP/stty.raw")"
expect 0 send -q "$Q" m8
pane_wait "] 8 / 100 (8.0%)"
run_bg FPID "$MQCTL" recv -q "$Q" --follow --format line >"$TMP/follow.out" 2>"$TMP/follow.err"
pane_wait "] 0 / 100 (0.0%)"
pane_wait "oldest   no message waiting"
# The 8 messages taken (1 to 8 of them measured: a fast producer is sampled), within the rolling window.
pane_wait "in queue p50 "
grep -qE '^in queue p50 [0-9.]+ (us|ms|s)  p90 [0-9.]+ (us|ms|s)  p99 [0-9.]+ (us|ms|s)  max [0-9.]+ (us|ms|s)   \([1-8] measured in the last [0-9]+ s\)$' "$TMP/pane" ||
	fail "no time-in-queue line: $(cat "$TMP/pane")"
pane_wait "clients  1 attached: 0 producing, 1 consuming"
grep -qE "^ +$FPID +consumer +yes +0 +8$" "$TMP/pane" || pane_wait "consumer  yes"
grep -qE "^ +$FPID +consumer +yes +0 +8$" "$TMP/pane" || fail "no row for client $FPID: $(cat "$TMP/pane")"
kill -TERM "$FPID"
wait_exit "$FPID" 10
[ "$RC" -eq 0 ] || fail "recv --follow exited with $RC: $(cat "$TMP/follow.err")"
pane_wait "clients  0 attached"
tm send-keys -t w q
pane_wait "[rc1=0]"
wait_until 5 screen_is 0 1 || fail "after q: alternate screen / cursor: $(tm display-message -p -t w '#{alternate_on} #{cursor_flag}')"
wait_until 5 test -s "$TMP/stty.after1" || fail "the shell did not go on after watch"
cmp -s "$TMP/stty.before1" "$TMP/stty.after1" ||
	fail "q left the terminal changed: $(cat "$TMP/stty.before1") -> $(cat "$TMP/stty.after1")"

# Run 2: Ctrl-C quits too, status 0, terminal restored.
type_line "stty -g >$TMP/stty.before2; '$MQCTL' watch -q $Q -i 200; echo \"[rc2=\$?]\"; stty -g >$TMP/stty.after2"
pane_wait "mqctl watch $Q"
wait_until 10 screen_is 1 0 || fail "run 2: not on the alternate screen"
tm send-keys -t w C-c
pane_wait "[rc2=0]"
wait_until 5 screen_is 0 1 || fail "after Ctrl-C: alternate screen / cursor not restored"
wait_until 5 test -s "$TMP/stty.after2" || fail "the shell did not go on after watch"
cmp -s "$TMP/stty.before2" "$TMP/stty.after2" || fail "Ctrl-C left the terminal changed"

# Run 3: SIGTERM from outside, status 0, terminal restored.
type_line "stty -g >$TMP/stty.before3; sh -c 'echo \$\$ >$TMP/watch.pid; exec \"\$0\" watch -q $Q --interval 200' '$MQCTL'; echo \"[rc3=\$?]\"; stty -g >$TMP/stty.after3"
pane_wait "mqctl watch $Q"
wait_until 10 screen_is 1 0 || fail "run 3: not on the alternate screen"
kill -TERM "$(cat "$TMP/watch.pid")"
pane_wait "[rc3=0]"
wait_until 5 screen_is 0 1 || fail "after SIGTERM: alternate screen / cursor not restored"
wait_until 5 test -s "$TMP/stty.after3" || fail "the shell did not go on after watch"
cmp -s "$TMP/stty.before3" "$TMP/stty.after3" || fail "SIGTERM left the terminal changed"

# Run 4: two queues, one block each (name, depth bar, broker), then q.
start_broker "$Q-b" --capacity 50 --max-msg 64
expect 0 send -q "$Q-b" b1 b2 b3
type_line "'$MQCTL' watch -q $Q -q $Q-b --interval 200; echo \"[rc5=\$?]\""
pane_wait "mqctl watch   2 queues   every 0.2 s"
pane_wait "queue    $Q-b"
grep -qx "queue    $Q" "$TMP/pane" || fail "no block for $Q: $(cat "$TMP/pane")"
grep -qE '\] 3 / 50 \(6\.0%\)$' "$TMP/pane" || fail "no depth bar for $Q-b: $(cat "$TMP/pane")"
grep -qE '\] 0 / 100 \(0\.0%\)$' "$TMP/pane" || fail "no depth bar for $Q: $(cat "$TMP/pane")"
[ "$(grep -c '^depth    \[' "$TMP/pane")" -eq 2 ] || fail "want two depth bars: $(cat "$TMP/pane")"
[ "$(grep -c '^oldest   ' "$TMP/pane")" -eq 2 ] || fail "want two oldest lines: $(cat "$TMP/pane")"
[ "$(grep -c '^broker   pid ' "$TMP/pane")" -eq 2 ] || fail "want two broker lines: $(cat "$TMP/pane")"
# Blocks in the order given: $Q's first.
[ "$(grep -n "^queue    $Q\$" "$TMP/pane" | cut -d: -f1)" -lt "$(grep -n "^queue    $Q-b\$" "$TMP/pane" | cut -d: -f1)" ] ||
	fail "blocks out of order: $(cat "$TMP/pane")"
tm send-keys -t w q
pane_wait "[rc5=0]"
wait_until 5 screen_is 0 1 || fail "after q (two queues): alternate screen / cursor not restored"

# recv on a terminal prints lines by default.
expect 0 send -q "$Q" tty-one tty-two
type_line "'$MQCTL' recv -q $Q -n 2 --timeout 5000; echo \"[rc4=\$?]\""
pane_wait "[rc4=0]"
grep -qx 'tty-one' "$TMP/pane" && grep -qx 'tty-two' "$TMP/pane" ||
	fail "recv on a terminal did not print one line per message: $(cat "$TMP/pane")"
! grep -qF 'AddressSanitizer' "$TMP/pane" || fail "sanitizer report on the terminal: $(cat "$TMP/pane")"
