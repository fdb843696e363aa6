#!/usr/bin/env bash
# ops_readiness.sh: readiness follows the config (docs/contract.md §2, §6). Started without a config file,
# ztunnel stays up and answers `500 not ready, pending: state manager` (no crash loop); a file
# whose pod has no workload yet keeps it not ready and names the pod; once the workload arrives
# the pod gets listeners and readiness is `200 ready`.
# timeout: 60
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
. "$here/scripts/netns/lib.sh"
zt_require_root
BUILD=${BUILD:-build}
zt_init "ready$$"
work=$(mktemp -d)
trap 'zt_cleanup; rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; cat "$work/zt.log" 2>/dev/null | tail -n 20; exit 1; }

zt_node_create 1
zt_pod_create 1 app 2
"$here/$BUILD/ztunnel" ca init "$work/ca" >/dev/null
zt_bg "$(zt_ns_node 1)" "$work/zt.log" "$here/$BUILD/ztunnel" run --config "$work/config.json" \
    --ca-dir "$work/ca" --node node1
zt_pid=$ZT_BG_LAST
probe() { zt_in "$(zt_ns_node 1)" curl -s -w ' %{http_code}' http://127.0.0.1:15021/healthz/ready | tr -d '\n' || true; }
expect() { # regex what
    local got i
    for i in $(seq 50); do
        got=$(probe)
        if echo "$got" | grep >/dev/null -E "$1"; then
            echo "readiness ($2): $got"
            return 0
        fi
        sleep 0.1
    done
    fail "readiness ($2): got '$got'"
}

expect 'not ready, pending: state manager.* 500$' "no config file"
sleep 1
kill -0 "$zt_pid" || fail "ztunnel exited without a config"

pod='{"uid": "c1//v1/Pod/default/app", "netns": "/run/netns/'"$(zt_ns_pod 1 app)"'"}'
echo "{\"workloads\": [], \"services\": [], \"policies\": [], \"pods\": [$pod]}" >"$work/c.tmp"
mv "$work/c.tmp" "$work/config.json"
expect 'not ready, pending: pod c1//v1/Pod/default/app \(unknown workload\) 500$' "pod without workload"

cat >"$work/c.tmp" <<JSON
{"workloads": [{"uid": "c1//v1/Pod/default/app", "name": "app", "namespace": "default",
  "serviceAccount": "app", "workloadIps": ["198.18.1.2"], "protocol": "HBONE", "node": "node1",
  "services": {}}], "services": [], "policies": [], "pods": [$pod]}
JSON
mv "$work/c.tmp" "$work/config.json"
expect '^ready 200$' "workload known"
zt_in "$(zt_ns_pod 1 app)" ss -ltn | grep >/dev/null ':15008 ' || fail "no listener in the pod"
echo "readiness: ok"
