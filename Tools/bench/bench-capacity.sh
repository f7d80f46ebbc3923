#!/usr/bin/env bash
# make bench-capacity: what one serving server costs per logged-in idle client.
# A pair on loopback (release builds); CLIENTS simulated clients log in to the primary as fast
# as it admits them, with no talk traffic and heartbeats running (1 s). Measured on the primary:
#   rss_kib_per_client  (RSS with every client in and 5 s settled - RSS before the logins) / CLIENTS
#   logins_per_s        CLIENTS / seconds from the first connection to the last login
#   heartbeat_cpu_pct   the primary's CPU over 10 idle seconds, % of one core
#   standby_kib_per_watch  the same RSS difference on the secondary, where every client keeps
#                       its watch connection (docs/failover-policy.md)
# TLS=1 (default) or 0, as in bench-failover. RAMP= new clients a second: as fast as the
# primary admits them in clear (100000), 500 with TLS: 10,000 simulated clients doing their own
# handshakes on the servers' two cores fell behind their heartbeats at full speed, the primary's
# census saw the sessions go silent and handed over (the clients ended on the secondary). With
# TLS, logins_per_s is then the ramp's, not the server's.
# Last line: bench-capacity clients=N tls=0|1 rss_kib_per_client=... logins_per_s=... heartbeat_cpu_pct=... standby_kib_per_watch=...
set -euo pipefail
cd "$(dirname "$0")/../.."

CLIENTS=${CLIENTS:-10000}
IDLE=${IDLE:-10}
BIN=.build/release
RUN="run/bench-capacity-$(date +%Y%m%d-%H%M%S)"

source Tools/scripts/pair-lib.sh
RAMP=${RAMP:-$([ "$TLS" = 1 ] && echo 500 || echo 100000)}
trap pair_cleanup EXIT
trap 'echo; echo "bench-capacity: interrupted"; exit 130' INT TERM
bench_prepare bench-capacity "$CLIENTS"

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

pair_files "$CLIENTS"
pair_common
pair_start_secondary
pair_start_primary
pair_wait_state "$PRIMARY_METRICS" active 30 || { echo "bench-capacity: the primary never served; see $RUN/primary.log" >&2; exit 1; }
sleep 2
before=$(rss_kib "$PRIMARY_PID")
standby_before=$(rss_kib "$SECONDARY_PID")
echo "bench-capacity: pair up; the primary's RSS is $((before / 1024)) MiB; logging in $CLIENTS idle clients"

start=$(now_ms)
"$BIN/vcom-client-sim" "${SIM_TLS[@]}" --servers "$PRIMARY,$SECONDARY" --clients "$CLIENTS" --talkers 0 --duration 0 --ramp "$RAMP" \
    >"$RUN/clients.out" 2>"$RUN/clients.log" &
SIM=$!
PIDS+=("$SIM")
deadline=$((SECONDS + 180))
until grep -qF "[$PRIMARY=$CLIENTS]" "$RUN/clients.out" 2>/dev/null; do
    if [ $SECONDS -gt $deadline ] || ! kill -0 "$SIM" 2>/dev/null; then
        echo "bench-capacity: the clients were not all on the primary within 180 s:" >&2
        sim_summary "$SIM" "$RUN/clients.out"
        tail -n 3 "$RUN/clients.out" "$RUN/clients.log" >&2
        exit 1
    fi
    sleep 0.05
done
elapsed=$(($(now_ms) - start))
echo "bench-capacity: $CLIENTS clients logged in after $elapsed ms (polled every 50 ms)"
sleep 5  # and every watch started (within 2 s of its login)
after=$(rss_kib "$PRIMARY_PID")
standby_after=$(rss_kib "$SECONDARY_PID")
ticks=$(cpu_ticks "$PRIMARY_PID")
sleep "$IDLE"
ticks=$(($(cpu_ticks "$PRIMARY_PID") - ticks))
hz=$(getconf CLK_TCK)
still=$(tail -1 "$RUN/clients.out")
echo "bench-capacity: RSS $((after / 1024)) MiB with every client in; after $IDLE idle s: $still"
grep -qF "[$PRIMARY=$CLIENTS]" <<<"$still" || { echo "bench-capacity: clients were lost while idle" >&2; exit 1; }
kill -INT "$SIM"
for _ in $(seq 1 50); do kill -0 "$SIM" 2>/dev/null || break; sleep 0.1; done

echo "bench-capacity: logs and data in $RUN"
awk -v n="$CLIENTS" -v b="$before" -v a="$after" -v ms="$elapsed" -v t="$ticks" -v hz="$hz" -v idle="$IDLE" \
    -v sb="$standby_before" -v sa="$standby_after" -v tls="$TLS" 'BEGIN {
    printf "bench-capacity clients=%d tls=%d rss_kib_per_client=%.1f logins_per_s=%.0f heartbeat_cpu_pct=%.1f standby_kib_per_watch=%.1f\n",
        n, tls, (a - b) / n, n * 1000 / ms, 100 * t / hz / idle, (sa - sb) / n }'
