#!/usr/bin/env bash
# fault_config_deleted.sh: docs/reliability.md §6b F8, the config file deleted and later recreated.
# While the file is missing node 2 keeps the last good state (traffic flows, readiness stays
# 200), counts and shows the failed read once (ztunnel_config_reloads_total{result="failure"},
# /config_dump configStatus) rather than at every poll, and stays up. A file recreated with a
# deny-all policy is applied (traffic refused); recreated again with no policy, traffic flows.
# timeout: 90
set -euo pipefail
. "$(dirname "$0")/lib/mesh.sh"
mesh_up cfgdel

failures() { mesh_metrics 2 | grep -F 'ztunnel_config_reloads_total{result="failure"}' | awk '{print $NF}' || true; }
status() { zt_in "$(zt_ns_node 2)" curl -s http://127.0.0.1:15000/config_dump | jq -c '.configStatus'; }
ready2() { zt_in "$(zt_ns_node 2)" curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:15021/healthz/ready; }

out=$(mesh_xfer 1 client 198.18.2.2:8080 262144) || mesh_fail "before: $out"
cp "$MESH_WORK/node2.json" "$MESH_WORK/node2.json.good"
before=$(failures)
before=${before:-0}

# Deleted: the last good state stays.
rm "$MESH_WORK/node2.json"
mesh_wait_log 2 'invalid config; keeping the last good one.*node2.json' 10 ||
    mesh_fail "the missing file was not reported"
for i in 1 2 3; do
    out=$(mesh_xfer 1 client 198.18.2.2:8080 262144) || mesh_fail "while the file is missing: $out"
done
[ "$(ready2)" = 200 ] || mesh_fail "node2 not ready while its file is missing"
[ "$(failures)" = $((before + 1)) ] || mesh_fail "failure count $(failures), want $((before + 1))"
status | grep >/dev/null 'cannot read' || mesh_fail "configStatus does not show the failed read: $(status)"
# Polls (every 5 s) re-read the missing file without counting it again.
sleep 6
[ "$(failures)" = $((before + 1)) ] || mesh_fail "the same missing file was counted again: $(failures)"
kill -0 "$MESH_ZT2_PID" || mesh_fail "node2 exited"
echo "deleted: last good state kept, counted once: $(status)"

# Recreated with a deny-all policy: applied.
applied=$(grep -c 'config applied' "$MESH_WORK/zt2.log")
jq '.policies = [{"name": "deny-all", "namespace": "default", "scope": "Namespace",
                  "action": "Deny", "rules": [[]]}]' "$MESH_WORK/node2.json.good" >"$MESH_WORK/node2.json.tmp"
mv "$MESH_WORK/node2.json.tmp" "$MESH_WORK/node2.json"
for i in $(seq 100); do
    [ "$(grep -c 'config applied' "$MESH_WORK/zt2.log")" -gt "$applied" ] && break
    sleep 0.1
done
mesh_wait_log 2 'config applied.*policies=1' 1 || mesh_fail "the recreated file was not applied"
if out=$(mesh_xfer 1 client 198.18.2.2:8080 1024); then
    mesh_fail "deny-all recreated but a transfer went through: $out"
fi
echo "recreated with deny-all: applied, traffic refused"

# Recreated again without policies (in place this time): traffic flows.
cp "$MESH_WORK/node2.json.good" "$MESH_WORK/node2.json"
mesh_wait_log 2 'config (applied.*policies=0|file is back to the applied version)' 10 ||
    mesh_fail "the good file was not re-applied"
sleep 0.3
out=$(mesh_xfer 1 client 198.18.2.2:8080 262144) || mesh_fail "after the good file came back: $out"
[ "$(ready2)" = 200 ] || mesh_fail "node2 not ready at the end"
echo "config deleted and recreated: ok"
