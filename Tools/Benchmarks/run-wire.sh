#!/usr/bin/env bash
# Runs the Wire benchmarks (ordo-one/benchmark, release build) and ends with
#   bench-wire small_decode_ns=… small_decode_mallocs=… compressed_over_zlib=… …
# Budget (docs/wire-protocol.md): compressed_over_zlib <= 1.2 and at most one allocation
# to decode a small uncompressed frame. Exits non-zero when over budget.
set -euo pipefail
cd "$(dirname "$0")"
scratch=../../.build-bench
mkdir -p "$scratch"
report="$scratch/wire-report.md"
echo "bench-wire: building and running (release build; the first build takes a few minutes)..."
swift package --scratch-path "$scratch" benchmark --target WireBenchmarks --no-progress --format markdown | tee "$report"

# metric <benchmark heading prefix> <metric row prefix> <column>: columns are p0 p25 p50 p75 p90 p99 p100.
metric() {
    awk -v bench="### $1" -v row="| $2" -v col="$3" '
        index($0, "### ") == 1 { inside = (index($0, bench) == 1) }
        inside && index($0, row) == 1 {
            split($0, cells, "|"); names["p0"]=3; names["p25"]=4; names["p50"]=5; names["p75"]=6; names["p90"]=7; names["p99"]=8; names["p100"]=9
            value = cells[names[col]]; gsub(/ /, "", value); print value; exit
        }' "$report"
}
small_decode_ns=$(metric "small frame decode" "Time (wall clock)" p50)
small_decode_mallocs=$(metric "small frame decode" "Malloc (total)" p100)
small_encode_ns=$(metric "small frame encode" "Time (wall clock)" p50)
snapshot_ns=$(metric "snapshot encode" "Time (wall clock)" p50)
zlib_ns=$(metric "bare zlib compress" "Time (wall clock)" p50)
# The ratio compares minimum times: both sides run the same zlib on the same bytes, and on
# a shared machine the minimum is the figure least disturbed by other load (the two
# benchmarks run one after the other, so their medians can see different load).
snapshot_min_ns=$(metric "snapshot encode" "Time (wall clock)" p0)
zlib_min_ns=$(metric "bare zlib compress" "Time (wall clock)" p0)
snapshot_decode_ns=$(metric "snapshot decode" "Time (wall clock)" p50)
large_decode_ns=$(metric "large frame decode" "Time (wall clock)" p50)
handler_bytes=$(metric "handlers per connection" "Malloc (bytes" p100)
ratio=$(awk -v a="$snapshot_min_ns" -v b="$zlib_min_ns" 'BEGIN { printf "%.3f", a / b }')
ratio_p50=$(awk -v a="$snapshot_ns" -v b="$zlib_ns" 'BEGIN { printf "%.3f", a / b }')
ok=$(awk -v r="$ratio" -v m="$small_decode_mallocs" 'BEGIN { print (r <= 1.2 && m <= 1) ? "yes" : "no" }')
echo "bench-wire small_decode_ns=$small_decode_ns small_decode_mallocs=$small_decode_mallocs compressed_over_zlib=$ratio" \
    "compressed_over_zlib_p50=$ratio_p50 small_encode_ns=$small_encode_ns snapshot_encode_ns=$snapshot_ns zlib_ns=$zlib_ns snapshot_decode_ns=$snapshot_decode_ns" \
    "large_plain_decode_ns=$large_decode_ns handler_bytes_per_connection=$handler_bytes within_budget=$ok"
[ "$ok" = yes ]
