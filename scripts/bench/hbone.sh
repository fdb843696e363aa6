#!/usr/bin/env bash
# hbone.sh: the topology half of `make bench T=hbone` (scripts/bench/run.sh hbone). It brings up
# the two-node e2e mesh (scripts/e2e/lib/mesh.sh: namespaces zt-hbench<PID>-*, addresses in
# 198.18.0.0/15 only, everything removed by the mesh's trap) and starts the peers:
#   plainsrv (198.18.2.3, uncaptured)  iperf3 -s :5201, echo_server :7000   (direct target)
#   server   (198.18.2.2, captured)    iperf3 -s :5201, echo_server :7000   (through 2 ztunnels)
#   pyhbone  (198.18.2.4, HBONE in the config, not captured): nghttpx --http2-proxy on :15008 in
#            place of node 2's ztunnel (TLS with a `ztunnel ca issue` certificate for
#            spiffe://cluster.local/ns/default/sa/pyhbone, client certificates verified against
#            the mesh root, windows 4 MiB / 16 MiB like ours, up to 1,024 tunnels at once instead
#            of its default 8, which -P 8 exceeds), its HTTP/1.1 CONNECT backend
#            build/tools/connect_proxy on 127.0.0.1:3128, and iperf3 -s :5201 as the target
#   waypoint (198.18.2.5, HBONE in the config, not captured): tests/peers/waypoint_peer.py (the
#            independent python3-h2 waypoint of scripts/e2e/waypoint.sh) on :15008 with identity
#            spiffe://cluster.local/ns/default/sa/waypoint, the waypoint of service wpbench (VIP
#            198.19.0.30, port 7000); it re-originates HBONE to node 2's ztunnel for the server
#            pod's echo_server (198.18.2.2:7000), for the `waypoint` part of hbone.py
# then hands the pids and namespaces to scripts/bench/hbone.py, which measures and writes the
# report. Needs root; exits 77 when not root.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
export BUILD
for tool in iperf3 nghttpx gnuplot /usr/bin/python3 "$BUILD/ztunnel" "$BUILD/tools/echo_server" \
    "$BUILD/tools/pingpong" "$BUILD/tools/connrate" "$BUILD/tools/idle_conns" \
    "$BUILD/tools/connect_proxy" tests/peers/waypoint_peer.py; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "hbone.sh: $tool is missing (scripts/install-deps.sh; make)" >&2
        exit 1
    fi
done
# The idle-tunnel test holds as many connections as the fd limit allows (every process started
# below inherits it; hbone.py scales the count down to fit).
ulimit -n "$(ulimit -Hn)"
# Access logs at info would measure the log file at 10,000+ connections per second; the
# benchmark measures the data path (MESH_LOG_LEVEL overrides).
MESH_LOG_LEVEL=${MESH_LOG_LEVEL:-warn}
. scripts/e2e/lib/mesh.sh
mkdir -p "$BUILD/bench"
# The waypoint part's workload and service (as scripts/e2e/waypoint.sh describes its own; mesh.sh
# reads both).
# shellcheck disable=SC2034
MESH_EXTRA_WORKLOADS='{"uid": "c1//v1/Pod/default/waypoint", "name": "waypoint",
     "namespace": "default", "serviceAccount": "waypoint", "workloadIps": ["198.18.2.5"],
     "protocol": "HBONE", "node": "node2", "services": {}},'
# shellcheck disable=SC2034
MESH_EXTRA_SERVICES='{"name": "wpbench", "namespace": "default",
     "hostname": "wpbench.default.svc.cluster.local", "vips": ["/198.19.0.30"],
     "ports": {"7000": 7000}, "waypoint": {"destination": "/198.18.2.5", "hboneMtlsPort": 15008}},'
mesh_up hbench
zt_pod_create 2 waypoint 5 || mesh_fail "pod waypoint"

# The connection-rate runs open tens of thousands of connections to one address and port; the
# closing side keeps them in TIME_WAIT, and off loopback the kernel reuses those only with
# tcp_tw_reuse=1 (per netns), so without it later runs crawl for want of ports. That includes the
# server pod: node 2's ztunnel connects to the workload from inside it and closes first, and with
# the default range and reuse the rate fell from 1,900/s to 150/s within 15 s as its TIME_WAIT
# sockets piled up (a property of the pod's sysctls, noted in docs/bench/hbone.md).
for ns in "$(zt_ns_node 1)" "$(zt_ns_node 2)" "$(zt_ns_pod 1 client)" "$(zt_ns_pod 1 plain)" \
    "$(zt_ns_pod 2 server)" "$(zt_ns_pod 2 waypoint)"; do
    zt_in "$ns" sysctl -qw net.ipv4.ip_local_port_range="1024 65000" net.ipv4.tcp_tw_reuse=1 \
        >/dev/null
done
for pod in plainsrv server pyhbone; do
    zt_bg "$(zt_ns_pod 2 $pod)" "$MESH_WORK/iperf3-$pod.log" iperf3 -s -p 5201
done
for pod in plainsrv server; do
    zt_bg "$(zt_ns_pod 2 $pod)" "$MESH_WORK/echo-$pod.log" "$BUILD/tools/echo_server" 0.0.0.0:7000
done
"$ZT_BIN" ca issue --ca-dir "$MESH_WORK/ca" --identity spiffe://cluster.local/ns/default/sa/pyhbone \
    --out "$MESH_WORK/pyhbone" >/dev/null
zt_bg "$(zt_ns_pod 2 pyhbone)" "$MESH_WORK/connect_proxy.log" "$BUILD/tools/connect_proxy" \
    127.0.0.1:3128
NGHTTPX_CMD="nghttpx --conf=/dev/null --http2-proxy -f 0.0.0.0,15008 -b 127.0.0.1,3128 -n1 --no-ocsp \
--frontend-http2-window-size=4194304 --frontend-http2-connection-window-size=16777216 \
--backend-connections-per-host=1024 \
--verify-client --verify-client-cacert=$MESH_WORK/ca/root-cert.pem \
--accesslog-file=/dev/null ${NGHTTPX_EXTRA:-} $MESH_WORK/pyhbone/key.pem $MESH_WORK/pyhbone/cert-chain.pem"
# shellcheck disable=SC2086
zt_bg "$(zt_ns_pod 2 pyhbone)" "$MESH_WORK/nghttpx.log" $NGHTTPX_CMD
NGHTTPX_PID=$ZT_BG_LAST
for pod in plainsrv server pyhbone; do
    zt_wait_listen "$(zt_ns_pod 2 $pod)" 5201 10 || mesh_fail "iperf3 in $pod"
done
zt_wait_listen "$(zt_ns_pod 2 plainsrv)" 7000 10 && zt_wait_listen "$(zt_ns_pod 2 server)" 7000 10 ||
    mesh_fail "echo_server"
zt_wait_listen "$(zt_ns_pod 2 pyhbone)" 3128 10 || mesh_fail "connect_proxy"
# The waypoint logs each request as a JSON line on stdout (no --log file, which would add a file
# open per connection to its cost).
"$ZT_BIN" ca issue --ca-dir "$MESH_WORK/ca" --identity spiffe://cluster.local/ns/default/sa/waypoint \
    --out "$MESH_WORK/waypoint" >/dev/null
WAYPOINT_CMD="/usr/bin/python3 tests/peers/waypoint_peer.py --listen 0.0.0.0:15008 \
--cert $MESH_WORK/waypoint/cert-chain.pem --key $MESH_WORK/waypoint/key.pem \
--ca $MESH_WORK/ca/root-cert.pem \
--route 198.19.0.30:7000=198.18.2.2:15008,198.18.2.2:7000,spiffe://cluster.local/ns/default/sa/server"
# shellcheck disable=SC2086
zt_bg "$(zt_ns_pod 2 waypoint)" "$MESH_WORK/waypoint.out" $WAYPOINT_CMD
WAYPOINT_PID=$ZT_BG_LAST
zt_wait_listen "$(zt_ns_pod 2 waypoint)" 15008 10 || { cat "$MESH_WORK/waypoint.out"; mesh_fail "waypoint"; }
zt_wait_listen "$(zt_ns_pod 2 pyhbone)" 15008 10 || { cat "$MESH_WORK/nghttpx.log"; mesh_fail "nghttpx"; }

export NS_PLAIN NS_CLIENT NS_NODE1 NS_NODE2 ZT1_PID ZT2_PID NGHTTPX_PID NGHTTPX_CMD MESH_LOG_LEVEL MESH_WORK \
    WAYPOINT_PID WAYPOINT_CMD
NS_PLAIN=$(zt_ns_pod 1 plain)
NS_CLIENT=$(zt_ns_pod 1 client)
NS_NODE1=$(zt_ns_node 1)
NS_NODE2=$(zt_ns_node 2)
ZT1_PID=$MESH_ZT1_PID
ZT2_PID=$MESH_ZT2_PID
echo "bench: hbone in netns mesh zt-$ZT_TAG-* ($(nproc) cores, kernel $(uname -r), RUNS=${RUNS:-3} DURATION=${DURATION:-5})"
# HBONE_DEBUG=1 shows the tails of the peers' logs when a measurement fails (the mesh is gone after).
# In the background and waited for, so that a TERM or ^C ends this script at once (bash runs traps
# only between foreground commands) and the cleanup stops the measurements with the mesh.
/usr/bin/python3 scripts/bench/hbone.py &
ZT_BG_PIDS="$ZT_BG_PIDS $!"
wait "$!" || {
    [ -z "${HBONE_DEBUG:-}" ] || tail -n 30 "$MESH_WORK/nghttpx.log" "$MESH_WORK/connect_proxy.log" \
        "$MESH_WORK/waypoint.out"
    exit 1
}
