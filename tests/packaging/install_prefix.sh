#!/bin/bash
# install_prefix.sh - `cmake --install BUILD --prefix P` into a scratch prefix:
# every file lands where it belongs and nothing outside P; libmq.pc, the
# CMake package and the systemd unit point into P and programs build against
# P with either; the installed mqbroker serves its built-in dashboard; the
# installed examples run.
# Usage: install_prefix.sh BUILD_DIR
set -euo pipefail
TEST=install_prefix
build=$(realpath "$1")
set -- "$build/broker/mqbroker" "$build/tests/mqload"
# shellcheck source=../broker/common.sh
source "$(dirname "$0")/../broker/common.sh"
src=$(realpath "$(dirname "$0")/../..")

P=$TMP/prefix
cmake --install "$build" --prefix "$P" >"$TMP/install.log" 2>&1 ||
	fail "cmake --install $build --prefix $P failed: $(cat "$TMP/install.log")"
libdir=$(sed -n 's/^CMAKE_INSTALL_LIBDIR:PATH=//p' "$build/CMakeCache.txt")
[ -n "$libdir" ] || fail "no CMAKE_INSTALL_LIBDIR in $build/CMakeCache.txt"

# Every file of the install, where the packages expect it.
for f in bin/mqctl sbin/mqbroker include/libmq.h \
	"$libdir/libmq.so.2.0.0" "$libdir/libmq.so.2" "$libdir/libmq.so" "$libdir/libmq.a" \
	"$libdir/pkgconfig/libmq.pc" "$libdir/cmake/libmq/libmqConfig.cmake" \
	"$libdir/cmake/libmq/libmqConfigVersion.cmake" "$libdir/cmake/libmq/libmqTargets.cmake" \
	share/man/man1/mqctl.1.gz share/man/man8/mqbroker.8.gz share/man/man3/libmq.3.gz \
	lib/systemd/system/mqbroker.service etc/default/mqbroker \
	share/doc/libmq2/copyright share/doc/libmq-dev/changelog.Debian.gz \
	share/doc/libmq-dev/examples/producer.c share/doc/libmq-dev/examples/CMakeLists.txt; do
	[ -e "$P/$f" ] || fail "cmake --install put no $f in the prefix"
done
[ "$(readlink "$P/$libdir/libmq.so.2")" = libmq.so.2.0.0 ] || fail "libmq.so.2 does not link to libmq.so.2.0.0"
[ "$(readlink "$P/$libdir/libmq.so")" = libmq.so.2 ] || fail "libmq.so does not link to libmq.so.2"
cmp -s "$src/libmq/include/libmq.h" "$P/include/libmq.h" || fail "installed libmq.h differs from the source"
# Nothing outside the prefix (the unit and /etc/default go to / only for /usr).
outside=$(grep -v "^$P/" "$build/install_manifest.txt" || true)
[ -z "$outside" ] || fail "cmake --install wrote outside $P: $outside"

# The unit and its defaults file name the files of this install: the unit
# installed to P runs P/sbin/mqbroker with P/etc/default/mqbroker.
unit=$P/lib/systemd/system/mqbroker.service
grep -qx "ExecStart=$P/sbin/mqbroker \$MQBROKER_OPTS" "$unit" ||
	fail "the installed unit does not run $P/sbin/mqbroker: $(grep ExecStart "$unit")"
grep -qx "EnvironmentFile=-$P/etc/default/mqbroker" "$unit" ||
	fail "the installed unit does not read $P/etc/default/mqbroker: $(grep EnvironmentFile "$unit")"
grep -qF "runs $P/sbin/mqbroker " "$P/etc/default/mqbroker" ||
	fail "the installed defaults file does not name $P/sbin/mqbroker: $(cat "$P/etc/default/mqbroker")"
rest=$(cat "$unit" "$P/etc/default/mqbroker")
rest=${rest//"$P/sbin/mqbroker"/}
rest=${rest//"$P/etc/default/mqbroker"/}
strays=$(grep -oE '(/usr/sbin|/etc/default)/mqbroker' <<<"$rest" || true)
[ -z "$strays" ] || fail "the installed unit or defaults file names a file outside $P: $strays"
# The same for mqbridge's, when it is built (libnats): its unit runs
# P/sbin/mqbridge with P/etc/default/mqbridge.
if [ -x "$build/bridge/mqbridge" ]; then
	for f in sbin/mqbridge share/man/man8/mqbridge.8.gz lib/systemd/system/mqbridge.service \
		etc/default/mqbridge share/doc/mqbridge/copyright share/doc/mqbridge/changelog.Debian.gz; do
		[ -e "$P/$f" ] || fail "cmake --install put no $f in the prefix (mqbridge is built)"
	done
	unit=$P/lib/systemd/system/mqbridge.service
	grep -qx "ExecStart=$P/sbin/mqbridge \$MQBRIDGE_OPTS" "$unit" ||
		fail "the installed mqbridge unit does not run $P/sbin/mqbridge: $(grep ExecStart "$unit")"
	grep -qx "EnvironmentFile=-$P/etc/default/mqbridge" "$unit" ||
		fail "the installed mqbridge unit does not read $P/etc/default/mqbridge: $(grep EnvironmentFile "$unit")"
	grep -qF "runs $P/sbin/mqbridge " "$P/etc/default/mqbridge" ||
		fail "the installed mqbridge defaults file does not name $P/sbin/mqbridge"
	rest=$(cat "$unit" "$P/etc/default/mqbridge")
	rest=${rest//"$P/sbin/mqbridge"/}
	rest=${rest//"$P/etc/default/mqbridge"/}
	strays=$(grep -oE '(/usr/sbin|/etc/default)/mqbridge' <<<"$rest" || true)
	[ -z "$strays" ] || fail "the installed mqbridge unit or defaults file names a file outside $P: $strays"
fi

# pkg-config: the prefix installed to, not the configured one.
export PKG_CONFIG_PATH=$P/$libdir/pkgconfig
[ "$(pkg-config --modversion libmq)" = "$(sed -n 's/^#define LIBMQ_VERSION *"\(.*\)"/\1/p' "$P/include/libmq.h")" ] ||
	fail "pkg-config --modversion libmq: $(pkg-config --modversion libmq)"
flags=$(pkg-config --cflags --libs libmq)
for want in "-I$P/include" "-L$P/$libdir" -lmq; do
	[[ " $flags " == *" $want "* ]] || fail "pkg-config --cflags --libs libmq: '$flags' lacks $want"
done
# shellcheck disable=SC2086 # the flags are words
cc -std=c11 -Wall -Wextra -Werror -pedantic "$src/tests/packaging/api_test.c" $flags -o "$TMP/api_pc" ||
	fail "api_test.c does not build with pkg-config's flags: $flags"
LD_LIBRARY_PATH=$P/$libdir "$TMP/api_pc" >"$TMP/api.out" 2>&1 || fail "api_test (pkg-config build) failed: $(cat "$TMP/api.out")"
# (ldd's output captured, not piped into grep -q: under pipefail, grep's
# early exit could kill ldd with SIGPIPE.)
LD_LIBRARY_PATH=$P/$libdir ldd "$TMP/api_pc" >"$TMP/ldd.out" 2>&1 || fail "ldd api_test failed: $(cat "$TMP/ldd.out")"
grep -qF "$P/$libdir/libmq.so.2" "$TMP/ldd.out" ||
	fail "api_test does not load the installed libmq.so.2: $(cat "$TMP/ldd.out")"

# CMake: the installed examples project, found through CMAKE_PREFIX_PATH.
cp -r "$P/share/doc/libmq-dev/examples" "$TMP/examples"
cmake -S "$TMP/examples" -B "$TMP/examples/build" -DCMAKE_PREFIX_PATH="$P" >"$TMP/ex.log" 2>&1 &&
	cmake --build "$TMP/examples/build" >>"$TMP/ex.log" 2>&1 ||
	fail "the examples do not build with find_package(libmq) from $P: $(cat "$TMP/ex.log")"
grep -q "libmq_DIR:PATH=$P/$libdir/cmake/libmq" "$TMP/examples/build/CMakeCache.txt" ||
	fail "find_package(libmq) found another libmq: $(grep libmq_DIR "$TMP/examples/build/CMakeCache.txt")"

# The installed broker: its dashboard built in (nothing of web/ is installed),
# the examples against it.
[ ! -e "$P/share/mqbroker/web" ] || fail "the dashboard's files were installed: $(ls "$P/share/mqbroker/web")"
start_broker "$TMP/broker.log" -n "$Q" -l 127.0.0.1:0
http GET /
[ "$CODE" = 200 ] || fail "GET / from the installed broker answered $CODE"
cmp -s "$TMP/body" "$src/web/index.html" || fail "GET / is not web/index.html"
MQ_QUEUE=$Q "$TMP/examples/build/producer" hello "wide world" 2>"$TMP/prod.err" ||
	fail "producer failed: $(cat "$TMP/prod.err")"
MQ_QUEUE=$Q timeout 20 "$TMP/examples/build/consumer" >"$TMP/cons.out" 2>"$TMP/cons.err" ||
	fail "consumer failed: $(cat "$TMP/cons.err")"
[ "$(cat "$TMP/cons.out")" = "$(printf 'hello\nwide world')" ] || fail "consumer printed: $(cat "$TMP/cons.out")"
status_expect enqueued_total=2 dequeued_total=2 depth=0
MQ_QUEUE=/no-such-queue-$$ "$TMP/examples/build/producer" x 2>"$TMP/prod.err" && fail "producer to a missing queue succeeded"
grep -qF "/no-such-queue-$$" "$TMP/prod.err" || fail "producer's error does not name the queue: $(cat "$TMP/prod.err")"
stop_broker "$BPID" TERM "$TMP/broker.log"
echo "PASS: $TEST"
