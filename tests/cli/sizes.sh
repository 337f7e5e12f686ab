#!/bin/bash
# sizes.sh - binary and large messages through mqctl: 1000 random bytes round
# trip exactly, a message of exactly the maximum size passes and one byte more
# is refused (exit 5, nothing queued) as an argument, as --whole stdin, as a
# file and as a line; a 1 MiB message through every --format.
# Usage: sizes.sh MQCTL MQBROKER
set -euo pipefail
TEST=sizes
. "$(dirname "$0")/common.sh"

start_broker "$Q" --capacity 8 --max-msg 4096

# The issue's round trip: head -c 1000 /dev/urandom | mqctl send --whole, then
# mqctl recv -n 1 --format raw gives the same bytes.
head -c 1000 /dev/urandom >"$TMP/random"
IN="$TMP/random" expect 0 send -q "$Q" --whole
expect 0 recv -q "$Q" -n 1 --format raw
cmp "$TMP/random" "$TMP/out" || fail "1000 random bytes did not round-trip"
# ... through a pipe, as the issue writes it.
head -c 1000 /dev/urandom | tee "$TMP/random2" | "$MQCTL" send -q "$Q" --whole ||
	fail "head -c 1000 /dev/urandom | mqctl send --whole failed"
"$MQCTL" recv -q "$Q" -n 1 --format raw >"$TMP/random2.out"
cmp "$TMP/random2" "$TMP/random2.out" || fail "1000 random bytes did not round-trip through pipes"
# ... from a file, and back through hex and json (base64).
expect 0 send -q "$Q" -f "$TMP/random" --whole
expect 0 send -q "$Q" -f "$TMP/random" --whole
expect 0 recv -q "$Q" --format hex
"$PYTHON" -c 'import sys; sys.exit(bytes.fromhex(open(sys.argv[1]).read().rstrip("\n")) != open(sys.argv[2], "rb").read())' \
	"$TMP/out" "$TMP/random" || fail "hex of 1000 random bytes does not decode to them"
expect 0 recv -q "$Q" --format json
"$PYTHON" -c 'import base64, json, sys; o = json.load(open(sys.argv[1])); b = open(sys.argv[2], "rb").read(); sys.exit(not (o["len"] == 1000 and base64.b64decode(o["data"]) == b))' \
	"$TMP/out" "$TMP/random" || fail "json of 1000 random bytes does not decode to them: $(head -c 300 "$TMP/out")"
depth_is 0

# Exactly the maximum (4096 bytes) passes, one byte more is refused: exit 5,
# one line naming both sizes, nothing queued.
head -c 4096 /dev/urandom >"$TMP/max"
head -c 4097 /dev/urandom >"$TMP/over"
IN="$TMP/max" expect 0 send -q "$Q" --whole
expect 0 recv -q "$Q" --format raw
cmp "$TMP/max" "$TMP/out" || fail "a message of exactly 4096 bytes did not round-trip"
expect 0 send -q "$Q" -w -f "$TMP/max"
expect 0 recv -q "$Q" --format raw
cmp "$TMP/max" "$TMP/out" || fail "a 4096-byte file did not round-trip"

IN="$TMP/over" expect 5 send -q "$Q" --whole
err_has "stdin too long (4097 > 4096 bytes, the maximum of queue $Q); nothing sent"
# From a pipe the size is not known in advance: at most 4097 bytes are read.
IN=<(head -c 4097 /dev/urandom) expect 5 send -q "$Q" --whole
err_has "stdin too long (more than 4096 bytes, the maximum of queue $Q); nothing sent"
IN=<(head -c 100000 /dev/zero) expect 5 send -q "$Q" --whole
err_has "stdin too long (more than 4096 bytes"
expect 5 send -q "$Q" --whole -f "$TMP/over"
err_has "$TMP/over too long (4097 > 4096 bytes, the maximum of queue $Q); nothing sent"
depth_is 0

# Arguments: all are checked first; one byte over and none is sent.
max_arg=$(printf 'a%.0s' $(seq 1 4096))
expect 0 send -q "$Q" "$max_arg"
expect 0 recv -q "$Q" --format line
out_is "$max_arg\n"
expect 5 send -q "$Q" small "${max_arg}b" after
err_has "message 2 too long (4097 > 4096 bytes, the maximum of queue $Q); nothing sent"
depth_is 0

# Lines: a line of exactly 4096 bytes passes; lines before a line too long are
# sent, nothing after it.
{ printf '%s\n' "$max_arg"; } >"$TMP/maxline"
IN="$TMP/maxline" expect 0 send -q "$Q"
expect 0 recv -q "$Q" --format raw
out_is "$max_arg"
{ printf 'l1\nl2\nl3\n'; head -c 5000 /dev/zero | tr '\0' z; printf '\nl5\n'; } >"$TMP/longline"
IN="$TMP/longline" expect 5 send -q "$Q"
err_has "mqctl: lines 1-3 sent, line 4 too long (5000 > 4096 bytes, the maximum of queue $Q); nothing after it sent"
depth_is 3
expect 0 recv -q "$Q" -n 3 --format line
out_is "l1\nl2\nl3\n"
expect 5 send -q "$Q" -f "$TMP/longline"
err_has "$TMP/longline: lines 1-3 sent, line 4 too long (5000 > 4096 bytes"
expect 0 recv -q "$Q" -n 3 --format line
{ printf '%s\n' "${max_arg}b"; printf 'next\n'; } >"$TMP/firstlong"
IN="$TMP/firstlong" expect 5 send -q "$Q"
err_has "mqctl: line 1 too long (4097 > 4096 bytes, the maximum of queue $Q); nothing sent"
{ printf 'ok\n%s\n' "${max_arg}b"; } >"$TMP/secondlong"
IN="$TMP/secondlong" expect 5 send -q "$Q"
err_has "mqctl: line 1 sent, line 2 too long (4097 > 4096 bytes"
expect 0 recv -q "$Q" --format line
out_is "ok\n"
depth_is 0
expect 0 stats -q "$Q" --json --sample 0
json_expect "$TMP/out" recoveries_total=0 clients=[]

# A 1 MiB message (another queue of 1 MiB messages) through every format.
start_broker "$Q-big" --capacity 2 --max-msg 1M
head -c 1048576 /dev/urandom >"$TMP/mib"
IN="$TMP/mib" expect 0 send -q "$Q-big" --whole
expect 0 recv -q "$Q-big" --format raw
cmp "$TMP/mib" "$TMP/out" || fail "1 MiB did not round-trip raw"
for format in hex json line; do
	IN="$TMP/mib" expect 0 send -q "$Q-big" --whole
	expect 0 recv -q "$Q-big" --format "$format"
	"$PYTHON" - "$format" "$TMP/out" "$TMP/mib" <<'EOF' || fail "1 MiB did not round-trip as $format"
import base64, json, sys
fmt, out, want = sys.argv[1], open(sys.argv[2], "rb").read(), open(sys.argv[3], "rb").read()
assert out.endswith(b"\n")
if fmt == "hex":
    got = bytes.fromhex(out[:-1].decode())
elif fmt == "json":
    o = json.loads(out)
    assert o["len"] == len(want)
    got = base64.b64decode(o["data"])
else:
    got = out[:-1]
assert got == want
EOF
done
head -c 1048577 /dev/zero >"$TMP/mib-over"
IN="$TMP/mib-over" expect 5 send -q "$Q-big" --whole
err_has "stdin too long (1048577 > 1048576 bytes, the maximum of queue $Q-big); nothing sent"
depth_is 0 "$Q-big"
