#!/bin/sh
# Install the NuGet clients the client tests use: mono + Debian's `nuget` (2.8.7, a v2 client)
# and NuGet.exe 5.8.0 (v3) from the npm package `nuget-exe`, unpacked into a cache directory.
# Idempotent: does nothing when both are there. Needs root (or sudo) for apt-get.
# Prints the path of NuGet.exe on its last line.
set -eu
# One installer at a time on this machine (parallel test workers may ask together); the one that
# waited then finds everything there.
if [ -z "${PACKHOUSE_INSTALL_LOCKED:-}" ]; then
    PACKHOUSE_INSTALL_LOCKED=1 exec flock /tmp/packhouse-installs.lock sh "$0" "$@"
fi

CACHE="${PACKHOUSE_NUGET_CACHE:-${HOME:-/root}/.cache/packhouse/nuget-exe}"
VERSION="5.8.0"

find_exe() {
    find "$CACHE/$VERSION" -type f \( -iname nuget.exe -o -iname "nuget-*.exe" \) 2>/dev/null | head -n 1
}

if ! command -v mono >/dev/null 2>&1 || ! command -v nuget >/dev/null 2>&1 || ! command -v mcs >/dev/null 2>&1; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            SUDO="sudo"
        else
            echo "install-nuget.sh: needs root (or sudo) to apt-get install mono and nuget" >&2
            exit 1
        fi
    fi
    export DEBIAN_FRONTEND=noninteractive
    APT="$SUDO apt-get -o DPkg::Lock::Timeout=600 -q"
    $APT update
    $APT install -y --no-install-recommends mono-runtime mono-devel ca-certificates-mono nuget
fi

if [ -z "$(find_exe)" ]; then
    if ! command -v npm >/dev/null 2>&1; then
        echo "install-nuget.sh: npm is needed to fetch nuget-exe@$VERSION" >&2
        exit 1
    fi
    mkdir -p "$CACHE/$VERSION"
    TMP="$(mktemp -d)"
    trap 'rm -rf "$TMP"' EXIT
    (cd "$TMP" && npm pack --silent "nuget-exe@$VERSION" >/dev/null)
    tar -xzf "$TMP"/nuget-exe-*.tgz -C "$CACHE/$VERSION"
fi

EXE="$(find_exe)"
if [ -z "$EXE" ]; then
    echo "install-nuget.sh: NuGet.exe not found in nuget-exe@$VERSION" >&2
    exit 1
fi
echo "$EXE"
