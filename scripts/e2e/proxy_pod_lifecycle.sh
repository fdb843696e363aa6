#!/usr/bin/env bash
# proxy_pod_lifecycle.sh: pods come and go with the config file (docs/contract.md §2, issue 6 item 2).
# A pod whose network namespace does not exist is reported by readiness and does not stop the
# others; removing a pod from the file drains it at once (its open connection ends, its
# listeners close, so new connections from it fail); adding it back gives it listeners
# within a second and traffic flows again; its sandbox recreated under the same path (the file
# untouched) gets listeners in the new namespace within a tick.
# timeout: 120
set -euo pipefail
. "$(dirname "$0")/lib/mesh.sh"
mesh_up pods

ns_client=$(zt_ns_path "$(zt_ns_pod 1 client)")
ns_client2=$(zt_ns_path "$(zt_ns_pod 1 client2)")
entry() { echo "{\"uid\": \"c1//v1/Pod/default/$1\", \"netns\": \"$2\"}"; }

# 1. A pod with a missing namespace: reported, not fatal.
MESH_NODE1_PODS="$(entry client "$ns_client"), $(entry client2 "$ns_client2"), $(entry ghost /run/netns/zt-pods-does-not-exist)"
MESH_EXTRA_WORKLOADS='{"uid": "c1//v1/Pod/default/ghost", "name": "ghost", "namespace": "default",
  "serviceAccount": "ghost", "workloadIps": ["198.18.1.9"], "protocol": "HBONE", "node": "node1",
  "services": {}},'
mesh_config '[]'
mesh_wait_log 1 'config applied.*pods=3' || mesh_fail "reload with ghost"
sleep 0.5
ready=$(zt_in "$(zt_ns_node 1)" curl -s http://127.0.0.1:15021/healthz/ready || true)
echo "readiness: $ready"
echo "$ready" | grep >/dev/null 'not ready, pending: .*pod c1//v1/Pod/default/ghost' || mesh_fail "ghost not reported: $ready"
out=$(mesh_xfer 1 client 198.18.2.2:8080 65536) || mesh_fail "other pods stopped working: $out"

# 2. Remove client2 while it holds a connection: drained at once.
zt_in "$(zt_ns_pod 1 client2)" timeout 30 $PEER hold --connect 198.18.2.2:8080 --seconds 20 \
    --ready-file "$MESH_WORK/hold.ready" >"$MESH_WORK/hold.out" 2>&1 &
timeout 10 bash -c "until [ -e '$MESH_WORK/hold.ready' ]; do sleep 0.05; done" || mesh_fail "hold"
sleep 0.5
MESH_NODE1_PODS="$(entry client "$ns_client")"
mesh_config '[]'
removed=$SECONDS
zt_wait_line "$MESH_WORK/hold.out" 'ended' 5 || mesh_fail "client2's connection survived its pod's removal"
[ $((SECONDS - removed)) -le 2 ] || mesh_fail "drain took $((SECONDS - removed)) s"
grep -q 'connection closed: pod removed' "$MESH_WORK/zt1.log" || mesh_fail "removal not logged"
# Its listeners are gone: the pod's redirect rules (still in place, as they would be until the
# CNI removes them) now lead nowhere, so a new connection is refused instead of bypassing policy.
if mesh_xfer 1 client2 198.18.2.2:8080 1024 >/dev/null; then
    mesh_fail "a removed pod's traffic still went through"
fi

# 3. Add it back: listeners within a second, HBONE again.
ups() { grep -c 'pod listeners up.*client2' "$MESH_WORK/zt1.log" || true; }
ups_before=$(ups)
MESH_NODE1_PODS="$(entry client "$ns_client"), $(entry client2 "$ns_client2")"
mesh_config '[]'
added=$SECONDS
timeout 5 bash -c "until [ \$(grep -c 'pod listeners up.*client2' '$MESH_WORK/zt1.log') -gt $ups_before ]; do sleep 0.05; done" ||
    mesh_fail "no listeners for the re-added pod"
mesh_wait_ready 1 || mesh_fail "not ready after re-adding"
[ $((SECONDS - added)) -le 2 ] || mesh_fail "listeners took $((SECONDS - added)) s"
before=$(grep -c 'src.identity="spiffe://cluster.local/ns/default/sa/client2"' "$MESH_WORK/zt2.log" || true)
out=$(mesh_xfer 1 client2 198.18.2.2:8080 65536) || mesh_fail "re-added client2: $out"
sleep 0.3
after=$(grep -c 'src.identity="spiffe://cluster.local/ns/default/sa/client2"' "$MESH_WORK/zt2.log" || true)
[ "$after" -gt "$before" ] || mesh_fail "re-added client2 did not use HBONE"

# 4. client2's sandbox recreated under the same path, the file untouched: each worker's tick sees
# the path name another namespace, drains the old one and listens in the new one.
reloads_before=$(grep -c 'config applied' "$MESH_WORK/zt1.log" || true)
ups_before=$(ups)
ip -n "$(zt_ns_node 1)" link del zp3 || mesh_fail "old sandbox's veth"
ip netns del "$(zt_ns_pod 1 client2)" || mesh_fail "old sandbox"
zt_pod_create 1 client2 3 || mesh_fail "new sandbox"
"$here_mesh/scripts/redirect-inpod.sh" "$(zt_ns_pod 1 client2)" >/dev/null || mesh_fail "redirect"
timeout 5 bash -c "until [ \$(grep -c 'pod listeners up.*client2' '$MESH_WORK/zt1.log') -gt $ups_before ]; do sleep 0.05; done" ||
    mesh_fail "no listeners in client2's new namespace"
[ "$(grep -c 'config applied' "$MESH_WORK/zt1.log" || true)" = "$reloads_before" ] ||
    mesh_fail "the config was reloaded meanwhile: the test would not show the tick's check"
mesh_wait_ready 1 || mesh_fail "not ready after the sandbox came back"
before=$after
out=$(mesh_xfer 1 client2 198.18.2.2:8080 65536) || mesh_fail "client2 in its new namespace: $out"
sleep 0.3
after=$(grep -c 'src.identity="spiffe://cluster.local/ns/default/sa/client2"' "$MESH_WORK/zt2.log" || true)
[ "$after" -gt "$before" ] || mesh_fail "client2's new namespace did not use HBONE"
echo "pod lifecycle: ok"
