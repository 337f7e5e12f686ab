#!/bin/bash
# man_pages.sh - the man pages mqbroker(8), libmq(3) and mqbridge(8): no groff
# or man warnings (what lintian checks), and they cover what they document:
# every long option of `mqbroker --help` and of `mqbridge --help` and their
# exit codes; every call and every errno that libmq.h names. (mqctl(1) is
# checked by tests/cli/usage.sh.)
# Usage: man_pages.sh MQBROKER SOURCE_DIR [MQBRIDGE]
#   MQBRIDGE: given when mqbridge is built (it needs libnats).
set -euo pipefail
broker=$1
src=$2
bridge=${3:-}
fail() {
	echo "FAIL: man_pages: $*" >&2
	exit 1
}
command -v groff >/dev/null || { echo "SKIP: man_pages: groff is not installed (Debian: groff-base)" >&2; exit 77; }
tmp=$(mktemp -d /tmp/mqman.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

pages=("$src/packaging/mqbroker.8" "$src/packaging/libmq.3")
[ -z "$bridge" ] || pages+=("$src/packaging/mqbridge.8")
for page in "${pages[@]}"; do
	groff -man -Tutf8 -ww -z "$page" 2>"$tmp/groff.err" || fail "groff failed on $page: $(cat "$tmp/groff.err")"
	[ ! -s "$tmp/groff.err" ] || fail "groff warns about $page: $(cat "$tmp/groff.err")"
	if command -v man >/dev/null; then
		LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 -Z "$page" \
			>/dev/null 2>"$tmp/man.err" || fail "man -l $page failed: $(cat "$tmp/man.err")"
		[ ! -s "$tmp/man.err" ] || fail "man warns about $page: $(cat "$tmp/man.err")"
	fi
	groff -man -Tascii -P-c -P-b -P-u "$page" 2>/dev/null | tr -s ' ' >"$tmp/$(basename "$page").txt"
done

# mqbroker(8): every option of --help, every exit status, the service's files.
options=$("$broker" --help | grep -oE -- '--[a-z][a-z-]+' | sort -u)
[ -n "$options" ] || fail "no options in mqbroker --help"
for o in $options; do
	grep -qF -- "$o" "$tmp/mqbroker.8.txt" || fail "mqbroker(8) does not document $o"
done
sed -n '/^EXIT STATUS/,/^[A-Z][A-Z ]*$/p' "$tmp/mqbroker.8.txt" | tr -s ' \n' ' ' >"$tmp/exit.txt"
for code in 0 1 2 3 4 5 6; do
	grep -qE "(^| )$code [A-Za-z]" "$tmp/exit.txt" || fail "mqbroker(8) EXIT STATUS lacks $code: $(cat "$tmp/exit.txt")"
done
for f in /etc/default/mqbroker MQBROKER_OPTS mqbroker.service "built into"; do
	grep -qF -- "$f" "$tmp/mqbroker.8.txt" || fail "mqbroker(8) does not mention $f"
done

# libmq(3): every call and every errno of the header.
header=$src/libmq/include/libmq.h
calls=$(grep -oE 'MQ_SYMBOL\(libmq_[a-z_]+\)' "$header" | sed 's/MQ_SYMBOL(libmq_\(.*\))/mq_\1/' | sort -u)
[ "$(echo "$calls" | wc -l)" -ge 10 ] || fail "found only these calls in libmq.h: $calls"
for c in $calls; do
	grep -qE "(^| )$c\(" "$tmp/libmq.3.txt" || fail "libmq(3) does not document $c()"
done
errnos=$(grep -oE '\bE[A-Z]{3,}\b' "$header" | grep -vE '^(EOF)$' | sort -u)
for e in $errnos; do
	grep -qw "$e" "$tmp/libmq.3.txt" || fail "libmq(3) does not mention $e (libmq.h does)"
done
# and each errno section of a call in the header is in that call's ERRORS entry
sed -n '/^ERRORS/,/^ENVIRONMENT/p' "$tmp/libmq.3.txt" >"$tmp/errors.txt"
for e in EEXIST EUSERS EPROTO EMSGSIZE ETIMEDOUT EAGAIN EINTR; do
	grep -qw "$e" "$tmp/errors.txt" || fail "libmq(3) ERRORS lacks $e"
done
# mqbridge(8): every option of --help, every exit status, the service, what
# the bridge promises and serves.
if [ -n "$bridge" ]; then
	bopts=$("$bridge" --help | grep -oE -- '--[a-z][a-z-]+' | sort -u)
	[ -n "$bopts" ] || fail "no options in mqbridge --help"
	for o in $bopts; do
		grep -qF -- "$o" "$tmp/mqbridge.8.txt" || fail "mqbridge(8) does not document $o"
	done
	sed -n '/^EXIT STATUS/,/^[A-Z][A-Z ]*$/p' "$tmp/mqbridge.8.txt" | tr -s ' \n' ' ' >"$tmp/bexit.txt"
	for code in 0 1 2; do
		grep -qE "(^| )$code [A-Za-z]" "$tmp/bexit.txt" || fail "mqbridge(8) EXIT STATUS lacks $code: $(cat "$tmp/bexit.txt")"
	done
	tr -s ' \n' ' ' <"$tmp/mqbridge.8.txt" >"$tmp/mqbridge.8.flat" # (phrases across lines)
	for f in /etc/default/mqbridge MQBRIDGE_OPTS mqbridge.service Nats-Msg-Id "duplicate window" \
		"at least once" "exactly once" /healthz /status /metrics mq_bridge_ SIGTERM "mqbroker(8)" \
		"libmq(3)" "nats-server(8)"; do
		grep -qF -- "$f" "$tmp/mqbridge.8.flat" || fail "mqbridge(8) does not mention $f"
	done
	bopts=" and $(echo "$bopts" | wc -w) bridge options"
fi
echo "PASS: man_pages ($(echo "$options" | wc -w) broker options${bopts:-}, $(echo "$calls" | wc -w) calls, $(echo "$errnos" | wc -w) errnos)"
