#!/usr/bin/env bash
# agent_ca.sh: ztunnel-agent's Istio CA client between an independent CA and ztunnel, on the
# two-node mesh. tests/peers/ca_server.py (python3-grpcio + python3-cryptography) stands in for
# istiod's CA in its own namespace (198.18.0.3, TLS with a root made at run time); it knows which
# token is which node's and which identities have pods on each node (istiod's impersonation
# rule), and answers with the leaf and a bundle of two roots. One agent per node (xDS and ZDS
# off: its --static file is the node's config, pods included) writes that node's certificate
# folder; each ztunnel runs in file mode on its own folder. Checked, in order:
#   - every identity of the node's pods gets a certificate: files of docs/contract.md §4 (key 0600, the
#     two roots in root-cert.pem, the leaf's URI SAN), ImpersonatedIdentity sent and allowed,
#     the agent ready, nothing requested for another node's identity;
#   - ztunnel on those files: traffic client -> server over HBONE;
#   - rotation under load (SECRET_TTL=8: renewal every ~4 s): transfers run back to back for
#     10 s, none fails, every identity renewed at least twice, new serials in ztunnel's dump;
#   - a CA refusal (node2's identities withdrawn from the CA: impersonation denied) keeps the
#     valid certificate, is logged with the CA's reason, and traffic still flows;
#   - a restarted agent with the CA refusing everything reuses the valid files and is ready;
#   - a pod leaving the node (client2 removed from node1's file) removes its identity's folder;
#   - SIGTERM: each agent exits 0.
# timeout: 240
set -euo pipefail
. "$(dirname "$0")/lib/mesh.sh"
. "$here_mesh/tests/scripts/lib/openssl_pki.sh"
AGENT_BIN="$here_mesh/$BUILD/ztunnel-agent"
CA_PEER="/usr/bin/python3 $here_mesh/tests/peers/ca_server.py"
[ -x "$AGENT_BIN" ] || { echo "build $AGENT_BIN first (make)"; exit 1; }
/usr/bin/python3 -c 'import grpc, google.protobuf, cryptography' 2>/dev/null ||
    { echo "python3-grpcio / python3-protobuf / python3-cryptography missing (scripts/install-deps.sh)"; exit 1; }
proto_dir="$here_mesh/src/agent/proto"
for candidate in "${ZT_REFERENCE_PROTOS:-}" "$here_mesh/../shared/reference/protos" \
    "$here_mesh/../../shared/reference/protos"; do
    if [ -n "$candidate" ] && [ -f "$candidate/ztunnel/citadel.proto" ]; then
        proto_dir="$candidate/ztunnel"
        break
    fi
done
ID=spiffe://cluster.local/ns/default/sa

MESH_CERT_MODE=files
mesh_up agentca
# The mesh's ztunnels share one folder filled by the test's CA; this scenario gives each node
# the folder its agent writes, so they are stopped and started again below.
for n in 1 2; do
    eval "pid=\$MESH_ZT${n}_PID"
    kill "$pid" && wait "$pid" 2>/dev/null || true
done

CA_NS=$(zt_ns_node 3)
zt_node_create 3 || mesh_fail "CA namespace"
CA_IP=$(zt_node_ip 3)
pki=$MESH_WORK/pki
mkdir -p "$pki"
(cd "$pki" && pki_make_ca root && pki_make_server root istiod "DNS:istiod.istio-system.svc,IP:$CA_IP") ||
    mesh_fail "pki"
echo "token-node1" >"$MESH_WORK/token1"
echo "token-node2" >"$MESH_WORK/token2"
zt_bg "$CA_NS" "$MESH_WORK/ca.log" $CA_PEER --listen "$CA_IP:15012" --cert "$pki/istiod.pem" \
    --key "$pki/istiod.key" --proto-dir "$proto_dir" --control 127.0.0.1:15097 \
    --token token-node1=node1 --token token-node2=node2 \
    --pod "node1=$ID/client" --pod "node1=$ID/client2" --pod "node2=$ID/server"
zt_wait_listen "$CA_NS" 15097 20 && zt_wait_listen "$CA_NS" 15012 5 ||
    mesh_fail "CA did not start: $(tail -5 "$MESH_WORK/ca.log")"
control() { zt_in "$CA_NS" curl -sf -X "$1" "http://127.0.0.1:15097$2" ${3:+-d "$3"}; }

start_agent() { # N [VAR=VALUE...]
    local n=$1
    shift
    mkdir -p "$MESH_WORK/certs$n"
    zt_bg "$(zt_ns_node "$n")" "$MESH_WORK/agent$n.log.part" env NODE_NAME="node$n" \
        CLUSTER_ID=c1 SECRET_TTL=8s "$@" "$AGENT_BIN" --config-out "$MESH_WORK/agent$n.json" \
        --static "$MESH_WORK/node$n.json" --xds-address "" --inpod-uds "" \
        --ca-address "$CA_IP:15012" --ca-root-cert "$pki/root.pem" \
        --cert-dir "$MESH_WORK/certs$n" --token-file "$MESH_WORK/token$n" \
        --admin-addr 127.0.0.1:15098 --log-level info
    eval "AGENT${n}_PID=\$ZT_BG_LAST"
}
stop_agent() { # N: SIGTERM, expects exit 0; keeps the log
    local pid rc=0
    eval "pid=\$AGENT${1}_PID"
    kill "$pid"
    wait "$pid" || rc=$?
    cat "$MESH_WORK/agent$1.log.part" >>"$MESH_WORK/agent$1.log"
    [ "$rc" = 0 ] || mesh_fail "agent $1 exited $rc on SIGTERM"
}
agent_get() { zt_in "$(zt_ns_node "$1")" curl -s "http://127.0.0.1:15098$2" "${@:3}"; }
wait_agent_ready() { # N
    local i
    for i in $(seq 100); do
        [ "$(agent_get "$1" /ready -o /dev/null -w '%{http_code}')" = 200 ] && return 0
        sleep 0.1
    done
    agent_get "$1" /debug
    tail -20 "$MESH_WORK/agent$1.log.part"
    mesh_fail "agent $1 not ready"
}
serial_on_disk() { # N SA
    openssl x509 -noout -serial -in "$MESH_WORK/certs$1/default/$2/cert-chain.pem" | cut -d= -f2
}
issued() { control GET /state | jq "[.requests[] | select(.identity == \"$ID/$1\" and .result == \"issued\")] | length"; }

# 1. Certificates for each node's identities.
start_agent 1
start_agent 2
wait_agent_ready 1
wait_agent_ready 2
for pair in 1:client 1:client2 2:server; do
    n=${pair%%:*} sa=${pair#*:}
    d="$MESH_WORK/certs$n/default/$sa"
    [ "$(stat -c %a "$d/key.pem")" = 600 ] || mesh_fail "$sa key.pem mode $(stat -c %a "$d/key.pem")"
    openssl x509 -noout -ext subjectAltName -in "$d/cert-chain.pem" | grep >/dev/null "URI:$ID/$sa" ||
        mesh_fail "$sa leaf does not name $ID/$sa"
    [ "$(grep -c 'BEGIN CERTIFICATE' "$MESH_WORK/certs$n/root-cert.pem")" = 2 ] ||
        mesh_fail "node$n root-cert.pem does not hold both roots"
    openssl verify -CAfile "$MESH_WORK/certs$n/root-cert.pem" "$d/cert-chain.pem" >/dev/null ||
        mesh_fail "$sa leaf does not verify to the written roots"
done
[ ! -e "$MESH_WORK/certs1/default/server" ] && [ ! -e "$MESH_WORK/certs2/default/client" ] ||
    mesh_fail "a node got another node's identity"
denied=$(control GET /state | jq '[.requests[] | select(.result != "issued")] | length')
[ "$denied" = 0 ] || mesh_fail "the CA refused requests: $(control GET /state)"
agent_get 1 /debug | jq -e '.certificates | length == 2 and all(.state == "Available")' >/dev/null ||
    mesh_fail "node1 /debug certificates: $(agent_get 1 /debug | jq -c .certificates)"
agent_get 1 /metrics | grep >/dev/null 'ztunnel_agent_ca_requests_total{result="issued"}' ||
    mesh_fail "no ztunnel_agent_ca_requests_total"
agent_get 1 /metrics | grep >/dev/null '^ztunnel_agent_ca_certificates{state="Available"} 2$' ||
    mesh_fail "ztunnel_agent_ca_certificates: $(agent_get 1 /metrics | grep ztunnel_agent_ca_certificates)"

# 2. ztunnel on the agents' folders.
MESH_CERT_FLAGS=(--cert-dir "$MESH_WORK/certs1")
mesh_zt_start 1
MESH_CERT_FLAGS=(--cert-dir "$MESH_WORK/certs2")
mesh_zt_start 2
mesh_wait_ready 1 && mesh_wait_ready 2 || mesh_fail "ztunnels not ready on the agents' certificates"
mesh_xfer 1 client 198.18.2.2:8080 4096 >/dev/null || mesh_fail "client -> server on agent certificates"

# 3. Rotation under load: renewals every ~4 s while transfers run back to back.
c0=$(issued client) s0=$(issued server)
serial0=$(mesh_cert_serial 2 server)
end=$((SECONDS + 10)) runs=0
while [ "$SECONDS" -lt "$end" ]; do
    mesh_xfer 1 client 198.18.2.2:8080 2048 >/dev/null || mesh_fail "a transfer failed during rotation (run $runs)"
    runs=$((runs + 1))
done
[ "$(issued client)" -ge $((c0 + 2)) ] && [ "$(issued server)" -ge $((s0 + 2)) ] ||
    mesh_fail "not renewed at half-life: client $c0 -> $(issued client), server $s0 -> $(issued server)"
[ "$(mesh_cert_serial 2 server)" != "$serial0" ] || mesh_fail "ztunnel did not load a renewed certificate"
echo "rotation: $runs transfers, client $c0 -> $(issued client), server $s0 -> $(issued server) certificates"

# 4. The CA refuses node2's identity (no pod of node2 has it any more, as istiod sees it).
control POST /pods '{"node": "node2", "identities": []}' >/dev/null
kept=$(serial_on_disk 2 server)
for _ in $(seq 100); do
    grep -q 'certificate request failed; keeping the valid certificate.*PERMISSION_DENIED\|certificate request failed; keeping the valid certificate.*permission_denied' \
        "$MESH_WORK/agent2.log.part" && break
    sleep 0.1
done
grep 'certificate request failed; keeping the valid certificate' "$MESH_WORK/agent2.log.part" |
    grep >/dev/null "sa/server" || mesh_fail "refusal not logged: $(tail -5 "$MESH_WORK/agent2.log.part")"
grep 'certificate request failed' "$MESH_WORK/agent2.log.part" | tail -1 | grep >/dev/null -i 'node2' ||
    mesh_fail "the CA's reason is not in the log"
[ "$(serial_on_disk 2 server)" = "$kept" ] || mesh_fail "the valid certificate was replaced"
mesh_xfer 1 client 198.18.2.2:8080 1024 >/dev/null || mesh_fail "traffic after the refusal"
control POST /pods "{\"node\": \"node2\", \"identities\": [\"$ID/server\"]}" >/dev/null

# 5. Agent restart with the CA refusing everything: the files on disk are valid, so it is ready.
control POST /refuse '{"status": 14, "message": "down for the test"}' >/dev/null
stop_agent 1
start_agent 1 SECRET_TTL=3600s
wait_agent_ready 1
grep -q 'reusing the certificate on disk.*sa/client' "$MESH_WORK/agent1.log.part" ||
    mesh_fail "agent 1 did not reuse its certificate: $(cat "$MESH_WORK/agent1.log.part")"
control POST /refuse '{}' >/dev/null

# 6. client2 leaves node1: its identity's folder goes.
jq 'del(.pods[] | select(.uid | endswith("/client2")))' "$MESH_WORK/node1.json" >"$MESH_WORK/node1.json.tmp"
mv "$MESH_WORK/node1.json.tmp" "$MESH_WORK/node1.json"
for _ in $(seq 50); do
    [ -e "$MESH_WORK/certs1/default/client2" ] || break
    sleep 0.1
done
[ ! -e "$MESH_WORK/certs1/default/client2" ] || mesh_fail "client2's folder was not removed"
[ -e "$MESH_WORK/certs1/default/client/cert-chain.pem" ] || mesh_fail "client's folder went too"

# 7. SIGTERM.
stop_agent 1
stop_agent 2
echo "agent_ca: ok"
