#!/usr/bin/env bash
# agent_mesh.sh: ztunnel-agent speaking to the xDS server, the Istio CA and istio-cni at the same
# time, as on a node of a real cluster (issue 18 item 5), on the two-node mesh. The independent
# peers: tests/peers/xds_server.py and tests/peers/ca_server.py stand in for istiod (node 3,
# 198.18.0.3, xDS on 15012 and the CA on 15013: two processes where istiod is one), and
# tests/peers/zds_server.py for istio-cni on node 1. Node 1's agent takes its pods from ZDS
# (pinned under a shared --netns-dir), its workloads from xDS and its certificates from the CA;
# node 2's agent takes workloads from xDS and certificates from the CA, its one pod (server)
# from a --static file (node 2 has no CNI stand-in). Both ztunnels run in file mode on their
# agent's folder; SECRET_TTL=8s, so every certificate is renewed every ~4 s throughout.
# Checked, in order:
#   1. client and client2 added over ZDS: each ack comes once its listeners exist, their
#      certificates are the CA's (leaf issued by its root, the two-root bundle written);
#   2. a pod added while xDS does not know its workload, with ztunnel held stopped for a second
#      as the add arrives: its certificate is requested from the CA at the add; the ack comes
#      after ztunnel resumed and logged the pod's listeners up (the CNI's clock), /pods says so
#      at the ack; its first connection starts right after the ack, waits, and succeeds
#      byte-exact over HBONE with the pod's identity once xDS publishes the workload a second
#      later;
#   3. that pod deleted: acked, drained, its pin and its certificate folder removed;
#   3b. a pod whose workload xDS knows before the add, added while the CA answers 2 s late (a busy
#      istiod): its first connection, right after the ack, finds its workload but not yet its
#      certificate, waits for it (counted as found) and succeeds once the agent wrote it; none
#      is refused for want of a certificate; then it is deleted as the pod of 3;
#   4. agent restarts under traffic (long paced transfers and 10 new connections/s from client,
#      certificates renewed meanwhile): SIGTERM (exit 0), then SIGKILL; while it is down the file
#      is unchanged and ztunnel serves on; each restarted agent recovers the pods from the CNI's
#      next snapshot with one pin per pod; every connection byte-exact, none failed; client's
#      and server's certificates renewed at least twice under it;
#   5. ztunnel SIGKILLed while new connections are made: the pods listen again within 1 s of its
#      start (its log's clock), every connection started after that succeeds (none refused for
#      want of a certificate), the agent ran on untouched;
#   6. the pods deleted: nothing left under --netns-dir; the CNI saw no NACK, no timeout and no
#      unprompted message; each agent exits 0 on SIGTERM.
# A CA refusal keeping the previous certificate is agent_ca.sh's.
# timeout: 240
set -euo pipefail
. "$(dirname "$0")/lib/mesh.sh"
. "$here_mesh/tests/scripts/lib/openssl_pki.sh"
AGENT_BIN="$here_mesh/$BUILD/ztunnel-agent"
PEERS="/usr/bin/python3 $here_mesh/tests/peers"
[ -x "$AGENT_BIN" ] || { echo "build $AGENT_BIN first (make)"; exit 1; }
/usr/bin/python3 -c 'import grpc, google.protobuf, cryptography' 2>/dev/null ||
    { echo "python3-grpcio / python3-protobuf / python3-cryptography missing (scripts/install-deps.sh)"; exit 1; }
command -v nsenter >/dev/null || { echo "nsenter missing (util-linux)"; exit 1; }
proto_dir="$here_mesh/src/agent/proto"
for candidate in "${ZT_REFERENCE_PROTOS:-}" "$here_mesh/../shared/reference/protos" \
    "$here_mesh/../../shared/reference/protos"; do
    if [ -n "$candidate" ] && [ -f "$candidate/ztunnel/xds.proto" ] &&
        [ -f "$candidate/ztunnel/citadel.proto" ] && [ -f "$candidate/ztunnel/zds.proto" ]; then
        proto_dir="$candidate/ztunnel"
        break
    fi
done
ID=spiffe://cluster.local/ns/default/sa
TTL=8s

mesh_up agentmesh
# The mesh's ztunnels sign with a local CA; here each runs on its agent's folder.
for n in 1 2; do
    eval "pid=\$MESH_ZT${n}_PID"
    kill "$pid" && wait "$pid" 2>/dev/null || true
done
NODE1=$(zt_ns_node 1)
NETNS_DIR=$MESH_WORK/netns
mkdir -p "$NETNS_DIR"
# The pins must reach ztunnel's mount namespace (`ip netns exec` makes its own): a shared mount,
# as the DaemonSet's Bidirectional hostPath.
mount --bind "$NETNS_DIR" "$NETNS_DIR" && mount --make-shared "$NETNS_DIR" || mesh_fail "shared netns dir"
cleanup_agent_mesh() {
    local rc=$? pin n keep="$here_mesh/$BUILD/test-logs/agent_mesh.work"
    if [ "$rc" != 0 ]; then
        # Every peer's and process's log, for the failure's story (the tails below are short).
        rm -rf "$keep" && mkdir -p "$keep" && cp "$MESH_WORK"/*.log "$MESH_WORK"/*.json* \
            "$MESH_WORK"/*.out "$keep/" 2>/dev/null || true
        echo "--- logs kept in $keep"
    fi
    for pin in "$NETNS_DIR"/*; do
        [ -e "$pin" ] && umount -l "$pin" 2>/dev/null
    done
    umount -l "$NETNS_DIR" 2>/dev/null || true
    for n in 1 2; do
        if [ -f "$MESH_WORK/agent$n.log" ]; then
            echo "--- agent node$n log (tail)"
            tail -n 25 "$MESH_WORK/agent$n.log"
        fi
    done
    mesh_down
}
trap cleanup_agent_mesh EXIT

# istiod: the xDS server and the CA, TLS with a root made here.
ISTIOD_NS=$(zt_ns_node 3)
zt_node_create 3 || mesh_fail "istiod namespace"
ISTIOD=$(zt_node_ip 3)
pki=$MESH_WORK/pki
mkdir -p "$pki"
(cd "$pki" && pki_make_ca root && pki_make_server root istiod "DNS:istiod.istio-system.svc,IP:$ISTIOD") \
    >/dev/null || mesh_fail "pki"
echo "token-node1" >"$MESH_WORK/token1"
echo "token-node2" >"$MESH_WORK/token2"
zt_bg "$ISTIOD_NS" "$MESH_WORK/xds.log" $PEERS/xds_server.py --listen "$ISTIOD:15012" \
    --cert "$pki/istiod.pem" --key "$pki/istiod.key" --proto-dir "$proto_dir" --control 127.0.0.1:15099
zt_bg "$ISTIOD_NS" "$MESH_WORK/ca.log" $PEERS/ca_server.py --listen "$ISTIOD:15013" \
    --cert "$pki/istiod.pem" --key "$pki/istiod.key" --proto-dir "$proto_dir" \
    --control 127.0.0.1:15097 --token token-node1=node1 --token token-node2=node2 \
    --pod "node1=$ID/client" --pod "node1=$ID/client2" --pod "node2=$ID/server"
UDS=$MESH_WORK/zds.sock
zt_bg "$NODE1" "$MESH_WORK/cni.log" $PEERS/zds_server.py --uds "$UDS" --proto-dir "$proto_dir" \
    --control 127.0.0.1:15096
zt_wait_listen "$ISTIOD_NS" 15099 30 && zt_wait_listen "$ISTIOD_NS" 15012 10 ||
    mesh_fail "xDS server did not start: $(tail -5 "$MESH_WORK/xds.log")"
zt_wait_listen "$ISTIOD_NS" 15097 30 && zt_wait_listen "$ISTIOD_NS" 15013 10 ||
    mesh_fail "CA did not start: $(tail -5 "$MESH_WORK/ca.log")"
zt_wait_listen "$NODE1" 15096 30 || mesh_fail "ZDS server did not start: $(tail -5 "$MESH_WORK/cni.log")"
echo "[${SECONDS}s] mesh, istiod and istio-cni up"
xds() { zt_in "$ISTIOD_NS" curl -sf -X "$1" "http://127.0.0.1:15099$2" ${3:+-d "$3"}; }
ca() { zt_in "$ISTIOD_NS" curl -sf -X "$1" "http://127.0.0.1:15097$2" ${3:+-d "$3"}; }
cni() { zt_in "$NODE1" curl -sf -X "$1" "http://127.0.0.1:15096$2" ${3:+-d "$3"}; }
workload() { # NAME NODE IP
    echo "{\"name\": \"c1//Pod/default/$1\", \"json\": {\"workload\": {
      \"uid\": \"c1//Pod/default/$1\", \"name\": \"$1\", \"namespace\": \"default\",
      \"serviceAccount\": \"$1\", \"addresses\": [\"$3\"], \"tunnelProtocol\": \"HBONE\",
      \"node\": \"$2\"}}}"
}
xds POST /push "{\"type\": \"address\", \"resources\": [$(workload client node1 198.18.1.2),
    $(workload client2 node1 198.18.1.3), $(workload server node2 198.18.2.2)]}" >/dev/null ||
    mesh_fail "push"
echo "{\"pods\": [{\"uid\": \"c1//Pod/default/server\", \"netns\": \"$(zt_ns_path "$(zt_ns_pod 2 server)")\",
    \"name\": \"server\", \"namespace\": \"default\", \"serviceAccount\": \"server\"}]}" >"$MESH_WORK/static2.json"

AGENT_ENV=(CLUSTER_ID=c1 SECRET_TTL=$TTL POD_NAMESPACE=istio-system)
AGENT_FLAGS=(--xds-address "$ISTIOD:15012" --xds-root-cert "$pki/root.pem"
    --ca-address "$ISTIOD:15013" --ca-root-cert "$pki/root.pem" --admin-addr 127.0.0.1:15098
    --log-level info)
start_agent1() {
    mkdir -p "$MESH_WORK/certs1"
    # nsenter --net only: the agent stays in this mount namespace, where its pins propagate.
    nsenter --net="$(zt_ns_path "$NODE1")" env "${AGENT_ENV[@]}" NODE_NAME=node1 \
        POD_NAME=ztunnel-node1 INSTANCE_IP="$(zt_node_ip 1)" "$AGENT_BIN" "${AGENT_FLAGS[@]}" \
        --config-out "$MESH_WORK/node1.json" --token-file "$MESH_WORK/token1" \
        --cert-dir "$MESH_WORK/certs1" --inpod-uds "$UDS" --netns-dir "$NETNS_DIR" \
        --ztunnel-admin 127.0.0.1:15000 >>"$MESH_WORK/agent1.log" 2>&1 </dev/null &
    AGENT1_PID=$!
    ZT_BG_PIDS="$ZT_BG_PIDS $AGENT1_PID"
}
start_agent2() {
    mkdir -p "$MESH_WORK/certs2"
    zt_bg "$(zt_ns_node 2)" "$MESH_WORK/agent2.log" env "${AGENT_ENV[@]}" NODE_NAME=node2 \
        POD_NAME=ztunnel-node2 INSTANCE_IP="$(zt_node_ip 2)" "$AGENT_BIN" "${AGENT_FLAGS[@]}" \
        --config-out "$MESH_WORK/node2.json" --token-file "$MESH_WORK/token2" \
        --cert-dir "$MESH_WORK/certs2" --static "$MESH_WORK/static2.json" --inpod-uds ""
    AGENT2_PID=$ZT_BG_LAST
}
agent_get() { zt_in "$(zt_ns_node "$1")" curl -s "http://127.0.0.1:15098$2" "${@:3}"; }
wait_agent_ready() { # N
    local i
    for i in $(seq 150); do
        [ "$(agent_get "$1" /ready -o /dev/null -w '%{http_code}')" = 200 ] && return 0
        sleep 0.1
    done
    agent_get "$1" /ready
    mesh_fail "agent $1 not ready: $(agent_get "$1" /debug | head -c 2000)"
}
stop_agent() { # N SIGNAL: waits for the exit (10 s); the exit code in STOPPED_RC
    local pid
    eval "pid=\$AGENT${1}_PID"
    kill "-$2" "$pid"
    timeout 10 tail --pid="$pid" -f /dev/null || mesh_fail "agent $1 did not exit on SIG$2"
    STOPPED_RC=0
    wait "$pid" || STOPPED_RC=$?
}
pod_json() { # POD_UID NAME
    echo "{\"uid\": \"$1\", \"name\": \"$2\", \"namespace\": \"default\", \"serviceAccount\": \"$2\",
      \"netns\": \"$(zt_ns_path "$(zt_ns_pod 1 "$2")")\"}"
}
expect_ack() { # JSON-RESULT WHAT
    [ "$(echo "$1" | jq -r .error)" = "" ] || mesh_fail "$2 NACKed: $1"
}
listening() { zt_in "$1" ss -ltnH | awk '{print $4}' | grep -E >/dev/null ":$2\$"; }
zt_pods() { zt_in "$NODE1" curl -sf http://127.0.0.1:15000/pods; }
pins() { (cd "$NETNS_DIR" && ls -A | sort | tr '\n' ' '); }
# delete_pod NAME: the CNI deletes pod NAME (acked), istiod drops its workload, and within 10 s
# its pin and its identity's certificate folder are gone.
delete_pod() {
    expect_ack "$(cni POST /del "{\"uid\": \"uid-$1\"}")" "del $1"
    xds POST /push "{\"type\": \"address\", \"removed\": [\"c1//Pod/default/$1\"]}" >/dev/null ||
        mesh_fail "push removal of $1"
    local deadline=$((SECONDS + 10))
    while [ -e "$NETNS_DIR/uid-$1" ] || [ -e "$MESH_WORK/certs1/default/$1" ]; do
        [ "$SECONDS" -lt "$deadline" ] || mesh_fail "$1 not cleaned up: pins '$(pins)', certs $(ls "$MESH_WORK/certs1/default")"
        sleep 0.1
    done
}
# expect_pins UID...: exactly these pins, each mounted once, each on its pod's namespace.
expect_pins() {
    local want="" uid name
    for uid in "$@"; do want="$want$uid "; done
    [ "$(pins)" = "$want" ] || mesh_fail "pins: '$(pins)', want '$want'"
    for uid in "$@"; do
        [ "$(awk -v p="$NETNS_DIR/$uid" '$5 == p' /proc/self/mountinfo | wc -l)" = 1 ] ||
            mesh_fail "$uid is mounted $(awk -v p="$NETNS_DIR/$uid" '$5 == p' /proc/self/mountinfo | wc -l) times"
        name=${uid#uid-}
        [ "$(stat -L -c %i "$NETNS_DIR/$uid")" = "$(stat -L -c %i "$(zt_ns_path "$(zt_ns_pod 1 "$name")")")" ] ||
            mesh_fail "$uid is not $name's namespace"
    done
}
issued() { ca GET /state | jq "[.requests[] | select(.identity == \"$ID/$1\" and .result == \"issued\")] | length"; }
# from_ca N SA: the identity's files are the CA's: a leaf naming it, issued by the CA's root,
# verifying to the two-root bundle the agent wrote.
from_ca() {
    local d="$MESH_WORK/certs$1/default/$2"
    openssl x509 -noout -ext subjectAltName -in "$d/cert-chain.pem" | grep >/dev/null "URI:$ID/$2" ||
        mesh_fail "$2's leaf does not name $ID/$2"
    openssl x509 -noout -issuer -in "$d/cert-chain.pem" | grep >/dev/null 'zt-test-ca-root-1' ||
        mesh_fail "$2's leaf is not the CA's: $(openssl x509 -noout -issuer -in "$d/cert-chain.pem")"
    [ "$(grep -c 'BEGIN CERTIFICATE' "$MESH_WORK/certs$1/root-cert.pem")" = 2 ] ||
        mesh_fail "node$1's root-cert.pem does not hold the CA's two roots"
    openssl verify -CAfile "$MESH_WORK/certs$1/root-cert.pem" "$d/cert-chain.pem" >/dev/null ||
        mesh_fail "$2's leaf does not verify to the written roots"
}
now() { date +%s.%N; }
epoch() { date -d "$1" +%s.%N; } # a log line's time

# 0. Agents first (node 1 has no pod yet), then the ztunnels on the files they write.
start_agent1
start_agent2
wait_agent_ready 1
wait_agent_ready 2
MESH_CERT_FLAGS=(--cert-dir "$MESH_WORK/certs1")
mesh_zt_start 1
MESH_CERT_FLAGS=(--cert-dir "$MESH_WORK/certs2")
mesh_zt_start 2
mesh_wait_ready 2 || mesh_fail "ztunnel 2 not ready on the agent's certificate"

# 1. client and client2 over ZDS.
for name in client client2; do
    r=$(cni POST /add "$(pod_json "uid-$name" "$name")")
    expect_ack "$r" "add $name"
    listening "$(zt_ns_pod 1 "$name")" 15001 && listening "$(zt_ns_pod 1 "$name")" 15008 ||
        mesh_fail "$name acked before its listeners were open"
done
expect_pins uid-client uid-client2
wait_agent_ready 1
mesh_wait_ready 1 || mesh_fail "ztunnel 1 not ready on the agent's certificates"
from_ca 1 client
from_ca 1 client2
from_ca 2 server
mesh_xfer 1 client 198.18.2.2:8080 65536 >/dev/null || mesh_fail "client -> server on the agents' files"
echo "[${SECONDS}s] pods over ZDS, certificates from the CA: ok"

# 2. fresh: a pod istio-cni hands over before istiod knows its workload.
zt_pod_create 1 fresh 9 || mesh_fail "pod fresh"
"$here_mesh/scripts/redirect-inpod.sh" "$(zt_ns_pod 1 fresh)" >/dev/null || mesh_fail "redirect fresh"
FRESH_NS=$(zt_ns_pod 1 fresh)
ca POST /pods "{\"node\": \"node1\", \"identities\": [\"$ID/client\", \"$ID/client2\", \"$ID/fresh\"]}" >/dev/null
# ztunnel is held stopped for a second as the add arrives (a busy node): an agent that acked
# before ztunnel's listeners exist is caught by the CNI's clock.
kill -STOP "$MESH_ZT1_PID"
cni POST /add "$(pod_json uid-fresh fresh)" >"$MESH_WORK/fresh.ack" &
add_pid=$!
sleep 1
if [ -s "$MESH_WORK/fresh.ack" ]; then
    kill -CONT "$MESH_ZT1_PID"
    mesh_fail "fresh was acked while ztunnel was stopped: $(cat "$MESH_WORK/fresh.ack")"
fi
resumed_at=$(now)
kill -CONT "$MESH_ZT1_PID"
wait "$add_pid" || mesh_fail "the CNI's add of fresh failed"
expect_ack "$(cat "$MESH_WORK/fresh.ack")" "add fresh"
zt_in "$FRESH_NS" timeout 30 $PEER client --connect 198.18.2.2:8080 --bytes 262144 --seed 5 \
    >"$MESH_WORK/fresh.out" 2>&1 &
fresh_pid=$!
view=$(zt_pods)
echo "$view" | jq -e '.pods[] | select(.uid == "c1//Pod/default/fresh") |
    .listeners == true and .state == "up" and .workloadKnown == false' >/dev/null ||
    mesh_fail "at the ack ztunnel's /pods says: $view"
listening "$FRESH_NS" 15001 && listening "$FRESH_NS" 15008 || mesh_fail "fresh acked before its listeners"
sleep 1
xds POST /push "{\"type\": \"address\", \"resources\": [$(workload fresh node1 198.18.1.9)]}" >/dev/null ||
    mesh_fail "push fresh"
wait "$fresh_pid" || mesh_fail "fresh's first connection failed: $(cat "$MESH_WORK/fresh.out")"
mesh_wait_log 2 'connection complete.*src.identity="spiffe://cluster.local/ns/default/sa/fresh"' 5 ||
    mesh_fail "node 2 did not see fresh's identity over HBONE"
found=$(mesh_metrics 1 | grep '^ztunnel_workload_waits_total{result="found"}' | awk '{s+=$NF} END {print s+0}')
[ "$found" -ge 1 ] || mesh_fail "the connection did not wait for fresh's workload"
[ "$(ca GET /state | jq --arg id "$ID/fresh" '[.requests[] | select(.identity == $id)] | .[0].result')" = '"issued"' ] ||
    mesh_fail "fresh's certificate was not the CA's: $(ca GET /state | jq -c .requests)"
from_ca 1 fresh
# The order, from each side's own clock: ztunnel logged fresh's listeners up before the CNI
# logged its ack.
ack_at=$(jq -r 'select(.event == "ack" and .uid == "uid-fresh" and .kind == "add") | .time' \
    "$MESH_WORK/cni.log" | head -1)
up_line=$(grep -m1 'pod listeners up.*pod="c1//Pod/default/fresh"' "$MESH_WORK/zt1.log") ||
    mesh_fail "ztunnel 1 did not log fresh's listeners"
up_at=$(epoch "$(echo "$up_line" | cut -f1)")
awk -v up="$up_at" -v ack="$ack_at" -v resumed="$resumed_at" 'BEGIN { exit !(up <= ack && resumed <= ack) }' ||
    mesh_fail "the CNI had its ack at $ack_at, before ztunnel's listeners ($up_at, resumed at $resumed_at)"
echo "[${SECONDS}s] fresh: listeners up at $up_at, acked at $ack_at; first connection $(cat "$MESH_WORK/fresh.out")"

# 3. fresh deleted: drained, unpinned, its identity's folder removed.
delete_pod fresh
zt_pods | jq -e '[.pods[] | select(.uid == "c1//Pod/default/fresh")] | length == 0' >/dev/null ||
    mesh_fail "fresh still in ztunnel's /pods"
listening "$FRESH_NS" 15001 && mesh_fail "fresh's listeners are still open"
expect_pins uid-client uid-client2
echo "[${SECONDS}s] pod deleted: ok"

# 3b. prompt: its workload is known before the add, its certificate comes 2 s late.
zt_pod_create 1 prompt 10 || mesh_fail "pod prompt"
"$here_mesh/scripts/redirect-inpod.sh" "$(zt_ns_pod 1 prompt)" >/dev/null || mesh_fail "redirect prompt"
PROMPT_NS=$(zt_ns_pod 1 prompt)
ca POST /pods "{\"node\": \"node1\", \"identities\": [\"$ID/client\", \"$ID/client2\", \"$ID/prompt\"]}" >/dev/null
xds POST /push "{\"type\": \"address\", \"resources\": [$(workload prompt node1 198.18.1.10)]}" >/dev/null ||
    mesh_fail "push prompt"
deadline=$((SECONDS + 10))
until jq -e '.workloads[] | select(.uid == "c1//Pod/default/prompt")' "$MESH_WORK/node1.json" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || mesh_fail "the agent did not write prompt's workload"
    sleep 0.05
done
waits() { mesh_metrics 1 | grep "^ztunnel_workload_waits_total{result=\"$1\"}" | awk '{s+=$NF} END {print s+0}'; }
found_before=$(waits found)
lines=$(wc -l <"$MESH_WORK/zt1.log")
ca POST /delay '{"seconds": 2}' >/dev/null || mesh_fail "CA delay"
r=$(cni POST /add "$(pod_json uid-prompt prompt)")
expect_ack "$r" "add prompt"
zt_in "$PROMPT_NS" timeout 30 $PEER client --connect 198.18.2.2:8080 --bytes 65536 --seed 6 \
    >"$MESH_WORK/prompt.out" 2>&1 || mesh_fail "prompt's first connection failed: $(cat "$MESH_WORK/prompt.out")"
ca POST /delay '{"seconds": 0}' >/dev/null || mesh_fail "CA delay off"
from_ca 1 prompt
# ztunnel's own account: the connection waited (for the certificate: the workload was known),
# and nothing was refused for want of a certificate.
[ "$(waits found)" -ge $((found_before + 1)) ] ||
    mesh_fail "prompt's connection did not wait for its certificate (found $found_before -> $(waits found))"
[ "$(waits certificate_timed_out)" = 0 ] || mesh_fail "a certificate wait timed out"
tail -n +"$((lines + 1))" "$MESH_WORK/zt1.log" | grep 'no certificate' &&
    mesh_fail "a connection of prompt was refused for want of its certificate"
# For the record, on each process's own clock: the agent's write (its log line follows the
# rename), ztunnel's load of the file, and the end of the connection that waited for it.
stamp() { # FILE PATTERN: the epoch of the first matching log line, or empty
    local line
    line=$(grep -m1 -E "$2" "$1" || true)
    [ -n "$line" ] && epoch "$(echo "$line" | cut -f1)" || true
}
issued_at=$(stamp "$MESH_WORK/agent1.log" "certificate issued.*sa/prompt\"")
loaded_at=$(stamp "$MESH_WORK/zt1.log" "certificate available.*sa/prompt\"")
done_at=$(stamp "$MESH_WORK/zt1.log" "connection complete.*src.workload=\"prompt\"")
echo "[${SECONDS}s] prompt: first connection waited for its certificate: $(cat "$MESH_WORK/prompt.out")"
awk -v i="$issued_at" -v l="$loaded_at" -v d="$done_at" 'BEGIN { if (i != "" && l != "" && d != "")
    printf "  prompt: agent wrote the certificate -> ztunnel loaded it %.3f s -> connection done %.3f s\n", l - i, d - l }'
delete_pod prompt
expect_pins uid-client uid-client2

# 4. Agent restarts under traffic.
c0=$(issued client) s0=$(issued server)
serial0=$(mesh_cert_serial 2 server)
zt_bg "$(zt_ns_pod 1 client)" "$MESH_WORK/traffic1.out" $PEERS/mesh_traffic.py \
    --connect 198.18.2.2:8080 --seconds 60 --rate 10 --long 2 --stop-file "$MESH_WORK/traffic1.stop" \
    --events "$MESH_WORK/traffic1.jsonl" --ready-file "$MESH_WORK/traffic1.ready"
traffic_pid=$ZT_BG_LAST
timeout 30 bash -c "until [ -e '$MESH_WORK/traffic1.ready' ]; do sleep 0.05; done" ||
    mesh_fail "traffic did not start: $(cat "$MESH_WORK/traffic1.out")"
first_restart_at=$(now)
for signal in TERM KILL; do
    sleep 1
    snapshots=$(cni GET /state | jq .snapshots)
    restart_at=$(now)
    stop_agent 1 "$signal"
    if [ "$signal" = TERM ]; then
        [ "$STOPPED_RC" = 0 ] || mesh_fail "agent 1 exited $STOPPED_RC on SIGTERM"
    fi
    sum=$(sha256sum <"$MESH_WORK/node1.json")
    sleep 1
    [ "$(sha256sum <"$MESH_WORK/node1.json")" = "$sum" ] || mesh_fail "the file changed with the agent down"
    zt_pods | jq -e '[.pods[] | select(.listeners)] | length == 2' >/dev/null ||
        mesh_fail "ztunnel stopped serving a pod with the agent down: $(zt_pods)"
    start_agent1
    wait_agent_ready 1
    deadline=$((SECONDS + 10))
    until [ "$(cni GET /state | jq .snapshots)" -gt "$snapshots" ]; do
        [ "$SECONDS" -lt "$deadline" ] || mesh_fail "no snapshot after the agent restart (SIG$signal)"
        sleep 0.1
    done
    cni GET /state | jq -e --argjson t "$restart_at" '[.acks[] | select(.time > $t and .kind == "add")] |
        (map(.uid) | sort) == ["uid-client", "uid-client2"] and all(.error == "")' >/dev/null ||
        mesh_fail "the snapshot after SIG$signal: $(cni GET /state | jq -c --argjson t "$restart_at" '[.acks[] | select(.time > $t)]')"
    agent_get 1 /debug | jq -e '[.pods[] | select(.serviceAccount != "")] | length == 2' >/dev/null ||
        mesh_fail "the restarted agent's pods: $(agent_get 1 /debug | jq -c .pods)"
    expect_pins uid-client uid-client2
    echo "[${SECONDS}s] agent SIG$signal and restart: pods recovered"
done
restarts_done_at=$(now)
# The traffic goes on until every identity was renewed twice under it (every ~4 s each).
deadline=$((SECONDS + 20))
until [ "$(issued client)" -ge $((c0 + 2)) ] && [ "$(issued server)" -ge $((s0 + 2)) ]; do
    [ "$SECONDS" -lt "$deadline" ] ||
        mesh_fail "not renewed under load: client $c0 -> $(issued client), server $s0 -> $(issued server)"
    sleep 0.2
done
sleep 1
kill -0 "$traffic_pid" 2>/dev/null || mesh_fail "the traffic ended early: $(cat "$MESH_WORK/traffic1.out")"
touch "$MESH_WORK/traffic1.stop"
rc=0
timeout 40 tail --pid="$traffic_pid" -f /dev/null || mesh_fail "traffic did not end"
wait "$traffic_pid" || rc=$?
echo "[${SECONDS}s] traffic during agent restarts: $(tail -1 "$MESH_WORK/traffic1.out")"
[ "$rc" = 0 ] || mesh_fail "a connection failed while the agent restarted"
tail -1 "$MESH_WORK/traffic1.out" | jq -e '.long.ok == 2 and .short.ok >= 50' >/dev/null ||
    mesh_fail "too little traffic ran: $(cat "$MESH_WORK/traffic1.out")"
jq -s -e --argjson a "$first_restart_at" --argjson b "$restarts_done_at" \
    '[.[] | select(.kind == "long" and .start < $a and .end > $b)] | length == 2' \
    "$MESH_WORK/traffic1.jsonl" >/dev/null || mesh_fail "the long transfers did not span the restarts"
[ "$(mesh_cert_serial 2 server)" != "$serial0" ] || mesh_fail "ztunnel 2 did not load a renewed certificate"
echo "[${SECONDS}s] rotation under load: client $c0 -> $(issued client), server $s0 -> $(issued server) certificates"

# 5. ztunnel SIGKILLed while new connections are made.
connections=$(cni GET /state | jq .connections)
zt_bg "$(zt_ns_pod 1 client)" "$MESH_WORK/traffic2.out" $PEERS/mesh_traffic.py \
    --connect 198.18.2.2:8080 --seconds 6 --rate 10 --events "$MESH_WORK/traffic2.jsonl"
traffic_pid=$ZT_BG_LAST
deadline=$((SECONDS + 30))
until [ "$(cat "$MESH_WORK/traffic2.jsonl" 2>/dev/null | wc -l)" -ge 10 ]; do
    [ "$SECONDS" -lt "$deadline" ] || mesh_fail "no traffic before the ztunnel kill"
    sleep 0.1
done
kill -9 "$MESH_ZT1_PID"
wait "$MESH_ZT1_PID" 2>/dev/null || true
sleep 0.5
MESH_CERT_FLAGS=(--cert-dir "$MESH_WORK/certs1")
lines=$(wc -l <"$MESH_WORK/zt1.log")
mesh_zt_start 1
deadline=$((SECONDS + 10))
until listening "$(zt_ns_pod 1 client)" 15001 && listening "$(zt_ns_pod 1 client2)" 15001; do
    [ "$SECONDS" -lt "$deadline" ] || mesh_fail "the pods are not listening again: $(tail -5 "$MESH_WORK/zt1.log")"
    sleep 0.02
done
# ztunnel's start is its first log line (the process is up; `ip netns exec` and loading the
# binary come before it and are not ztunnel's to shorten); each pod's listeners are up when
# worker 0 logs so.
restart_log=$(tail -n +"$((lines + 1))" "$MESH_WORK/zt1.log")
first_at=$(epoch "$(echo "$restart_log" | head -1 | cut -f1)")
for name in client client2; do
    up_at=$(epoch "$(echo "$restart_log" | grep -m1 "pod listeners up.*pod=\"c1//Pod/default/$name\"" | cut -f1)")
    took=$(awk -v a="$first_at" -v b="$up_at" 'BEGIN { printf "%.3f", b - a }')
    [ "$name" = client ] && client_up_at=$up_at
    echo "[${SECONDS}s] ztunnel restart: $name listening $took s after ztunnel's start"
    awk -v t="$took" 'BEGIN { exit !(t >= 0 && t <= 1.0) }' ||
        mesh_fail "$name listened only $took s after ztunnel's start"
done
timeout 60 tail --pid="$traffic_pid" -f /dev/null || mesh_fail "traffic did not end"
wait "$traffic_pid" || true
echo "[${SECONDS}s] traffic during the ztunnel restart: $(tail -1 "$MESH_WORK/traffic2.out")"
# From the moment client's listeners were up (ztunnel's clock), every new connection succeeds:
# none found its listener open before its certificate was loaded.
after=$(jq -s --argjson t "$client_up_at" '[.[] | select(.start > $t)]' "$MESH_WORK/traffic2.jsonl")
echo "$after" | jq -e 'length >= 10 and all(.ok)' >/dev/null ||
    mesh_fail "connections after the restart: $(echo "$after" | jq -c '[.[] | select(.ok | not)] | .[:5]')"
tail -n +"$((lines + 1))" "$MESH_WORK/zt1.log" | grep 'no certificate' &&
    mesh_fail "the restarted ztunnel refused connections for want of a certificate"
kill -0 "$AGENT1_PID" || mesh_fail "the agent did not survive ztunnel's restart"
[ "$(cni GET /state | jq .connections)" = "$connections" ] || mesh_fail "the agent reconnected to the CNI"
wait_agent_ready 1
mesh_xfer 1 client 198.18.2.2:8080 65536 >/dev/null || mesh_fail "traffic after the ztunnel restart"

# 6. The end: pods deleted, nothing pinned, the CNI's view, clean exits.
for name in client client2; do
    expect_ack "$(cni POST /del "{\"uid\": \"uid-$name\"}")" "del $name"
done
deadline=$((SECONDS + 10))
until [ -z "$(pins)" ]; do
    [ "$SECONDS" -lt "$deadline" ] || mesh_fail "pins left: $(pins)"
    sleep 0.1
done
state=$(cni GET /state)
echo "$state" | jq -e '.violations == 0 and .timeouts == 0 and all(.acks[]; .error == "")' >/dev/null ||
    mesh_fail "the CNI saw: $(echo "$state" | jq -c '{violations, timeouts, nacks: [.acks[] | select(.error != "")]}')"
for n in 1 2; do
    stop_agent "$n" TERM
    [ "$STOPPED_RC" = 0 ] || mesh_fail "agent $n exited $STOPPED_RC on SIGTERM"
done
echo "[${SECONDS}s] agent_mesh: ok"
