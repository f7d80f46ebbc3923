#!/usr/bin/env bash
# make demo: the whole story on loopback. A primary and a secondary come up; simulated
# clients log in and talk; the primary is killed; the clients move to the secondary and the
# figures are printed; the primary comes back awaiting authorization; vcom-admin shows it and
# explains the incident; an authorized switchover returns service to the primary, clients
# redirected. Everything lives under run/demo-*/ (keys, licence, data, logs); every process
# started here is stopped at the end, on Ctrl-C too.
set -euo pipefail
cd "$(dirname "$0")/../.."

CLIENTS=${CLIENTS:-200}
TALKERS=${TALKERS:-10}
BIN=.build/debug
RUN="run/demo-$(date +%Y%m%d-%H%M%S)"
START_NS=$(date +%s%N)

say() { printf '[t+%5.1fs] %s\n' "$(awk -v s="$START_NS" -v n="$(date +%s%N)" 'BEGIN { printf "%.1f", (n - s) / 1e9 }')" "$*"; }
show() { sed 's/^/             /'; }

source Tools/scripts/pair-lib.sh
trap pair_cleanup EXIT
trap 'echo; say "interrupted: stopping everything"; exit 130' INT TERM

say "building vcom-server, vcom-admin, vcom-license and vcom-client-sim (debug; the first build takes a few minutes)..."
for product in vcom-server vcom-admin vcom-license vcom-client-sim; do
    swift build --product "$product" 2>&1 | grep -E "error|warning: unre" || true
done

# A development vendor key and licence, a cluster secret, the demo operators and the first
# administrator, made on the fly (never committed).
export ADMIN_USER=root VCOM_ADMIN_PASSWORD="demo-$(head -c 6 /dev/urandom | base64 | tr -d '/+=')"
pair_files "$CLIENTS"
say "made a vendor key, licence LIC-DEMO, a cluster secret, $CLIENTS operators and administrator 'root' in $RUN"
[ "$TLS" = 1 ] && say "made a fresh pair CA and the servers' certificates (vcom-admin pki init): TLS on every port, clients and vcom-admin verify with $RUN/pki/ca.pem"
pair_common
pair_start_secondary
pair_start_primary
pair_wait_state "$PRIMARY_METRICS" active 30 || { echo "demo: the primary did not start serving; see $RUN/primary.log" >&2; exit 1; }
pair_wait_state "$SECONDARY_METRICS" standby 30 || true
say "pair up: primary $PRIMARY $(pair_state "$PRIMARY_METRICS"), secondary $SECONDARY $(pair_state "$SECONDARY_METRICS")"
say "status pages (open one in a browser; KEEP=1 keeps the pair up at the end): http://$PRIMARY_METRICS/  http://$SECONDARY_METRICS/"
export VCOM_ADMIN_USER=root VCOM_ADMIN_SERVERS="$PRIMARY_ADMIN,$SECONDARY_ADMIN"

$BIN/vcom-client-sim "${SIM_TLS[@]}" --servers "$PRIMARY,$SECONDARY" --clients "$CLIENTS" --talkers "$TALKERS" --duration 90 \
    --until-all-on "$SECONDARY" >"$RUN/clients.out" 2>"$RUN/clients.log" &
SIM=$!
PIDS+=("$SIM")
for _ in $(seq 1 600); do grep -qF "[$PRIMARY=$CLIENTS]" "$RUN/clients.out" 2>/dev/null && break; sleep 0.1; done
grep -qF "[$PRIMARY=$CLIENTS]" "$RUN/clients.out" || { echo "demo: the clients did not all log in; see $RUN/clients.*" >&2; exit 1; }
say "$CLIENTS clients logged in to the primary; $TALKERS talk on their party lines, the others listen"
sleep 2

kill -USR1 "$SIM"  # the clients measure from this moment
kill -9 "$PRIMARY_PID"
{ wait "$PRIMARY_PID"; } 2>/dev/null || true
say "kill -9 of the primary"
pair_wait_state "$SECONDARY_METRICS" active 10 || true
say "the secondary serves: $(grep -o 'incident S[0-9-]*: [^"]*' "$RUN/secondary.log" | head -1)"
wait "$SIM" || true
say "every client is back, on the secondary:"
sed -n '/back after the fault/,/never came back/p' "$RUN/clients.out" | show

say "the primary restarts on its old ports..."
pair_start_primary "${PRIMARY##*:}"
pair_wait_state "$PRIMARY_METRICS" "awaiting authorization" 30 || true
export VCOM_ADMIN_SERVERS="$PRIMARY_ADMIN,$SECONDARY_ADMIN"
say "the primary is back, caught up, and waits for authorization. vcom-admin status:"
$BIN/vcom-admin status | show || true

INCIDENT=$($BIN/vcom-admin incidents list --json | sed -n 's/.*"id":"\([^"]*\)".*/\1/p' | head -1)
say "vcom-admin incidents show $INCIDENT:"
$BIN/vcom-admin incidents show "$INCIDENT" | show

say "a switch back that does not name the incident is refused:"
$BIN/vcom-admin switchover --to primary --yes 2>&1 | show || true

# The clients are on the secondary now; a new simulator run watches them being redirected.
$BIN/vcom-client-sim "${SIM_TLS[@]}" --servers "$SECONDARY,$PRIMARY" --clients "$CLIENTS" --talkers "$TALKERS" --duration 90 \
    --until-all-on "$PRIMARY" >"$RUN/clients-back.out" 2>"$RUN/clients-back.log" &
SIM=$!
PIDS+=("$SIM")
for _ in $(seq 1 600); do grep -qF "[$SECONDARY=$CLIENTS]" "$RUN/clients-back.out" 2>/dev/null && break; sleep 0.1; done
say "$CLIENTS clients on the secondary; the administrator authorizes the switch back:"
kill -USR1 "$SIM"
$BIN/vcom-admin switchover --to primary --incident "$INCIDENT" --yes | show
wait "$SIM" || true
say "every client was redirected to the primary:"
sed -n '/back after the fault/,/never came back/p' "$RUN/clients-back.out" | show
{ $BIN/vcom-admin status || true; } | head -2 | show
say "the audit log of the secondary, its status reads and logins left out:"
$BIN/vcom-admin audit --limit 100 --servers "$SECONDARY_ADMIN" | grep -v -e '  status  ->' -e '  login  ->' | show
say "done; logs and data in $RUN"
if [ "${KEEP:-0}" = 1 ]; then
    say "KEEP=1: the pair stays up. Status pages: http://$PRIMARY_METRICS/ (primary) and http://$SECONDARY_METRICS/ (secondary); Ctrl-C stops it"
    while kill -0 "$PRIMARY_PID" 2>/dev/null; do sleep 1; done
fi
