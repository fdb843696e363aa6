#!/usr/bin/env bash
# netns_topology.sh checks the scaffold itself: `scripts/netns/topology.sh up TAG` builds docs/contract.md §9's
# two nodes with a client and a server pod each; every pod reaches every other pod (same node and
# across nodes, IPv4 and IPv6) with its own address as the source (no NAT on the way); nodes
# forward and have rp_filter off; `topology.sh down TAG` leaves no zt-TAG-* namespace behind.
# Root only (exit 77 otherwise); the trap removes the namespaces if a check fails.
# timeout: 120
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/netns/lib.sh
zt_require_root
tag="topo$$"
zt_init "$tag"
logs=$(mktemp -d)
trap 'zt_cleanup; rm -rf "$logs"' EXIT
probe=scripts/netns/capture_probe.py
failures=0
fail() {
    echo "  FAIL  $*"
    failures=$((failures + 1))
}

scripts/netns/topology.sh up "$tag"
[ "$(zt_list | wc -l)" -eq 7 ] || fail "expected 7 namespaces, got: $(zt_list | tr '\n' ' ')"

for n in 1 2; do
    node=$(zt_ns_node "$n")
    [ "$(zt_in "$node" sysctl -n net.ipv4.ip_forward)" = 1 ] || fail "$node: ip_forward off"
    [ "$(zt_in "$node" sysctl -n net.ipv6.conf.all.forwarding)" = 1 ] ||
        fail "$node: IPv6 forwarding off"
    for pod in client server; do
        ns=$(zt_ns_pod "$n" "$pod")
        [ "$(zt_in "$ns" sysctl -n net.ipv4.conf.all.rp_filter)" = 0 ] || fail "$ns: rp_filter on"
        zt_bg "$ns" "$logs/$ns.log" /usr/bin/python3 "$probe" listen "$ns" 9000
        zt_wait_listen "$ns" 9000
    done
done

# pod number: client .2, server .3 (topology.sh's layout)
declare -A num=([client]=2 [server]=3)
for src_n in 1 2; do
    for src_pod in client server; do
        src=$(zt_ns_pod "$src_n" "$src_pod")
        for dst_n in 1 2; do
            for dst_pod in client server; do
                dst=$(zt_ns_pod "$dst_n" "$dst_pod")
                [ "$src" = "$dst" ] && continue
                for fam in 4 6; do
                    if [ $fam = 4 ]; then
                        ip=$(zt_pod_ip "$dst_n" "${num[$dst_pod]}")
                        want="$dst orig=.* peer=$(zt_pod_ip "$src_n" "${num[$src_pod]}"):[0-9]+"
                    else
                        ip=$(zt_pod_ip6 "$dst_n" "${num[$dst_pod]}")
                        want="$dst orig=.* peer=\[$(zt_pod_ip6 "$src_n" "${num[$src_pod]}")\]:[0-9]+"
                    fi
                    got=$(zt_in "$src" timeout 5 /usr/bin/python3 "$probe" connect "$ip" 9000 \
                        2>&1) || true
                    if echo "$got" | grep >/dev/null -E "^$want\$"; then
                        echo "  ok    $src -> $ip: $got"
                    else
                        fail "$src -> $ip: got '$got', want /$want/"
                    fi
                done
            done
        done
    done
done

scripts/netns/topology.sh down "$tag"
left=$(zt_list)
[ -z "$left" ] || fail "namespaces left after down: $left"

if [ "$failures" -ne 0 ]; then
    echo "netns_topology: $failures check(s) failed"
    exit 1
fi
echo "netns_topology: passed"
