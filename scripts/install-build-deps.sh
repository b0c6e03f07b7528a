#!/bin/sh
# Headers python-ldap (django-auth-ldap's LDAP client) compiles against, installed from Debian
# when missing (idempotent; needs root).
set -eu
if [ -f /usr/include/ldap.h ] && [ -f /usr/include/sasl/sasl.h ]; then
    exit 0
fi
if [ "$(id -u)" != "0" ]; then
    echo "install-build-deps.sh: install libldap2-dev and libsasl2-dev (python-ldap builds against them)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends libldap2-dev libsasl2-dev gcc
