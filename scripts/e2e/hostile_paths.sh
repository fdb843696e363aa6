#!/usr/bin/env bash
# hostile_paths.sh: paths from the config and the certificate folder that are not what they
# claim to be must never stall ztunnel (issue 14). File mode, both nodes reading one --cert-dir.
#  1. A pod whose `netns` is a FIFO, then a regular file, then a directory: node 1's workers keep
#     serving the other pods (byte-exact transfers after each), readiness names the bad pod, and
#     the log says why. Opened for reading, the FIFO used to block every worker for good.
#  2. key.pem of the server identity replaced by a FIFO: node 2's control thread keeps answering
#     readiness and metrics, a deny-all config written afterwards is applied (traffic refused),
#     the last good certificate stays in use.
#  3. root-cert.pem replaced by a FIFO: both control threads keep going, the allow-all config
#     written afterwards is applied (traffic flows again).
#  4. SIGTERM still ends both ztunnels gracefully (exit 0 within the drain deadline).
# timeout: 120
set -euo pipefail
. "$(dirname "$0")/lib/mesh.sh"
MESH_CERT_MODE=files
MESH_ZT_ARGS="--drain-timeout 2s"
MESH_EXTRA_WORKLOADS='{"uid": "c1//v1/Pod/default/evil", "name": "evil", "namespace": "default",
     "serviceAccount": "evil", "workloadIps": ["198.18.1.9"], "protocol": "HBONE",
     "node": "node1", "services": {}},'
mesh_up hostile

pods_with_evil() { # NETNS_PATH: node 1's pods plus "evil" whose netns is NETNS_PATH
    echo "{\"uid\": \"c1//v1/Pod/default/client\", \"netns\": \"$(zt_ns_path "$(zt_ns_pod 1 client)")\"},
    {\"uid\": \"c1//v1/Pod/default/client2\", \"netns\": \"$(zt_ns_path "$(zt_ns_pod 1 client2)")\"},
    {\"uid\": \"c1//v1/Pod/default/evil\", \"netns\": \"$1\"}"
}
readiness() { # N: node N's readiness answer ("BODY CODE"), or "no answer" within 2 s
    local out
    if out=$(zt_in "$(zt_ns_node "$1")" curl -s --max-time 2 -w ' %{http_code}' \
        "http://127.0.0.1:15021/healthz/ready"); then
        echo "$out"
    else
        echo "no answer"
    fi
}
xfer_ok() { # WHAT: a byte-exact transfer client -> server through both ztunnels
    local out
    out=$(mesh_xfer 1 client 198.18.2.2:8080 262144) || mesh_fail "$1: transfer failed: $out"
}
applied() { grep -c 'config applied' "$MESH_WORK/zt$1.log" || true; }
wait_applied() { # N BEFORE: until node N logged more "config applied" lines than BEFORE (10 s)
    local i
    for i in $(seq 100); do
        [ "$(applied "$1")" -gt "$2" ] && return 0
        sleep 0.1
    done
    return 1
}

xfer_ok "before"

# 1. A pod netns path that is a FIFO, a regular file, a directory.
for kind in fifo file directory; do
    evil="$MESH_WORK/evil-netns-$kind"
    case $kind in
        fifo) mkfifo "$evil" ;;
        file) echo "not a namespace" >"$evil" ;;
        directory) mkdir "$evil" ;;
    esac
    before=$(applied 1)
    MESH_NODE1_PODS=$(pods_with_evil "$evil") mesh_config '[]'
    wait_applied 1 "$before" || mesh_fail "$kind: node1 did not apply the config"
    sleep 0.5
    for i in 1 2 3; do
        xfer_ok "netns is a $kind (transfer $i)"
    done
    ans=$(readiness 1)
    case $ans in
        *"pod c1//v1/Pod/default/evil"*" 500") ;;
        *) mesh_fail "$kind: readiness does not name the pod: $ans" ;;
    esac
    echo "netns is a $kind: traffic flows, readiness says: $ans"
done
grep -q "pod network namespace unavailable.*evil" "$MESH_WORK/zt1.log" || mesh_fail "no log line for the bad netns"
before=$(applied 1)
mesh_config '[]'
wait_applied 1 "$before" || mesh_fail "node1 did not apply the config without evil"

# 2. The server identity's key.pem becomes a FIFO; a deny-all policy is written afterwards.
key="$MESH_WORK/certs/default/server/key.pem"
serial=$(mesh_cert_serial 2 server)
rm -f "$key"
mkfifo "$key"
touch "$MESH_WORK/certs/default/server/cert-chain.pem"
sleep 2  # two file polls: the store has looked at the FIFO
ans=$(readiness 2)
[ "$ans" != "no answer" ] || mesh_fail "node2 readiness hangs with a FIFO key.pem"
zt_in "$(zt_ns_node 2)" curl -s --max-time 2 http://127.0.0.1:15020/metrics | grep >/dev/null '^istio_build' ||
    mesh_fail "node2 metrics hang with a FIFO key.pem"
before1=$(applied 1)
before2=$(applied 2)
mesh_config '[{"name": "deny-all", "namespace": "default", "scope": "Namespace", "action": "Deny",
  "rules": [[]]}]'
wait_applied 1 "$before1" && wait_applied 2 "$before2" ||
    mesh_fail "deny-all not applied with a FIFO key.pem"
if out=$(mesh_xfer 1 client 198.18.2.2:8080 1024); then
    mesh_fail "deny-all applied but a transfer went through: $out"
fi
[ "$(mesh_cert_serial 2 server)" = "$serial" ] || mesh_fail "the last good server certificate was dropped"
grep -q 'refused certificate files.*sa/server.*invalid_argument' "$MESH_WORK/zt2.log" ||
    mesh_fail "the FIFO key.pem was not refused"
echo "FIFO key.pem: refused, readiness answers ($ans), deny-all applied"

# 3. root-cert.pem becomes a FIFO; allow-all again.
roots="$MESH_WORK/certs/root-cert.pem"
rm -f "$roots"
mkfifo "$roots"
sleep 2
for n in 1 2; do
    [ "$(readiness "$n")" != "no answer" ] || mesh_fail "node$n readiness hangs with a FIFO root-cert.pem"
done
before1=$(applied 1)
before2=$(applied 2)
mesh_config '[]'
wait_applied 1 "$before1" && wait_applied 2 "$before2" ||
    mesh_fail "allow-all not applied with a FIFO root-cert.pem"
xfer_ok "allow-all after the FIFO root-cert.pem"
grep -q 'refused root certificates' "$MESH_WORK/zt1.log" || mesh_fail "the FIFO root-cert.pem was not refused"
echo "FIFO root-cert.pem: refused, allow-all applied, traffic flows"

# 4. SIGTERM still drains and exits 0.
for n in 1 2; do
    eval "pid=\$MESH_ZT${n}_PID"
    kill -TERM "$pid"
    start=$SECONDS
    rc=0
    timeout 6 tail -s 0.1 --pid="$pid" -f /dev/null || mesh_fail "node$n ignored SIGTERM"
    wait "$pid" || rc=$?
    [ "$rc" = 0 ] || mesh_fail "node$n exited $rc after SIGTERM"
    echo "node$n: exit 0 $((SECONDS - start)) s after SIGTERM"
done
rm -f "$key" "$roots"
echo "hostile paths: ok"
