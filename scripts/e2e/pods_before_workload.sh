#!/usr/bin/env bash
# pods_before_workload.sh: a pod's listeners before its workload (docs/contract.md §2, issue 18 item 1).
# The agent writes a pod entry with what istio-cni says of the pod (name, namespace, service
# account) before istiod knows its workload. ztunnel opens the pod's listeners at once, and says
# so on `GET /pods` (listeners true on every worker, for the content just written). A connection
# the pod starts then waits for its workload; the workload is written a second later and the
# connection succeeds byte-exact over HBONE with the pod's identity. A second pod whose workload
# never comes has its connection closed after 5 s with ztunnel's error, counted. A pod removed
# from the file leaves `/pods` once drained.
# timeout: 120
set -euo pipefail
. "$(dirname "$0")/lib/mesh.sh"
mesh_up pbw

for pod in "late 9" "ghost 10"; do
    # shellcheck disable=SC2086
    set -- $pod
    zt_pod_create 1 "$1" "$2" || mesh_fail "pod $1"
    "$here_mesh/scripts/redirect-inpod.sh" "$(zt_ns_pod 1 "$1")" >/dev/null || mesh_fail "redirect $1"
done
ns() { zt_ns_path "$(zt_ns_pod 1 "$1")"; }
entry() { echo "{\"uid\": \"c1//v1/Pod/default/$1\", \"netns\": \"$(ns "$1")\"}"; }
with_info() {
    echo "{\"uid\": \"c1//v1/Pod/default/$1\", \"netns\": \"$(ns "$1")\", \"name\": \"$1\",
      \"namespace\": \"default\", \"serviceAccount\": \"$1\"}"
}
pods() { zt_in "$(zt_ns_node 1)" curl -sf http://127.0.0.1:15000/pods; }
pod_field() { pods | jq -r --arg uid "c1//v1/Pod/default/$1" ".pods[] | select(.uid == \$uid) | .$2"; }

# 1. The pod entries without their workloads: listeners at once, for the bytes just written.
MESH_NODE1_PODS="$(entry client), $(entry client2), $(with_info late), $(with_info ghost)"
mesh_config '[]'
sha=$(sha256sum "$MESH_WORK/node1.json" | cut -d' ' -f1)
deadline=$((SECONDS + 10))
until [ "$(pod_field late listeners)" = true ] && [ "$(pod_field ghost listeners)" = true ]; do
    [ "$SECONDS" -lt "$deadline" ] || mesh_fail "no listeners before the workload: $(pods)"
    sleep 0.05
done
view=$(pods)
echo "/pods: $view"
[ "$(echo "$view" | jq -r .config.sha256)" = "$sha" ] || mesh_fail "config.sha256 is not the file's"
[ "$(pod_field late sha256)" = "$sha" ] || mesh_fail "the pod's sha256 is not the file's"
[ "$(pod_field late state)" = up ] || mesh_fail "late not up"
[ "$(pod_field late workloadKnown)" = false ] || mesh_fail "late's workload known too early"
[ "$(pod_field client workloadKnown)" = true ] || mesh_fail "client's workload not known"
mesh_wait_ready 1 || mesh_fail "a pod listening before its workload should not block readiness"

# 2. A connection from the pod now; its workload a second later: the connection succeeds.
zt_in "$(zt_ns_pod 1 late)" timeout 60 $PEER client --connect 198.18.2.2:8080 --bytes 262144 \
    --seed 18 >"$MESH_WORK/late.out" 2>&1 &
late_pid=$!
sleep 1
MESH_EXTRA_WORKLOADS='{"uid": "c1//v1/Pod/default/late", "name": "late", "namespace": "default",
  "serviceAccount": "late", "workloadIps": ["198.18.1.9", "2001:db8:1::9"], "protocol": "HBONE",
  "node": "node1", "services": {}},'
mesh_config '[]'
wait "$late_pid" || mesh_fail "the waiting connection failed: $(cat "$MESH_WORK/late.out")"
echo "late: $(cat "$MESH_WORK/late.out")"
mesh_wait_log 2 'connection complete.*src.identity="spiffe://cluster.local/ns/default/sa/late"' 5 ||
    mesh_fail "the server did not see the late pod's identity over HBONE"
found=$(mesh_metrics 1 | grep '^ztunnel_workload_waits_total{result="found"}' | awk '{s+=$NF} END {print s+0}')
[ "$found" -ge 1 ] || mesh_fail "the wait was not counted as found"
deadline=$((SECONDS + 5))
until [ "$(pod_field late workloadKnown)" = true ]; do
    [ "$SECONDS" -lt "$deadline" ] || mesh_fail "late's workload not known: $(pods)"
    sleep 0.05
done

# 3. The ghost's workload never comes: closed after 5 s with ztunnel's error, counted.
started=$SECONDS
if zt_in "$(zt_ns_pod 1 ghost)" timeout 30 $PEER client --connect 198.18.2.2:8080 --bytes 1024 \
    --seed 19 >"$MESH_WORK/ghost.out" 2>&1; then
    mesh_fail "the ghost's connection went through without a workload"
fi
[ $((SECONDS - started)) -ge 4 ] || mesh_fail "the ghost's connection ended before the 5 s wait"
mesh_wait_log 1 'connection failed.*error="failed to fetch information about local workload: ghost.default \(ghost\)"' 5 ||
    mesh_fail "no error for the ghost's connection"
timed_out=$(mesh_metrics 1 | grep '^ztunnel_workload_waits_total{result="timed_out"}' | awk '{s+=$NF} END {print s+0}')
[ "$timed_out" -ge 1 ] || mesh_fail "the timeout was not counted"

# 4. A pod removed from the file leaves /pods once drained.
MESH_NODE1_PODS="$(entry client), $(entry client2), $(with_info late)"
mesh_config '[]'
deadline=$((SECONDS + 10))
while [ -n "$(pod_field ghost state)" ]; do
    [ "$SECONDS" -lt "$deadline" ] || mesh_fail "the removed ghost is still listed: $(pods)"
    sleep 0.1
done
[ "$(pods | jq -r .config.sha256)" = "$(sha256sum "$MESH_WORK/node1.json" | cut -d' ' -f1)" ] ||
    mesh_fail "config.sha256 did not follow the file"
echo "pods before workload: ok"
