#!/bin/bash
# usage.sh - mqctl's command line: --help of mqctl and of each command, --version,
# usage errors (exit 2, one line), bad queue names, the man page and its install.
# Usage: usage.sh MQCTL MQBROKER MANPAGE
set -euo pipefail
TEST=usage
. "$(dirname "$0")/common.sh"

EXIT_LINE='Exit status: 0 ok; 1 other runtime error; 2 usage error; 3 queue missing;'

# mqctl --help, -h, help: the commands and the exit codes, on stdout, status 0.
for args in --help -h help; do
	expect 0 $args
	for cmd in send recv stats watch check; do
		out_has "  $cmd "
	done
	out_has "$EXIT_LINE"
	out_has "5 message too large"
	out_has "6 damaged or incompatible segment; 7 stale segment"
	out_has '$MQ_QUEUE'
	[ ! -s "$TMP/err" ] || fail "mqctl $args wrote to stderr: $(cat "$TMP/err")"
done

# Each command's --help (and -h, and mqctl help COMMAND): its usage line, its
# flags and the exit codes.
declare -A flags=(
	[send]="--queue --timeout --whole --file"
	[recv]="--queue --count --timeout --follow --format"
	[stats]="--queue --json --sample"
	[watch]="--queue --interval --count"
	[check]="--queue --unlink-stale"
)
for cmd in send recv stats watch check; do
	for form in "$cmd --help" "$cmd -h" "help $cmd"; do
		expect 0 $form
		out_has "Usage: mqctl $cmd "
		out_has "$EXIT_LINE"
		for flag in ${flags[$cmd]}; do
			out_has "$flag"
		done
	done
done
expect 0 recv --help
out_has "default: line when stdout is a terminal, raw when not"

expect 0 --version
out_is "mqctl 0.2.0\n"
expect 0 -V
out_is "mqctl 0.2.0\n"

# Usage errors: status 2, one line naming the problem and where to look.
expect 2
err_has "no command given"
expect 2 frobnicate
err_has "unknown command 'frobnicate' (one of send, recv, stats, watch, check, list)"
expect 2 help frobnicate
err_has "unknown command 'frobnicate'"
expect 2 --frobnicate
err_has "unknown option '--frobnicate'"
for cmd in send recv stats watch check; do
	expect 2 "$cmd" --frobnicate
	err_has "mqctl $cmd: unknown option '--frobnicate' (see 'mqctl $cmd --help')"
	expect 2 "$cmd" -x
	err_has "unknown option '-x'"
	expect 2 "$cmd" -q
	err_has "option '-q' needs a value"
	expect 2 "$cmd" --queue
	err_has "option '--queue' needs a value"
	expect 2 "$cmd" -q noslash
	err_has "bad queue name 'noslash' from -q"
	expect 2 "$cmd" -q /two/slashes
	err_has "bad queue name '/two/slashes'"
	expect 2 "$cmd" -q "/$(printf 'x%.0s' {1..251})"
	err_has "bad queue name"
	MQ_QUEUE=bad expect 2 "$cmd"
	err_has "bad queue name 'bad' from \$MQ_QUEUE"
done
expect 2 recv -n 2 -xq "$Q"
err_has "mqctl recv: unknown option '-x'"
expect 2 send --timeout=5x hi
err_has "bad --timeout '5x'"
expect 2 send -5
err_has "unknown option '-5'"
for cmd in recv stats watch check; do
	expect 2 "$cmd" -q "$Q" extra
	err_has "unexpected argument 'extra'"
done
expect 2 recv -n 0
err_has "bad -n '0' (want a count of 1 or more)"
expect 2 recv -n many
err_has "bad -n 'many'"
expect 2 recv --count -3
err_has "bad -n '-3'"
expect 2 recv --timeout -2
err_has "bad --timeout '-2' (want -1, 0 or milliseconds)"
expect 2 recv -t 1.5
err_has "bad --timeout '1.5'"
expect 2 recv --format xml
err_has "bad --format 'xml' (want raw, line, hex or json)"
expect 2 send --timeout soon
err_has "bad --timeout 'soon'"
expect 2 send -f "$TMP/x" message
err_has "give MESSAGE arguments or -f FILE, not both"
expect 2 send --whole message
err_has "--whole reads stdin or -f FILE, not MESSAGE arguments"
expect 2 send - -
err_has "stdin (-) can be read only once"
expect 2 stats --sample -1
err_has "bad --sample '-1' (want 0..60000 ms)"
expect 2 stats -s 60001
err_has "bad --sample '60001'"
expect 2 watch --interval 99
err_has "bad --interval '99' (want 100..3600000 ms)"
expect 2 watch -i 10x
err_has "bad --interval '10x'"
expect 2 watch --count 0
err_has "bad --count '0' (want 1 or more)"
expect 2 watch -c -1
err_has "bad --count '-1'"
# Usage errors come before looking at the queue: none of these made one.
[ ! -e "/dev/shm$Q" ] || fail "a usage error created /dev/shm$Q"

# The man page: groff man, the sections the issue asks for, no warnings.
[ -n "$MANPAGE" ] && [ -f "$MANPAGE" ] || fail "no man page given (want packaging/mqctl.1)"
if command -v groff >/dev/null; then
	groff -man -Tutf8 -ww -z "$MANPAGE" 2>"$TMP/groff.err" || fail "groff failed on $MANPAGE: $(cat "$TMP/groff.err")"
	[ ! -s "$TMP/groff.err" ] || fail "groff warns about $MANPAGE: $(cat "$TMP/groff.err")"
	groff -man -Tascii -P-c -P-b -P-u "$MANPAGE" >"$TMP/man.txt" 2>/dev/null
	for section in NAME SYNOPSIS DESCRIPTION COMMANDS OPTIONS "EXIT STATUS" ENVIRONMENT EXAMPLES; do
		grep -q "^$section" "$TMP/man.txt" || fail "man page has no $section section"
	done
	for text in "mqctl send" "mqctl recv" "mqctl stats" "mqctl watch" "mqctl check" MQ_QUEUE \
		--unlink-stale --whole --follow --format --json --interval --sample; do
		grep -qF -- "$text" "$TMP/man.txt" || fail "man page does not mention $text"
	done
	sed -n '/^EXIT STATUS/,/^ENVIRONMENT/p' "$TMP/man.txt" | tr -s ' \n' ' ' >"$TMP/exit.txt"
	for code in 0 1 2 3 4 5 6 7; do
		grep -qE "(^| )$code [a-z]" "$TMP/exit.txt" || fail "man page EXIT STATUS lacks $code: $(cat "$TMP/exit.txt")"
	done
	if command -v man >/dev/null; then
		MANWIDTH=80 man -l "$MANPAGE" >"$TMP/man-l.txt" 2>&1 || fail "man -l $MANPAGE failed: $(cat "$TMP/man-l.txt")"
		grep -qE 'mqctl +- +send, +receive' "$TMP/man-l.txt" ||
			fail "man -l $MANPAGE does not render the NAME line: $(head -n 8 "$TMP/man-l.txt")"
	fi
else
	echo "note: $TEST: groff not installed; the man page was not rendered (Debian: groff-base)" >&2
fi

# Installed by the build: install the broker component of the build tree mqctl
# is in into a scratch prefix; mqctl and its (gzipped) man page must land in
# bin/ and share/man/man1/.
build=$(dirname "$(dirname "$MQCTL")")
if [ -f "$build/cmake_install.cmake" ]; then
	cmake --install "$build" --component broker --prefix "$TMP/prefix" >"$TMP/install.log" 2>&1 ||
		fail "cmake --install failed: $(cat "$TMP/install.log")"
	[ -x "$TMP/prefix/bin/mqctl" ] || fail "cmake --install put no bin/mqctl: $(cat "$TMP/install.log")"
	[ -f "$TMP/prefix/share/man/man1/mqctl.1.gz" ] ||
		fail "cmake --install put no share/man/man1/mqctl.1.gz: $(cat "$TMP/install.log")"
	gzip -dc "$TMP/prefix/share/man/man1/mqctl.1.gz" | cmp -s "$MANPAGE" - ||
		fail "installed man page differs from $MANPAGE"
fi
