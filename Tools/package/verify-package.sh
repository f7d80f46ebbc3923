#!/usr/bin/env bash
# verify-package.sh DEB: what the package holds and whether systemd accepts its unit:
# `systemd-analyze verify` in a root made of the package's files and this machine's own units
# (the unit's After=/Wants= targets must exist; the programs it names must be there). Fails on
# any complaint about the unit, and on a unit without the hardening the docs promise.
set -euo pipefail
DEB=$1
ROOT=$(mktemp -d /tmp/vcom-verify.XXXXXX)
trap 'rm -rf "$ROOT"' EXIT
dpkg-deb -x "$DEB" "$ROOT"
for file in usr/bin/vcom-server usr/bin/vcom-admin usr/bin/vcom-client-sim usr/bin/vcom-license lib/systemd/system/vcom-server.service \
    etc/vcom/server.toml usr/share/doc/vcom-failover/configuration.md; do
    [ -e "$ROOT/$file" ] || { echo "verify-package: $DEB lacks /$file" >&2; exit 1; }
done
dpkg-deb -f "$DEB" Package Version Depends | sed 's/^/verify-package: /'
[ "$(dpkg-deb --ctrl-tarfile "$DEB" | tar -xO ./conffiles)" = /etc/vcom/server.toml ] || { echo "verify-package: server.toml is not a conffile" >&2; exit 1; }
unit="$ROOT/lib/systemd/system/vcom-server.service"
for directive in Type=notify Restart=on-failure "RestartPreventExitStatus=64 78" ProtectSystem=strict ReadWritePaths=/var/lib/vcom \
    NoNewPrivileges=yes "CapabilityBoundingSet=" User=vcom WatchdogSec=; do
    grep -q "^$directive" "$unit" || { echo "verify-package: the unit lacks $directive" >&2; exit 1; }
done
mkdir -p "$ROOT/lib/systemd/system" "$ROOT/usr/bin"
cp -rn /lib/systemd/system/. "$ROOT/lib/systemd/system/" 2>/dev/null || true
cp -n /usr/bin/kill "$ROOT/usr/bin/kill"
complaints=$(systemd-analyze verify --root="$ROOT" /lib/systemd/system/vcom-server.service 2>&1 | grep -F "vcom-server" || true)
if [ -n "$complaints" ]; then
    echo "verify-package: systemd-analyze verify: $complaints" >&2
    exit 1
fi
echo "verify-package: systemd-analyze verify accepts vcom-server.service"
