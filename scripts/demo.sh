#!/usr/bin/env bash
# demo.sh is `make demo`: the project's main job on a built-in topology, explained step by step.
# Two nodes in network namespaces, three pods, Istio CNI's in-pod redirect rules, a local CA, one
# ztunnel per node; then traffic pod to pod across nodes over HBONE, the access-log and metric
# lines it produced, a DENY policy written into the config file refusing the next connection,
# and the policy removed again. Everything it makes is removed at the end, or on Ctrl-C.
# Needs root (network namespaces, iptables). Addresses: 198.18.0.0/15 only (docs/contract.md §9).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
ZT="$PWD/$BUILD/ztunnel"
PEER="/usr/bin/python3 $PWD/tests/peers/tcp_peer.py"
. scripts/netns/lib.sh

if [ "$(id -u)" -ne 0 ]; then
    echo "make demo needs root: it creates network namespaces and iptables rules" >&2
    exit 1
fi
[ -x "$ZT" ] || { echo "build first: make" >&2; exit 1; }

bold=$(tput bold 2>/dev/null || true)
plain=$(tput sgr0 2>/dev/null || true)
step() { echo; echo "${bold}==> $*${plain}"; }

zt_init demo
WORK=$(mktemp -d)
cleanup() {
    step "Cleaning up: stopping both ztunnels, deleting every zt-demo-* namespace"
    zt_cleanup
    rm -rf "$WORK"
    left=$(zt_list | wc -l)
    echo "namespaces left: $left"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
zt_cleanup >/dev/null 2>&1 || true

step "Topology: nodes node1 (198.18.0.1) and node2 (198.18.0.2); pods client on node1, server and legacy on node2"
zt_node_create 1
zt_node_create 2
zt_pod_create 1 client 2
zt_pod_create 2 server 2
zt_pod_create 2 legacy 3
echo "client 198.18.1.2   server 198.18.2.2   legacy 198.18.2.3 (not in the mesh)"

step "In-pod capture: Istio CNI's redirect rules in client and server (outbound -> 15001, inbound -> 15006)"
scripts/redirect-inpod.sh "$(zt_ns_pod 1 client)"
scripts/redirect-inpod.sh "$(zt_ns_pod 2 server)"
zt_in "$(zt_ns_pod 1 client)" iptables -t nat -S ISTIO_OUTPUT | grep -- '--to-ports 15001'

step "A local CA for the mesh (ztunnel ca init); each ztunnel issues its pods' certificates from it"
"$ZT" ca init "$WORK/ca" --trust-domain cluster.local
openssl x509 -in "$WORK/ca/root-cert.pem" -noout -subject -enddate

write_config() { # node policies
    local pods
    if [ "$1" = 1 ]; then
        pods="{\"uid\": \"demo//v1/Pod/default/client\", \"netns\": \"/run/netns/$(zt_ns_pod 1 client)\"}"
    else
        pods="{\"uid\": \"demo//v1/Pod/default/server\", \"netns\": \"/run/netns/$(zt_ns_pod 2 server)\"}"
    fi
    cat >"$WORK/node$1.json.tmp" <<JSON
{
  "workloads": [
    {"uid": "demo//v1/Pod/default/client", "name": "client", "namespace": "default",
     "serviceAccount": "client", "workloadIps": ["198.18.1.2"], "protocol": "HBONE",
     "node": "node1", "services": {}},
    {"uid": "demo//v1/Pod/default/server", "name": "server", "namespace": "default",
     "serviceAccount": "server", "workloadIps": ["198.18.2.2"], "protocol": "HBONE",
     "node": "node2", "services": {"default/server.default.svc.cluster.local": {"80": 8080}}}
  ],
  "services": [
    {"name": "server", "namespace": "default", "hostname": "server.default.svc.cluster.local",
     "vips": ["/198.19.0.10"], "ports": {"80": 8080},
     "subjectAltNames": ["spiffe://cluster.local/ns/default/sa/server"]}
  ],
  "policies": $2,
  "pods": [$pods]
}
JSON
    # Written the way a control agent should: a temporary file, then rename(2) over the target.
    mv "$WORK/node$1.json.tmp" "$WORK/node$1.json"
}

step "Config files (docs/contract.md §2): the same workloads and services on both nodes, each node's own pods"
write_config 1 '[]'
write_config 2 '[]'
"$ZT" check-config "$WORK/node1.json"
"$ZT" check-config "$WORK/node2.json"

step "Applications: an echo server on :8080 in server and in legacy"
zt_bg "$(zt_ns_pod 2 server)" "$WORK/app-server.log" $PEER server --listen "0.0.0.0:8080" --log "$WORK/seen.log"
zt_bg "$(zt_ns_pod 2 legacy)" "$WORK/app-legacy.log" $PEER server --listen "0.0.0.0:8080"
zt_wait_listen "$(zt_ns_pod 2 server)" 8080 10
zt_wait_listen "$(zt_ns_pod 2 legacy)" 8080 10

step "One ztunnel per node: ztunnel run --config nodeN.json --ca-dir CA --node nodeN"
for n in 1 2; do
    zt_bg "$(zt_ns_node $n)" "$WORK/zt$n.log" "$ZT" run --config "$WORK/node$n.json" \
        --ca-dir "$WORK/ca" --node "node$n" --log-level info
done
for n in 1 2; do
    for _ in $(seq 100); do
        zt_in "$(zt_ns_node $n)" curl -sf -o /dev/null http://127.0.0.1:15021/healthz/ready && break
        sleep 0.1
    done
    echo "node$n readiness: $(zt_in "$(zt_ns_node $n)" curl -s http://127.0.0.1:15021/healthz/ready)"
done

step "Traffic: client -> server:8080 across nodes (captured on node1, HBONE mTLS to node2)"
zt_in "$(zt_ns_pod 1 client)" bash -c 'echo "hello from client" | timeout 5 socat - TCP:198.18.2.2:8080'
echo "the server application saw the client's own address: $(tail -n 1 "$WORK/seen.log")"
step "The same through the service VIP 198.19.0.10:80 (load-balanced, port 80 -> 8080)"
zt_in "$(zt_ns_pod 1 client)" bash -c 'echo "hello via the service" | timeout 5 socat - TCP:198.19.0.10:80'
step "DNS in the pod: ztunnel's DNS proxy on 127.0.0.1:15053 answers the service's name"
zt_in "$(zt_ns_pod 1 client)" dig +time=3 +tries=1 @127.0.0.1 -p 15053 server.default.svc.cluster.local A |
    grep -E 'status:|^server\.'
echo "and its short form, expanded from the client's namespace: $(zt_in "$(zt_ns_pod 1 client)" \
    dig +time=3 +tries=1 +short @127.0.0.1 -p 15053 server)"
step "And to legacy, outside the mesh: plain TCP passthrough"
zt_in "$(zt_ns_pod 1 client)" bash -c 'echo "hello legacy" | timeout 5 socat - TCP:198.18.2.3:8080'
sleep 0.3

step "Access logs (target 'access', ztunnel's tokens): node1 reports outbound, node2 inbound"
grep 'connection complete' "$WORK/zt1.log" | cut -f 2- | sed 's/^/node1  /'
grep 'connection complete' "$WORK/zt2.log" | cut -f 2- | sed 's/^/node2  /'

step "Istio metrics on :15020/metrics (node2, destination reporter)"
zt_in "$(zt_ns_node 2)" curl -s http://127.0.0.1:15020/metrics |
    grep -E '^istio_tcp_(connections_opened|connections_closed|received_bytes|sent_bytes)_total' |
    sed -E 's/\{.*source_principal="([^"]*)".*destination_principal="([^"]*)".*connection_security_policy="([^"]*)".*\} / {source_principal="\1",destination_principal="\2",connection_security_policy="\3",...} /'

step "Policy: a DENY for the client's identity, written into both config files"
write_config 1 '[{"name": "deny-client", "namespace": "default", "scope": "Namespace", "action": "Deny",
  "rules": [[[{"principals": [{"Exact": "cluster.local/ns/default/sa/client"}]}]]]}]'
write_config 2 '[{"name": "deny-client", "namespace": "default", "scope": "Namespace", "action": "Deny",
  "rules": [[[{"principals": [{"Exact": "cluster.local/ns/default/sa/client"}]}]]]}]'
zt_wait_line "$WORK/zt2.log" 'config applied.*policies=1' 10
grep 'config applied.*policies=1' "$WORK/zt2.log" | cut -f 2- | sed 's/^/node2  /'
step "The next connection is refused: HTTP/2 401 from node2, the client's socket closed"
reply=$(zt_in "$(zt_ns_pod 1 client)" bash -c 'echo "hello again" | timeout 5 socat - TCP:198.18.2.2:8080' 2>&1 || true)
echo "client got: '${reply}' (nothing: refused)"
sleep 0.3
grep 'policy rejection' "$WORK/zt2.log" | cut -f 2- | sed 's/^/node2  /'
grep 'http status: 401' "$WORK/zt1.log" | cut -f 2- | sed 's/^/node1  /'

step "Policy removed: traffic flows again"
write_config 1 '[]'
write_config 2 '[]'
zt_wait_line "$WORK/zt2.log" 'config applied.*policies=0' 10
sleep 0.2
zt_in "$(zt_ns_pod 1 client)" bash -c 'echo "hello once more" | timeout 5 socat - TCP:198.18.2.2:8080'
echo
echo "${bold}demo done${plain}"
