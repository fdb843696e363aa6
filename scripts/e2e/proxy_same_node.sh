#!/usr/bin/env bash
# proxy_same_node.sh: two captured pods on one node (ztunnel's local_captured_inpod): the client's
# connection leaves through its pod's 15001 and enters the server pod's 15008 on the same
# ztunnel, as HBONE with both pods' identities; 16 MiB byte-exact; the ztunnel reports the
# connection once as source and once as destination; the application sees the client's IP.
# timeout: 120
set -euo pipefail
. "$(dirname "$0")/lib/mesh.sh"
mesh_up same

out=$(mesh_xfer 1 client 198.18.1.3:8080 16777216) || mesh_fail "transfer: $out"
echo "$out"
grep -Eq '"peer": "(::ffff:)?198.18.1.2"' "$MESH_WORK/peers-client2.log" || mesh_fail "client2 saw $(cat "$MESH_WORK/peers-client2.log")"
mesh_wait_log 1 'connection complete.*direction="inbound"' || mesh_fail "inbound log"
mesh_wait_log 1 'connection complete.*direction="outbound"' || mesh_fail "outbound log"
grep 'direction="inbound"' "$MESH_WORK/zt1.log" | grep >/dev/null 'src.identity="spiffe://cluster.local/ns/default/sa/client".*dst.identity="spiffe://cluster.local/ns/default/sa/client2"' ||
    mesh_fail "identities"
m=$(mesh_metrics 1)
for reporter in source destination; do
    echo "$m" | grep "^istio_tcp_connections_closed_total{reporter=\"$reporter\"" |
        grep >/dev/null 'destination_workload_namespace="default".*connection_security_policy="mutual_tls".* 1$' ||
        mesh_fail "no $reporter series: $m"
done
echo "same-node HBONE: ok"
