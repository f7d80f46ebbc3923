# The chaos suite's network: a namespace per host (primary, secondary, two groups of clients,
# and the admin tooling), joined by a bridge in a hub namespace, with addresses that exist only
# inside them. Source it; net_up creates, net_down removes everything.

NS_ID=${NS_ID:-$(($$ % 10000))}
NET=${NET:-10.77.$(($$ % 200 + 20))}
NS_MEMBERS=(p s c1 c2 a)
declare -A NS_ADDR=([p]=1 [s]=2 [c1]=11 [c2]=12 [a]=20 [w]=30)
# WITNESS=1: a host of its own for etcd, the third vote.
[ "${WITNESS:-0}" != 1 ] || NS_MEMBERS+=(w)

ns() { echo "vc$1-$NS_ID"; }
addr() { echo "$NET.${NS_ADDR[$1]}"; }
port() { echo "b$1$NS_ID"; }  # the member's port on the hub bridge

net_possible() {
    command -v ip >/dev/null || return 1
    ip netns add "vcprobe-$$" 2>/dev/null || return 1
    ip netns del "vcprobe-$$"
}

net_up() {
    ip netns add "$(ns hub)"
    ip -n "$(ns hub)" link add br0 type bridge
    ip -n "$(ns hub)" link set br0 up
    ip -n "$(ns hub)" link set lo up
    for m in "${NS_MEMBERS[@]}"; do
        ip netns add "$(ns "$m")"
        ip link add "v$m$NS_ID" type veth peer name "$(port "$m")"
        ip link set "v$m$NS_ID" netns "$(ns "$m")"
        ip link set "$(port "$m")" netns "$(ns hub)"
        ip -n "$(ns hub)" link set "$(port "$m")" master br0
        ip -n "$(ns hub)" link set "$(port "$m")" up
        ip -n "$(ns "$m")" link set lo up
        ip -n "$(ns "$m")" link set "v$m$NS_ID" name eth0
        ip -n "$(ns "$m")" addr add "$(addr "$m")/24" dev eth0
        ip -n "$(ns "$m")" link set eth0 up
    done
}

net_down() {
    for m in "${NS_MEMBERS[@]}" hub; do ip netns del "$(ns "$m")" 2>/dev/null || true; done
}

# cut A B: nothing passes between A and B, either way. A blackhole route on each side: packets
# vanish, nothing is refused or reset (the kernel here has no tc classifiers to drop on the
# bridge, and no netem).
cut() {
    ip -n "$(ns "$1")" route add blackhole "$(addr "$2")/32"
    ip -n "$(ns "$2")" route add blackhole "$(addr "$1")/32"
}

# heal: every cut gone.
heal() {
    local m
    for m in "${NS_MEMBERS[@]}"; do
        ip -n "$(ns "$m")" route show type blackhole | while read -r _ target _; do
            ip -n "$(ns "$m")" route del blackhole "$target" 2>/dev/null || true
        done
    done
}
