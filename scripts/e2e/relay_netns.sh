#!/usr/bin/env bash
# relay_netns.sh relays through the two-node topology: a client pod on node 1 connects to the
# relay tool (build/tools/zt_relay) running in node 1's netns, which relays to a server pod on
# node 2. 16 MiB cross each way at the same time, each side half-closes after sending, and the
# SHA-256 of what each side sent must equal what the other side received (IPv4, then IPv6).
# Root only (exit 77 otherwise); skips (77) when the relay tool is not built. ZT_RELAY=PATH runs
# another relay with the same command line (scripts/netns/relay-standin.sh, a socat stand-in).
# Everything lives in zt-rlyPID-* namespaces, removed by a trap.
# timeout: 120
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/netns/lib.sh
zt_require_root
relay=${ZT_RELAY:-${BUILD:-build}/tools/zt_relay}
if [ ! -x "$relay" ]; then
    echo "skip: $relay is not built"
    exit 77
fi
size=$((16 * 1024 * 1024))
zt_init "rly$$"
logs=$(mktemp -d)
trap 'zt_cleanup; rm -rf "$logs"' EXIT

zt_node_create 1
zt_node_create 2
zt_pod_create 1 client 2
zt_pod_create 2 server 2
node1=$(zt_ns_node 1)
client=$(zt_ns_pod 1 client)
server=$(zt_ns_pod 2 server)

failures=0
# run_case NAME LISTEN_HOST TARGET_HOST SERVER_IP: one relayed transfer.
run_case() {
    local name=$1 lhost=$2 thost=$3 sip=$4 port=$5
    echo "case $name: client $client -> relay $lhost:$port in $node1 -> $thost:8080 in $server"
    zt_bg "$server" "$logs/$name-server.log" timeout 60 /usr/bin/python3 scripts/netns/xfer.py \
        serve "$sip" 8080 "$size"
    zt_wait_listen "$server" 8080
    zt_bg "$node1" "$logs/$name-relay.log" "$relay" --listen "$lhost:$port" --target "$thost:8080"
    local rpid=$ZT_BG_LAST
    if ! zt_wait_line "$logs/$name-relay.log" '^zt_relay: listening on ' 10; then
        cat "$logs/$name-relay.log"
        failures=$((failures + 1))
        return
    fi
    local cip=${lhost#[}
    cip=${cip%]}
    if ! zt_in "$client" timeout 60 /usr/bin/python3 scripts/netns/xfer.py connect "$cip" "$port" \
        "$size" >"$logs/$name-client.log" 2>&1; then
        echo "  FAIL  client transfer failed:"
        sed 's/^/        /' "$logs/$name-client.log"
        failures=$((failures + 1))
    fi
    # The server exits once its transfer is done; wait for it (bounded by its own timeout).
    local deadline=$((SECONDS + 60))
    while ! grep -q '^xfer serve ' "$logs/$name-server.log" && [ "$SECONDS" -lt "$deadline" ]; do
        sleep 0.1
    done
    kill "$rpid" 2>/dev/null || true
    local c s
    c=$(grep '^xfer connect ' "$logs/$name-client.log" || true)
    s=$(grep '^xfer serve ' "$logs/$name-server.log" || true)
    echo "  client: $c"
    echo "  server: $s"
    field() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
    if [ -z "$c" ] || [ -z "$s" ]; then
        echo "  FAIL  a side did not finish"
        sed 's/^/        /' "$logs/$name-server.log" "$logs/$name-relay.log"
        failures=$((failures + 1))
        return
    fi
    if [ "$(field "$c" sent)" != "$size" ] || [ "$(field "$s" sent)" != "$size" ] ||
        [ "$(field "$c" recv)" != "$size" ] || [ "$(field "$s" recv)" != "$size" ]; then
        echo "  FAIL  byte counts differ from $size"
        failures=$((failures + 1))
    elif [ "$(field "$c" sent_sha256)" != "$(field "$s" recv_sha256)" ]; then
        echo "  FAIL  client->server SHA-256 differs"
        failures=$((failures + 1))
    elif [ "$(field "$s" sent_sha256)" != "$(field "$c" recv_sha256)" ]; then
        echo "  FAIL  server->client SHA-256 differs"
        failures=$((failures + 1))
    else
        echo "  ok    16 MiB each way, SHA-256 equal both ways"
    fi
}

run_case ipv4 "$(zt_node_gw 1)" "$(zt_pod_ip 2 2)" "$(zt_pod_ip 2 2)" 15001
run_case ipv6 "[$(zt_node_gw6 1)]" "[$(zt_pod_ip6 2 2)]" "$(zt_pod_ip6 2 2)" 15002

if [ "$failures" -ne 0 ]; then
    echo "relay_netns: $failures failure(s)"
    exit 1
fi
echo "relay_netns: passed"
