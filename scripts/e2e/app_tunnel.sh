#!/usr/bin/env bash
# app_tunnel.sh: the application tunnel (docs/ztunnel-reference.md §2.9). Three captured pods on node 2:
#   tunha (198.18.2.5): applicationTunnel {PROXY, 15088}; HAProxy (a real consumer of PROXY v2,
#       `accept-proxy`) on 127.0.0.1:15088 in the pod, in front of the pod's echo on 8080. It must
#       accept ztunnel's header and log the original client and destination it carried.
#   tunpy (198.18.2.6): applicationTunnel {PROXY, 15089}; tests/peers/proxy_v2_peer.py on
#       127.0.0.1:15089 parses the header strictly and logs its addresses and TLV 0xD0.
#   tunnone (198.18.2.7): applicationTunnel {NONE, 15090}; an echo on 15090: only the port
#       changes, the bytes are unmodified and the application sees the client's own address.
# The client reaches each at :8080 over HBONE; every transfer is byte-exact (so exactly the
# client's bytes follow the header).
# timeout: 240
set -euo pipefail
. "$(dirname "$0")/lib/mesh.sh"
sa=spiffe://cluster.local/ns/default/sa
MESH_EXTRA_CAPTURED="2:tunha:5 2:tunpy:6 2:tunnone:7"
workload() { # NAME X PROTOCOL PORT
    echo "{\"uid\": \"c1//v1/Pod/default/$1\", \"name\": \"$1\", \"namespace\": \"default\",
     \"serviceAccount\": \"$1\", \"workloadIps\": [\"198.18.2.$2\"], \"protocol\": \"HBONE\",
     \"node\": \"node2\", \"applicationTunnel\": {\"protocol\": \"$3\", \"port\": $4},
     \"services\": {}},"
}
MESH_EXTRA_WORKLOADS="$(workload tunha 5 PROXY 15088) $(workload tunpy 6 PROXY 15089) $(workload tunnone 7 NONE 15090)"
mesh_up apptun

cat >"$MESH_WORK/haproxy.cfg" <<EOF
global
    log stdout format raw local0
defaults
    mode tcp
    log global
    option logasap
    log-format "proxied src=%ci:%cp dst=%fi:%fp"
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend app
    bind 127.0.0.1:15088 accept-proxy
    default_backend echo
backend echo
    server echo 127.0.0.1:8080
EOF
zt_bg "$(zt_ns_pod 2 tunha)" "$MESH_WORK/haproxy.log" haproxy -db -f "$MESH_WORK/haproxy.cfg" >/dev/null
zt_bg "$(zt_ns_pod 2 tunpy)" "$MESH_WORK/proxy_v2_peer.out" /usr/bin/python3 \
    "$here_mesh/tests/peers/proxy_v2_peer.py" --listen 127.0.0.1:15089 \
    --log "$MESH_WORK/proxy_v2.log" >/dev/null
zt_bg "$(zt_ns_pod 2 tunnone)" "$MESH_WORK/app-tunnone15090.log" \
    $PEER server --listen "[::]:15090" --log "$MESH_WORK/peers-tunnone15090.log" >/dev/null
zt_wait_listen "$(zt_ns_pod 2 tunha)" 15088 10 || mesh_fail "haproxy not listening"
zt_wait_listen "$(zt_ns_pod 2 tunpy)" 15089 10 || mesh_fail "proxy_v2_peer not listening"
zt_wait_listen "$(zt_ns_pod 2 tunnone)" 15090 10 || mesh_fail "echo on 15090 not listening"

# HAProxy accepts the header and sees the original client and destination.
out=$(mesh_xfer 1 client 198.18.2.5:8080 65536) || mesh_fail "through HAProxy: $out"
zt_wait_line "$MESH_WORK/haproxy.log" 'proxied src=198.18.1.2:[0-9]+ dst=198.18.2.5:8080' 5 ||
    mesh_fail "haproxy log: $(cat "$MESH_WORK/haproxy.log")"
# The echo behind HAProxy saw HAProxy's connection, not ztunnel's loopback dial with the client's
# address (the client travels in the header only).
grep -Eq '"peer": "(::ffff:)?127.0.0.1"' "$MESH_WORK/peers-tunha.log" ||
    mesh_fail "echo behind haproxy: $(cat "$MESH_WORK/peers-tunha.log")"
echo "PROXY v2 to HAProxy: ok"

# The strict parser: addresses and TLV 0xD0 with the client's SPIFFE identity.
out=$(mesh_xfer 1 client 198.18.2.6:8080 65536) || mesh_fail "through the PROXY v2 peer: $out"
line=$(head -n 1 "$MESH_WORK/proxy_v2.log")
echo "$line" | jq -e --arg id "$sa/client" '.error == null and (.source | test("^198.18.1.2:[0-9]+$"))
    and .destination == "198.18.2.6:8080" and .identity == $id and .peer == "127.0.0.1"
    and .tlvs == ["0xd0"]' >/dev/null || mesh_fail "PROXY v2 header: $line"
mesh_wait_log 2 'connection complete.*dst.addr=198.18.2.6:15008 dst.hbone_addr=198.18.2.6:8080.*direction="inbound"' ||
    mesh_fail "node2 access log for tunpy"
echo "PROXY v2 header and TLV 0xD0: ok"

# NONE: only the port; the application sees the client itself and no header.
out=$(mesh_xfer 1 client 198.18.2.7:8080 65536) || mesh_fail "NONE tunnel: $out"
grep -Eq '"peer": "(::ffff:)?198.18.1.2"' "$MESH_WORK/peers-tunnone15090.log" ||
    mesh_fail "tunnone:15090: $(cat "$MESH_WORK/peers-tunnone15090.log" 2>/dev/null)"
[ ! -s "$MESH_WORK/peers-tunnone.log" ] || mesh_fail "tunnone's 8080 was dialled: $(cat "$MESH_WORK/peers-tunnone.log")"
echo "NONE tunnel (port only): ok"
