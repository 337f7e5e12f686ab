# scratch.sh - what the package tests (test_packages.sh, test_upgrade.sh) do
# before anything else; sourced, not a test. TEST must be set.
# shellcheck shell=bash

# scratch_machine PACKAGE...: exit 77 (skipped) unless root; fail if one of
# the packages is installed already (the test installs and removes them).
scratch_machine() {
	if [ "$(id -u)" -ne 0 ]; then
		echo "SKIP: $TEST: needs root (it installs and removes the .deb packages)" >&2
		exit 77
	fi
	local p
	for p; do
		if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q ' installed$'; then
			echo "FAIL: $TEST: $p is already installed here; this test installs and removes" \
				"the packages, so run it on a scratch machine (or remove them first)" >&2
			exit 1
		fi
	done
}

# plain_debs SOURCE_TREE DIR WHAT: the .debs the plain way, as anyone would
# make them: `cmake -S SOURCE_TREE -B DIR && cmake --build DIR && cd DIR &&
# cpack -G DEB`, no option given (so CMAKE_INSTALL_PREFIX is /usr/local: the
# packages must install under /usr all the same). A DIR configured before
# with another prefix is configured afresh. The .debs land in DIR/debs, the
# log in DIR.log; on failure the log and "building WHAT failed", exit 1.
plain_debs() {
	local src=$1 dir=$2
	mkdir -p "$dir"
	if [ -f "$dir/CMakeCache.txt" ] &&
		! grep -qx 'CMAKE_INSTALL_PREFIX:PATH=/usr/local' "$dir/CMakeCache.txt"; then
		rm -rf "$dir/CMakeCache.txt" "$dir/CMakeFiles"
	fi
	rm -rf "$dir/debs"
	{ cmake -S "$src" -B "$dir" && cmake --build "$dir" -j"$(nproc)" && (cd "$dir" && cpack -G DEB); } \
		>"$dir.log" 2>&1 || {
		cat "$dir.log" >&2
		echo "FAIL: $TEST: building $3 failed (log above)" >&2
		exit 1
	}
	grep -qx 'CMAKE_INSTALL_PREFIX:PATH=/usr/local' "$dir/CMakeCache.txt" || {
		echo "FAIL: $TEST: $dir is not a default build directory:" \
			"$(grep '^CMAKE_INSTALL_PREFIX:' "$dir/CMakeCache.txt")" >&2
		exit 1
	}
}

# build_debs SOURCE_TREE DIR WHAT: SOURCE_TREE/packaging/build-debs.sh DIR
# (hardening flags; also the only way for the 0.1 tree, whose plain cpack
# installed under /usr/local), its log in DIR.log; on failure the log and
# "building WHAT failed", exit 1.
build_debs() {
	"$1/packaging/build-debs.sh" "$2" >"$2.log" 2>&1 || {
		cat "$2.log" >&2
		echo "FAIL: $TEST: building $3 failed (log above)" >&2
		exit 1
	}
}
