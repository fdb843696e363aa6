# mesh.sh: the two-node mesh the proxy scenarios run on, built on scripts/netns/lib.sh. Source it
# from a scenario, then `mesh_up TAG`. It makes:
#
#   node1: ztunnel; pods client (198.18.1.2), client2 (198.18.1.3) captured, HBONE;
#          pod plain (198.18.1.4) uncaptured (not a mesh workload)
#   node2: ztunnel; pod server (198.18.2.2) captured, HBONE; pod plainsrv (198.18.2.3) uncaptured,
#          a TCP workload; pod pyhbone (198.18.2.4) uncaptured, an HBONE workload whose "ztunnel"
#          is whatever the scenario runs on its 15008 (the independent peer, for interop)
#
# each pod also has 2001:db8:N::x. Every pod runs tests/peers/tcp_peer.py as an echo server on
# 8080 that logs the client address it sees. Both ztunnels share one local CA. Policies are given
# to `mesh_config` as a JSON array and written to both nodes' files (atomically, by rename), so a
# scenario can change them while traffic flows (`mesh_reconfig` also waits until both nodes
# applied them). Everything is removed by `mesh_down` (trap).
#
# Optional variables a scenario may set before `mesh_up`:
#   MESH_ZT_ARGS       extra flags for both `ztunnel run` (word-split), e.g. "--drain-timeout 8s"
#   MESH_ZT_ENV, MESH_ZT1_ENV, MESH_ZT2_ENV   environment for both / one ztunnel (word-split
#                      VAR=VALUE), e.g. MESH_ZT1_ENV="POOL_MAX_STREAMS_PER_CONNECTION=1"
#   MESH_CERT_MODE     `ca` (default: --ca-dir, ztunnel signs) or `files` (--cert-dir
#                      $MESH_WORK/certs, written by `mesh_issue_cert` as an agent would)
#   MESH_EXTRA_CAPTURED  more captured pods ("N:NAME:X" words)
#   MESH_NODE1_PODS, MESH_NODE2_PODS, MESH_EXTRA_WORKLOADS, MESH_EXTRA_SERVICES
#                      see mesh_config / mesh_workloads
#   MESH_SERVICE_PORTS, MESH_SERVER_PORTS   the service's and the server endpoint's port maps
#   MESH_POLICIES, MESH_LOG_LEVEL
# Certificates in /config_dump: mesh_cert_serial, mesh_wait_cert_serial.

here_mesh=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
. "$here_mesh/scripts/netns/lib.sh"
BUILD=${BUILD:-build}
ZT_BIN="$here_mesh/$BUILD/ztunnel"
PEER="/usr/bin/python3 $here_mesh/tests/peers/tcp_peer.py"
HBONE_PEER="/usr/bin/python3 $here_mesh/tests/peers/hbone_peer.py"

mesh_fail() {
    echo "FAIL: $*" >&2
    exit 1
}

mesh_down() {
    for n in 1 2; do
        if [ -n "${MESH_WORK:-}" ] && [ -f "$MESH_WORK/zt$n.log" ]; then
            echo "--- ztunnel node$n log (tail)"
            tail -n 25 "$MESH_WORK/zt$n.log"
        fi
    done
    zt_cleanup
    [ -n "${MESH_WORK:-}" ] && rm -rf "$MESH_WORK"
}

# mesh_workloads: the workloads and services both nodes know (MESH_EXTRA_WORKLOADS and
# MESH_EXTRA_SERVICES, when set, are prepended to their lists: JSON objects each followed by a
# comma). MESH_SERVICE_PORTS (the
# service's port map, default {"80": 8080}) and MESH_SERVER_PORTS (the server endpoint's own map
# for that service, default {"80": 8080}) are read at each mesh_config, so a scenario can change
# them and rewrite the config.
mesh_workloads() {
    local service_ports=${MESH_SERVICE_PORTS:-'{"80": 8080}'}
    local server_ports=${MESH_SERVER_PORTS:-'{"80": 8080}'}
    cat <<JSON
  "workloads": [ ${MESH_EXTRA_WORKLOADS:-}
    {"uid": "c1//v1/Pod/default/client", "name": "client", "namespace": "default",
     "serviceAccount": "client", "workloadIps": ["198.18.1.2", "2001:db8:1::2"],
     "protocol": "HBONE", "node": "node1", "services": {}},
    {"uid": "c1//v1/Pod/default/client2", "name": "client2", "namespace": "default",
     "serviceAccount": "client2", "workloadIps": ["198.18.1.3", "2001:db8:1::3"],
     "protocol": "HBONE", "node": "node1", "services": {}},
    {"uid": "c1//v1/Pod/default/server", "name": "server", "namespace": "default",
     "serviceAccount": "server", "workloadIps": ["198.18.2.2", "2001:db8:2::2"],
     "protocol": "HBONE", "node": "node2",
     "services": {"default/server.default.svc.cluster.local": $server_ports}},
    {"uid": "c1//v1/Pod/default/plainsrv", "name": "plainsrv", "namespace": "default",
     "serviceAccount": "plainsrv", "workloadIps": ["198.18.2.3", "2001:db8:2::3"],
     "protocol": "TCP", "node": "node2", "services": {}},
    {"uid": "c1//v1/Pod/default/pyhbone", "name": "pyhbone", "namespace": "default",
     "serviceAccount": "pyhbone", "workloadIps": ["198.18.2.4"], "protocol": "HBONE",
     "node": "node2", "services": {}}
  ],
  "services": [ ${MESH_EXTRA_SERVICES:-}
    {"name": "server", "namespace": "default", "hostname": "server.default.svc.cluster.local",
     "vips": ["/198.19.0.10"], "ports": $service_ports,
     "subjectAltNames": ["spiffe://cluster.local/ns/default/sa/server"]}
  ]
JSON
}

# mesh_extra_pods: MESH_EXTRA_CAPTURED, "N:NAME:X" words (default empty): more captured pods,
# each NAME on node N at 198.18.N.X with the redirect rules, an echo application logging to
# $MESH_WORK/peers-NAME.log, and a `pods` entry uid c1//v1/Pod/default/NAME in node N's config
# (the scenario describes the workload itself in MESH_EXTRA_WORKLOADS).
mesh_extra_pods() {
    local word
    for word in ${MESH_EXTRA_CAPTURED:-}; do
        echo "${word//:/ }"
    done
}

# mesh_config POLICIES_JSON: (re)writes both nodes' config files. MESH_NODE1_PODS /
# MESH_NODE2_PODS, when set, replace node 1's / node 2's `pods` entries (a JSON list body; set
# to a space for none).
mesh_config() {
    local policies=${1:-[]}
    local n pods node name x
    for n in 1 2; do
        if [ "$n" = 1 ] && [ -n "${MESH_NODE1_PODS:-}" ]; then
            pods=$MESH_NODE1_PODS
        elif [ "$n" = 2 ] && [ -n "${MESH_NODE2_PODS:-}" ]; then
            pods=$MESH_NODE2_PODS
        elif [ "$n" = 1 ]; then
            pods="{\"uid\": \"c1//v1/Pod/default/client\", \"netns\": \"$(zt_ns_path "$(zt_ns_pod 1 client)")\"},
    {\"uid\": \"c1//v1/Pod/default/client2\", \"netns\": \"$(zt_ns_path "$(zt_ns_pod 1 client2)")\"}"
        else
            pods="{\"uid\": \"c1//v1/Pod/default/server\", \"netns\": \"$(zt_ns_path "$(zt_ns_pod 2 server)")\"}"
        fi
        while read -r node name x; do
            [ "$node" = "$n" ] || continue
            pods="$pods,
    {\"uid\": \"c1//v1/Pod/default/$name\", \"netns\": \"$(zt_ns_path "$(zt_ns_pod "$n" "$name")")\"}"
        done < <(mesh_extra_pods)
        {
            echo "{"
            mesh_workloads
            echo ", \"policies\": $policies,"
            echo "  \"pods\": [$pods]"
            echo "}"
        } >"$MESH_WORK/node$n.json.tmp"
        mv "$MESH_WORK/node$n.json.tmp" "$MESH_WORK/node$n.json"
    done
}

# mesh_up TAG: topology, redirect rules, CA, config, applications and both ztunnels.
mesh_up() {
    zt_require_root
    [ -x "$ZT_BIN" ] || mesh_fail "build $ZT_BIN first (make)"
    # The pid keeps two copies of a scenario (two checkouts on one machine) out of each other's
    # namespaces.
    zt_init "$1$$"
    MESH_WORK=$(mktemp -d)
    trap mesh_down EXIT
    zt_node_create 1 && zt_node_create 2 || mesh_fail "topology"
    zt_pod_create 1 client 2 && zt_pod_create 1 client2 3 && zt_pod_create 1 plain 4 &&
        zt_pod_create 2 server 2 && zt_pod_create 2 plainsrv 3 && zt_pod_create 2 pyhbone 4 ||
        mesh_fail "pods"
    local extra=() node name x
    while read -r node name x; do
        zt_pod_create "$node" "$name" "$x" || mesh_fail "pod $name"
        extra+=("$node $name")
    done < <(mesh_extra_pods)
    for pod in "1 client" "1 client2" "2 server" "${extra[@]}"; do
        # shellcheck disable=SC2086
        "$here_mesh/scripts/redirect-inpod.sh" "$(zt_ns_pod $pod)" >/dev/null || mesh_fail "redirect"
    done
    "$ZT_BIN" ca init "$MESH_WORK/ca" >/dev/null || mesh_fail "ca init"
    local cert_flags=(--ca-dir "$MESH_WORK/ca")
    if [ "${MESH_CERT_MODE:-ca}" = files ]; then
        mkdir -p "$MESH_WORK/certs"
        cp "$MESH_WORK/ca/root-cert.pem" "$MESH_WORK/certs/root-cert.pem.tmp"
        mv "$MESH_WORK/certs/root-cert.pem.tmp" "$MESH_WORK/certs/root-cert.pem"
        for sa in client client2 server; do
            mesh_issue_cert "$sa" >/dev/null || mesh_fail "issue $sa"
        done
        cert_flags=(--cert-dir "$MESH_WORK/certs")
    fi
    mesh_config "${MESH_POLICIES:-[]}"
    for pod in "1 client" "1 client2" "1 plain" "2 server" "2 plainsrv" "${extra[@]}"; do
        # shellcheck disable=SC2086
        set -- $pod
        zt_bg "$(zt_ns_pod "$1" "$2")" "$MESH_WORK/app-$2.log" \
            $PEER server --listen "[::]:8080" --log "$MESH_WORK/peers-$2.log" >/dev/null
    done
    MESH_CERT_FLAGS=("${cert_flags[@]}")
    mesh_zt_start 1
    mesh_zt_start 2
    for pod in "1 client" "1 client2" "1 plain" "2 server" "2 plainsrv" "${extra[@]}"; do
        # shellcheck disable=SC2086
        set -- $pod
        zt_wait_listen "$(zt_ns_pod "$1" "$2")" 8080 10 || mesh_fail "app in $2 not listening"
    done
    mesh_wait_ready 1 && mesh_wait_ready 2 || mesh_fail "ztunnels not ready"
}

# mesh_zt_start N [VAR=VALUE...]: starts node N's ztunnel (in the background, log appended to
# ztN.log, pid in MESH_ZTN_PID) with MESH_ZT_ARGS and, in its environment, MESH_ZT_ENV and
# MESH_ZTN_ENV (words VAR=VALUE) and the given assignments. It does not wait for readiness.
mesh_zt_start() {
    local n=$1 env_n
    shift
    eval "env_n=\${MESH_ZT${n}_ENV:-}"
    # shellcheck disable=SC2086
    ip netns exec "$(zt_ns_node "$n")" env ${MESH_ZT_ENV:-} $env_n "$@" "$ZT_BIN" run \
        --config "$MESH_WORK/node$n.json" "${MESH_CERT_FLAGS[@]}" --node "node$n" \
        --workers 2 --log-level "${MESH_LOG_LEVEL:-info}" ${MESH_ZT_ARGS:-} \
        >>"$MESH_WORK/zt$n.log" 2>&1 </dev/null &
    ZT_BG_LAST=$!
    ZT_BG_PIDS="$ZT_BG_PIDS $ZT_BG_LAST"
    eval "MESH_ZT${n}_PID=\$ZT_BG_LAST"
}

# mesh_zt_restart N [VAR=VALUE...]: stops node N's ztunnel (SIGTERM, then SIGKILL after 10 s),
# starts it again as `mesh_zt_start` does and waits until it is ready.
mesh_zt_restart() {
    local n=$1 pid i
    eval "pid=\$MESH_ZT${n}_PID"
    kill "$pid" 2>/dev/null || true
    for i in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    mesh_zt_start "$@"
    mesh_wait_ready "$n"
}

# mesh_issue_cert SA [CA_DIR]: (files mode) a fresh certificate for
# spiffe://cluster.local/ns/default/sa/SA from the mesh CA (or CA_DIR), put in place as an agent
# does: both files written aside, then each renamed over the old one. Prints the new
# certificate's serial (decimal, as `ztunnel ca issue` says).
mesh_issue_cert() {
    local sa=$1 ca=${2:-$MESH_WORK/ca} dir="$MESH_WORK/certs/default/$1" tmp out
    tmp=$(mktemp -d "$MESH_WORK/issue.XXXXXX")
    out=$("$ZT_BIN" ca issue --ca-dir "$ca" \
        --identity "spiffe://cluster.local/ns/default/sa/$sa" --out "$tmp") || return 1
    mkdir -p "$dir"
    mv "$tmp/key.pem" "$dir/key.pem" && mv "$tmp/cert-chain.pem" "$dir/cert-chain.pem" || return 1
    rmdir "$tmp"
    echo "$out" | sed -nE 's/.*\(serial ([0-9]+),.*/\1/p'
}

# mesh_cert_serial N SA: the serial of SA's leaf certificate in node N's /config_dump (empty if
# it has none).
mesh_cert_serial() {
    zt_in "$(zt_ns_node "$1")" curl -s http://127.0.0.1:15000/config_dump |
        jq -r --arg id "spiffe://cluster.local/ns/default/sa/$2" \
            '.certificates[] | select(.identity == $id) | .certChain[0].serialNumber // empty'
}

# mesh_wait_cert_serial N SA SERIAL: until node N's /config_dump shows SERIAL for SA (5 s at most).
mesh_wait_cert_serial() {
    local i
    for i in $(seq 50); do
        [ "$(mesh_cert_serial "$1" "$2")" = "$3" ] && return 0
        sleep 0.1
    done
    return 1
}

# mesh_wait_ready N: until node N's ztunnel answers 200 on /healthz/ready (10 s at most).
mesh_wait_ready() {
    local i
    for i in $(seq 100); do
        if zt_in "$(zt_ns_node "$1")" curl -sf -o /dev/null "http://127.0.0.1:15021/healthz/ready"; then
            return 0
        fi
        sleep 0.1
    done
    zt_in "$(zt_ns_node "$1")" curl -s "http://127.0.0.1:15021/healthz/ready"
    return 1
}

# mesh_xfer NODE POD DEST BYTES: a byte-exact echo transfer from a pod; prints the JSON result.
mesh_xfer() {
    zt_in "$(zt_ns_pod "$1" "$2")" timeout 60 $PEER client --connect "$3" --bytes "$4" --seed "$RANDOM"
}

# mesh_metrics N: node N's /metrics.
mesh_metrics() {
    zt_in "$(zt_ns_node "$1")" curl -s "http://127.0.0.1:15020/metrics"
}

# mesh_opened_closed N REPORTER: "opened closed", the sums over node N's series of that reporter.
mesh_opened_closed() {
    local m
    m=$(mesh_metrics "$1")
    sum() { echo "$m" | grep "^$1{" | grep "reporter=\"$2\"" | awk '{s+=$NF} END {print s+0}'; }
    echo "$(sum istio_tcp_connections_opened_total "$2") $(sum istio_tcp_connections_closed_total "$2")"
}

# mesh_expect_counted N: node 1 (as source) and node 2 (as destination) each counted N
# connections opened and N closed. Closing is counted after the last byte, so it waits up to 5 s.
mesh_expect_counted() {
    local want="$1 $1" i
    for i in $(seq 50); do
        [ "$(mesh_opened_closed 1 source)" = "$want" ] &&
            [ "$(mesh_opened_closed 2 destination)" = "$want" ] && return 0
        sleep 0.1
    done
    mesh_fail "opened/closed: node1 source $(mesh_opened_closed 1 source), node2 destination $(mesh_opened_closed 2 destination), want $1 each"
}

# mesh_fds N: open fds of node N's ztunnel.
mesh_fds() {
    local pid
    eval "pid=\$MESH_ZT${1}_PID"
    ls "/proc/$pid/fd" | wc -l
}

# mesh_wait_log N REGEX [SECS]: until node N's ztunnel log has a matching line.
mesh_wait_log() {
    zt_wait_line "$MESH_WORK/zt$1.log" "$2" "${3:-10}"
}

# mesh_reconfig POLICIES_JSON: mesh_config, then wait until both ztunnels have applied the new
# files (one more "config applied" line each, 10 s at most). The new files must differ from the
# old ones.
mesh_reconfig() {
    local n before1 before2
    before1=$(grep -c 'config applied' "$MESH_WORK/zt1.log" || true)
    before2=$(grep -c 'config applied' "$MESH_WORK/zt2.log" || true)
    mesh_config "${1:-[]}"
    for n in 1 2; do
        local before deadline=$((SECONDS + 10))
        eval "before=\$before$n"
        while [ "$(grep -c 'config applied' "$MESH_WORK/zt$n.log" || true)" -le "$before" ]; do
            [ "$SECONDS" -lt "$deadline" ] || { echo "mesh_reconfig: node$n did not apply" >&2; return 1; }
            sleep 0.05
        done
    done
}
