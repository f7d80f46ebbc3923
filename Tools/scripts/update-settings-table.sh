#!/usr/bin/env bash
# Pastes `vcom-server settings --markdown` into docs/configuration.md (between the marker comment
# and the first blank line after it), so the doc's table is the server's own.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-.build/debug}
table=$("$BIN/vcom-server" settings --markdown)
python3 - "$table" <<'PY'
import sys, re
path = "docs/configuration.md"
text = open(path).read()
marker = "<!-- The table below is `vcom-server settings --markdown`; a test checks they agree. -->\n"
start = text.index(marker) + len(marker)
end = text.index("\n\n", start)
open(path, "w").write(text[:start] + sys.argv[1] + text[end:])
PY
echo "docs/configuration.md: settings table updated"
