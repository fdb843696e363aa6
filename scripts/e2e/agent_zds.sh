#!/usr/bin/env bash
# agent_zds.sh: ztunnel-agent's ZDS client between an independent istio-cni (tests/peers/
# zds_server.py: SOCK_SEQPACKET, netns fds in SCM_RIGHTS, 5 s deadlines, a check that the client
# never sends unprompted) and ztunnel, on the two-node mesh. Node 1's agent writes node 1's
# config file: its --static file holds the mesh's workloads and services, the pods come from
# ZDS, pinned under a shared --netns-dir (as the DaemonSet's Bidirectional hostPath) that
# ztunnel opens by path. Whether a pod's listeners are open the agent reads from ztunnel's own
# `GET /pods` (its admin port). Checked, in order:
#   - the snapshot (empty) is acked and the agent is ready;
#   - an add is acked only once 15001/15008 listen in the pod's namespace, the namespace is
#     pinned (a bind mount named after the pod UID, same inode), the pod's entry carries the
#     workload uid `c1//Pod/default/client` and the CNI's WorkloadInfo, and client -> server
#     flows over HBONE;
#   - bad requests are NACKed with their reason: an add without fd, without workload info, with
#     an fd that is not a network namespace, a delete with an fd; a second snapshot-sent is
#     NACKed and the connection remade, the CNI's snapshot re-adding every pod;
#   - a delete is acked at once, the pod leaves the file and its pin is removed;
#   - a sandbox recreated under the same UID (another namespace) replaces the pin;
#   - agent restart under traffic: the pods stay in the file, the snapshot re-adds them, new
#     connections succeed; ztunnel restart: the pods come back from the file, traffic flows;
#   - no request timed out, the client never sent unprompted; SIGTERM: exit 0, pins of deleted
#     pods gone.
# timeout: 240
set -euo pipefail
. "$(dirname "$0")/lib/mesh.sh"
AGENT_BIN="$here_mesh/$BUILD/ztunnel-agent"
ZDS_PEER="/usr/bin/python3 $here_mesh/tests/peers/zds_server.py"
[ -x "$AGENT_BIN" ] || { echo "build $AGENT_BIN first (make)"; exit 1; }
/usr/bin/python3 -c 'import google.protobuf' 2>/dev/null ||
    { echo "python3-protobuf missing (scripts/install-deps.sh)"; exit 1; }
command -v nsenter >/dev/null || { echo "nsenter missing (util-linux)"; exit 1; }
proto_dir="$here_mesh/src/agent/proto"
for candidate in "${ZT_REFERENCE_PROTOS:-}" "$here_mesh/../shared/reference/protos" \
    "$here_mesh/../../shared/reference/protos"; do
    if [ -n "$candidate" ] && [ -f "$candidate/ztunnel/zds.proto" ]; then
        proto_dir="$candidate/ztunnel"
        break
    fi
done

mesh_up agentzds
NETNS_DIR=$MESH_WORK/netns
mkdir -p "$NETNS_DIR"
# The pins must reach ztunnel's mount namespace (`ip netns exec` makes its own): a shared mount,
# as `ip netns` makes /run/netns and the DaemonSet's Bidirectional hostPath does.
mount --bind "$NETNS_DIR" "$NETNS_DIR" && mount --make-shared "$NETNS_DIR" || mesh_fail "shared netns dir"
cleanup_zds() {
    for pin in "$NETNS_DIR"/*; do
        [ -e "$pin" ] && umount -l "$pin" 2>/dev/null
    done
    umount -l "$NETNS_DIR" 2>/dev/null || true
    if [ -f "$MESH_WORK/agent1.log" ]; then
        echo "--- agent log (tail)"
        tail -n 25 "$MESH_WORK/agent1.log"
    fi
    mesh_down
}
trap cleanup_zds EXIT
NODE1=$(zt_ns_node 1)

# Node 1's static part: the mesh's file without its pods, workload uids as istiod makes them
# (`c1//Pod/<ns>/<name>`, which the agent derives from the CNI's WorkloadInfo).
jq 'del(.pods) | .workloads |= map(.uid |= sub("//v1/Pod/"; "//Pod/"))' "$MESH_WORK/node1.json" \
    >"$MESH_WORK/static1.json"
UDS=$MESH_WORK/zds.sock
zt_bg "$NODE1" "$MESH_WORK/cni.log" $ZDS_PEER --uds "$UDS" --proto-dir "$proto_dir" --control 127.0.0.1:15096
zt_wait_listen "$NODE1" 15096 20 || mesh_fail "ZDS server did not start: $(tail -5 "$MESH_WORK/cni.log")"
cni() { zt_in "$NODE1" curl -sf -X "$1" "http://127.0.0.1:15096$2" ${3:+-d "$3"}; }
PODS_ADMIN=127.0.0.1:15000
# ztunnel again, after the shared mount exists, so that its mount namespace receives the pins.
mesh_zt_restart 1 || mesh_fail "ztunnel 1 restart"

start_agent() {
    # nsenter --net only: the agent stays in this mount namespace, where its pins propagate.
    nsenter --net="$(zt_ns_path "$NODE1")" env CLUSTER_ID=c1 NODE_NAME=node1 "$AGENT_BIN" \
        --config-out "$MESH_WORK/node1.json" --static "$MESH_WORK/static1.json" \
        --xds-address "" --ca-address "" --inpod-uds "$UDS" --netns-dir "$NETNS_DIR" \
        --ztunnel-admin "$PODS_ADMIN" --admin-addr 127.0.0.1:15098 --log-level info \
        >>"$MESH_WORK/agent1.log" 2>&1 </dev/null &
    AGENT_PID=$!
    ZT_BG_PIDS="$ZT_BG_PIDS $AGENT_PID"
}
stop_agent() {
    local rc=0
    kill "$AGENT_PID"
    wait "$AGENT_PID" || rc=$?
    [ "$rc" = 0 ] || mesh_fail "agent exited $rc on SIGTERM: $(tail -5 "$MESH_WORK/agent1.log")"
}
agent_get() { zt_in "$NODE1" curl -s "http://127.0.0.1:15098$1" "${@:2}"; }
wait_agent_ready() {
    local i
    for i in $(seq 100); do
        [ "$(agent_get /ready -o /dev/null -w '%{http_code}')" = 200 ] && return 0
        sleep 0.1
    done
    agent_get /debug
    tail -20 "$MESH_WORK/agent1.log"
    mesh_fail "agent not ready"
}
pod_json() { # UID NAME NETNS_NAME
    echo "{\"uid\": \"$1\", \"name\": \"$2\", \"namespace\": \"default\", \"serviceAccount\": \"$2\", \"netns\": \"$(zt_ns_path "$3")\"}"
}
expect_ack() { # JSON-RESULT WHAT
    [ "$(echo "$1" | jq -r .error)" = "" ] || mesh_fail "$2 NACKed: $1"
}
expect_nack() { # JSON-RESULT REGEX WHAT
    echo "$1" | jq -r .error | grep >/dev/null -E "$2" || mesh_fail "$3: expected a NACK matching '$2', got $1"
}
listening() { zt_in "$1" ss -ltnH | awk '{print $4}' | grep >/dev/null -E ":$2\$"; }
same_inode() { [ "$(stat -L -c %i "$1")" = "$(stat -L -c %i "$2")" ]; }

start_agent
wait_agent_ready
[ "$(cni GET /state | jq .snapshots)" -ge 1 ] || mesh_fail "no snapshot acked"

# 2. Add client: acked once its listeners exist.
CLIENT_NS=$(zt_ns_pod 1 client)
listening "$CLIENT_NS" 15001 && mesh_fail "client's listeners before the add"
r=$(cni POST /add "$(pod_json uid-client client "$CLIENT_NS")")
expect_ack "$r" "add client"
listening "$CLIENT_NS" 15001 && listening "$CLIENT_NS" 15008 || mesh_fail "acked before the listeners were open"
echo "add -> ack: $(echo "$r" | jq .ms) ms"
same_inode "$NETNS_DIR/uid-client" "$(zt_ns_path "$CLIENT_NS")" || mesh_fail "pin is not the pod's namespace"
jq -e --arg p "$NETNS_DIR/uid-client" '.pods[] | select(.uid == "c1//Pod/default/client" and .netns == $p
    and .name == "client" and .namespace == "default" and .serviceAccount == "client")' \
    "$MESH_WORK/node1.json" >/dev/null || mesh_fail "pod entry: $(jq -c .pods "$MESH_WORK/node1.json")"
mesh_xfer 1 client 198.18.2.2:8080 4096 >/dev/null || mesh_fail "client -> server after the add"
r=$(cni POST /add "$(pod_json uid-client2 client2 "$(zt_ns_pod 1 client2)")")
expect_ack "$r" "add client2"

# 3. Bad requests.
expect_nack "$(cni POST /raw '{"kind": "add-no-fd", "uid": "bad1"}')" 'exactly one network namespace fd' "add without fd"
expect_nack "$(cni POST /raw '{"kind": "add-no-info", "uid": "bad2"}')" 'workload info' "add without info"
expect_nack "$(cni POST /raw '{"kind": "add-not-netns", "uid": "bad3"}')" 'not a network namespace' "add of a mount ns"
expect_nack "$(cni POST /raw '{"kind": "del-with-fd", "uid": "uid-client"}')" 'file descriptor' "delete with fd"
[ ! -e "$NETNS_DIR/bad1" ] && [ ! -e "$NETNS_DIR/bad3" ] || mesh_fail "a NACKed add left a pin"
conns=$(cni GET /state | jq .connections)
expect_nack "$(cni POST /raw '{"kind": "snapshot"}')" 'second snapshot' "second snapshot-sent"
for _ in $(seq 100); do
    [ "$(cni GET /state | jq .snapshots)" -ge 2 ] && break
    sleep 0.1
done
[ "$(cni GET /state | jq .connections)" -gt "$conns" ] || mesh_fail "no reconnect after the protocol error"
[ "$(cni GET /state | jq .snapshots)" -ge 2 ] || mesh_fail "no second snapshot"
mesh_xfer 1 client 198.18.2.2:8080 1024 >/dev/null || mesh_fail "traffic after the reconnect"

# 4. Delete client2: acked at once, out of the file, unpinned.
r=$(cni POST /del '{"uid": "uid-client2"}')
expect_ack "$r" "del client2"
for _ in $(seq 100); do
    [ -e "$NETNS_DIR/uid-client2" ] || break
    sleep 0.1
done
[ ! -e "$NETNS_DIR/uid-client2" ] || mesh_fail "client2's pin was not removed"
jq -e '.pods | map(.uid) | index("c1//Pod/default/client2") == null' "$MESH_WORK/node1.json" >/dev/null ||
    mesh_fail "client2 still in the file"

# 5. client's sandbox recreated under the same UID (client2's namespace stands in for it).
r=$(cni POST /add "$(pod_json uid-client client "$(zt_ns_pod 1 client2)")")
expect_ack "$r" "re-add with another netns"
same_inode "$NETNS_DIR/uid-client" "$(zt_ns_path "$(zt_ns_pod 1 client2)")" || mesh_fail "pin not replaced"
r=$(cni POST /add "$(pod_json uid-client client "$CLIENT_NS")")
expect_ack "$r" "back to the first netns"
same_inode "$NETNS_DIR/uid-client" "$(zt_ns_path "$CLIENT_NS")" || mesh_fail "pin not replaced back"

# 6. Agent restart under traffic, then ztunnel restart.
stop_agent
jq -e '.pods | length == 1' "$MESH_WORK/node1.json" >/dev/null || mesh_fail "the pod left the file at the agent's exit"
mesh_xfer 1 client 198.18.2.2:8080 1024 >/dev/null || mesh_fail "traffic while the agent is down"
start_agent
wait_agent_ready
grep -q 'pods of the previous run kept' "$MESH_WORK/agent1.log" || mesh_fail "the restarted agent did not keep the pods"
mesh_xfer 1 client 198.18.2.2:8080 1024 >/dev/null || mesh_fail "traffic after the agent restart"
same_inode "$NETNS_DIR/uid-client" "$(zt_ns_path "$CLIENT_NS")" || mesh_fail "pin lost at the agent restart"
mesh_zt_restart 1 || mesh_fail "ztunnel restart"
for _ in $(seq 50); do listening "$CLIENT_NS" 15001 && break; sleep 0.1; done
mesh_xfer 1 client 198.18.2.2:8080 1024 >/dev/null || mesh_fail "traffic after the ztunnel restart"

# 7. The CNI's view and the end.
state=$(cni GET /state)
[ "$(echo "$state" | jq .violations)" = 0 ] || mesh_fail "the client sent unprompted: $state"
[ "$(echo "$state" | jq .timeouts)" = 0 ] || mesh_fail "a request timed out: $state"
r=$(cni POST /del '{"uid": "uid-client"}')
expect_ack "$r" "del client"
for _ in $(seq 100); do [ -e "$NETNS_DIR/uid-client" ] || break; sleep 0.1; done
[ -z "$(ls -A "$NETNS_DIR")" ] || mesh_fail "pins left: $(ls "$NETNS_DIR")"
stop_agent
echo "agent_zds: ok"
