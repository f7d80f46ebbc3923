#!/usr/bin/env bash
# make bench-failover: what a failover costs the clients, measured from the fault.
# A primary and a secondary on loopback (release builds), CLIENTS simulated clients logged in
# to the primary with TALKERS of them talking, a steady state, then the fault:
#   MODE=kill    kill -9 of the primary (the kernel closes its sockets)
#   MODE=silent  SIGSTOP of the primary (nothing is closed: heartbeats must notice)
#   MODE=both    one after the other, one summary line each
# and a bounded wait until every client is logged in to the secondary. Each mode ends with
#   bench-failover mode=M tls=0|1 clients=N relogin_p50_ms=... relogin_p99_ms=... relogin_max_ms=...
#     media_gap_p99_ms=... never_back=N secondary_active_ms=... listen_drops=N secondary_cpu_ms=...
#     secondary_cpu_us_per_login=... (the secondary's own CPU from the fault until every client is
#     logged in there, and per re-login; CLK_TCK is 100 on Linux: 10 ms steps)
# TLS=1 (default) runs every port with TLS, as the servers do by default; TLS=0 in clear.
# WITNESS=1 gives the pair an etcd witness on loopback (lease WITNESS_TTL_S, default 3 s): a
# killed primary's port refuses, so the secondary serves at once; a silent one's lease must end
# first (docs/failover-policy.md, "With a witness"). The summary line then says witness=1.
# PROFILE=FILE records perf samples of the machine for 4 s from the fault (perf report -i FILE.MODE);
# PROFILE_EVENTS replaces perf's sampling options (tracepoints, say: "-e sock:inet_sock_set_state"
# shows when the dying primary closed each socket) and PROFILE_LEAD (seconds, default 0.3) starts
# perf that much before the fault: with 10,000 clients running, perf started 0.3 s ahead missed
# the fault's first tens of milliseconds.
# Each run's directory keeps clients.csv, one row per client (vcom-client-sim --per-client).
set -euo pipefail
cd "$(dirname "$0")/../.."

CLIENTS=${CLIENTS:-10000}
# 50 talkers of 20-operator lines: 50 x 19 listeners x 50 frames/s = 47,500 frames a second
# relayed, on the two cores that also run the secondary and every client. 200 saturates the
# pair (190,000 frames/s): heartbeats starve and the census hands over before the fault.
TALKERS=${TALKERS:-50}
MODE=${MODE:-kill}
STEADY=${STEADY:-3}
TIMEOUT=${TIMEOUT:-60}
# New clients per second while logging in (the simulator's --ramp). 500: with TLS, 10,000
# simulated clients doing their own handshakes on the servers' two cores fall behind their
# heartbeats at 2,000 a second, and the census hands over before the fault (docs/performance.md).
RAMP=${RAMP:-500}
# BIN=DIR runs another build's binaries (alternating runs of two builds); nothing is built then.
BIN=${BIN:-.build/release}
WITNESS=${WITNESS:-0}
BASE="run/bench-failover-$(date +%Y%m%d-%H%M%S)"

case "$MODE" in kill | silent) MODES=("$MODE") ;; both) MODES=(kill silent) ;;
*) echo "bench-failover: MODE must be kill, silent or both (not '$MODE')" >&2; exit 64 ;; esac

source Tools/scripts/pair-lib.sh
trap pair_cleanup EXIT
trap 'echo; echo "bench-failover: interrupted"; exit 130' INT TERM
bench_prepare bench-failover "$CLIENTS"

# SYNs dropped because an accept queue was full (each costs its client a 1 s retransmission).
listen_drops() { awk 'NR % 2 == 1 { for (i = 1; i <= NF; i++) h[i] = $i } NR % 2 == 0 { for (i = 1; i <= NF; i++) if (h[i] == "ListenDrops") print $i }' /proc/net/netstat; }

# incident_decided_ms STATE_DB: when the newest incident was decided, in ms since 1970 (the
# store keeps seconds since 2001), or nothing without sqlite3.
incident_decided_ms() {
    command -v sqlite3 >/dev/null || return 0
    sqlite3 "$1" "SELECT CAST((json_extract(json, '$.decidedAt') + 978307200) * 1000 AS INTEGER) FROM incidents ORDER BY sequence DESC LIMIT 1" 2>/dev/null || true
}

LINES=()
for mode in "${MODES[@]}"; do
    RUN="$BASE/$mode"
    PIDS=()
    SECONDARY_PEER_PORT=0
    pair_files "$CLIENTS"
    WITNESS_ARGS=()
    if [ "$WITNESS" = 1 ]; then
        WITNESS_URL="" WITNESS_PEER_URL=""
        witness_start
    fi
    pair_common "${WITNESS_ARGS[@]}"
    pair_start_secondary
    pair_start_primary
    pair_wait_state "$PRIMARY_METRICS" active 30 || { echo "bench-failover: the primary never served; see $RUN/primary.log" >&2; exit 1; }
    echo "bench-failover [$mode]: pair up (primary $PRIMARY, secondary $SECONDARY); logging in $CLIENTS clients, $TALKERS talking"

    "$BIN/vcom-client-sim" "${SIM_TLS[@]}" --servers "$PRIMARY,$SECONDARY" --clients "$CLIENTS" --talkers "$TALKERS" --duration 600 --ramp "$RAMP" ${SIM_THREADS:+--threads $SIM_THREADS} \
        --until-all-on "$SECONDARY" --per-client "$RUN/clients.csv" --figures-line "bench-failover mode=$mode tls=$TLS" >"$RUN/clients.out" 2>"$RUN/clients.log" &
    SIM=$!
    PIDS+=("$SIM")
    deadline=$((SECONDS + 120))
    # Every client on the primary, not merely logged in somewhere.
    until grep -qF "[$PRIMARY=$CLIENTS]" "$RUN/clients.out" 2>/dev/null; do
        if [ $SECONDS -gt $deadline ] || ! kill -0 "$SIM" 2>/dev/null; then
            echo "bench-failover: the clients were not all on the primary within 120 s:" >&2
            sim_summary "$SIM" "$RUN/clients.out"
            tail -n 3 "$RUN/clients.out" "$RUN/clients.log" >&2
            exit 1
        fi
        sleep 0.2
    done
    echo "bench-failover [$mode]: $(tail -1 "$RUN/clients.out")"
    # What the steady state (heartbeats, talk) leaves of the two cores for the failover.
    steady_from=$(now_ms)
    ticks_before=("$(cpu_ticks "$PRIMARY_PID")" "$(cpu_ticks "$SECONDARY_PID")" "$(cpu_ticks "$SIM")")
    sleep "$STEADY"
    steady_ms=$(($(now_ms) - steady_from))
    ticks_after=("$(cpu_ticks "$PRIMARY_PID")" "$(cpu_ticks "$SECONDARY_PID")" "$(cpu_ticks "$SIM")")
    echo "bench-failover [$mode]: steady state, % of one core: primary $(cpu_pct "${ticks_before[0]}" "${ticks_after[0]}" "$steady_ms")," \
        "secondary $(cpu_pct "${ticks_before[1]}" "${ticks_after[1]}" "$steady_ms"), clients $(cpu_pct "${ticks_before[2]}" "${ticks_after[2]}" "$steady_ms")"

    drops_before=$(listen_drops)
    if [ -n "${PROFILE:-}" ]; then  # PROFILE=FILE: perf samples of the whole machine, 4 s from the fault
        lead=${PROFILE_LEAD:-0.3}
        perf record ${PROFILE_EVENTS:--g -F 999} -a -o "$PROFILE.$mode" -- sleep "$(awk -v l="$lead" 'BEGIN { print 4 + l }')" >/dev/null 2>&1 &
        sleep "$lead"
    fi
    fault=$(now_ms)
    secondary_ticks_at_fault=$(cpu_ticks "$SECONDARY_PID")
    kill -USR1 "$SIM"  # the clients measure from this moment
    if [ "$mode" = kill ]; then kill -9 "$PRIMARY_PID"; else kill -STOP "$PRIMARY_PID"; fi
    echo "bench-failover [$mode]: $([ "$mode" = kill ] && echo "kill -9" || echo "SIGSTOP") of the primary"
    active_ms=timeout
    if pair_wait_state "$SECONDARY_METRICS" active 30; then active_ms=$(($(now_ms) - fault)); fi
    # The incident's own decision time is exact; a /metrics scrape on a saturated machine is
    # not (the metrics endpoint shares the client loops). Read it when sqlite3 is at hand.
    decided=$(incident_decided_ms "$RUN/secondary/state.sqlite")
    [ -n "$decided" ] && active_ms=$((decided - fault))
    echo "bench-failover [$mode]: the secondary serves after ${active_ms} ms"
    # The secondary's own work from the fault until every client is logged in there (read before
    # the simulator ends: its clients' logouts are not part of the failover): its cost apart
    # from the simulator that shares its two cores.
    secondary_ticks=""
    back_by=$((SECONDS + TIMEOUT))
    while kill -0 "$SIM" 2>/dev/null && [ $SECONDS -le $back_by ]; do
        if [ "$(pair_metric "$SECONDARY_METRICS" vcom_clients_logged_in 2>/dev/null)" = "$CLIENTS" ]; then
            secondary_ticks=$(($(cpu_ticks "$SECONDARY_PID") - secondary_ticks_at_fault))
            break
        fi
        sleep 0.1
    done

    deadline=$((SECONDS + TIMEOUT))
    while kill -0 "$SIM" 2>/dev/null && [ $SECONDS -le $deadline ]; do sleep 0.2; done
    if kill -0 "$SIM" 2>/dev/null; then
        echo "bench-failover [$mode]: not every client was back after $TIMEOUT s; ending the run" >&2
        kill -INT "$SIM"
        for _ in $(seq 1 50); do kill -0 "$SIM" 2>/dev/null || break; sleep 0.1; done
    fi
    wait "$SIM" 2>/dev/null || true
    # Not every client came back: the cost up to now, which never_back qualifies.
    [ -n "$secondary_ticks" ] || secondary_ticks=$(($(cpu_ticks "$SECONDARY_PID") - secondary_ticks_at_fault))
    grep -v "^bench-failover" "$RUN/clients.out" | grep -v "^t=" | sed 's/^/    /' || true
    figures=$(grep "^bench-failover mode=" "$RUN/clients.out" | tail -1)
    [ -n "$figures" ] || figures="bench-failover mode=$mode clients=$CLIENTS never_back=$CLIENTS"
    drops=$(($(listen_drops) - drops_before))
    echo "bench-failover [$mode]: connection attempts dropped by full accept queues (kernel-wide): $drops"
    back=$(sed -n 's/.* never_back=\([0-9]*\).*/\1/p' <<<"$figures")
    secondary_cpu_ms=$(awk -v t="$secondary_ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.0f", t * 1000 / hz }')
    per_login=$(awk -v ms="$secondary_cpu_ms" -v n="$((CLIENTS - ${back:-0}))" 'BEGIN { printf "%.0f", (n > 0 ? ms * 1000 / n : 0) }')
    LINES+=("$figures witness=$WITNESS secondary_active_ms=$active_ms listen_drops=$drops secondary_cpu_ms=$secondary_cpu_ms secondary_cpu_us_per_login=$per_login")
    pair_cleanup
done

echo "bench-failover: logs and data in $BASE"
for line in "${LINES[@]}"; do echo "$line"; done
