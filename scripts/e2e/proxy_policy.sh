#!/usr/bin/env bash
# proxy_policy.sh: authorization over HBONE (ztunnel's test_policy and the ALLOW/DENY cases of
# issue 6). An ALLOW policy that names client admits it and refuses client2 (401 on the wire,
# the client's connection closed, "allow policies exist, but none allowed" in the log); a DENY
# policy for client then refuses client even though ALLOW still names it.
# timeout: 120
set -euo pipefail
. "$(dirname "$0")/lib/mesh.sh"
MESH_POLICIES='[{"name": "allow-client", "namespace": "default", "scope": "Namespace", "action": "Allow",
  "rules": [[[{"principals": [{"Exact": "cluster.local/ns/default/sa/client"}]}]]]}]'
mesh_up policy

out=$(mesh_xfer 1 client 198.18.2.2:8080 1048576) || mesh_fail "allowed client refused: $out"
if mesh_xfer 1 client2 198.18.2.2:8080 1024 >/dev/null; then
    mesh_fail "client2 passed an ALLOW policy that does not name it"
fi
mesh_wait_log 2 'connection closed due to policy rejection: allow policies exist, but none allowed' ||
    mesh_fail "server log"
mesh_wait_log 1 'connection complete.*src.workload="client2".*error="http status: 401"' ||
    mesh_fail "client side did not see 401"

mesh_config '[{"name": "allow-client", "namespace": "default", "scope": "Namespace", "action": "Allow",
  "rules": [[[{"principals": [{"Exact": "cluster.local/ns/default/sa/client"}]}]]]},
 {"name": "deny-client", "namespace": "default", "scope": "Namespace", "action": "Deny",
  "rules": [[[{"principals": [{"Suffix": "/sa/client"}]}]]]}]'
mesh_wait_log 2 'config applied.*policies=2' || mesh_fail "reload"
sleep 0.3
if mesh_xfer 1 client 198.18.2.2:8080 1024 >/dev/null; then
    mesh_fail "DENY did not win over ALLOW"
fi
mesh_wait_log 2 'explicitly denied by: default/deny-client' || mesh_fail "deny log"
echo "policy: ok"
