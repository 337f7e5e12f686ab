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

# build_debs SOURCE_TREE DIR WHAT: SOURCE_TREE/packaging/build-debs.sh DIR,
# its log in DIR.log; on failure the log and "building WHAT failed", exit 1.
build_debs() {
	"$1/packaging/build-debs.sh" "$2" >"$2.log" 2>&1 || {
		cat "$2.log" >&2
		echo "FAIL: $TEST: building $3 failed (log above)" >&2
		exit 1
	}
}
