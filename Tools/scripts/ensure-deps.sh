#!/usr/bin/env bash
# Installs the system libraries the build links (zlib, SQLite) and the tools the tests use
# (curl, iproute2; promtool and Python's Prometheus parser for the metrics; systemd-analyze
# and dpkg-deb for the package; chromium for the status page) when they are missing, or
# says exactly what to run. Debian/Ubuntu package names; headers are checked directly so
# other systems that already have them pass.
set -euo pipefail
missing=()
[ -f /usr/include/zlib.h ] || missing+=(zlib1g-dev)
[ -f /usr/include/sqlite3.h ] || missing+=(libsqlite3-dev)
# The chaos rounds of make test scrape /metrics with curl and make namespaces with iproute2.
command -v curl >/dev/null || missing+=(curl)
command -v ip >/dev/null || missing+=(iproute2)
# /metrics is checked by promtool and parsed by prometheus_client (the system Python's).
command -v promtool >/dev/null || missing+=(prometheus)
/usr/bin/python3 -c "import prometheus_client" 2>/dev/null || missing+=(python3-prometheus-client)
# The Debian package: built by dpkg-deb, its unit checked by systemd-analyze.
command -v dpkg-deb >/dev/null || missing+=(dpkg)
command -v strip >/dev/null || missing+=(binutils)
command -v systemd-analyze >/dev/null || missing+=(systemd)
# The status page is tested in a real browser (headless, driven over a pipe).
command -v chromium >/dev/null || missing+=(chromium)
# etcd for the witness's tests (issue 29): Debian's etcd-server, started by the tests themselves.
command -v etcd >/dev/null || missing+=(etcd-server)
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: missing ${missing[*]}"
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "deps: installing with apt-get..."
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    # Packages install their tools, not running services (the prometheus package would start
    # a server on :9090 where systemd runs): policy-rc.d says no to every start meanwhile.
    policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        policy=/usr/sbin/policy-rc.d
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy"
        trap 'rm -f "$policy"' EXIT
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    echo "deps: installed ${missing[*]}"
else
    echo "deps: run this, then make again:  sudo apt-get install -y ${missing[*]}" >&2
    exit 1
fi
