#!/bin/sh
# install-deps.sh - install what building and testing mqbroker needs on Debian 12.
# Run as root (or with sudo available). Safe to run again.
set -eu

# Building and the tests (libnats-dev for mqbridge, nats-server for its
# tests); then what the package test (tests/packaging/) needs:
# dpkg-dev and file (CPack's shlibdeps), lintian, man-db, systemd
# (systemd-analyze verify), adduser (the maintainer scripts).
PKGS="build-essential cmake pkg-config check clang libclang-rt-14-dev libzmq3-dev
libmicrohttpd-dev libcjson-dev libuv1-dev libnats-dev nats-server curl python3 tmux
groff-base chromium wrk dpkg-dev file lintian man-db systemd adduser"

if [ "$(id -u)" -eq 0 ]; then
	SUDO=""
elif command -v sudo >/dev/null 2>&1; then
	SUDO="sudo"
else
	echo "install-deps.sh: run as root (or install sudo): apt-get needs it" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086 # word splitting of the package list is intended
$SUDO apt-get install -y -q --no-install-recommends $PKGS
# The dashboard's browser test drives chromium with playwright-core from npm.
# Some images ship Node.js with npm built in (nodesource); Debian's own npm
# package would conflict with it, so it is installed only when npm is missing.
if ! command -v npm >/dev/null 2>&1; then
	$SUDO apt-get install -y -q --no-install-recommends nodejs npm
fi
# promtool checks /metrics (tests/broker/many_queues.sh). Debian ships it
# only inside the Prometheus server's package: take the one binary out of
# it rather than install (and start) a Prometheus server.
if ! command -v promtool >/dev/null 2>&1; then
	tmp=$(mktemp -d)
	chmod 755 "$tmp" # apt-get download fetches as the _apt user
	(cd "$tmp" && $SUDO apt-get download -q prometheus >/dev/null &&
		dpkg-deb --fsys-tarfile prometheus_*.deb | tar -x ./usr/bin/promtool)
	$SUDO install -m 0755 "$tmp/usr/bin/promtool" /usr/local/bin/promtool
	rm -rf "$tmp"
fi
