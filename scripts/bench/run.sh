#!/usr/bin/env bash
# run.sh [SECTION]: `make bench` (T=SECTION picks one). Sections, all by default:
#   relay        inside a fresh network namespace (loopback only, zt-bench<PID>-lo, removed by a
#                trap), scripts/bench/relay.py writes docs/bench/relay.md and relay.png
#   hbone-micro  the in-memory TLS+HTTP/2 pair against raw AES-GCM (build/bench/hbone-micro.txt)
#   config       parse + index of a 10,000-workload file (build/bench/config.txt)
#   hbone        end to end in the two-node netns mesh (scripts/e2e/lib/mesh.sh): direct pod to
#                pod, through both ztunnels over HBONE, and through our client ztunnel into
#                nghttpx standing in for the remote ztunnel, and through a python waypoint
#                (CPU per connection on both ztunnels); scripts/bench/hbone.py writes the
#                "End to end" section of docs/bench/hbone.md and docs/bench/hbone.png
#   dns          DNS answered locally and forwarded: our proxy against dnsmasq as a forwarder
#                (scripts/bench/dns.sh writes docs/bench/dns.md)
#   agent        ztunnel-agent between the independent xDS server and ztunnel: initial sync of a
#                10,000-workload mesh and 50 changes/s (scripts/bench/agent.sh), then agent-zds;
#                PARTS=xds or PARTS=zds runs one of the two; docs/bench/agent.md
#   agent-zds    100 pods added over ZDS at once (add -> ack, add -> first connection) and CA
#                renewals per second (scripts/bench/agent_zds.sh), docs/bench/agent.md
#   loads        the full-size loads L3 and L5 (scripts/e2e/load_streams.sh with 16 MiB streams;
#                `make test` runs them at 4 MiB to fit CI) and L2 at its plan's 500 connections at
#                once (scripts/e2e/load_short_conns.sh; `make test` runs 64 at once): pass or fail,
#                and the time they took
# Environment: RUNS (3), DURATION (5 s), the knobs listed in scripts/bench/relay.py, and PARTS
# (hbone only: a comma list of iperf,pingpong,connrate,idle,handshake,waypoint; a partial run
# leaves docs alone and writes build/bench/hbone-partial.json).
# Needs root (it makes a namespace); exits 77 when not root.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/netns/lib.sh
section=${1:-all}
BUILD=${BUILD:-build}
export BUILD
mkdir -p "$BUILD/bench"

case $section in
    all)
        "$0" relay
        "$0" hbone-micro
        "$0" config
        "$0" hbone
        "$0" dns
        "$0" agent
        "$0" loads
        exit 0
        ;;
    relay) ;;
    hbone-micro)
        echo "bench: hbone micro-benchmark -> $BUILD/bench/hbone-micro.txt"
        scripts/bench/hbone_micro.sh | tee "$BUILD/bench/hbone-micro.txt"
        exit 0
        ;;
    config)
        echo "bench: config parse and index -> $BUILD/bench/config.txt"
        "$BUILD/tools/config_bench" | tee "$BUILD/bench/config.txt"
        exit 0
        ;;
    hbone)
        exec scripts/bench/hbone.sh
        ;;
    dns)
        exec scripts/bench/dns.sh
        ;;
    agent)
        # PARTS (agent): a comma list of xds,zds (default both).
        parts=${PARTS:-xds,zds}
        case ",$parts," in
            *,xds,*)
                echo "bench: control agent, xDS push to ztunnel applied -> docs/bench/agent.md"
                scripts/bench/agent.sh
                ;;
        esac
        case ",$parts," in
            *,zds,*) exec "$0" agent-zds ;;
        esac
        exit 0
        ;;
    agent-zds)
        echo "bench: control agent, 100 pods over ZDS and CA renewals -> docs/bench/agent.md"
        exec scripts/bench/agent_zds.sh
        ;;
    loads)
        echo "bench: loads L3 and L5 at full size (100 streams x 16 MiB), then L2 -> $BUILD/bench/loads.txt"
        started=$SECONDS
        set +e
        LOAD_STREAM_MIB=16 bash scripts/e2e/load_streams.sh 2>&1 | grep -v 'connection complete' |
            tee "$BUILD/bench/loads.txt"
        rc=${PIPESTATUS[0]}
        echo "bench: load L2, 20,000 short connections 500 at a time" | tee -a "$BUILD/bench/loads.txt"
        L2_CONCURRENCY=500 bash scripts/e2e/load_short_conns.sh 2>&1 | grep -v 'connection complete' |
            tee -a "$BUILD/bench/loads.txt"
        [ "${PIPESTATUS[0]}" = 0 ] || rc=1
        echo "loads: exit $rc after $((SECONDS - started)) s" | tee -a "$BUILD/bench/loads.txt"
        exit "$rc"
        ;;
    *) echo "run.sh: unknown section '$section' (known: all relay hbone-micro config hbone dns agent agent-zds loads)" >&2; exit 2 ;;
esac
zt_require_root
for tool in iperf3 haproxy socat gnuplot /usr/bin/python3 "$BUILD/tools/echo_server" \
    "$BUILD/tools/pingpong" "$BUILD/tools/connrate" "$BUILD/tools/idle_conns"; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "run.sh: $tool is missing (scripts/install-deps.sh; make)" >&2
        exit 1
    fi
done

zt_init "bench$$"
ns="zt-$ZT_TAG-lo"
trap 'zt_cleanup' EXIT
ip netns add "$ns"
ip -n "$ns" link set lo up
# The connection-rate test opens and closes tens of thousands of connections per run; loopback
# TIME_WAIT reuse (tcp_tw_reuse=2, the default) plus the wide port range keep connect() from
# running out of ports. These sysctls are per network namespace.
zt_in "$ns" sysctl -qw net.ipv4.ip_local_port_range="1024 65000" net.core.somaxconn=4096 \
    net.ipv4.tcp_max_syn_backlog=8192 >/dev/null
# 10,000 idle relayed connections need about 20,000 fds in the relay: take the hard limit (root
# without CAP_SYS_RESOURCE, as in this sandbox, cannot go beyond it; relay.py scales down).
ulimit -n "$(ulimit -Hn)"

echo "bench: section $section in netns $ns ($(nproc) cores, kernel $(uname -r), RUNS=${RUNS:-3} DURATION=${DURATION:-5})"
zt_in "$ns" /usr/bin/python3 scripts/bench/relay.py
