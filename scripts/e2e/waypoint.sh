#!/usr/bin/env bash
# waypoint.sh: service and workload waypoints end to end (docs/ztunnel-reference.md §2.7).
#
# An independent waypoint (tests/peers/waypoint_peer.py, python3-h2 + OpenSSL) runs in pod pyhbone
# (198.18.2.4, identity sa/pyhbone). It accepts HBONE only for the authorities it has routes for,
# and re-originates HBONE with its own identity to the destination node's ztunnel, checking that
# ztunnel's identity.
#   1. Service waypoint: the client connects to service wpsvc (VIP 198.19.0.20:80, waypoint
#      /198.18.2.4). Its ztunnel dials the waypoint with :authority 198.19.0.20:80 and the
#      waypoint's identity expected; the waypoint sends it on to the server pod. Byte-exact; the
#      access log has dst.addr=198.18.2.4:15008 and dst.hbone_addr=198.19.0.20:80.
#   2. Workload waypoint: pod wlsrv (198.18.2.5) has the waypoint; a policy on it allows only the
#      waypoint's identity. The client reaches wlsrv through the waypoint (the application sees
#      the waypoint's address); an HBONE client with the client's own certificate going straight
#      to wlsrv's ztunnel is refused (401).
#   3. The sandwich and the source being the waypoint: pod wp (198.18.1.5, captured on node 1)
#      is the workload waypoint of pod behind (198.18.2.6); its "L7 proxy" is socat relaying
#      9090 to behind:9090. The client's connection to behind:9090 goes as HBONE to wp's ztunnel
#      with :authority 198.18.2.6:9090 (not wp's IP: accepted because wp is behind's waypoint),
#      reaches socat, and socat's own connection to behind:9090 goes straight to behind (its
#      source is the waypoint, so it is not sent back to itself). behind's application sees wp's
#      address.
# timeout: 240
set -euo pipefail
. "$(dirname "$0")/lib/mesh.sh"
sa=spiffe://cluster.local/ns/default/sa
MESH_EXTRA_CAPTURED="2:wlsrv:5 1:wp:5 2:behind:6"
MESH_EXTRA_WORKLOADS='{"uid": "c1//v1/Pod/default/wlsrv", "name": "wlsrv", "namespace": "default",
     "serviceAccount": "wlsrv", "workloadIps": ["198.18.2.5"], "protocol": "HBONE", "node": "node2",
     "waypoint": {"destination": "/198.18.2.4", "hboneMtlsPort": 15008},
     "authorizationPolicies": ["default/only-waypoint"], "services": {}},
    {"uid": "c1//v1/Pod/default/wp", "name": "wp", "namespace": "default",
     "serviceAccount": "wp", "workloadIps": ["198.18.1.5"], "protocol": "HBONE", "node": "node1",
     "services": {}},
    {"uid": "c1//v1/Pod/default/behind", "name": "behind", "namespace": "default",
     "serviceAccount": "behind", "workloadIps": ["198.18.2.6"], "protocol": "HBONE",
     "node": "node2", "waypoint": {"destination": "/198.18.1.5", "hboneMtlsPort": 15008},
     "services": {}},'
MESH_EXTRA_SERVICES='{"name": "wpsvc", "namespace": "default", "hostname": "wpsvc.default.svc.cluster.local",
     "vips": ["/198.19.0.20"], "ports": {"80": 8080},
     "waypoint": {"destination": "/198.18.2.4", "hboneMtlsPort": 15008}},'
MESH_POLICIES='[{"name": "only-waypoint", "namespace": "default", "scope": "WorkloadSelector",
  "action": "Allow", "rules": [[[{"principals": [{"Exact": "cluster.local/ns/default/sa/pyhbone"}]}]]]}]'
mesh_up waypoint

for id in pyhbone client; do
    "$ZT_BIN" ca issue --ca-dir "$MESH_WORK/ca" --identity "$sa/$id" --out "$MESH_WORK/$id" >/dev/null ||
        mesh_fail "issue $id"
done
zt_bg "$(zt_ns_pod 2 pyhbone)" "$MESH_WORK/waypoint.out" /usr/bin/python3 \
    "$here_mesh/tests/peers/waypoint_peer.py" --listen 0.0.0.0:15008 \
    --cert "$MESH_WORK/pyhbone/cert-chain.pem" --key "$MESH_WORK/pyhbone/key.pem" \
    --ca "$MESH_WORK/ca/root-cert.pem" --log "$MESH_WORK/waypoint.log" \
    --route "198.19.0.20:80=198.18.2.2:15008,198.18.2.2:8080,$sa/server" \
    --route "198.18.2.5:8080=198.18.2.5:15008,198.18.2.5:8080,$sa/wlsrv" >/dev/null
zt_wait_listen "$(zt_ns_pod 2 pyhbone)" 15008 10 || mesh_fail "waypoint not listening"
# behind's second application, on 9090, and wp's relay to it.
zt_bg "$(zt_ns_pod 2 behind)" "$MESH_WORK/app-behind9090.log" \
    $PEER server --listen "[::]:9090" --log "$MESH_WORK/peers-behind9090.log" >/dev/null
zt_bg "$(zt_ns_pod 1 wp)" "$MESH_WORK/socat.log" \
    socat TCP4-LISTEN:9090,fork,reuseaddr TCP4:198.18.2.6:9090 >/dev/null
zt_wait_listen "$(zt_ns_pod 2 behind)" 9090 10 || mesh_fail "behind:9090 not listening"
zt_wait_listen "$(zt_ns_pod 1 wp)" 9090 10 || mesh_fail "socat not listening"

# 1. Service waypoint.
out=$(mesh_xfer 1 client 198.19.0.20:80 65536) || mesh_fail "via the service waypoint: $out"
grep -q '"authority": "198.19.0.20:80".*"upstream_status": 200' "$MESH_WORK/waypoint.log" ||
    mesh_fail "waypoint log: $(cat "$MESH_WORK/waypoint.log")"
grep -q "\"client_ids\": \[\"$sa/client\"\]" "$MESH_WORK/waypoint.log" ||
    mesh_fail "the waypoint did not see the client's identity: $(cat "$MESH_WORK/waypoint.log")"
grep -q '"peer": "\(::ffff:\)\?198.18.2.4"' "$MESH_WORK/peers-server.log" ||
    mesh_fail "server did not see the waypoint's address: $(cat "$MESH_WORK/peers-server.log")"
mesh_wait_log 1 'connection complete.*dst.addr=198.18.2.4:15008 dst.hbone_addr=198.19.0.20:80.*dst.service="?wpsvc.default.svc.cluster.local.*direction="outbound"' ||
    mesh_fail "node1 access log for the service waypoint"
mesh_wait_log 2 'connection complete.*src.identity="spiffe://cluster.local/ns/default/sa/pyhbone".*dst.addr=198.18.2.2:15008 dst.hbone_addr=198.18.2.2:8080' ||
    mesh_fail "node2 access log for the waypoint's connection"
echo "service waypoint: ok"

# 2. Workload waypoint; only the waypoint may reach wlsrv.
out=$(mesh_xfer 1 client 198.18.2.5:8080 65536) || mesh_fail "via the workload waypoint: $out"
grep -q '"authority": "198.18.2.5:8080".*"upstream_status": 200' "$MESH_WORK/waypoint.log" ||
    mesh_fail "waypoint log: $(cat "$MESH_WORK/waypoint.log")"
grep -Eq '"peer": "(::ffff:)?198.18.2.4"' "$MESH_WORK/peers-wlsrv.log" ||
    mesh_fail "wlsrv did not see the waypoint's address: $(cat "$MESH_WORK/peers-wlsrv.log")"
mesh_wait_log 1 'connection complete.*dst.addr=198.18.2.4:15008 dst.hbone_addr=198.18.2.5:8080' ||
    mesh_fail "node1 access log for the workload waypoint"
set +e
direct=$(zt_in "$(zt_ns_pod 1 plain)" timeout 30 $HBONE_PEER client --connect 198.18.2.5:15008 \
    --authority 198.18.2.5:8080 --cert "$MESH_WORK/client/cert-chain.pem" \
    --key "$MESH_WORK/client/key.pem" --ca "$MESH_WORK/ca/root-cert.pem" --expect-id "$sa/wlsrv")
rc=$?
set -e
[ "$rc" = 3 ] && echo "$direct" | grep >/dev/null '"status": 401' ||
    mesh_fail "bypassing the waypoint: rc $rc $direct"
echo "workload waypoint: ok (direct access refused: 401)"

# 3. The sandwich, and the waypoint as the source.
out=$(mesh_xfer 1 client 198.18.2.6:9090 65536) || mesh_fail "via the captured waypoint: $out"
grep -Eq '"peer": "(::ffff:)?198.18.1.5"' "$MESH_WORK/peers-behind9090.log" ||
    mesh_fail "behind did not see the waypoint's address: $(cat "$MESH_WORK/peers-behind9090.log")"
n=$(grep -c . "$MESH_WORK/peers-behind9090.log")
[ "$n" = 1 ] || mesh_fail "behind saw $n connections, want 1"
mesh_wait_log 1 'connection complete.*src.workload="client".*dst.addr=198.18.1.5:15008 dst.hbone_addr=198.18.2.6:9090.*direction="outbound"' ||
    mesh_fail "node1: client to the waypoint"
mesh_wait_log 1 'connection complete.*src.workload="client".*dst.addr=198.18.1.5:15008 dst.hbone_addr=198.18.2.6:9090.*direction="inbound"' ||
    mesh_fail "node1: the waypoint's inbound (sandwich)"
mesh_wait_log 1 'connection complete.*src.workload="wp".*dst.addr=198.18.2.6:15008 dst.hbone_addr=198.18.2.6:9090.*direction="outbound"' ||
    mesh_fail "node1: the waypoint's own connection went straight to behind"
echo "sandwich and source-is-waypoint: ok"
