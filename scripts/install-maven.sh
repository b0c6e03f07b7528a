#!/bin/sh
# Install Maven and the Debian-packaged plugins the Maven client tests use offline
# (Maven Central is not reachable; /usr/share/maven-repo serves as a file:// repository).
# Idempotent: does nothing when mvn and the deploy plugin are already there. Needs root.
set -eu
# One installer at a time on this machine (parallel test workers may ask together); the one that
# waited then finds everything there.
if [ -z "${PACKHOUSE_INSTALL_LOCKED:-}" ]; then
    PACKHOUSE_INSTALL_LOCKED=1 exec flock /tmp/packhouse-installs.lock sh "$0" "$@"
fi

if command -v mvn >/dev/null 2>&1 && [ -d /usr/share/maven-repo/org/apache/maven/plugins/maven-deploy-plugin ]; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "install-maven.sh: needs root (or sudo) to apt-get install maven" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
# Wait for a concurrent apt run rather than failing on its lock.
APT="$SUDO apt-get -o DPkg::Lock::Timeout=600 -q"
$APT update
$APT install -y --no-install-recommends \
    maven \
    libmaven-deploy-plugin-java \
    libmaven-install-plugin-java \
    libmaven-dependency-plugin-java \
    libmaven-jar-plugin-java \
    libmaven-resources-plugin-java \
    libmaven-compiler-plugin-java \
    libmaven-clean-plugin-java \
    libsurefire-java
