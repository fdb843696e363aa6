#!/usr/bin/env bash
# proxy_policy_change.sh: late rejection. A long-lived connection from client is open over HBONE
# and another from the uncaptured pod in plaintext; a config reload adds a DENY for both; each
# open connection is closed within a second of the swap, logged as "connection closed due to
# policy change", and a connection not covered by the new policy stays up.
# timeout: 120
set -euo pipefail
. "$(dirname "$0")/lib/mesh.sh"
mesh_up change

hold() { # node pod dest out
    zt_in "$(zt_ns_pod "$1" "$2")" timeout 30 $PEER hold --connect "$3" --seconds 20 \
        --ready-file "$4.ready" >"$4" 2>&1 &
}
hold 1 client 198.18.2.2:8080 "$MESH_WORK/hold-client"
hold 1 plain 198.18.2.2:8080 "$MESH_WORK/hold-plain"
hold 1 client2 198.18.2.2:8080 "$MESH_WORK/hold-client2"
for f in client plain client2; do
    timeout 10 bash -c "until [ -e '$MESH_WORK/hold-$f.ready' ]; do sleep 0.05; done" ||
        mesh_fail "hold $f did not connect"
done
sleep 1
mesh_config '[{"name": "deny-some", "namespace": "default", "scope": "Namespace", "action": "Deny",
  "rules": [[[{"principals": [{"Exact": "cluster.local/ns/default/sa/client"}]}]],
            [[{"sourceIps": ["198.18.1.4/32"]}]]]}]'
swap=$SECONDS
mesh_wait_log 2 'config applied.*policies=1' || mesh_fail "reload"
for f in client plain; do
    zt_wait_line "$MESH_WORK/hold-$f" 'ended' 5 || mesh_fail "$f still open after the policy change"
    grep -Eq '"ended": "(closed|reset)"' "$MESH_WORK/hold-$f" || mesh_fail "$f: $(cat "$MESH_WORK/hold-$f")"
done
[ $((SECONDS - swap)) -le 3 ] || mesh_fail "closing took $((SECONDS - swap)) s"
n=$(grep -c 'connection closed due to policy change' "$MESH_WORK/zt2.log")
[ "$n" -eq 2 ] || mesh_fail "expected 2 policy-change closes, got $n"
if grep -q '"ended"' "$MESH_WORK/hold-client2" 2>/dev/null; then
    mesh_fail "client2 was closed too: $(cat "$MESH_WORK/hold-client2")"
fi
echo "policy change: ok"
