#!/usr/bin/env bash
# make chaos: the running pair under real faults, judged by a separate checker (chaos-check).
# ROUNDS rounds (default 20), each a scenario drawn with SEED (default: the time; printed, so a
# run replays with SEED=...):
#   crash   kill -9 of the primary, the clients move, the primary restarts (awaiting
#           authorization), the authorized switch back
#   pause   SIGSTOP of the primary for 2 s, the clients move, SIGCONT (the primary yields and
#           waits for authorization), the authorized switch back
#   maint   maintenance mode on for 12 s (vcom-admin maintenance on --for 12s), then kill -9 of
#           the primary: the secondary must not serve before maintenance ends, and serve after
# Both servers run a hooks.on-state-change program that records its environment and then hangs
# for a minute (killed at hooks.timeout-s): the failover times measured are with it in place.
# With chromium installed, both servers' status pages stay open in a headless browser for the
# whole run (PAGES=0 turns that off). And, where network namespaces can be made (NETNS=auto,
# the default; NETNS=0 turns them off),
# with the servers and two groups of clients (60 % and 40 %) in namespaces of their own:
#   linkcut   the peer link cut for 4 s while every client reaches the primary (a split), healed
#   isolate   the peer link cut together with the primary's larger group of clients
#   clientcut the larger group cut from the primary, the link up
#   flap      the peer link cut and healed five times in six seconds
# Throughout every round, configuration is written through vcom-admin on whichever server
# serves. Everything every process reports is recorded under run/chaos-*/ with timestamps; the
# last line is chaos-check's:
#   chaos rounds=N scenarios=... violations=0 max_relogin_ms=... failover_max_ms=SCENARIO:MS,... lost_changes=0
# Loss and delay on the link (tc netem) need a kernel with netem, which this machine lacks:
# docs/failure-scenarios.md says what is and is not covered.
# WITNESS=1: an etcd (Debian's etcd-server) on a host of its own is the pair's witness
# (witness.etcd, lease 3 s), and the rounds are those the witness changes:
#   crash, isolate  as above: the secondary serves as fast as without a witness
#   pause     SIGSTOP of the primary until the secondary serves: after the lease's TTL
#   linkcut, flap   the link cut while both servers reach the witness: the secondary never serves
#   pcut      the primary cut from the secondary and the witness (its clients still reach it):
#             it stops when its lease would end, the secondary serves once it has the key
#   seccut    the secondary cut from the primary and the witness: it never serves
#   wdown     etcd killed with the link up for about 10 s, then restarted: nothing changes
# chaos-check --witness then also fails a run on any time with both servers serving
# (dual_active_ms, measured from the records in every run).
set -euo pipefail
cd "$(dirname "$0")/../.."

ROUNDS=${ROUNDS:-20}
SEED=${SEED:-$(date +%s)}
CLIENTS=${CLIENTS:-100}
BIN=${BIN:-.build/debug}
BUDGET_MS=${BUDGET_MS:-6000}
NETNS=${NETNS:-auto}
WITNESS=${WITNESS:-0}
WITNESS_TTL_S=3
RANDOM=$SEED

source Tools/scripts/pair-lib.sh
source Tools/chaos/netns-lib.sh

if [ "${CHAOS_INNER:-0}" != 1 ]; then
    echo "chaos: $ROUNDS rounds, SEED=$SEED, $CLIENTS clients; building (debug)..."
    for product in vcom-server vcom-admin vcom-license vcom-client-sim chaos-check chaos-relay; do
        swift build --product "$product" 2>&1 | grep -E "error" || true
    done
    if [ "$NETNS" != 0 ] && net_possible; then
        # The rounds run from the admin namespace, where every host's address is reachable.
        trap net_down EXIT
        trap 'echo; echo "chaos: interrupted"; exit 130' INT TERM
        net_up
        echo "chaos: network namespaces $(ns '*') on $NET.0/24 (removed at the end)"
        status=0
        ip netns exec "$(ns a)" env CHAOS_INNER=1 NETNS=1 WITNESS="$WITNESS" NS_ID="$NS_ID" NET="$NET" ROUNDS="$ROUNDS" SEED="$SEED" CLIENTS="$CLIENTS" \
            BIN="$BIN" BUDGET_MS="$BUDGET_MS" KEEP="${KEEP:-1}" ONLY="${ONLY:-}" bash "$0" || status=$?
        exit "$status"
    fi
    [ "$NETNS" = 0 ] || echo "chaos: network namespaces cannot be made here (ip netns add refused): loopback scenarios only"
    NETNS=0
fi

RUN="run/chaos-$(date +%Y%m%d-%H%M%S)-$$"
trap 'stop_background; pair_cleanup' EXIT
trap 'echo; echo "chaos: interrupted"; exit 130' INT TERM
if [ "$NETNS" = 1 ]; then
    # A+B: fault A, three seconds later fault B, in one round (the checker judges each).
    SCENARIOS=(crash pause maint linkcut isolate clientcut flap peerdelay peerloss linkcut+crash flap+crash pause+clientcut)
    [ "$WITNESS" != 1 ] || SCENARIOS=(crash pause linkcut isolate pcut seccut wdown flap)
    PRIMARY_HOST=$(addr p)
    SECONDARY_HOST=$(addr s)
    PRIMARY_EXEC=(ip netns exec "$(ns p)")
    SECONDARY_EXEC=(ip netns exec "$(ns s)")
    GROUPS_=(c1 c2)
    GROUP_SIZES=($((CLIENTS * 6 / 10)) $((CLIENTS - CLIENTS * 6 / 10)))
else
    SCENARIOS=(crash pause maint)
    [ "$WITNESS" != 1 ] || SCENARIOS=(crash pause wdown)
    GROUPS_=(local)
    GROUP_SIZES=("$CLIENTS")
fi
if [ -n "${ONLY:-}" ]; then  # ONLY=crash,linkcut: draw from these only
    IFS=, read -r -a wanted <<<"$ONLY"
    for scenario in "${wanted[@]}"; do
        [[ " ${SCENARIOS[*]} " == *" $scenario "* ]] || { echo "chaos: no scenario '$scenario' here (${SCENARIOS[*]})" >&2; exit 64; }
    done
    SCENARIOS=("${wanted[@]}")
fi
echo "chaos: scenarios ${SCENARIOS[*]}"

record() { printf '{"t":%s,%s}\n' "$(now_ms)" "$1" >>"$RUN/actions.jsonl"; }

BACKGROUND=()
stop_background() {
    for pid in "${BACKGROUND[@]:-}"; do
        [ -n "$pid" ] || continue
        kill "$pid" 2>/dev/null || true
        pkill -P "$pid" 2>/dev/null || true  # its curl or vcom-admin of the moment
    done
    BACKGROUND=()
}

# Every 250 ms, each server's state, epoch and login count, from its /metrics (the address is
# read again each time: a restarted server listens on a new port).
sampler() {
    while true; do
        for role in primary secondary; do
            local metrics
            metrics=$(sed -n 's/.*"metrics":"\([^"]*\)".*/\1/p' "$RUN/$role.ready" 2>/dev/null || true)
            [ -n "$metrics" ] || continue
            local text
            text=$(curl -s -m 1 "http://$metrics/metrics" 2>/dev/null || true)
            [ -n "$text" ] || { printf '{"t":%s,"server":"%s","up":false}\n' "$(now_ms)" "$role" >>"$RUN/status.jsonl"; continue; }
            awk -v t="$(now_ms)" -v role="$role" -v addr="$metrics" '
                /^vcom_state\{state="[a-z_]+"\} 1/ { match($0, /state="[a-z_]+"/); state = substr($0, RSTART + 7, RLENGTH - 8) }
                /^vcom_epoch / { epoch = $2 }
                /^vcom_witness_holding / { holding = ($2 == 1 ? "true" : "false") }
                /^vcom_logins_total/ { logins += $2 }
                END { printf "{\"t\":%s,\"server\":\"%s\",\"address\":\"%s\",\"up\":true,\"state\":\"%s\",\"epoch\":%d,\"logins\":%d%s}\n", t, role, addr, state, epoch, logins, (holding == "" ? "" : ",\"witness_holding\":" holding) }
            ' <<<"$text" >>"$RUN/status.jsonl"
        done
        sleep 0.25
    done
}

# Every 300 ms, one setting written through vcom-admin (it finds the server that serves);
# each attempt, whether it was acknowledged, and whether as replicated (the peer confirmed it)
# or as local only (write.concern = both: exit 1 with result local_only).
writer() {
    local n=0
    while true; do
        n=$((n + 1))
        local started output ok=false replicated=false
        started=$(now_ms)
        if output=$(VCOM_ADMIN_SERVERS="$(admin_servers)" timeout 10 "$BIN/vcom-admin" config set "chaos.w$n" "value-$n" --timeout 3 --json 2>/dev/null); then
            ok=true
            replicated=true
        elif [[ "$output" == *'"result":"local_only"'* ]]; then
            ok=true
        fi
        printf '{"t":%s,"key":"chaos.w%s","value":"value-%s","ok":%s,"replicated":%s}\n' "$started" "$n" "$n" "$ok" "$replicated" >>"$RUN/writes.jsonl"
        sleep 0.3
    done
}

admin_servers() {
    local p s
    p=$(sed -n 's/.*"admin":"\([^"]*\)".*/\1/p' "$RUN/primary.ready" 2>/dev/null || true)
    s=$(sed -n 's/.*"admin":"\([^"]*\)".*/\1/p' "$RUN/secondary.ready" 2>/dev/null || true)
    echo "${p:+$p,}$s"
}

# start_clients FIRST OTHER TARGET NAME: a simulator per group of clients (in its namespace),
# starting on FIRST; each ends once all its clients are on TARGET (empty: at stop_clients) and
# leaves its JSON in NAME-GROUP.jsonl. Returns once every client is on FIRST.
start_clients() {
    SIMS=()
    local index=0 first=0 group
    for group in "${GROUPS_[@]}"; do
        local size=${GROUP_SIZES[$index]} prefix=()
        [ "$group" = local ] || prefix=(ip netns exec "$(ns "$group")")
        local until=(--duration 60 --until-all-on "$3")
        [ -n "$3" ] || until=(--duration 0)  # until stop_clients
        "${prefix[@]}" "$BIN/vcom-client-sim" "${SIM_TLS[@]}" --servers "$1,$2" --clients "$size" --first-index "$first" --talkers 3 "${until[@]}" --json \
            >"$RUN/$4-$group.jsonl" 2>"$RUN/$4-$group.log" &
        SIMS+=($!)
        PIDS+=($!)
        first=$((first + size))
        index=$((index + 1))
    done
    index=0
    for group in "${GROUPS_[@]}"; do
        local size=${GROUP_SIZES[$index]} ok=0
        for _ in $(seq 1 300); do
            grep -q "\"$1\":$size[,}]" "$RUN/$4-$group.jsonl" 2>/dev/null && { ok=1; break; }
            sleep 0.1
        done
        [ "$ok" = 1 ] || { echo "chaos: the clients of $4-$group did not all log in to $1" >&2; return 1; }
        index=$((index + 1))
    done
}

mark_clients() { for sim in "${SIMS[@]}"; do kill -USR1 "$sim" 2>/dev/null || true; done; }

# wait_clients_on ADDRESS NAME SECONDS: until every simulator of NAME reports all its clients
# on ADDRESS (bounded).
wait_clients_on() {
    local index=0 group deadline=$((SECONDS + $3))
    for group in "${GROUPS_[@]}"; do
        until grep -q "\"$1\":${GROUP_SIZES[$index]}[,}]" "$RUN/$2-$group.jsonl" 2>/dev/null; do
            [ $SECONDS -lt $deadline ] || return 1
            sleep 0.1
        done
        index=$((index + 1))
    done
}

stop_clients() {
    for sim in "${SIMS[@]}"; do kill -INT "$sim" 2>/dev/null || true; done
    finish_clients
}

# settle: up to 60 s for exactly one server to serve (the heal rule, with its hold).
settle() {
    for _ in $(seq 1 240); do
        local p s
        p=$(pair_state "$PRIMARY_METRICS")
        s=$(pair_state "$SECONDARY_METRICS")
        # A state said by both (a failed scrape says "unknown"), exactly one of them active.
        [ "$p" != unknown ] && [ "$s" != unknown ] && [ "$p" != "$s" ] && { [ "$p" = active ] || [ "$s" = active ]; } && return 0
        sleep 0.25
    done
    return 1
}

finish_clients() {
    local sim
    for sim in "${SIMS[@]}"; do
        for _ in $(seq 1 700); do kill -0 "$sim" 2>/dev/null || break; sleep 0.1; done
        kill -INT "$sim" 2>/dev/null || true
        wait "$sim" 2>/dev/null || true
    done
}

# Service back on the primary, whatever the round left: the heal rule given time to settle a
# split, then the authorized switch back (naming the incident the secondary serves under).
restore_primary() {
    local incident
    for _ in $(seq 1 160); do
        [ "$(pair_state "$PRIMARY_METRICS")" = active ] && [ "$(pair_state "$SECONDARY_METRICS")" = standby ] && return 0
        # "unknown" (a scrape that failed under load) is not a yield: wait for a state said.
        case "$(pair_state "$PRIMARY_METRICS")" in standby | "awaiting authorization") [ "$(pair_state "$SECONDARY_METRICS")" = active ] && break ;; esac
        sleep 0.25
    done
    pair_wait_state "$PRIMARY_METRICS" "awaiting authorization" 30 || true
    incident=$(VCOM_ADMIN_SERVERS="$(admin_servers)" "$BIN/vcom-admin" status --json 2>/dev/null | sed -n 's/.*"activation_incident":"\([^"]*\)".*/\1/p' | head -1 || true)
    start_clients "$SECONDARY" "$PRIMARY" "$PRIMARY" "round$round-switchback"
    sleep 1
    mark_clients
    record "\"action\":\"switchover\",\"round\":$round,\"incident\":\"$incident\""
    # As an operator would: configuration is written every 300 ms, and a switchover is refused
    # while the peer is a revision behind (it catches up within milliseconds): try again.
    for _ in 1 2 3 4 5; do
        VCOM_ADMIN_SERVERS="$(admin_servers)" "$BIN/vcom-admin" switchover --to primary ${incident:+--incident "$incident"} --yes \
            >>"$RUN/admin.log" 2>&1 && break
        sleep 0.5
    done
    finish_clients
}

mkdir -p "$RUN"
export ADMIN_USER=chaos VCOM_ADMIN_PASSWORD="chaos-$(head -c 6 /dev/urandom | base64 | tr -d '/+=')" VCOM_ADMIN_USER=chaos
pair_files "$CLIENTS"
# A hook that hangs: what it delays must be nothing (it runs off the control loop).
cat >"$RUN/hang-hook" <<HOOK
#!/bin/sh
printf '{"t":%s,"server":"%s","state":"%s","epoch":%s,"incident":"%s"}\n' "\$(date +%s%3N)" "\$VCOM_SERVER_ID" "\$VCOM_STATE" "\$VCOM_EPOCH" "\$VCOM_INCIDENT" >>"$PWD/$RUN/hooks.jsonl"
exec sleep 60
HOOK
chmod 755 "$RUN/hang-hook"
# The witness: etcd on a host of its own (netns), else on loopback; restarted with its data
# by the wdown round.
WITNESS_ARGS=()
if [ "$WITNESS" = 1 ]; then
    if [ "$NETNS" = 1 ]; then
        WITNESS_EXEC=(ip netns exec "$(ns w)")
        WITNESS_URL="http://$(addr w):2379"
        WITNESS_PEER_URL="http://127.0.0.1:2380"
    fi
    witness_start
    record "\"action\":\"witness\",\"url\":\"$WITNESS_URL\",\"lease_ttl_s\":$WITNESS_TTL_S"
fi
# Lost sessions are logged with their reason at debug level.
pair_common --log-level debug --on-state-change "$PWD/$RUN/hang-hook" "${WITNESS_ARGS[@]}"
pair_start_secondary
if [ "$NETNS" = 1 ]; then
    # The peer link runs through chaos-relay, in the secondary's namespace: it passes bytes
    # through until a round asks it to delay or stall them (there is no netem here).
    echo pass >"$RUN/relay.ctl"
    "${SECONDARY_EXEC[@]}" "$BIN/chaos-relay" --listen "$SECONDARY_HOST:0" --to "$SECONDARY_PEER" --control "$RUN/relay.ctl" \
        >"$RUN/relay.ready" 2>"$RUN/relay.log" &
    PIDS+=($!)
    SECONDARY_PEER=$(pair_ready "$RUN/relay.ready" relay)
fi
pair_start_primary
pair_wait_state "$PRIMARY_METRICS" active 30
pair_wait_state "$SECONDARY_METRICS" standby 30
sampler &
BACKGROUND+=($!)
writer &
BACKGROUND+=($!)
# The status page of each server, open in a real browser for the whole run (chromium, when
# it is here; PAGES=0 turns it off): what the pages showed is compared with the records.
if [ "${PAGES:-1}" = 1 ] && command -v chromium >/dev/null; then
    for side in primary secondary; do
        /usr/bin/python3 Tools/browser/page-check.py "http://$(pair_ready "$RUN/$side.ready" metrics)/" --sample "$RUN/pages.jsonl" \
            --ready-file "$RUN/$side.ready" --name "$side" 2>>"$RUN/pages.log" &
        BACKGROUND+=($!)
    done
    # Both browsers started and reading before the first round: a browser's start takes both
    # cores for a second or two, and the first round's clients, starved meanwhile, went silent
    # for 3 s and were counted lost (a handover before any fault).
    for _ in $(seq 1 300); do
        grep -q '"page": "primary"' "$RUN/pages.jsonl" 2>/dev/null && grep -q '"page": "secondary"' "$RUN/pages.jsonl" 2>/dev/null && break
        sleep 0.1
    done
    sleep 1
fi
echo "chaos: pair up (primary $PRIMARY, secondary $SECONDARY); records in $RUN"

# The kind of one fault: a split leaves every client able to reach the primary; a quiet one
# stays below the detection thresholds and must change nothing.
# With a witness, a cut that leaves the primary its lease is held: the secondary never serves.
fault_kind() {
    case $1 in
    linkcut | flap | peerloss) if [ "$WITNESS" = 1 ]; then echo held; else echo split; fi ;;
    seccut | wdown) echo held ;;
    peerdelay) echo quiet ;;
    *) echo primary-failure ;;
    esac
}

# inject STEP: one fault, recorded with its own kind.
inject() {
    local kind
    kind=$(fault_kind "$1")
    fault() { record "\"action\":\"fault\",\"round\":$round,\"kind\":\"$kind\",\"fault\":\"$1\""; }  # kind: inject's
    case $1 in
    maint)
        # Maintenance first (written on the primary, replicated), seen by both servers'
        # /metrics, then the primary's death: the link is gone, and nothing may follow until the end.
        local until=$(($(now_ms) + 12000))
        VCOM_ADMIN_SERVERS="$(admin_servers)" "$BIN/vcom-admin" maintenance on --reason "chaos round $round" --for 12s >>"$RUN/admin.log" 2>&1 || true
        for _ in $(seq 1 100); do
            [ "$(pair_metric "$PRIMARY_METRICS" vcom_maintenance)" = 1 ] && [ "$(pair_metric "$SECONDARY_METRICS" vcom_maintenance)" = 1 ] && break
            sleep 0.05
        done
        record "\"action\":\"maintenance\",\"round\":$round,\"until\":$until"
        fault "kill -9 primary during maintenance"
        kill -9 "$PRIMARY_PID"
        { wait "$PRIMARY_PID"; } 2>/dev/null || true
        ;;
    crash)
        fault "kill -9 primary"
        kill -9 "$PRIMARY_PID"
        { wait "$PRIMARY_PID"; } 2>/dev/null || true
        ;;
    pause)
        fault "SIGSTOP primary"
        kill -STOP "$PRIMARY_PID"
        ;;
    linkcut)
        fault "peer link cut"
        cut p s
        ;;
    isolate)
        fault "peer link and the larger client group cut from the primary"
        cut p s
        cut p c1
        ;;
    clientcut)
        fault "the larger client group cut from the primary"
        cut p c1
        ;;
    pcut)
        fault "primary cut from the secondary and the witness"
        cut p s
        cut p w
        ;;
    seccut)
        fault "secondary cut from the primary and the witness"
        cut s p
        cut s w
        ;;
    wdown)
        fault "witness killed (etcd, kill -9) until the round heals"
        kill -9 "$WITNESS_PID"
        { wait "$WITNESS_PID"; } 2>/dev/null || true
        sleep 6
        ;;
    flap)
        fault "peer link flapping"
        for _ in 1 2 3 4 5; do cut p s; sleep 0.5; heal; sleep 0.7; done
        ;;
    peerdelay)
        # Below the threshold: heartbeats every 100 ms arrive 60 to 180 ms late, in order, so
        # no silence reaches 300 ms.
        fault "peer link delayed 120 ms +/- 60 ms for 5 s"
        echo "delay 120 60" >"$RUN/relay.ctl"
        sleep 5
        ;;
    peerloss)
        # Above it: what lost segments cost TCP until retransmitted, three stalls of 700 ms.
        fault "peer link stalled 700 ms three times (lost segments)"
        for _ in 1 2 3; do echo stall >"$RUN/relay.ctl"; sleep 0.7; echo pass >"$RUN/relay.ctl"; sleep 1.5; done
        ;;
    esac
}

# recover STEP...: the network first (a restarted primary must find its peer, or it would
# start alone and serve), then the primary.
recover() {
    local step network=0
    for step in "$@"; do case $step in linkcut | isolate | clientcut | peerdelay | peerloss | pcut | seccut) network=1 ;; esac; done
    if [ "$network" = 1 ]; then
        record "\"action\":\"heal\",\"round\":$round"
        heal
        [ ! -f "$RUN/relay.ctl" ] || echo pass >"$RUN/relay.ctl"
    fi
    for step in "$@"; do
        case $step in
        wdown)
            record "\"action\":\"witness-restart\",\"round\":$round"
            witness_start
            ;;
        crash | maint)
            record "\"action\":\"restart\",\"round\":$round"
            pair_start_primary "${PRIMARY##*:}"
            ;;
        pause)
            sleep 1
            record "\"action\":\"resume\",\"round\":$round"
            kill -CONT "$PRIMARY_PID"
            ;;
        esac
    done
}

for round in $(seq 1 "$ROUNDS"); do
    scenario=${SCENARIOS[$((RANDOM % ${#SCENARIOS[@]}))]}
    IFS=+ read -r -a steps <<<"$scenario"
    kind=quiet budget=$BUDGET_MS target=""
    for step in "${steps[@]}"; do
        case $(fault_kind "$step") in
        primary-failure) kind=primary-failure target=$SECONDARY ;;
        split | held) [ "$kind" = primary-failure ] || kind=$(fault_kind "$step") ;;
        esac
        case $step in
        isolate | clientcut) budget=$((BUDGET_MS + 10000)) ;;
        # Nobody serves until maintenance ends, by design: 12 s, and the clients are marked
        # before vcom-admin turns it on (a login and a write, up to 2 s on a loaded machine).
        maint) budget=$((BUDGET_MS + 15000)) ;;
        # With a witness the secondary takes a silent primary's place once the lease ends.
        pause | pcut) [ "$WITNESS" != 1 ] || budget=$((BUDGET_MS + WITNESS_TTL_S * 1000 + 1000)) ;;
        esac
    done
    record "\"action\":\"round\",\"round\":$round,\"scenario\":\"$scenario\",\"kind\":\"$kind\",\"budget_ms\":$budget"
    # The clients stay on until the primary is back, as real ones would: a resumed primary must
    # find them on the secondary (with nobody anywhere, its stale sessions could outnumber the
    # secondary's none and the split rule would rightly keep it serving).
    start_clients "$PRIMARY" "$SECONDARY" "" "round$round-failover"
    sleep 1
    # The clients measure from the fault that moves them: in linkcut+crash they stay on the
    # primary through the split and move at the crash.
    marked=0
    for index in "${!steps[@]}"; do
        [ "$index" = 0 ] || sleep 3
        if [ "$marked" = 0 ] && { [ "$kind" != primary-failure ] || [ "$(fault_kind "${steps[$index]}")" = primary-failure ]; }; then
            mark_clients
            marked=1
        fi
        inject "${steps[$index]}"
    done
    if [ "$kind" != primary-failure ]; then
        sleep 4
    else
        pair_wait_state "$SECONDARY_METRICS" active 30 || true
        wait_clients_on "$target" "round$round-failover" 70 || true
    fi
    recover "${steps[@]}"
    if [ "$kind" != primary-failure ]; then
        # The clients stay on through the heal: the rule keeps the side that has them.
        settle || true
        record "\"action\":\"settled\",\"round\":$round"
    else
        # The primary, restarted or resumed, finds the clients on the secondary and waits for
        # authorization. Bounded by the longest heal hold (after flapping, a resumed primary and
        # the secondary both serve until the link has held 30 s): restore_primary judges
        # whatever state it is in.
        pair_wait_state "$PRIMARY_METRICS" "awaiting authorization" 70 || true
    fi
    stop_clients
    restore_primary
    pair_wait_state "$PRIMARY_METRICS" active 20 || true
    pair_wait_state "$SECONDARY_METRICS" standby 20 || true
    record "\"action\":\"round-end\",\"round\":$round"
    echo "chaos: round $round/$ROUNDS ($scenario) done: primary $(pair_state "$PRIMARY_METRICS"), secondary $(pair_state "$SECONDARY_METRICS")"
done

stop_background
sleep 1
# What the checker reads at the end: the serving configuration, the journals, the incidents.
VCOM_ADMIN_SERVERS="$(admin_servers)" "$BIN/vcom-admin" config list --json >"$RUN/final-config.json" 2>>"$RUN/admin.log" || true
VCOM_ADMIN_SERVERS="$(admin_servers)" "$BIN/vcom-admin" divergence list --all --json >"$RUN/final-divergence.json" 2>>"$RUN/admin.log" || true
VCOM_ADMIN_SERVERS="$(admin_servers)" "$BIN/vcom-admin" incidents list --all --json >"$RUN/final-incidents.json" 2>>"$RUN/admin.log" || true
# KEEP=0 (make test) removes the records of a run that passed; a failed run's stay, for the
# person who reads them.
status=0
"$BIN/chaos-check" --run "$RUN" --budget-ms "$BUDGET_MS" --seed "$SEED" $([ "$WITNESS" = 1 ] && echo --witness) || status=$?
if [ "$status" = 0 ] && [ "${KEEP:-1}" = 0 ]; then
    pair_cleanup
    rm -rf "$RUN"
fi
exit "$status"
