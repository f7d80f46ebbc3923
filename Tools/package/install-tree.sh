#!/usr/bin/env bash
# install-tree.sh ROOT PREFIX BIN: the installed files under ROOT (a staging tree, or / for make
# install): programs in PREFIX/bin, the systemd unit (pointing at them), the sample
# configuration (never over an existing one), the docs.
set -euo pipefail
ROOT=$1 PREFIX=$2 BIN=$3
cd "$(dirname "$0")/../.."
DOCDIR="$PREFIX/share/doc/vcom-failover"
install -d -m 0755 "$ROOT$PREFIX/bin" "$ROOT$DOCDIR"
for product in vcom-server vcom-admin vcom-client-sim vcom-license; do
    install -m 0755 "$BIN/$product" "$ROOT$PREFIX/bin/$product"
    # The DWARF goes (173 MB to 109 MB for vcom-server); the symbol table stays, so a crash
    # report's backtrace still names its functions.
    strip --strip-debug "$ROOT$PREFIX/bin/$product"
done
# /usr installs to the distribution's unit directory; any other prefix to the administrator's.
if [ "$PREFIX" = /usr ]; then UNITDIR=/lib/systemd/system; else UNITDIR=/etc/systemd/system; fi
install -d -m 0755 "$ROOT$UNITDIR"
sed -e "s|@BINDIR@|$PREFIX/bin|g" -e "s|@DOCDIR@|$DOCDIR|g" Tools/package/vcom-server.service >"$ROOT$UNITDIR/vcom-server.service"
chmod 0644 "$ROOT$UNITDIR/vcom-server.service"
install -d -m 0755 "$ROOT/etc/vcom"
[ -e "$ROOT/etc/vcom/server.toml" ] || install -m 0640 Tools/package/server.toml "$ROOT/etc/vcom/server.toml"
for doc in README.md docs/*.md; do install -m 0644 "$doc" "$ROOT$DOCDIR/$(basename "$doc")"; done
printf 'VCOM failover pair. Copyright the VCOM failover team.\n' >"$ROOT$DOCDIR/copyright"
