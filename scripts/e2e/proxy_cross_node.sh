#!/usr/bin/env bash
# proxy_cross_node.sh: a captured client on node 1 reaches a captured server on node 2 over HBONE
# through both ztunnels (ztunnel's cross_node_captured_inpod): 16 MiB byte-exact both ways over
# IPv4 and 4 MiB over IPv6, the server application sees the client pod's own IP, both ztunnels
# count the connection (source and destination reporters, opened == closed, Istio's byte
# directions), both access logs carry the SPIFFE identities, and no fd is left behind.
# timeout: 180
set -euo pipefail
. "$(dirname "$0")/lib/mesh.sh"
mesh_up xnode

fds1=$(mesh_fds 1)
fds2=$(mesh_fds 2)
out=$(mesh_xfer 1 client 198.18.2.2:8080 16777216) || mesh_fail "IPv4 transfer: $out"
echo "ipv4: $out"
out=$(mesh_xfer 1 client "[2001:db8:2::2]:8080" 4194304) || mesh_fail "IPv6 transfer: $out"
echo "ipv6: $out"

# The application saw the client pod's addresses, not a ztunnel's.
grep -Eq '"peer": "(::ffff:)?198.18.1.2"' "$MESH_WORK/peers-server.log" || mesh_fail "server did not see 198.18.1.2: $(cat "$MESH_WORK/peers-server.log")"
grep -q '"peer": "2001:db8:1::2"' "$MESH_WORK/peers-server.log" || mesh_fail "server did not see 2001:db8:1::2"

mesh_wait_log 1 'connection complete.*dst.hbone_addr=\[2001:db8:2::2\]:8080' || mesh_fail "node1 access log"
mesh_wait_log 2 'connection complete.*direction="inbound".*bytes_sent=4194304' || mesh_fail "node2 access log"
grep -q 'src.identity="spiffe://cluster.local/ns/default/sa/client".*dst.identity="spiffe://cluster.local/ns/default/sa/server"' \
    "$MESH_WORK/zt1.log" || mesh_fail "identities in node1's log"
grep -q 'direction="outbound" bytes_sent=16777216 bytes_recv=16777216' "$MESH_WORK/zt1.log" ||
    mesh_fail "node1 byte counts"

m1=$(mesh_metrics 1)
m2=$(mesh_metrics 2)
opened=$(echo "$m1" | grep '^istio_tcp_connections_opened_total{reporter="source"' | grep -c 'connection_security_policy="mutual_tls"')
[ "$opened" -ge 1 ] || mesh_fail "node1 metrics: $m1"
sum() { echo "$1" | grep "^$2{" | grep "reporter=\"$3\"" | awk '{s+=$NF} END {print s+0}'; }
[ "$(sum "$m1" istio_tcp_connections_opened_total source)" = 2 ] || mesh_fail "node1 opened"
[ "$(sum "$m1" istio_tcp_connections_closed_total source)" = 2 ] || mesh_fail "node1 closed"
[ "$(sum "$m2" istio_tcp_connections_opened_total destination)" = 2 ] || mesh_fail "node2 opened"
[ "$(sum "$m2" istio_tcp_connections_closed_total destination)" = 2 ] || mesh_fail "node2 closed"
[ "$(sum "$m1" istio_tcp_received_bytes_total source)" = 20971520 ] || mesh_fail "node1 received bytes"
[ "$(sum "$m2" istio_tcp_sent_bytes_total destination)" = 20971520 ] || mesh_fail "node2 sent bytes"
echo "$m2" | grep >/dev/null 'source_principal="spiffe://cluster.local/ns/default/sa/client"' || mesh_fail "node2 source_principal"

# Pooled HBONE connections stay (by design); tunnels' sockets must not.
sleep 0.5
after1=$(mesh_fds 1)
after2=$(mesh_fds 2)
[ "$after1" -le $((fds1 + 2)) ] || mesh_fail "node1 fds $fds1 -> $after1"
[ "$after2" -le $((fds2 + 2)) ] || mesh_fail "node2 fds $fds2 -> $after2"
echo "cross-node HBONE: ok"
