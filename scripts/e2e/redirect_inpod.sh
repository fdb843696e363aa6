#!/usr/bin/env bash
# redirect_inpod.sh proves that scripts/redirect-inpod.sh captures traffic the way Istio's CNI
# rules do, on this kernel, with both iptables backends (nft and legacy): in a fresh two-node
# topology it applies the rules in one pod per backend and checks, with capture_probe.py
# listeners standing in for ztunnel, that
#   - outbound TCP (IPv4 and IPv6) lands on 15001 and SO_ORIGINAL_DST names the real destination;
#   - TCP to port 53 lands on 15053;
#   - a socket carrying ztunnel's mark 0x539 is not captured, and neither is 127.0.0.1;
#   - inbound TCP (IPv4 and IPv6) lands on 15006 with its original destination, and 15008 is not
#     redirected;
#   - the original-source return path works: a transparent (IP_TRANSPARENT), 0x539-marked socket
#     bound to a remote pod's address connects to the app, which sees that remote address, and
#     the reply comes back through connmark 0x111 and routing table 100 (IPv4 and IPv6).
# It runs as root only (exit 77 otherwise), inside zt-rdrPID-* namespaces removed by a trap.
# timeout: 120
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/netns/lib.sh
zt_require_root
for tool in iptables-nft-restore iptables-legacy-restore ip6tables-nft-restore ss /usr/bin/python3; do
    command -v "$tool" >/dev/null || { echo "skip: $tool is missing"; exit 77; }
done
zt_init "rdr$$"
logs=$(mktemp -d)
trap 'zt_cleanup; rm -rf "$logs"' EXIT
probe=scripts/netns/capture_probe.py
failures=0

zt_node_create 1
zt_node_create 2
zt_pod_create 2 remote 2
remote_ns=$(zt_ns_pod 2 remote)
remote=$(zt_pod_ip 2 2)
remote6=$(zt_pod_ip6 2 2)
zt_bg "$remote_ns" "$logs/remote.log" /usr/bin/python3 "$probe" listen remote 9090
zt_wait_listen "$remote_ns" 9090

# expect NS WANT_REGEX connect-args...: one probe connection from NS; its answer must match.
expect() {
    local ns=$1 want=$2
    shift 2
    local got
    got=$(zt_in "$ns" timeout 5 /usr/bin/python3 "$probe" connect "$@" 2>&1) || true
    if echo "$got" | grep >/dev/null -E "^$want\$"; then
        echo "  ok    $ns connect $*: $got"
    else
        echo "  FAIL  $ns connect $*: got '$got', want /$want/"
        failures=$((failures + 1))
    fi
}

x=2
for backend in nft legacy; do
    echo "backend iptables-$backend"
    pod=app$backend
    zt_pod_create 1 "$pod" "$x"
    ns=$(zt_ns_pod 1 "$pod")
    ip=$(zt_pod_ip 1 "$x")
    ip6=$(zt_pod_ip6 1 "$x")
    x=$((x + 1))
    ZT_IPTABLES=$backend scripts/redirect-inpod.sh "$ns"
    for spec in outbound:15001 inbound:15006 hbone:15008 dns:15053 app:8080; do
        zt_bg "$ns" "$logs/$pod-${spec%%:*}.log" /usr/bin/python3 "$probe" listen \
            "${spec%%:*}" "${spec#*:}"
        zt_wait_listen "$ns" "${spec#*:}"
    done

    expect "$ns" "outbound orig=$remote:9090 peer=.*" "$remote" 9090
    expect "$ns" "outbound orig=\[$remote6\]:9090 peer=.*" "$remote6" 9090
    expect "$ns" "dns orig=$remote:53 peer=.*" "$remote" 53
    expect "$ns" "remote orig=- peer=$ip:[0-9]+" "$remote" 9090 --mark 0x539
    expect "$ns" "remote orig=- peer=\[$ip6\]:[0-9]+" "$remote6" 9090 --mark 0x539
    expect "$ns" "app orig=.* peer=127.0.0.1:[0-9]+" 127.0.0.1 8080
    expect "$remote_ns" "inbound orig=$ip:8080 peer=$remote:[0-9]+" "$ip" 8080
    expect "$remote_ns" "inbound orig=\[$ip6\]:8080 peer=\[$remote6\]:[0-9]+" "$ip6" 8080
    expect "$remote_ns" "hbone orig=.* peer=$remote:[0-9]+" "$ip" 15008
    expect "$ns" "app orig=.* peer=$remote:[0-9]+" "$ip" 8080 --mark 0x539 --spoof "$remote"
    expect "$ns" "app orig=.* peer=\[$remote6\]:[0-9]+" "$ip6" 8080 --mark 0x539 --spoof "$remote6"
done

# Control: without the rules the spoofed connection must fail (the reply leaves towards the
# remote pod), so the check above really exercises connmark + table 100.
echo "control: pod without rules"
zt_pod_create 1 bare "$x"
bare_ns=$(zt_ns_pod 1 bare)
bare_ip=$(zt_pod_ip 1 "$x")
zt_bg "$bare_ns" "$logs/bare-app.log" /usr/bin/python3 "$probe" listen app 8080
zt_wait_listen "$bare_ns" 8080
expect "$bare_ns" "connect failed: .*" "$bare_ip" 8080 --mark 0x539 --spoof "$remote"
expect "$bare_ns" "remote orig=- peer=$bare_ip:[0-9]+" "$remote" 9090

if [ "$failures" -ne 0 ]; then
    echo "redirect_inpod: $failures check(s) failed"
    exit 1
fi
echo "redirect_inpod: all checks passed"
