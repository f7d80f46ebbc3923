#!/usr/bin/env bash
# stamp.sh COMMAND...: runs COMMAND (a build) with the current commit written into
# Modules/ServerRuntime/BuildInfo.swift (vcom_build_info, --version), and puts the file back
# afterwards, whatever happens.
set -euo pipefail
cd "$(dirname "$0")/../.."
FILE=Modules/ServerRuntime/BuildInfo.swift
commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- . 2>/dev/null || commit="$commit-dirty"
cp "$FILE" "$FILE.orig"
# The restored file is touched: with its old time back, another build in .build (compiled from
# the stamped file meanwhile) would keep the stamped commit.
trap 'mv "$FILE.orig" "$FILE"; touch "$FILE"' EXIT
sed -i "s/static let commit = \"unknown\"/static let commit = \"$commit\"/" "$FILE"
"$@"
