#!/bin/sh
# Install Debian's chromium for the browser tests (idempotent; needs root).
# Never use `playwright install`: the tests drive this system browser instead.
set -eu
# One installer at a time on this machine (parallel test workers may ask together); the one that
# waited then finds everything there.
if [ -z "${PACKHOUSE_INSTALL_LOCKED:-}" ]; then
    PACKHOUSE_INSTALL_LOCKED=1 exec flock /tmp/packhouse-installs.lock sh "$0" "$@"
fi
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
if [ "$(id -u)" != "0" ]; then
    echo "install-chromium.sh: /usr/bin/chromium is missing and this is not root" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends chromium
