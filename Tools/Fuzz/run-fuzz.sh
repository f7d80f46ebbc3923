#!/usr/bin/env bash
# Builds the Wire fuzz target with libFuzzer + AddressSanitizer and runs it for
# FUZZ_SECONDS. Ends with: fuzz target=wire execs=N crashes=N
set -euo pipefail
cd "$(dirname "$0")"
seconds="${FUZZ_SECONDS:-60}"
scratch=../../.build-fuzz
run="$scratch/run-$(date +%s)"
mkdir -p "$run/artifacts" "$scratch/corpus"

echo "fuzz: building wire-fuzz (libFuzzer + ASan)..."
swift build --scratch-path "$scratch" --product wire-fuzz --sanitize fuzzer -Xswiftc -sanitize=fuzzer,address \
    2>&1 | grep -vE "Cannot export local symbol" | tail -3
binary="$(swift build --scratch-path "$scratch" --product wire-fuzz --sanitize fuzzer -Xswiftc -sanitize=fuzzer,address --show-bin-path)/wire-fuzz"

echo "fuzz: running for ${seconds}s (log: $run/log)..."
status=0
# The backtracer can hang for minutes on a crash; libFuzzer reports crashes itself.
SWIFT_BACKTRACE=enable=no "$binary" "$scratch/corpus" corpus/wire \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$run/artifacts/" >"$run/log" 2>&1 || status=$?

execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$run/log" | grep -o '[0-9]*$' || true)
crashes=$(find "$run/artifacts" -type f | wc -l)
if [ "$status" -ne 0 ] && [ "$crashes" -eq 0 ]; then crashes=1; fi  # died without an artifact: still a crash
tail -5 "$run/log"
for artifact in "$run/artifacts"/*; do [ -e "$artifact" ] && echo "fuzz: reproducer $artifact"; done
echo "fuzz target=wire execs=${execs:-0} crashes=$crashes"
[ "$crashes" -eq 0 ]
