#!/usr/bin/env bash
# proxy_passthrough.sh: a captured client reaches destinations outside the mesh
# (ztunnel's server_uncaptured_inpod): an unknown address is passed through as plain TCP, and a
# TCP (non-HBONE) workload is reached in plain TCP on its own port. Both byte-exact; the access
# log carries no identities (no mTLS) and the metrics say `connection_security_policy="unknown"`.
# timeout: 120
set -euo pipefail
. "$(dirname "$0")/lib/mesh.sh"
mesh_up pass

out=$(mesh_xfer 1 client 198.18.1.4:8080 4194304) || mesh_fail "passthrough to an unknown address: $out"
out=$(mesh_xfer 1 client 198.18.2.3:8080 4194304) || mesh_fail "to a TCP workload: $out"
out=$(mesh_xfer 1 client "[2001:db8:2::3]:8080" 1048576) || mesh_fail "to a TCP workload over IPv6: $out"
mesh_wait_log 1 'connection complete.*dst.addr=198.18.1.4:8080' || mesh_fail "log unknown"
mesh_wait_log 1 'connection complete.*dst.addr=198.18.2.3:8080.*dst.workload="plainsrv"' || mesh_fail "log tcp"
if grep 'dst.addr=198.18.2.3:8080' "$MESH_WORK/zt1.log" | grep >/dev/null 'identity='; then
    mesh_fail "plain TCP logged an identity"
fi
# The plain destination saw the client pod's own address (no ztunnel in between on that side).
grep -Eq '"peer": "(::ffff:)?198.18.1.2"' "$MESH_WORK/peers-plainsrv.log" || mesh_fail "plainsrv peers"
mesh_metrics 1 | grep '^istio_tcp_connections_closed_total{reporter="source"' |
    grep 'destination_workload="unknown"' | grep >/dev/null 'connection_security_policy="unknown"' ||
    mesh_fail "metrics"
echo "passthrough: ok"
