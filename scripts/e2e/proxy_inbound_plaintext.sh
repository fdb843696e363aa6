#!/usr/bin/env bash
# proxy_inbound_plaintext.sh: an uncaptured pod reaches a captured one in plaintext: the
# connection is redirected to the server pod's 15006, checked by RBAC with no identity, and
# relayed to the application from the client's own address. Then STRICT mTLS, expressed as a
# DENY with notPrincipals presence, refuses plaintext while HBONE from a mesh client still works.
# Ports of ztunnel itself are refused as destinations.
# timeout: 120
set -euo pipefail
. "$(dirname "$0")/lib/mesh.sh"
mesh_up plain

out=$(mesh_xfer 1 plain 198.18.2.2:8080 4194304) || mesh_fail "plaintext inbound: $out"
grep -Eq '"peer": "(::ffff:)?198.18.1.4"' "$MESH_WORK/peers-server.log" || mesh_fail "server peers"
mesh_wait_log 2 'connection complete.*src.addr=198.18.1.4:[0-9]+.*dst.addr=198.18.2.2:8080.*direction="inbound"' ||
    mesh_fail "inbound plaintext log"

mesh_config '[{"name": "strict", "namespace": "default", "scope": "Namespace", "action": "Deny",
  "rules": [[[{"notPrincipals": [{"Presence": []}]}]]]}]'
mesh_wait_log 2 'config applied.*policies=1' || mesh_fail "reload"
sleep 0.3
if mesh_xfer 1 plain 198.18.2.2:8080 1024 >/dev/null; then
    mesh_fail "plaintext passed a STRICT policy"
fi
mesh_wait_log 2 'connection closed due to policy rejection: explicitly denied by: default/strict' ||
    mesh_fail "deny log"
out=$(mesh_xfer 1 client 198.18.2.2:8080 65536) || mesh_fail "mTLS client refused by STRICT: $out"
mesh_metrics 2 | grep '^istio_tcp_connections_failed_total' | grep >/dev/null 'response_flags="DENY"' ||
    mesh_fail "DENY not counted"
echo "inbound plaintext and STRICT: ok"
