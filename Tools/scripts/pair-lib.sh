# Shared by make demo and the failover benchmarks: make a development pair's files, start
# and watch its servers on loopback. Source it after setting BIN (the binaries) and RUN (a
# fresh directory for keys, data and logs). Every process started here is recorded in PIDS;
# pair_cleanup kills exactly those.

PIDS=()
# Where each server runs: its address (loopback by default), and a command prefix that puts it
# in a network namespace of its own (the chaos suite: PRIMARY_EXEC=(ip netns exec NAME)).
PRIMARY_HOST=${PRIMARY_HOST:-127.0.0.1}
SECONDARY_HOST=${SECONDARY_HOST:-127.0.0.1}
PRIMARY_EXEC=()
SECONDARY_EXEC=()
# TLS=1 (the default, as the servers themselves): a fresh pair CA and certificates per run, TLS
# on every port, clients and vcom-admin verify with the CA. TLS=0: --plaintext everywhere.
TLS=${TLS:-1}

pair_cleanup() {
    for pid in "${PIDS[@]:-}"; do
        [ -n "$pid" ] || continue
        kill -CONT "$pid" 2>/dev/null || true  # a stopped process cannot die of SIGKILL until woken
        kill -9 "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
}

# pair_files CLIENTS: a vendor key, a licence for CLIENTS seats bound to vcom-primary, a cluster
# secret and CLIENTS demo operators (op0...) in the primary's data directory.
pair_files() {
    mkdir -p "$RUN"
    "$BIN/vcom-license" keygen --out-dir "$RUN" --name vendor >/dev/null
    "$BIN/vcom-license" issue --key "$RUN/vendor.key" --id LIC-DEMO --licensee "VCOM demo" --server-id vcom-primary \
        --max-clients "$(($1 + 100))" --features failover --days 365 --out "$RUN/licence.txt" 2>/dev/null
    head -c 32 /dev/urandom | base64 > "$RUN/cluster.secret"
    chmod 600 "$RUN/cluster.secret"
    "$BIN/vcom-server" bootstrap --data-dir "$RUN/primary" --demo-operators "$1" ${ADMIN_USER:+--admin "$ADMIN_USER"} >/dev/null
    if [ "$TLS" = 1 ]; then
        "$BIN/vcom-admin" pki init --dir "$RUN/pki" --primary-host "$PRIMARY_HOST" --primary-host 127.0.0.1 \
            --secondary-host "$SECONDARY_HOST" --secondary-host 127.0.0.1 >/dev/null
        export VCOM_ADMIN_CA="$RUN/pki/ca.pem"
        SIM_TLS=(--ca "$RUN/pki/ca.pem")
    else
        export VCOM_ADMIN_PLAINTEXT=1
        SIM_TLS=(--plaintext)
    fi
}

# pair_tls ROLE: the TLS flags of one server (in TLS_ARGS).
pair_tls() {
    if [ "$TLS" != 1 ]; then TLS_ARGS=(--plaintext); return; fi
    TLS_ARGS=(--tls-certificate "$RUN/pki/vcom-$1.pem" --tls-key "$RUN/pki/vcom-$1-key.pem" --tls-ca "$RUN/pki/ca.pem")
    if [ "$1" = primary ]; then TLS_ARGS+=(--peer-name vcom-secondary); fi
}

# pair_ready FILE FIELD: waits (30 s at most) for a ready file and prints one of its fields.
pair_ready() {
    for _ in $(seq 1 600); do
        if [ -s "$1" ]; then sed -n "s/.*\"$2\":\"\([^\"]*\)\".*/\1/p" "$1"; return 0; fi
        sleep 0.05
    done
    echo "a server did not start; see $RUN/*.log" >&2
    return 1
}

# pair_metric HOST:PORT NAME: one value from a server's /metrics.
pair_metric() {
    local host=${1%:*} port=${1##*:} value
    exec 3<>"/dev/tcp/$host/$port" || return 1
    printf 'GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >&3
    value=$(grep -F "$2 " <&3 | grep -v '^#' | awk '{v=$NF; sub(/\.0$/, "", v); print v}' | head -1)
    exec 3>&-
    echo "$value"
}

# pair_state METRICS: active, standby or "awaiting authorization".
pair_state() {
    for s in active standby awaiting_authorization; do
        [ "$(pair_metric "$1" "vcom_state{state=\"$s\"}" 2>/dev/null)" = "1" ] && { echo "${s//_/ }"; return; }
    done
    echo unknown
}

PAIR_COMMON=()
pair_common() {
    PAIR_COMMON=(--cluster-secret-file "$RUN/cluster.secret" --vendor-key-file "$RUN/vendor.pub" "$@")
}

# pair_start_secondary [CLIENT_PORT]: sets SECONDARY (client address), SECONDARY_PEER, SECONDARY_METRICS,
# SECONDARY_ADMIN.
pair_start_secondary() {
    rm -f "$RUN/secondary.ready"
    pair_tls secondary
    "${SECONDARY_EXEC[@]}" "$BIN/vcom-server" "${TLS_ARGS[@]}" --role secondary --id vcom-secondary --primary-id vcom-primary --data-dir "$RUN/secondary" \
        --client-listen "$SECONDARY_HOST:${1:-0}" --peer-listen "$SECONDARY_HOST:${SECONDARY_PEER_PORT:-0}" \
        --metrics-listen "$SECONDARY_HOST:0" --admin-listen "$SECONDARY_HOST:0" "${PAIR_COMMON[@]}" \
        --ready-file "$RUN/secondary.ready" 2>>"$RUN/secondary.log" >/dev/null &
    SECONDARY_PID=$!
    PIDS+=("$SECONDARY_PID")
    SECONDARY_PEER=$(pair_ready "$RUN/secondary.ready" peer)
    SECONDARY_PEER_PORT=${SECONDARY_PEER##*:}
    SECONDARY=$(pair_ready "$RUN/secondary.ready" client)
    SECONDARY_METRICS=$(pair_ready "$RUN/secondary.ready" metrics)
    SECONDARY_ADMIN=$(pair_ready "$RUN/secondary.ready" admin)
}

# pair_start_primary [CLIENT_PORT]: sets PRIMARY, PRIMARY_PID, PRIMARY_METRICS, PRIMARY_ADMIN.
pair_start_primary() {
    rm -f "$RUN/primary.ready"
    pair_tls primary
    "${PRIMARY_EXEC[@]}" "$BIN/vcom-server" "${TLS_ARGS[@]}" --role primary --id vcom-primary --data-dir "$RUN/primary" --licence-file "$RUN/licence.txt" \
        --client-listen "$PRIMARY_HOST:${1:-0}" --peer-address "$SECONDARY_PEER" \
        --metrics-listen "$PRIMARY_HOST:0" --admin-listen "$PRIMARY_HOST:0" "${PAIR_COMMON[@]}" \
        --ready-file "$RUN/primary.ready" 2>>"$RUN/primary.log" >/dev/null &
    PRIMARY_PID=$!
    PIDS+=("$PRIMARY_PID")
    PRIMARY=$(pair_ready "$RUN/primary.ready" client)
    PRIMARY_METRICS=$(pair_ready "$RUN/primary.ready" metrics)
    PRIMARY_ADMIN=$(pair_ready "$RUN/primary.ready" admin)
}

# pair_wait_state METRICS STATE SECONDS: polls every 10 ms; true once the state is reached.
# One scrape per poll, of that state's gauge only: a busy machine slows every scrape.
pair_wait_state() {
    local deadline=$((SECONDS + $3)) gauge="vcom_state{state=\"${2// /_}\"}"
    while [ $SECONDS -le $deadline ]; do
        [ "$(pair_metric "$1" "$gauge" 2>/dev/null)" = "1" ] && return 0
        sleep 0.01
    done
    return 1
}

# sim_summary PID OUTPUT: ends a simulator that is failing a benchmark (SIGINT: it prints its
# summary, with why sessions ended and where clients that never got in are stuck) and shows it.
sim_summary() {
    kill -INT "$1" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    grep -v '^t=' "$2" | tail -n 25 >&2
}

# witness_start: an etcd as the pair's witness (Debian's etcd-server), its data in $RUN/etcd
# (kept across a restart), on WITNESS_URL and WITNESS_PEER_URL (free loopback ports when unset;
# WITNESS_EXEC=(ip netns exec NAME) puts it in a namespace). Sets WITNESS_PID, recorded in PIDS,
# and WITNESS_ARGS, the servers' flags (lease WITNESS_TTL_S, default 3 s).
WITNESS_EXEC=()
witness_start() {
    command -v etcd >/dev/null || { echo "a witness needs etcd (Tools/scripts/ensure-deps.sh installs etcd-server)" >&2; return 69; }
    WITNESS_URL=${WITNESS_URL:-http://127.0.0.1:$(free_port)}
    WITNESS_PEER_URL=${WITNESS_PEER_URL:-http://127.0.0.1:$(free_port)}
    "${WITNESS_EXEC[@]}" etcd --name witness --data-dir "$RUN/etcd" --listen-client-urls "$WITNESS_URL" --advertise-client-urls "$WITNESS_URL" \
        --listen-peer-urls "$WITNESS_PEER_URL" --initial-advertise-peer-urls "$WITNESS_PEER_URL" --initial-cluster "witness=$WITNESS_PEER_URL" \
        --log-level warn >>"$RUN/etcd.log" 2>&1 &
    WITNESS_PID=$!
    PIDS+=("$WITNESS_PID")
    WITNESS_ARGS=(--witness-etcd "$WITNESS_URL" --witness-lease-ttl-s "${WITNESS_TTL_S:-3}")
    for _ in $(seq 1 100); do
        "${WITNESS_EXEC[@]}" curl -s -m 1 "$WITNESS_URL/health" 2>/dev/null | grep -q '"health":"true"' && return 0
        sleep 0.1
    done
    echo "etcd did not start; see $RUN/etcd.log" >&2
    return 1
}

# free_port: a TCP port free on loopback now (for a program that cannot bind port 0 and say).
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# cpu_ticks PID: the process's user + system CPU time so far, in clock ticks (0 once it is gone).
cpu_ticks() { { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null || true; } | awk '{ print $12 + $13 } END { if (NR == 0) print 0 }'; }

# cpu_pct TICKS_BEFORE TICKS_AFTER MS: the share of one core those ticks were, over MS.
cpu_pct() { awk -v a="$1" -v b="$2" -v ms="$3" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.0f", (b - a) * 100000 / hz / (ms > 0 ? ms : 1) }'; }

# bench_prepare NAME CLIENTS: the file descriptors CLIENTS connections need (exits when the hard
# limit is too low), and release builds of what a benchmark runs.
bench_prepare() {
    # Each simulated client keeps two connections (its session and its watch of the other
    # server), all in the one simulator process: 2 x CLIENTS descriptors and some. Raise the
    # limit that far if allowed (root with CAP_SYS_RESOURCE), else to the hard limit; the
    # sessions must fit, and the simulator runs the last clients without a watch when the
    # watches do not (it says how many).
    local want=$((2 * $2 + 1000))
    if [ "$(ulimit -n)" -lt "$want" ]; then
        ulimit -n "$want" 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
    fi
    if [ "$(ulimit -n)" -lt $(($2 + 1000)) ]; then
        echo "$1: $2 clients need at least $(($2 + 1000)) file descriptors ($want with their watches), the limit is $(ulimit -n)" >&2
        exit 1
    fi
    if [ "$BIN" != .build/release ]; then
        # Another build's binaries (BIN=DIR), for alternating runs of two builds.
        echo "$1: using the binaries in $BIN (not built here)"
        return 0
    fi
    echo "$1: building vcom-server, vcom-client-sim, vcom-license and vcom-admin (release; a cold build takes a few minutes)..."
    local product
    for product in vcom-server vcom-client-sim vcom-license vcom-admin; do
        swift build -c release --product "$product" 2>&1 | tail -1
    done
}
