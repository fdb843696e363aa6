#!/usr/bin/env bash
# agent.sh: `make bench T=agent` (scripts/bench/run.sh agent). In one fresh network namespace
# (zt-<tag>-agent, loopback only, removed by a trap) it runs the independent xDS server
# (tests/peers/xds_server.py, TLS with a root made here), ztunnel-agent and ztunnel, then hands
# them to scripts/bench/agent.py, which pushes 10,000 workloads, 1,000 services and 1,000
# policies, measures the initial sync and 60 s of 50 changes per second, and writes
# docs/bench/agent.md. Environment: WORKLOADS (10000), SERVICES (1000), POLICIES (1000), RATE
# (50/s), SECONDS_STEADY (60), AGENT_ARGS / AGENT_ENV (extra agent flags / VAR=VALUE words, for
# A/B runs), TRADEOFF (0,250,1000: the agent's minimum write intervals in
# ms, AGENT_WRITE_MIN_INTERVAL_MS, run again after the main run, for the CPU against latency
# table; "" for none), TRADEOFF_SECONDS (30), OUT (docs/bench/agent.md; a run
# with other sizes writes build/bench/agent.md unless OUT is given). Needs root; exits 77 when
# not root.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
export BUILD
. scripts/netns/lib.sh
. tests/scripts/lib/openssl_pki.sh
zt_require_root
for tool in /usr/bin/python3 "$BUILD/ztunnel" "$BUILD/ztunnel-agent" protoc openssl; do
    command -v "$tool" >/dev/null 2>&1 || { echo "agent.sh: $tool is missing" >&2; exit 1; }
done

proto_dir=src/agent/proto
for candidate in "${ZT_REFERENCE_PROTOS:-}" ../shared/reference/protos ../../shared/reference/protos; do
    if [ -n "$candidate" ] && [ -f "$candidate/ztunnel/xds.proto" ]; then
        proto_dir="$candidate/ztunnel"
        break
    fi
done

zt_init "abench$$"
ns="zt-$ZT_TAG-agent"
work=$(mktemp -d /tmp/zt-agent-bench-XXXXXX)
cleanup() {
    zt_cleanup
    # The three logs stay for a look at where the time went (build/bench/agent-logs/).
    mkdir -p "$BUILD/bench/agent-logs"
    cp "$work"/*.log "$BUILD/bench/agent-logs/" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
ip netns add "$ns"
ip -n "$ns" link set lo up

(cd "$work" && pki_make_ca root && pki_make_server root istiod "DNS:istiod.istio-system.svc,IP:127.0.0.1")
"$BUILD/ztunnel" ca init "$work/ca" >/dev/null

zt_bg "$ns" "$work/istiod.log" /usr/bin/python3 tests/peers/xds_server.py --listen 127.0.0.1:15012 \
    --cert "$work/istiod.pem" --key "$work/istiod.key" --proto-dir "$proto_dir" \
    --control 127.0.0.1:15099
ISTIOD_PID=$ZT_BG_LAST
zt_wait_listen "$ns" 15099 20 || { echo "xds server did not start" >&2; cat "$work/istiod.log"; exit 1; }

# ztunnel first: it waits (not ready) for a config file that does not exist yet.
zt_bg "$ns" "$work/ztunnel.log" "$BUILD/ztunnel" run --config "$work/config.json" \
    --ca-dir "$work/ca" --node node1 --workers 2 --admin-addr 127.0.0.1:15000 \
    --metrics-addr 127.0.0.1:15020 --readiness-addr 127.0.0.1:15021
ZTUNNEL_PID=$ZT_BG_LAST
zt_wait_listen "$ns" 15000 20 || { echo "ztunnel did not start" >&2; cat "$work/ztunnel.log"; exit 1; }

export WORK=$work ZTUNNEL_PID
# The driver runs inside the namespace too (it talks to the server's control port on loopback
# and starts the agent there).
AGENT_CMD="env XDS_ADDRESS=127.0.0.1:15012 XDS_ROOT_CA=$work/root.pem POD_NAME=ztunnel-bench \
POD_NAMESPACE=istio-system NODE_NAME=node1 INSTANCE_IP=127.0.0.1 ${AGENT_ENV:-} \
$PWD/$BUILD/ztunnel-agent --config-out $work/config.json --token-file $work/token \
--admin-addr 127.0.0.1:15098 ${AGENT_ARGS:-}"
export AGENT_CMD
ip netns exec "$ns" /usr/bin/python3 scripts/bench/agent.py
