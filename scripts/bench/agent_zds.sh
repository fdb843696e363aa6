#!/usr/bin/env bash
# agent_zds.sh: the second part of `make bench T=agent` (scripts/bench/run.sh agent-zds, or
# PARTS=zds). On the two-node mesh of scripts/e2e/lib/mesh.sh it adds PODS (100) more pods on
# node 1 (real network namespaces zt-<tag>-node1-pN with the in-pod redirect rules, workloads in
# both nodes' files), then:
#   1. ZDS: ztunnel-agent between the CNI stand-in (tests/peers/zds_server.py) and ztunnel, as in
#      scripts/e2e/agent_zds.sh; scripts/bench/agent_zds.py posts the PODS adds at one instant
#      and measures add -> ack and add -> first connection from each pod through ztunnel (an
#      echo from the server on node 2 over HBONE);
#   2. CA: a second agent (ZDS and xDS off, the first one's file as its --static, so PODS
#      identities) against tests/peers/ca_server.py with SECRET_TTL (2s: a renewal per identity
#      every second, more than it can do): issued certificates counted over CA_SECONDS (20) from
#      the agent's ztunnel_agent_ca_requests_total, and the CPU of the agent and of the CA.
# Writes the "ZDS and CA" section of OUT (docs/bench/agent.md; other PODS: build/bench/agent.md),
# keeping the first part's text. Logs stay in build/bench/agent-zds-logs/. PERF_OUT=FILE also
# records ztunnel and the agent with perf(1) during the first round. Needs root (77).
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
export BUILD
. scripts/e2e/lib/mesh.sh
. tests/scripts/lib/openssl_pki.sh
PODS=${PODS:-100}
SECRET_TTL=${SECRET_TTL:-2s}
CA_SECONDS=${CA_SECONDS:-20}
if [ -z "${OUT:-}" ]; then
    OUT=docs/bench/agent.md
    [ "$PODS" = 100 ] || OUT=$BUILD/bench/agent.md
fi
[ "$PODS" -ge 1 ] && [ "$PODS" -le 200 ] || { echo "agent_zds.sh: PODS must be 1..200" >&2; exit 2; }
AGENT_BIN="$PWD/$BUILD/ztunnel-agent"
for tool in /usr/bin/python3 "$AGENT_BIN" "$ZT_BIN" protoc openssl jq nsenter curl; do
    command -v "$tool" >/dev/null 2>&1 || { echo "agent_zds.sh: $tool is missing" >&2; exit 1; }
done
proto_dir=$PWD/src/agent/proto
for candidate in "${ZT_REFERENCE_PROTOS:-}" ../shared/reference/protos ../../shared/reference/protos; do
    if [ -n "$candidate" ] && [ -f "$candidate/ztunnel/zds.proto" ]; then
        proto_dir=$(cd "$candidate/ztunnel" && pwd)
        break
    fi
done
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date -u '+%Y-%m-%d %H:%M UTC')

mesh_up azbench
NODE1=$(zt_ns_node 1)
NETNS_DIR=$MESH_WORK/netns
mkdir -p "$NETNS_DIR"
mount --bind "$NETNS_DIR" "$NETNS_DIR" && mount --make-shared "$NETNS_DIR" || mesh_fail "shared netns dir"
# Node 1's file lives on a tmpfs, as in the DaemonSet (deploy/: the `agent-output` emptyDir,
# medium Memory): on ext4 every rename over the old file starts its writeback (auto_da_alloc),
# ~4 ms per write here, which a deployment does not pay.
OUT_DIR=$MESH_WORK/out
mkdir -p "$OUT_DIR"
mount -t tmpfs -o size=64m tmpfs "$OUT_DIR" || mesh_fail "tmpfs for node 1's file"
NODE1_FILE=$OUT_DIR/node1.json
cleanup_bench() {
    local pin
    for pin in "$NETNS_DIR"/*; do
        [ -e "$pin" ] && umount -l "$pin" 2>/dev/null
    done
    umount -l "$NETNS_DIR" 2>/dev/null || true
    mkdir -p "$BUILD/bench/agent-zds-logs"
    cp "$MESH_WORK"/*.log "$MESH_WORK"/*.json "$BUILD/bench/agent-zds-logs/" 2>/dev/null || true
    cp "$NODE1_FILE" "$BUILD/bench/agent-zds-logs/node1-out.json" 2>/dev/null || true
    umount -l "$OUT_DIR" 2>/dev/null || true  # Before mesh_down removes the folder.
    mesh_down
}
trap cleanup_bench EXIT

# The pods: pN at 198.18.1.N (N = 10 .. 9+PODS), each with the redirect rules and a workload.
echo "agent_zds: creating $PODS pods"
seq 10 $((9 + PODS)) >"$MESH_WORK/pod-numbers"
while read -r x; do
    zt_pod_create 1 "p$x" "$x" || mesh_fail "pod p$x"
done <"$MESH_WORK/pod-numbers"
# shellcheck disable=SC2016
xargs -P 2 -I{} sh -c '"$1" "$2" >/dev/null' _ scripts/redirect-inpod.sh "zt-$ZT_TAG-node1-p{}" \
    <"$MESH_WORK/pod-numbers" || mesh_fail "redirect rules"
jq -n --rawfile xs "$MESH_WORK/pod-numbers" '[$xs | split("\n")[] | select(. != "") |
    {uid: "c1//Pod/default/p\(.)", name: "p\(.)", namespace: "default", serviceAccount: "p\(.)",
     workloadIps: ["198.18.1.\(.)"], protocol: "HBONE", node: "node1", services: {}}]' \
    >"$MESH_WORK/bench-workloads.json"
jq -n --rawfile xs "$MESH_WORK/pod-numbers" --arg tag "$ZT_TAG" '[$xs | split("\n")[] |
    select(. != "") | {uid: "uid-p\(.)", name: "p\(.)", namespace: "default",
    serviceAccount: "p\(.)", netns: "/run/netns/zt-\($tag)-node1-p\(.)"}]' >"$MESH_WORK/bench-pods.json"
# Node 2 learns the new workloads too (its file is reloaded); node 1's agent gets them in its
# --static file, the pods themselves come over ZDS.
jq --slurpfile w "$MESH_WORK/bench-workloads.json" '.workloads += $w[0]' "$MESH_WORK/node2.json" \
    >"$MESH_WORK/node2.json.tmp" && mv "$MESH_WORK/node2.json.tmp" "$MESH_WORK/node2.json"
jq --slurpfile w "$MESH_WORK/bench-workloads.json" 'del(.pods) |
    .workloads |= map(.uid |= sub("//v1/Pod/"; "//Pod/")) | .workloads += $w[0]' \
    "$MESH_WORK/node1.json" >"$MESH_WORK/static1.json"

UDS=$MESH_WORK/zds.sock
zt_bg "$NODE1" "$MESH_WORK/cni.log" /usr/bin/python3 tests/peers/zds_server.py --uds "$UDS" \
    --proto-dir "$proto_dir" --control 127.0.0.1:15096
zt_wait_listen "$NODE1" 15096 20 || mesh_fail "ZDS server did not start: $(tail -5 "$MESH_WORK/cni.log")"
# ztunnel again, after the shared mount exists, so that its mount namespace receives the pins,
# reading node 1's file from the tmpfs (a later --config wins).
cp "$MESH_WORK/node1.json" "$NODE1_FILE"
MESH_ZT_ARGS="${MESH_ZT_ARGS:-} --config $NODE1_FILE" mesh_zt_restart 1 || mesh_fail "ztunnel 1 restart"
nsenter --net="$(zt_ns_path "$NODE1")" env CLUSTER_ID=c1 NODE_NAME=node1 "$AGENT_BIN" \
    --config-out "$NODE1_FILE" --static "$MESH_WORK/static1.json" \
    --xds-address "" --ca-address "" --inpod-uds "$UDS" --netns-dir "$NETNS_DIR" \
    --ztunnel-admin 127.0.0.1:15000 --admin-addr 127.0.0.1:15098 --log-level info \
    >>"$MESH_WORK/agent-zds.log" 2>&1 </dev/null &
ZDS_AGENT_PID=$!
ZT_BG_PIDS="$ZT_BG_PIDS $ZDS_AGENT_PID"
for _ in $(seq 100); do
    [ "$(zt_in "$NODE1" curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:15098/ready)" = 200 ] && break
    sleep 0.1
done
[ "$(zt_in "$NODE1" curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:15098/ready)" = 200 ] ||
    mesh_fail "ZDS agent not ready: $(tail -5 "$MESH_WORK/agent-zds.log")"
mesh_wait_ready 2 || mesh_fail "node 2 not ready"

echo "agent_zds: adding $PODS pods at once"
if [ -n "${PERF_OUT:-}" ]; then
    # Where the CPU of an add goes: node 1's ztunnel and the agent, call graphs, for the look
    # before the adds and the first round (about 1.5 s).
    perf record --call-graph dwarf,16384 -F 1999 -p "$MESH_ZT1_PID,$ZDS_AGENT_PID" \
        -o "$PERF_OUT" -- sleep 2.5 >/dev/null 2>&1 &
    PERF_PID=$!
fi
zt_in "$NODE1" /usr/bin/python3 scripts/bench/agent_zds.py --pods "$MESH_WORK/bench-pods.json" \
    --target 198.18.2.2:8080 --timeout 60 >"$MESH_WORK/zds-result.json" ||
    mesh_fail "driver: $(tail -5 "$MESH_WORK/zds-result.json")"
[ -n "${PERF_PID:-}" ] && wait "$PERF_PID"
kill "$ZDS_AGENT_PID"
wait "$ZDS_AGENT_PID" || mesh_fail "ZDS agent did not exit 0 on SIGTERM"

# 2. CA renewals: node 3 holds the CA, node 1 a second agent for the pods' identities.
echo "agent_zds: CA renewals, SECRET_TTL=$SECRET_TTL, $CA_SECONDS s"
CA_NS=$(zt_ns_node 3)
zt_node_create 3 || mesh_fail "CA namespace"
CA_IP=$(zt_node_ip 3)
pki=$MESH_WORK/pki
mkdir -p "$pki"
(cd "$pki" && pki_make_ca root && pki_make_server root istiod "DNS:istiod.istio-system.svc,IP:$CA_IP") \
    >/dev/null || mesh_fail "pki"
echo "token-node1" >"$MESH_WORK/token1"
pod_flags=()
while read -r x; do
    pod_flags+=(--pod "node1=spiffe://cluster.local/ns/default/sa/p$x")
done <"$MESH_WORK/pod-numbers"
zt_bg "$CA_NS" "$MESH_WORK/ca.log" /usr/bin/python3 tests/peers/ca_server.py --listen "$CA_IP:15012" \
    --cert "$pki/istiod.pem" --key "$pki/istiod.key" --proto-dir "$proto_dir" \
    --control 127.0.0.1:15097 --token token-node1=node1 "${pod_flags[@]}"
CA_PID=$ZT_BG_LAST
zt_wait_listen "$CA_NS" 15097 20 && zt_wait_listen "$CA_NS" 15012 5 ||
    mesh_fail "CA did not start: $(tail -5 "$MESH_WORK/ca.log")"
# Only the bench pods: the mesh's own (client, client2) are not known to this CA.
jq '.pods |= map(select(.name | test("^p[0-9]+$")))' "$NODE1_FILE" >"$MESH_WORK/ca-static.json"
[ "$(jq '.pods | length' "$MESH_WORK/ca-static.json")" = "$PODS" ] ||
    mesh_fail "node 1's file holds $(jq '.pods | length' "$MESH_WORK/ca-static.json") bench pods"
mkdir -p "$MESH_WORK/certs-ca"
zt_bg "$NODE1" "$MESH_WORK/agent-ca.log" env NODE_NAME=node1 CLUSTER_ID=c1 SECRET_TTL="$SECRET_TTL" \
    "$AGENT_BIN" --config-out "$MESH_WORK/ca-out.json" --static "$MESH_WORK/ca-static.json" \
    --xds-address "" --inpod-uds "" --ca-address "$CA_IP:15012" --ca-root-cert "$pki/root.pem" \
    --cert-dir "$MESH_WORK/certs-ca" --token-file "$MESH_WORK/token1" \
    --admin-addr 127.0.0.1:15095 --log-level warn
CA_AGENT_PID=$ZT_BG_LAST
issued() {
    zt_in "$NODE1" curl -s http://127.0.0.1:15095/metrics |
        awk '/^ztunnel_agent_ca_requests_total\{result="issued"\}/ {print $2}'
}
failed() {
    zt_in "$NODE1" curl -s http://127.0.0.1:15095/metrics |
        awk '/^ztunnel_agent_ca_requests_total\{result="failed"\}/ {print $2}'
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
for _ in $(seq 300); do
    [ "$(issued || echo 0)" -ge "$PODS" ] 2>/dev/null && break
    sleep 0.1
done
[ "$(issued)" -ge "$PODS" ] || mesh_fail "the first $PODS certificates were not issued: $(issued)"
i0=$(issued) f0=$(failed) a0=$(cpu_ticks "$CA_AGENT_PID") c0=$(cpu_ticks "$CA_PID") t0=$(date +%s.%N)
sleep "$CA_SECONDS"
i1=$(issued) f1=$(failed) a1=$(cpu_ticks "$CA_AGENT_PID") c1=$(cpu_ticks "$CA_PID") t1=$(date +%s.%N)
hz=$(getconf CLK_TCK)
jq -n --argjson i0 "$i0" --argjson i1 "$i1" --argjson f0 "${f0:-0}" --argjson f1 "${f1:-0}" \
    --argjson a "$((a1 - a0))" --argjson c "$((c1 - c0))" --argjson t0 "$t0" --argjson t1 "$t1" \
    --argjson hz "$hz" --argjson pods "$PODS" --arg ttl "$SECRET_TTL" \
    '{identities: $pods, secret_ttl: $ttl, seconds: ($t1 - $t0), issued: ($i1 - $i0),
      failed: ($f1 - $f0), agent_cpu_s: ($a / $hz), ca_cpu_s: ($c / $hz)}' >"$MESH_WORK/ca-result.json"
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
/usr/bin/python3 scripts/bench/agent_zds.py --report "$MESH_WORK/zds-result.json" \
    --ca-result "$MESH_WORK/ca-result.json" --out "$OUT" --when "$started" \
    --load "$load_start / $load_end" --logs "$MESH_WORK"
echo "agent_zds: ok -> $OUT"
