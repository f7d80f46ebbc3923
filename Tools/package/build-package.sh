#!/usr/bin/env bash
# make package: vcom-failover_VERSION_ARCH.deb in the repository's top directory, built with
# dpkg-deb from a staged tree: the four programs (release, the Swift runtime linked in, so the
# host needs no toolchain), the systemd unit, the sample /etc/vcom/server.toml (a conffile),
# the docs, and maintainer scripts that make the vcom system user and its directories.
#   CONFIGURATION=debug  package the debug build instead (the docs' test does, to save a
#                        release build; never for a real host)
# Ends with: package file=... size_kib=... depends=...
set -euo pipefail
cd "$(dirname "$0")/../.."
CONFIGURATION=${CONFIGURATION:-release}
PRODUCTS=(vcom-server vcom-admin vcom-client-sim vcom-license)
VERSION=$(sed -n 's/.*static let version = "\(.*\)".*/\1/p' Modules/ServerRuntime/BuildInfo.swift)
ARCH=$(dpkg --print-architecture)
OUT="vcom-failover_${VERSION}_${ARCH}.deb"

if [ "$CONFIGURATION" = release ]; then
    # Its own build directory: the commit stamped into BuildInfo.swift for this build does not
    # invalidate the development build in .build.
    SCRATCH=.build-package
    echo "package: building ${PRODUCTS[*]} (release, static Swift runtime; a cold build takes several minutes)..."
    Tools/package/stamp.sh bash -c 'for product in "$@"; do swift build -c release --static-swift-stdlib --scratch-path .build-package --product "$product" 2>&1 | grep -E "error|Compiling|Build" | tail -1; done' _ "${PRODUCTS[@]}"
    BIN="$SCRATCH/release"
else
    BIN=.build/debug
    for product in "${PRODUCTS[@]}"; do swift build --product "$product" 2>&1 | grep -E "error" || true; done
fi

STAGE=$(mktemp -d /tmp/vcom-package.XXXXXX)
chmod 0755 "$STAGE"
trap 'rm -rf "$STAGE"' EXIT
Tools/package/install-tree.sh "$STAGE" /usr "$BIN"
install -d -m 0755 "$STAGE/DEBIAN"
for script in postinst prerm postrm; do install -m 0755 "Tools/package/debian/$script" "$STAGE/DEBIAN/$script"; done
echo /etc/vcom/server.toml >"$STAGE/DEBIAN/conffiles"

# Depends: the packages that hold the shared libraries the programs load (ldd, then dpkg -S).
depends=$(for product in "${PRODUCTS[@]}"; do ldd "$STAGE/usr/bin/$product"; done | awk '/=> \// { print $3 }' | sort -u |
    while read -r library; do dpkg -S "$(readlink -f "$library")" 2>/dev/null || dpkg -S "$library" 2>/dev/null || true; done |
    cut -d: -f1 | sort -u | paste -sd, | sed 's/,/, /g')
[ -n "$depends" ] || depends="libc6"
# A debug build links the toolchain's Swift runtime, which no package provides: say so.
if [ "$CONFIGURATION" != release ]; then echo "package: a debug package runs only where this toolchain is installed" >&2; fi
size=$(du -sk "$STAGE" | cut -f1)
cat >"$STAGE/DEBIAN/control" <<CONTROL
Package: vcom-failover
Version: $VERSION
Architecture: $ARCH
Maintainer: VCOM failover team <vcom@localhost>
Installed-Size: $size
Depends: $depends, adduser | passwd
Section: net
Priority: optional
Homepage: https://localhost/vcom
Description: VCOM intercom server, primary/secondary failover pair
 vcom-server runs one server of a failover pair (the primary or the secondary),
 vcom-admin administers the pair (status, switchover, configuration, maintenance),
 vcom-client-sim simulates operator clients, vcom-license signs licences.
 A systemd unit (Type=notify, hardened) and a sample /etc/vcom/server.toml are
 included; docs in /usr/share/doc/vcom-failover.
CONTROL
# A debug package (tests only) is compressed lightly: its 300 MB of binaries would take xz a minute.
if [ "$CONFIGURATION" = release ]; then compression=(); else compression=(-Zgzip -z1); fi
dpkg-deb --build --root-owner-group "${compression[@]}" "$STAGE" "$OUT" >/dev/null
echo "package: $OUT ($(du -k "$OUT" | cut -f1) KiB): dpkg -I $OUT; install with: apt install ./$OUT"
echo "package file=$OUT size_kib=$(du -k "$OUT" | cut -f1) configuration=$CONFIGURATION depends=\"$depends\""
