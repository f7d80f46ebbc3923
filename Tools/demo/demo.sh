#!/usr/bin/env bash
# make demo: a primary, a secondary and simulated clients on loopback; the primary is killed,
# the clients move to the secondary, the primary comes back awaiting authorization.
# Everything lives under run/demo-*/ (keys, licence, data, logs); every process started here
# is stopped at the end, on Ctrl-C too.
set -euo pipefail
cd "$(dirname "$0")/../.."

CLIENTS=${CLIENTS:-200}
TALKERS=${TALKERS:-10}
BIN=.build/debug
RUN="run/demo-$(date +%Y%m%d-%H%M%S)"
PIDS=()
START=$(date +%s.%N)

say() { printf '[t+%5.1fs] %s\n' "$(echo "$(date +%s.%N) - $START" | bc)" "$*"; }
cleanup() {
    for pid in "${PIDS[@]:-}"; do [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'echo; say "interrupted: stopping everything"; exit 130' INT TERM

command -v bc >/dev/null || { echo "demo: needs bc (apt-get install bc)" >&2; exit 1; }

say "building vcom-server, vcom-license and vcom-client-sim (debug)..."
swift build --product vcom-server >/dev/null
swift build --product vcom-license >/dev/null
swift build --product vcom-client-sim >/dev/null
mkdir -p "$RUN"

# A development vendor key and licence, made on the fly (never committed).
$BIN/vcom-license keygen --out-dir "$RUN" --name vendor >/dev/null
$BIN/vcom-license issue --key "$RUN/vendor.key" --id LIC-DEMO --licensee "VCOM demo" --server-id vcom-primary \
    --max-clients 1000 --features failover --days 30 --out "$RUN/licence.txt" 2>/dev/null
head -c 32 /dev/urandom | base64 > "$RUN/cluster.secret"
chmod 600 "$RUN/cluster.secret"
$BIN/vcom-server bootstrap --data-dir "$RUN/primary" --demo-operators "$CLIENTS" >/dev/null
say "made a vendor key, licence LIC-DEMO, a cluster secret and $CLIENTS operators in $RUN"

ready() {  # waits for a ready file, prints one of its fields
    for _ in $(seq 1 600); do
        if [ -s "$1" ]; then sed -n "s/.*\"$2\":\"\([^\"]*\)\".*/\1/p" "$1"; return 0; fi
        sleep 0.05
    done
    echo "demo: a server did not start; see $RUN/*.log" >&2; exit 1
}
metric() {  # metric HOST:PORT NAME -> value
    local host=${1%:*} port=${1##*:}
    exec 3<>"/dev/tcp/$host/$port"
    printf 'GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >&3
    grep -F "$2 " <&3 | grep -v '^#' | awk '{v=$NF; sub(/\.0$/, "", v); print v}' | head -1
    exec 3>&-
}
state() {  # state METRICS -> active | standby | awaiting authorization
    for s in active standby awaiting_authorization; do
        [ "$(metric "$1" "vcom_state{state=\"$s\"}")" = "1" ] && { echo "${s//_/ }"; return; }
    done
    echo unknown
}
COMMON=(--cluster-secret-file "$RUN/cluster.secret" --vendor-key-file "$RUN/vendor.pub" --metrics-listen 127.0.0.1:0)

$BIN/vcom-server --role secondary --id vcom-secondary --primary-id vcom-primary --data-dir "$RUN/secondary" \
    --client-listen 127.0.0.1:0 --peer-listen 127.0.0.1:0 "${COMMON[@]}" --ready-file "$RUN/secondary.ready" 2>"$RUN/secondary.log" >/dev/null &
PIDS+=($!)
SECONDARY_PEER=$(ready "$RUN/secondary.ready" peer)
SECONDARY=$(ready "$RUN/secondary.ready" client)
SECONDARY_METRICS=$(ready "$RUN/secondary.ready" metrics)
start_primary() {
    $BIN/vcom-server --role primary --id vcom-primary --data-dir "$RUN/primary" --licence-file "$RUN/licence.txt" \
        --client-listen "127.0.0.1:${1:-0}" --peer-address "$SECONDARY_PEER" "${COMMON[@]}" \
        --ready-file "$RUN/primary.ready" 2>>"$RUN/primary.log" >/dev/null &
    PRIMARY_PID=$!
    PIDS+=($PRIMARY_PID)
}
start_primary
PRIMARY=$(ready "$RUN/primary.ready" client)
PRIMARY_METRICS=$(ready "$RUN/primary.ready" metrics)
for _ in $(seq 1 100); do [ "$(state "$PRIMARY_METRICS")" = active ] && break; sleep 0.1; done
say "pair up: primary $PRIMARY $(state "$PRIMARY_METRICS"), secondary $SECONDARY $(state "$SECONDARY_METRICS")"

$BIN/vcom-client-sim --servers "$PRIMARY,$SECONDARY" --clients "$CLIENTS" --talkers "$TALKERS" --duration 60 \
    --until-all-on "$SECONDARY" --json > "$RUN/clients.jsonl" 2>"$RUN/clients.log" &
SIM=$!
PIDS+=($SIM)
for _ in $(seq 1 600); do grep -q "\"logged_in\":$CLIENTS," "$RUN/clients.jsonl" 2>/dev/null && break; sleep 0.1; done
say "$CLIENTS clients logged in to the primary; $TALKERS talk on their party lines, the others listen"
sleep 2

kill -USR1 "$SIM"  # the clients measure from this moment
kill -9 "$PRIMARY_PID"
say "kill -9 of the primary"
for _ in $(seq 1 100); do [ "$(state "$SECONDARY_METRICS")" = active ] && break; sleep 0.05; done
say "secondary: $(state "$SECONDARY_METRICS") ($(grep -o 'incident S[0-9-]*: [^"]*' "$RUN/secondary.log" | head -1))"
wait "$SIM" || true
say "every client is back, on the secondary:"
python3 - "$RUN/clients.jsonl" <<'EOF'
import json, sys
summary = [json.loads(l) for l in open(sys.argv[1]) if '"summary"' in l][-1]
r, g = summary["relogin"], summary["media_gap"]
print(f"    back after the fault: p50 {r['p50_ms']:.0f} ms, p99 {r['p99_ms']:.0f} ms, max {r['max_ms']:.0f} ms ({r['count']} clients)")
print(f"    longest media silence heard by a listener: p99 {g['p99_ms']:.0f} ms, max {g['max_ms']:.0f} ms")
print(f"    never came back: {summary['never_back']}")
EOF

rm -f "$RUN/primary.ready"
start_primary "${PRIMARY##*:}"
ready "$RUN/primary.ready" client >/dev/null
PRIMARY_METRICS=$(ready "$RUN/primary.ready" metrics)
for _ in $(seq 1 100); do [ "$(state "$PRIMARY_METRICS")" = "awaiting authorization" ] && break; sleep 0.1; done
say "the primary is back: $(state "$PRIMARY_METRICS"); it caught up the configuration (revision $(metric "$PRIMARY_METRICS" vcom_config_revision))"
say "the switch back needs an authorized switchover naming the incident (vcom-admin, next issue); the demo ends here"
say "logs and data: $RUN"
