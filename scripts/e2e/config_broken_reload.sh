#!/usr/bin/env bash
# config_broken_reload.sh: a broken config written while traffic flows costs nothing (docs/contract.md §2,
# docs/reliability.md C1/F9). During a paced transfer and a stream of short connections, node 2's
# config file is replaced by a truncated copy, then by a syntax error, then by a file with a
# semantic error: the transfer finishes byte-exact, every short connection succeeds, each bad
# version is logged with its error and counted as a failed reload, /config_dump shows the last
# error while keeping the last good policies, and a valid file after that is applied again.
# timeout: 90
set -euo pipefail
. "$(dirname "$0")/lib/mesh.sh"
mesh_up broken

good=$MESH_WORK/node2.json
cp "$good" "$MESH_WORK/good.json"
zt_in "$(zt_ns_pod 1 client)" timeout 60 $PEER client --connect 198.18.2.2:8080 --bytes 4194304 \
    --pace-ms 20 >"$MESH_WORK/paced.out" 2>&1 &
paced=$!
short_ok=0
write_bad() { # content-producing command...
    "$@" >"$MESH_WORK/bad.tmp"
    mv "$MESH_WORK/bad.tmp" "$good"
}
for bad in truncate syntax semantic; do
    case $bad in
        truncate) write_bad head -c 300 "$MESH_WORK/good.json" ;;
        syntax) write_bad echo '{"workloads": [}' ;;
        semantic) write_bad sed 's/"workloadIps": \["198.18.1.3"/"workloadIps": ["198.18.2.2"/' "$MESH_WORK/good.json" ;;
    esac
    for _ in 1 2 3; do
        mesh_xfer 1 client 198.18.2.2:8080 65536 >/dev/null || mesh_fail "short connection failed after a $bad write"
        short_ok=$((short_ok + 1))
    done
    sleep 0.4
done
wait "$paced" || mesh_fail "paced transfer: $(cat "$MESH_WORK/paced.out")"
grep -q '"received": 4194304' "$MESH_WORK/paced.out" || mesh_fail "paced bytes"
echo "paced transfer byte-exact, $short_ok short connections ok during three bad writes"

failures=$(grep -c 'invalid config; keeping the last good one' "$MESH_WORK/zt2.log" || true)
[ "$failures" -ge 3 ] || mesh_fail "expected 3 logged failures, got $failures"
grep -q 'invalid config.*workloads\[[0-9]\]\.workloadIps\[0\]: 198.18.2.2' "$MESH_WORK/zt2.log" ||
    mesh_fail "the semantic error was not logged with its JSON path"
zt_in "$(zt_ns_node 2)" curl -s http://127.0.0.1:15020/metrics |
    grep >/dev/null 'ztunnel_config_reloads_total{result="failure"} 3' || mesh_fail "failures not counted"
zt_in "$(zt_ns_node 2)" curl -s http://127.0.0.1:15000/config_dump | /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["configStatus"]["lastError"], d["configStatus"]
assert len(d["workloads"]) == 5, len(d["workloads"])
' || mesh_fail "dump"

mesh_config '[{"name": "after", "namespace": "default", "scope": "Namespace", "action": "Allow", "rules": [[]]}]'
mesh_wait_log 2 'config applied.*policies=1' || mesh_fail "a valid file was not applied after the bad ones"
out=$(mesh_xfer 1 client 198.18.2.2:8080 65536) || mesh_fail "after recovery: $out"
echo "broken reloads under traffic: ok"
