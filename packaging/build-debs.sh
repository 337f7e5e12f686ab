#!/bin/sh
# build-debs.sh - build the Debian packages libmq2, libmq-dev, mqbroker and
# (when libnats-dev is installed, so that mqbridge is built) mqbridge with
# Debian's hardening build flags (dpkg-buildflags, hardening=+all).
# Usage: packaging/build-debs.sh [BUILD_DIR]   (default build-deb)
# The .deb files land in BUILD_DIR/debs/. Needs the build dependencies
# (packaging/install-deps.sh) and dpkg-dev.
# It is `cmake && cmake --build && cpack -G DEB` with these flags (and without
# the tests): the packages' prefix, /usr, comes from CMake (MQ_PACKAGING_PREFIX),
# so a plain `cpack -G DEB` in any build directory packages the same files.
set -eu
cd "$(dirname "$0")/.."
dir=${1:-build-deb}

command -v dpkg-buildflags >/dev/null 2>&1 ||
	{ echo "build-debs.sh: needs dpkg-buildflags (apt-get install dpkg-dev)" >&2; exit 1; }
export DEB_BUILD_MAINT_OPTIONS=hardening=+all
CFLAGS="$(dpkg-buildflags --get CPPFLAGS) $(dpkg-buildflags --get CFLAGS)"
LDFLAGS=$(dpkg-buildflags --get LDFLAGS)
export CFLAGS LDFLAGS

rm -rf "$dir/debs"
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMQ_BUILD_TESTS=OFF -DMQ_WERROR=ON
cmake --build "$dir" -j"$(nproc)"
(cd "$dir" && cpack -G DEB)
ls -1 "$dir"/debs/*.deb
