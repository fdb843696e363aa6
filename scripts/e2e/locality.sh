#!/usr/bin/env bash
# locality.sh: locality-aware load balancing (docs/ztunnel-reference.md §3.7) with workloads on two nodes
# in two zones. The client lclient is on node1 in r1/z1; la (node1, r1/z1, healthy), lc (node1,
# r1/z1, Unhealthy) and lb (node2, r1/z2) are the endpoints.
#   Strict [Node] with only lb: refused with ztunnel's error, counted, never sent off the node.
#   Strict [Node] with la and lb: always la.
#   Failover [Network, Region, Zone] with la and lb: always la (the zone is preferred).
#   the same with lc (unhealthy) and lb: lb (crosses zones only when the zone has no healthy
#       endpoint).
#   the same with AllowAll: lc (an unhealthy endpoint is reachable; the zone stays preferred).
# timeout: 240
set -euo pipefail
. "$(dirname "$0")/lib/mesh.sh"
MESH_EXTRA_CAPTURED="1:lclient:5 1:la:6 1:lc:7 2:lb:5"
workload() { # NAME NODE X ZONE STATUS SERVICES
    echo "{\"uid\": \"c1//v1/Pod/default/$1\", \"name\": \"$1\", \"namespace\": \"default\",
     \"serviceAccount\": \"$1\", \"workloadIps\": [\"198.18.$2.$3\"], \"protocol\": \"HBONE\",
     \"node\": \"node$2\", \"locality\": {\"region\": \"r1\", \"zone\": \"$4\", \"subzone\": \"\"},
     \"status\": \"$5\", \"services\": {$6}},"
}
service() { # NAME X MODE PREFERENCES HEALTH
    echo "{\"name\": \"$1\", \"namespace\": \"default\", \"hostname\": \"$1.default.svc.cluster.local\",
     \"vips\": [\"/198.19.0.$2\"], \"ports\": {\"80\": 8080},
     \"loadBalancer\": {\"mode\": \"$3\", \"routingPreferences\": $4, \"healthPolicy\": \"$5\"}},"
}
member() { echo "\"default/$1.default.svc.cluster.local\": {}"; }
MESH_EXTRA_WORKLOADS="$(workload lclient 1 5 z1 Healthy '')
    $(workload la 1 6 z1 Healthy "$(member strict-both), $(member failover)")
    $(workload lc 1 7 z1 Unhealthy "$(member failover-down), $(member allow-all)")
    $(workload lb 2 5 z2 Healthy "$(member strict-remote), $(member strict-both), $(member failover), $(member failover-down), $(member allow-all)")"
fo='["Network", "Region", "Zone"]'
MESH_EXTRA_SERVICES="$(service strict-remote 31 Strict '["Node"]' OnlyHealthy)
    $(service strict-both 32 Strict '["Node"]' OnlyHealthy)
    $(service failover 33 Failover "$fo" OnlyHealthy)
    $(service failover-down 34 Failover "$fo" OnlyHealthy)
    $(service allow-all 35 Failover "$fo" AllowAll)"
mesh_up locality

lines() { if [ -f "$MESH_WORK/peers-$1.log" ]; then wc -l <"$MESH_WORK/peers-$1.log"; else echo 0; fi; }
# sends VIP N: N connections from lclient to VIP:80, each byte-exact; prints "la lb lc" hits added.
sends() {
    local a0 b0 c0 i out
    a0=$(lines la) b0=$(lines lb) c0=$(lines lc)
    for i in $(seq "$2"); do
        out=$(mesh_xfer 1 lclient "$1:80" 4096) || mesh_fail "to $1 ($i): $out"
    done
    echo "$(($(lines la) - a0)) $(($(lines lb) - b0)) $(($(lines lc) - c0))"
}

# Strict [Node] with no endpoint on the node: refused, counted, logged with ztunnel's error.
if zt_in "$(zt_ns_pod 1 lclient)" timeout 20 $PEER client --connect 198.19.0.31:80 --bytes 100 \
    >/dev/null 2>&1; then
    mesh_fail "Strict [Node] with no local endpoint was connected"
fi
[ "$(lines lb)" = 0 ] || mesh_fail "Strict [Node] left the node"
mesh_wait_log 1 'connection failed.*dst.addr=198.19.0.31:80.*no healthy upstream: 198.19.0.31:80' ||
    mesh_fail "no refusal logged"
mesh_metrics 1 | grep >/dev/null '^ztunnel_connections_refused_total{.*no_healthy_upstream.*} [1-9]' ||
    mesh_fail "refusal not counted: $(mesh_metrics 1 | grep refused)"
echo "Strict [Node] with no local endpoint: refused"

[ "$(sends 198.19.0.32 10)" = "10 0 0" ] || mesh_fail "Strict [Node] did not stay on the node"
echo "Strict [Node]: 10 of 10 on the node"
[ "$(sends 198.19.0.33 10)" = "10 0 0" ] || mesh_fail "Failover did not keep to the zone"
echo "Failover [Network, Region, Zone]: 10 of 10 in the zone"
[ "$(sends 198.19.0.34 10)" = "0 10 0" ] || mesh_fail "Failover did not cross zones when the zone had no healthy endpoint"
echo "Failover with the zone's only endpoint unhealthy: 10 of 10 in the other zone"
[ "$(sends 198.19.0.35 10)" = "0 0 10" ] || mesh_fail "AllowAll did not reach the unhealthy endpoint"
echo "AllowAll: 10 of 10 to the unhealthy endpoint in the zone"
