#!/usr/bin/env bash
# Installs the system libraries the build links (zlib, SQLite) and the tools the tests use
# (curl, iproute2) when they are missing, or
# says exactly what to run. Debian/Ubuntu package names; headers are checked directly so
# other systems that already have them pass.
set -euo pipefail
missing=()
[ -f /usr/include/zlib.h ] || missing+=(zlib1g-dev)
[ -f /usr/include/sqlite3.h ] || missing+=(libsqlite3-dev)
# The chaos rounds of make test scrape /metrics with curl and make namespaces with iproute2.
command -v curl >/dev/null || missing+=(curl)
command -v ip >/dev/null || missing+=(iproute2)
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: missing ${missing[*]}"
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "deps: installing with apt-get..."
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    echo "deps: installed ${missing[*]}"
else
    echo "deps: run this, then make again:  sudo apt-get install -y ${missing[*]}" >&2
    exit 1
fi
