#!/usr/bin/env bash
# agent_xds.sh: ztunnel-agent between an independent xDS server and ztunnel, on the two-node mesh.
# tests/peers/xds_server.py (Debian's python3-grpcio, messages from the reference .proto files)
# stands in for istiod in its own namespace (198.18.0.3, TLS with a root made at run time); one
# agent per node writes that node's ztunnel config file from xDS plus a --static file holding the
# node's pods. Checked, in order:
#   - the first sync (nothing pushed yet) writes pods only: client cannot reach server;
#   - workloads and a service pushed over xDS: traffic flows cross-node over HBONE, by pod IP
#     and by service VIP; both agents are ready (every type ACKed) and show the ACKs in /debug;
#     node1 dials istiod by IP, node2 by name (ALT_XDS_HOSTNAME), both with the token and
#     clusterid headers and ztunnel's node id;
#   - an AuthorizationPolicy pushed: the open connection is closed, a new one is refused (401);
#   - resources removed: gone from the files (the policy, then a workload);
#   - a malformed resource pushed with a valid change: NACK with its reason, the rest applied,
#     ztunnel keeps serving;
#   - istiod restarts: the agents reconnect with initial_resource_versions (and the token file,
#     rotated meanwhile, read again) and the files are not rewritten;
#   - istiod comes back with a certificate from another root: no connection, a clear log line,
#     the last files kept, ztunnel still serving;
#   - SIGTERM: each agent exits 0.
# timeout: 300
set -euo pipefail
. "$(dirname "$0")/lib/mesh.sh"
. "$here_mesh/tests/scripts/lib/openssl_pki.sh"
AGENT_BIN="$here_mesh/$BUILD/ztunnel-agent"
XDS_PEER="/usr/bin/python3 $here_mesh/tests/peers/xds_server.py"
[ -x "$AGENT_BIN" ] || { echo "build $AGENT_BIN first (make)"; exit 1; }
/usr/bin/python3 -c 'import grpc, google.protobuf' 2>/dev/null ||
    { echo "python3-grpcio / python3-protobuf missing (scripts/install-deps.sh)"; exit 1; }

# The reference .proto files when they are at hand (the wire contract), else ours.
proto_dir="$here_mesh/src/agent/proto"
for candidate in "${ZT_REFERENCE_PROTOS:-}" "$here_mesh/../shared/reference/protos" \
    "$here_mesh/../../shared/reference/protos"; do
    if [ -n "$candidate" ] && [ -f "$candidate/ztunnel/xds.proto" ]; then
        proto_dir="$candidate/ztunnel"
        break
    fi
done

mesh_up agentx
ISTIOD_NS=$(zt_ns_node 3)
zt_node_create 3 || mesh_fail "istiod namespace"
ISTIOD=$(zt_node_ip 3)
pki=$MESH_WORK/pki
mkdir -p "$pki"
(cd "$pki" && pki_make_ca root && pki_make_server root istiod "DNS:istiod.istio-system.svc,IP:$ISTIOD" &&
    pki_make_ca stranger && pki_make_server stranger imposter "DNS:istiod.istio-system.svc,IP:$ISTIOD") ||
    mesh_fail "pki"
echo "token-for-test" >"$MESH_WORK/token"

start_istiod() { # CERT_NAME
    zt_bg "$ISTIOD_NS" "$MESH_WORK/istiod.log" $XDS_PEER --listen "$ISTIOD:15012" \
        --cert "$pki/$1.pem" --key "$pki/$1.key" --proto-dir "$proto_dir" \
        --control "127.0.0.1:15099" --state-file "$MESH_WORK/istiod-state.json"
    ISTIOD_PID=$ZT_BG_LAST
    zt_wait_listen "$ISTIOD_NS" 15099 20 && zt_wait_listen "$ISTIOD_NS" 15012 5 ||
        mesh_fail "xds server did not start: $(tail -5 "$MESH_WORK/istiod.log")"
}
stop_istiod() {
    kill "$ISTIOD_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$ISTIOD_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$ISTIOD_PID" 2>/dev/null || true
    wait "$ISTIOD_PID" 2>/dev/null || true
}
control() { # METHOD PATH [JSON]
    zt_in "$ISTIOD_NS" curl -sf -X "$1" "http://127.0.0.1:15099$2" ${3:+-d "$3"}
}
istiod_state() { control GET /state; }

# Each agent's --static file: its node's pods only (workloads come from xDS).
static_pods() { # N
    if [ "$1" = 1 ]; then
        echo "{\"pods\": [{\"uid\": \"c1//v1/Pod/default/client\", \"netns\": \"$(zt_ns_path "$(zt_ns_pod 1 client)")\"},
          {\"uid\": \"c1//v1/Pod/default/client2\", \"netns\": \"$(zt_ns_path "$(zt_ns_pod 1 client2)")\"}]}"
    else
        echo "{\"pods\": [{\"uid\": \"c1//v1/Pod/default/server\", \"netns\": \"$(zt_ns_path "$(zt_ns_pod 2 server)")\"}]}"
    fi
}
start_agent() { # N [VAR=VALUE...]
    local n=$1
    shift
    static_pods "$n" >"$MESH_WORK/static$n.json"
    zt_bg "$(zt_ns_node "$n")" "$MESH_WORK/agent$n.log" env NODE_NAME="node$n" \
        POD_NAME="ztunnel-node$n" POD_NAMESPACE=istio-system INSTANCE_IP="$(zt_node_ip "$n")" \
        CLUSTER_ID=c1 "$@" "$AGENT_BIN" --config-out "$MESH_WORK/node$n.json" \
        --static "$MESH_WORK/static$n.json" --xds-root-cert "$pki/root.pem" \
        --token-file "$MESH_WORK/token" --admin-addr 127.0.0.1:15098 --log-level info
    eval "AGENT${n}_PID=\$ZT_BG_LAST"
}
agent_get() { # N PATH
    zt_in "$(zt_ns_node "$1")" curl -s "http://127.0.0.1:15098$2"
}
applied() { grep -c 'config applied' "$MESH_WORK/zt$1.log" || true; }
# wait_applied N BEFORE REGEX: until node N's ztunnel logs a new "config applied" matching REGEX.
wait_applied() {
    local deadline=$((SECONDS + 15))
    until [ "$(applied "$1")" -gt "$2" ] &&
        tail -n +"$(($2 + 1))" <(grep 'config applied' "$MESH_WORK/zt$1.log") | grep >/dev/null -E "$3"; do
        [ "$SECONDS" -lt "$deadline" ] || mesh_fail "node$1 did not apply $3"
        sleep 0.1
    done
}
push() { # JSON
    control POST /push "$1" >/dev/null || mesh_fail "push refused: $1"
}

start_istiod istiod
b1=$(applied 1)
b2=$(applied 2)
start_agent 1 XDS_ADDRESS="$ISTIOD:15012"
start_agent 2 XDS_ADDRESS="https://$ISTIOD:15012" ALT_XDS_HOSTNAME=istiod.istio-system.svc

# 1. The first sync: nothing pushed, so each file holds its node's pods and nothing else.
wait_applied 1 "$b1" 'workloads=0 services=0 policies=0 pods=2'
wait_applied 2 "$b2" 'workloads=0 services=0 policies=0 pods=1'
if mesh_xfer 1 client 198.18.2.2:8080 64 >/dev/null 2>&1; then
    mesh_fail "traffic flowed before any workload was pushed"
fi

# 2. Workloads and a service over xDS.
workload() { # NAME NODE IP6 PROTOCOL [SERVICES]
    echo "{\"name\": \"c1//v1/Pod/default/$1\", \"json\": {\"workload\": {
      \"uid\": \"c1//v1/Pod/default/$1\", \"name\": \"$1\", \"namespace\": \"default\",
      \"serviceAccount\": \"$1\", \"addresses\": [\"$3\"], \"tunnelProtocol\": \"$4\",
      \"node\": \"$2\", \"services\": ${5:-{\}}}}}"
}
server_services='{"default/server.default.svc.cluster.local": {"ports": [{"servicePort": 80, "targetPort": 8080}]}}'
b1=$(applied 1)
b2=$(applied 2)
push "{\"type\": \"address\", \"resources\": [
  $(workload client node1 198.18.1.2 HBONE), $(workload client2 node1 198.18.1.3 HBONE),
  $(workload server node2 198.18.2.2 HBONE "$server_services"),
  $(workload plainsrv node2 198.18.2.3 NONE),
  {\"name\": \"default/server.default.svc.cluster.local\", \"json\": {\"service\": {
    \"name\": \"server\", \"namespace\": \"default\", \"hostname\": \"server.default.svc.cluster.local\",
    \"addresses\": [{\"network\": \"\", \"address\": \"198.19.0.10\"}],
    \"ports\": [{\"servicePort\": 80, \"targetPort\": 8080}],
    \"subjectAltNames\": [\"spiffe://cluster.local/ns/default/sa/server\"]}}}]}"
wait_applied 1 "$b1" 'workloads=4 services=1 policies=0 pods=2'
wait_applied 2 "$b2" 'workloads=4 services=1 policies=0 pods=1'
mesh_wait_ready 1 && mesh_wait_ready 2 || mesh_fail "ztunnels not ready with xDS workloads"
out=$(mesh_xfer 1 client 198.18.2.2:8080 262144) || mesh_fail "pod IP transfer: $out"
out=$(mesh_xfer 1 client 198.19.0.10:80 65536) || mesh_fail "service VIP transfer: $out"
mesh_wait_log 2 'connection complete.*direction="inbound"' ||
    mesh_fail "no HBONE inbound on node2"
for n in 1 2; do
    [ "$(agent_get "$n" /ready)" = "ready" ] || mesh_fail "agent$n not ready: $(agent_get "$n" /ready)"
    agent_get "$n" /debug | jq -e '.xds.acked and .xds.synced and (.xds.types | length == 2) and
        (.xds.types[0].lastAck.nonce != "") and .configFile.current' >/dev/null ||
        mesh_fail "agent$n /debug: $(agent_get "$n" /debug)"
done
istiod_state >"$MESH_WORK/state1.json"
jq -e --arg n1 "ztunnel~$(zt_node_ip 1)~ztunnel-node1.istio-system~istio-system.svc.cluster.local" '
    [.streams[] | select(.closed | not)] | length == 2 and
    all(.metadata.authorization == "Bearer token-for-test" and .metadata.clusterid == "c1") and
    any(.node_id == $n1) and all(.node_metadata.NODE_NAME | startswith("node")) and
    all([.initial[].type_url] == ["type.googleapis.com/istio.workload.Address",
                                 "type.googleapis.com/istio.security.Authorization"])' \
    "$MESH_WORK/state1.json" >/dev/null || mesh_fail "what istiod saw: $(cat "$MESH_WORK/state1.json")"
echo "xds sync: ok"

# 3. A policy closes the open connection and refuses new ones.
zt_in "$(zt_ns_pod 1 client)" timeout 40 $PEER hold --connect 198.18.2.2:8080 --seconds 30 \
    --ready-file "$MESH_WORK/hold.ready" >"$MESH_WORK/hold" 2>&1 &
timeout 10 bash -c "until [ -e '$MESH_WORK/hold.ready' ]; do sleep 0.05; done" ||
    mesh_fail "hold did not connect"
b2=$(applied 2)
push '{"type": "authorization", "resources": [{"name": "default/deny-client", "json": {
  "name": "deny-client", "namespace": "default", "scope": "NAMESPACE", "action": "DENY",
  "rules": [{"clauses": [{"matches": [{"principals": [{"exact": "cluster.local/ns/default/sa/client"}]}]}]}]}}]}'
wait_applied 2 "$b2" 'policies=1'
zt_wait_line "$MESH_WORK/hold" 'ended' 10 || mesh_fail "the open connection survived the policy"
mesh_wait_log 2 'connection closed due to policy change' || mesh_fail "no late rejection logged"
if mesh_xfer 1 client 198.18.2.2:8080 1024 >/dev/null 2>&1; then
    mesh_fail "a new connection passed the DENY policy"
fi
mesh_wait_log 1 'connection complete.*src.workload="client".*error="http status: 401"' ||
    mesh_fail "the client side did not see 401"
grep -q '"name":"deny-client"' "$MESH_WORK/node2.json" || mesh_fail "policy not in node2's file"
echo "xds policy: ok"

# 4. Removals: the policy, then a workload, leave the files.
b1=$(applied 1)
b2=$(applied 2)
push '{"type": "authorization", "removed": ["default/deny-client"]}'
wait_applied 2 "$b2" 'policies=0'
grep -q 'deny-client' "$MESH_WORK/node2.json" && mesh_fail "removed policy still in the file"
out=$(mesh_xfer 1 client 198.18.2.2:8080 4096) || mesh_fail "traffic after the policy removal: $out"
b1=$(applied 1)
push '{"type": "address", "removed": ["c1//v1/Pod/default/plainsrv"]}'
wait_applied 1 "$b1" 'workloads=3'
grep -q 'plainsrv' "$MESH_WORK/node1.json" && mesh_fail "removed workload still in the file"
echo "xds removal: ok"

# 5. A malformed resource next to a valid change: NACK with the reason, the rest applied.
b1=$(applied 1)
push "{\"type\": \"address\", \"resources\": [{\"name\": \"garbage\", \"raw_b64\": \"//79\"},
  $(workload plainsrv node2 198.18.2.3 NONE)]}"
wait_applied 1 "$b1" 'workloads=4'
istiod_state >"$MESH_WORK/state2.json"
jq -e '[.events[] | select(.ack | not) | select(.error | startswith("garbage: decode"))] | length == 2' \
    "$MESH_WORK/state2.json" >/dev/null || mesh_fail "no NACK naming the malformed resource: $(jq -c '.events[-4:]' "$MESH_WORK/state2.json")"
agent_get 1 /debug | jq -e '.xds.types[0].lastNack.error | startswith("garbage: decode")' >/dev/null ||
    mesh_fail "agent1 /debug lastNack: $(agent_get 1 /debug)"
grep -q 'type=NACK error="garbage: decode' "$MESH_WORK/agent1.log" || mesh_fail "no NACK log line"
out=$(mesh_xfer 1 client 198.18.2.2:8080 4096) || mesh_fail "traffic after the NACK: $out"
echo "xds nack: ok"

# 6. istiod restarts: reconnect with initial_resource_versions; the files are not rewritten.
sum1=$(sha256sum <"$MESH_WORK/node1.json")
sum2=$(sha256sum <"$MESH_WORK/node2.json")
ino1=$(stat -c %i "$MESH_WORK/node1.json")
writes1=$(grep -c 'config written' "$MESH_WORK/agent1.log")
writes2=$(grep -c 'config written' "$MESH_WORK/agent2.log")
echo "token-rotated" >"$MESH_WORK/token.tmp" && mv "$MESH_WORK/token.tmp" "$MESH_WORK/token"
stop_istiod
start_istiod istiod
deadline=$((SECONDS + 20))
until istiod_state 2>/dev/null | jq -e '[.streams[] | select(.closed | not) |
        select(.initial | length == 2)] | length == 2' >/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || mesh_fail "agents did not reconnect: $(tail -5 "$MESH_WORK/agent1.log")"
    sleep 0.2
done
istiod_state >"$MESH_WORK/state3.json"
jq -e '[.streams[] | .initial[] | select(.type_url | endswith("Address")) |
        .initial_resource_versions | has("c1//v1/Pod/default/server") and has("garbage")] |
        length == 2 and all' "$MESH_WORK/state3.json" >/dev/null ||
    mesh_fail "initial_resource_versions: $(jq -c '.streams[].initial' "$MESH_WORK/state3.json")"
jq -e '[.streams[] | select(.closed | not) | .metadata.authorization] |
        all(. == "Bearer token-rotated")' "$MESH_WORK/state3.json" >/dev/null ||
    mesh_fail "the token file was not read again: $(jq -c '[.streams[].metadata]' "$MESH_WORK/state3.json")"
sleep 1  # Let a (wrong) write happen if one were coming.
[ "$(sha256sum <"$MESH_WORK/node1.json")" = "$sum1" ] || mesh_fail "node1's file changed"
[ "$(sha256sum <"$MESH_WORK/node2.json")" = "$sum2" ] || mesh_fail "node2's file changed"
[ "$(stat -c %i "$MESH_WORK/node1.json")" = "$ino1" ] || mesh_fail "node1's file was rewritten"
[ "$(grep -c 'config written' "$MESH_WORK/agent1.log")" = "$writes1" ] || mesh_fail "agent1 wrote again"
[ "$(grep -c 'config written' "$MESH_WORK/agent2.log")" = "$writes2" ] || mesh_fail "agent2 wrote again"
echo "xds reconnect: ok"

# 7. An istiod with a certificate from another root: refused, logged, files and traffic kept.
stop_istiod
start_istiod imposter
zt_wait_line "$MESH_WORK/agent1.log" 'does not verify to the configured root certificates' 20 ||
    mesh_fail "no clear log line about istiod's certificate"
zt_wait_line "$MESH_WORK/agent2.log" 'does not verify to the configured root certificates' 20 ||
    mesh_fail "agent2: no clear log line about istiod's certificate"
sleep 1
jq -e '[.streams[] | select(.initial | length > 0)] | length == 0' <(istiod_state) >/dev/null ||
    mesh_fail "an agent completed a stream with the imposter"
[ "$(sha256sum <"$MESH_WORK/node1.json")" = "$sum1" ] || mesh_fail "node1's file changed under the imposter"
out=$(mesh_xfer 1 client 198.18.2.2:8080 4096) || mesh_fail "traffic with istiod unreachable: $out"
agent_get 1 /metrics | grep >/dev/null 'istio_xds_connection_terminations_total{reason="ConnectionError"}' ||
    mesh_fail "ConnectionError not counted"
echo "xds bad certificate: ok"

# 8. SIGTERM: each agent exits 0.
for n in 1 2; do
    eval "pid=\$AGENT${n}_PID"
    kill -TERM "$pid"
    rc=0
    timeout 10 tail --pid="$pid" -f /dev/null || mesh_fail "agent$n did not exit"
    wait "$pid" || rc=$?
    [ "$rc" = 0 ] || mesh_fail "agent$n exited $rc"
done
grep -q 'ztunnel-agent stopped' "$MESH_WORK/agent1.log" || mesh_fail "no clean stop logged"
echo "agent xds: ok"
