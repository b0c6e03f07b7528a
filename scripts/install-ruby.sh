#!/bin/sh
# Install Debian's ruby (with RubyGems) and bundler for the RubyGems client tests.
# Idempotent: does nothing when gem and bundle are already there. Needs root (or sudo).
set -eu
# One installer at a time on this machine (parallel test workers may ask together); the one that
# waited then finds everything there.
if [ -z "${PACKHOUSE_INSTALL_LOCKED:-}" ]; then
    PACKHOUSE_INSTALL_LOCKED=1 exec flock /tmp/packhouse-installs.lock sh "$0" "$@"
fi

if command -v gem >/dev/null 2>&1 && command -v bundle >/dev/null 2>&1; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "install-ruby.sh: needs root (or sudo) to apt-get install ruby" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
APT="$SUDO apt-get -o DPkg::Lock::Timeout=600 -q"
$APT update
$APT install -y --no-install-recommends ruby ruby-bundler
