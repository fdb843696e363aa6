# lib.sh: the network-namespace scaffold shared by the e2e scenarios, the demo and the benchmarks.
# Source it (`. scripts/netns/lib.sh`), call `zt_init TAG`, then build a topology with the
# functions below. It builds docs/contract.md §9's test topology and nothing else: every namespace is named
# `zt-<tag>-*`, every address lies in 198.18.0.0/15 or 2001:db8::/32, every wait is bounded, and
# `zt_cleanup` (meant for a `trap ... EXIT`) removes everything made under the tag. It must never
# touch a namespace, interface or process it did not create.
#
# Layout (N = node number 1..253, x = pod number 2..253; .1 is the node's gateway address):
#
#   zt-<tag>-fabric        bridge br0; one veth leg `nN` per node
#   zt-<tag>-nodeN         eth0 198.18.0.N/24, 2001:db8::N/64 on the fabric;
#                          ip_forward on; routes to every other node's pod range via that node;
#                          one veth `zpX` per pod carrying the gateway 198.18.N.1 / 2001:db8:N::1
#                          and a host route 198.18.N.x/32, 2001:db8:N::x/128 (CNI "ptp" style)
#   zt-<tag>-nodeN-<pod>   eth0 198.18.N.x/32, 2001:db8:N::x/128, default route via the gateway
#
# rp_filter is off everywhere (ztunnel spoofs the original source on inbound connections).
#
# Functions (all return non-zero on failure; none exits except zt_require_root):
#   zt_require_root                     exit 77 (skip) unless root with `ip netns` available
#   zt_init TAG                         choose the tag; names become zt-TAG-*
#   zt_fabric_create                    the bridge namespace (called by zt_node_create if needed)
#   zt_node_create N                    node N on the fabric, routes to the other nodes' pods
#   zt_pod_create N POD X               pod POD (a name) on node N with host number X
#   zt_ns_fabric / zt_ns_node N / zt_ns_pod N POD   namespace names
#   zt_ns_path NS                       /run/netns/NS (for setns(2) by ztunnel)
#   zt_node_ip N / zt_node_ip6 N        198.18.0.N / 2001:db8::N
#   zt_pod_ip N X / zt_pod_ip6 N X      198.18.N.X / 2001:db8:N::X
#   zt_node_gw N / zt_node_gw6 N        198.18.N.1 / 2001:db8:N::1, node N's address on its pod
#                                       legs (the pods' default gateway)
#   zt_in NS CMD...                     run CMD inside namespace NS
#   zt_bg NS LOG CMD...                 start CMD in NS in the background, output to LOG; sets
#                                       ZT_BG_LAST to its pid and remembers it for zt_cleanup
#                                       (call it directly, not in $(...), or it is forgotten)
#   zt_wait_listen NS PORT [SECS]       wait until something listens on TCP PORT in NS
#   zt_wait_tcp NS IP PORT [SECS]       wait until a TCP connect from NS to IP:PORT succeeds
#   zt_wait_line FILE REGEX [SECS]      wait until FILE has a line matching REGEX
#   zt_cleanup [TAG]                    kill what zt_bg started and every process inside
#                                       zt-TAG-* namespaces, then delete those namespaces
#   zt_list [TAG]                       the namespaces that exist for TAG

# bash runs no EXIT trap when a signal it does not trap kills it, so a scenario stopped by the
# runner's `timeout` (TERM) or by ^C would leave its namespaces behind; ending through `exit`
# instead lets the sourcing script's `trap ... EXIT` (zt_cleanup, mesh_down) run.
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

ZT_TAG=${ZT_TAG:-topo}
ZT_BG_PIDS=${ZT_BG_PIDS:-}
ZT_BG_LAST=
ZT_WAIT_SECS=${ZT_WAIT_SECS:-10}

zt_require_root() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "skip: needs root (network namespaces)"
        exit 77
    fi
    if ! command -v ip >/dev/null 2>&1 || ! ip netns list >/dev/null 2>&1; then
        echo "skip: iproute2 with netns support is missing"
        exit 77
    fi
}

zt_init() {
    local tag=${1:?zt_init TAG}
    case $tag in
        *[!a-z0-9]*) echo "zt_init: tag must be [a-z0-9]+: $tag" >&2; return 1 ;;
    esac
    ZT_TAG=$tag
}

zt_ns_fabric() { echo "zt-$ZT_TAG-fabric"; }
zt_ns_node() { echo "zt-$ZT_TAG-node$1"; }
zt_ns_pod() { echo "zt-$ZT_TAG-node$1-$2"; }
zt_ns_path() { echo "/run/netns/$1"; }
zt_node_ip() { echo "198.18.0.$1"; }
zt_node_ip6() { echo "2001:db8::$1"; }
zt_pod_ip() { echo "198.18.$1.$2"; }
zt_pod_ip6() { echo "2001:db8:$1::$2"; }
zt_node_gw() { echo "198.18.$1.1"; }
zt_node_gw6() { echo "2001:db8:$1::1"; }

zt_in() {
    local ns=$1
    shift
    ip netns exec "$ns" "$@"
}

zt_list() {
    local tag=${1:-$ZT_TAG}
    ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^zt-$tag-" || true
}

# _zt_ns_new NS: a fresh namespace with loopback up and rp_filter off. Fails if NS exists, so two
# scripts using the same tag notice instead of sharing a namespace.
_zt_ns_new() {
    local ns=$1
    ip netns add "$ns" || return 1
    ip -n "$ns" link set lo up || return 1
    zt_in "$ns" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
        >/dev/null || return 1
}

zt_fabric_create() {
    local ns
    ns=$(zt_ns_fabric)
    [ -e "$(zt_ns_path "$ns")" ] && return 0
    _zt_ns_new "$ns" || return 1
    ip -n "$ns" link add br0 type bridge || return 1
    # No STP delay and no IPv6 on the bridge itself: it only switches the node legs.
    ip -n "$ns" link set br0 type bridge forward_delay 0 stp_state 0 || return 1
    zt_in "$ns" sysctl -qw net.ipv6.conf.br0.disable_ipv6=1 >/dev/null || true
    ip -n "$ns" link set br0 up
}

# zt_node_create N: node N's namespace on the fabric, with routes to the pods of every node that
# already exists (and those nodes get a route to N's pods).
zt_node_create() {
    local n=${1:?zt_node_create N}
    local ns fab
    ns=$(zt_ns_node "$n")
    fab=$(zt_ns_fabric)
    zt_fabric_create || return 1
    _zt_ns_new "$ns" || return 1
    zt_in "$ns" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 >/dev/null ||
        return 1
    ip -n "$fab" link add "n$n" type veth peer name eth0 netns "$ns" || return 1
    ip -n "$fab" link set "n$n" master br0 up || return 1
    ip -n "$ns" addr add "$(zt_node_ip "$n")/24" dev eth0 || return 1
    ip -n "$ns" -6 addr add "$(zt_node_ip6 "$n")/64" dev eth0 nodad || return 1
    ip -n "$ns" link set eth0 up || return 1
    zt_in "$ns" sysctl -qw net.ipv4.conf.eth0.rp_filter=0 >/dev/null || return 1
    local other m
    for other in $(zt_list | sed -nE "s/^zt-$ZT_TAG-node([0-9]+)$/\1/p"); do
        m=$other
        [ "$m" = "$n" ] && continue
        ip -n "$ns" route add "198.18.$m.0/24" via "$(zt_node_ip "$m")" || return 1
        ip -n "$ns" -6 route add "2001:db8:$m::/48" via "$(zt_node_ip6 "$m")" || return 1
        ip -n "$(zt_ns_node "$m")" route add "198.18.$n.0/24" via "$(zt_node_ip "$n")" || return 1
        ip -n "$(zt_ns_node "$m")" -6 route add "2001:db8:$n::/48" via "$(zt_node_ip6 "$n")" ||
            return 1
    done
}

# zt_pod_create N POD X: pod POD on node N at 198.18.N.X / 2001:db8:N::X. The node side of the
# veth carries the gateway address .1 (the same address on every pod leg, as CNI "ptp" does).
zt_pod_create() {
    local n=${1:?zt_pod_create N POD X} pod=${2:?pod name} x=${3:?pod number}
    case $pod in
        *[!a-z0-9]*) echo "zt_pod_create: pod name must be [a-z0-9]+: $pod" >&2; return 1 ;;
    esac
    if [ "$x" -lt 2 ] || [ "$x" -gt 253 ]; then
        echo "zt_pod_create: pod number must be 2..253: $x" >&2
        return 1
    fi
    local node pns
    node=$(zt_ns_node "$n")
    pns=$(zt_ns_pod "$n" "$pod")
    _zt_ns_new "$pns" || return 1
    ip -n "$node" link add "zp$x" type veth peer name eth0 netns "$pns" || return 1
    ip -n "$node" addr add "$(zt_node_gw "$n")/32" dev "zp$x" || return 1
    ip -n "$node" -6 addr add "$(zt_node_gw6 "$n")/128" dev "zp$x" nodad || return 1
    ip -n "$node" link set "zp$x" up || return 1
    zt_in "$node" sysctl -qw "net.ipv4.conf.zp$x.rp_filter=0" >/dev/null || return 1
    ip -n "$node" route add "$(zt_pod_ip "$n" "$x")/32" dev "zp$x" || return 1
    ip -n "$node" -6 route add "$(zt_pod_ip6 "$n" "$x")/128" dev "zp$x" || return 1

    ip -n "$pns" addr add "$(zt_pod_ip "$n" "$x")/32" dev eth0 || return 1
    ip -n "$pns" -6 addr add "$(zt_pod_ip6 "$n" "$x")/128" dev eth0 nodad || return 1
    ip -n "$pns" link set eth0 up || return 1
    zt_in "$pns" sysctl -qw net.ipv4.conf.eth0.rp_filter=0 >/dev/null || return 1
    ip -n "$pns" route add "$(zt_node_gw "$n")/32" dev eth0 scope link || return 1
    ip -n "$pns" route add default via "$(zt_node_gw "$n")" dev eth0 || return 1
    ip -n "$pns" -6 route add "$(zt_node_gw6 "$n")/128" dev eth0 || return 1
    ip -n "$pns" -6 route add default via "$(zt_node_gw6 "$n")" dev eth0 || return 1
}

# zt_bg NS LOG CMD...: CMD runs in NS in the background; its pid goes to ZT_BG_LAST and is
# remembered so that zt_cleanup stops it even if it outlives its namespace's deletion.
zt_bg() {
    local ns=$1 log=$2
    shift 2
    ip netns exec "$ns" "$@" >"$log" 2>&1 </dev/null &
    ZT_BG_LAST=$!
    ZT_BG_PIDS="$ZT_BG_PIDS $ZT_BG_LAST"
}

# zt_wait_listen NS PORT [SECS]: polls `ss` (no connection is made, so one-shot servers are not
# consumed by the probe).
zt_wait_listen() {
    local ns=$1 port=$2 secs=${3:-$ZT_WAIT_SECS}
    local deadline=$((SECONDS + secs))
    while [ "$SECONDS" -lt "$deadline" ]; do
        if zt_in "$ns" ss -Hltn "sport = :$port" 2>/dev/null | grep >/dev/null .; then
            return 0
        fi
        sleep 0.05
    done
    echo "zt_wait_listen: nothing listens on $ns port $port after ${secs}s" >&2
    return 1
}

zt_wait_tcp() {
    local ns=$1 ip=$2 port=$3 secs=${4:-$ZT_WAIT_SECS}
    local deadline=$((SECONDS + secs))
    local host=$ip
    case $ip in *:*) host="[$ip]" ;; esac
    while [ "$SECONDS" -lt "$deadline" ]; do
        if zt_in "$ns" timeout 1 bash -c "exec 3<>/dev/tcp/$ip/$port" 2>/dev/null; then
            return 0
        fi
        sleep 0.05
    done
    echo "zt_wait_tcp: no TCP connect from $ns to $host:$port after ${secs}s" >&2
    return 1
}

zt_wait_line() {
    local file=$1 regex=$2 secs=${3:-$ZT_WAIT_SECS}
    local deadline=$((SECONDS + secs))
    while [ "$SECONDS" -lt "$deadline" ]; do
        if [ -f "$file" ] && grep -qE "$regex" "$file"; then
            return 0
        fi
        sleep 0.05
    done
    echo "zt_wait_line: no line matching '$regex' in $file after ${secs}s" >&2
    return 1
}

# zt_cleanup [TAG]: safe to call more than once and from a trap. Processes first (a namespace
# with live processes outlives `ip netns del`), then the namespaces; pods before nodes before the
# fabric so veth pairs disappear with their first end.
zt_cleanup() {
    local tag=${1:-$ZT_TAG}
    local pid ns
    for pid in $ZT_BG_PIDS; do
        kill "$pid" 2>/dev/null || true
    done
    local namespaces
    namespaces=$(zt_list "$tag")
    for ns in $namespaces; do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            kill "$pid" 2>/dev/null || true
        done
    done
    local waited=0
    for ns in $namespaces; do
        while [ -n "$(ip netns pids "$ns" 2>/dev/null)" ] && [ "$waited" -lt 30 ]; do
            sleep 0.1
            waited=$((waited + 1))
        done
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            kill -9 "$pid" 2>/dev/null || true
        done
    done
    for pid in $ZT_BG_PIDS; do
        wait "$pid" 2>/dev/null || true
    done
    ZT_BG_PIDS=
    # Longest names (pods) first, the fabric last.
    for ns in $(echo "$namespaces" | grep -v -- '-fabric$' | awk '{print length, $0}' |
        sort -rn | cut -d' ' -f2-) $(echo "$namespaces" | grep -- '-fabric$'); do
        ip netns del "$ns" 2>/dev/null || true
    done
}
