#!/usr/bin/env bash
# dns_inpod.sh: the DNS proxy ztunnel runs in every captured pod (127.0.0.1:15053 and
# [::1]:15053, UDP and TCP), reached as on a cluster through the CNI redirect of port 53
# (scripts/redirect-inpod.sh): the client pod's resolv.conf names "cluster DNS", Debian's dnsmasq
# in an uncaptured pod of its own (198.18.1.53), which knows only its test zone
# (scripts/e2e/lib/dns_upstream.sh), so a mesh name that resolves proves the proxy answered it.
# Cases, with dig over UDP and TCP and glibc's resolver (getent hosts): a service hostname and its
# search expansions, a ServiceEntry-like host, a name forwarded to dnsmasq (the query leaves from
# the pod's namespace with ztunnel's mark), NXDOMAIN, a big answer truncated over UDP and retried
# over TCP, the sockets straight on 15053 (v4 and v6); the `istio_dns_*` metrics and the `dns` log
# from that traffic; the listeners gone once the pod is removed; and DNS capture switched off
# (ISTIO_META_DNS_CAPTURE=false): nothing on 15053.
# timeout: 150
set -euo pipefail
# db.upstream.test, known only to dnsmasq, is plainsrv's address: the hostname-only workload's.
DNS_UPSTREAM_DB_IP=198.18.2.3
. "$(dirname "$0")/lib/mesh.sh"
. "$(dirname "$0")/lib/dns_upstream.sh"
for tool in dnsmasq dig getent; do
    command -v "$tool" >/dev/null 2>&1 || { echo "skip: $tool is missing (scripts/install-deps.sh)"; exit 77; }
done
UPSTREAM_IP=198.18.1.53
MESH_ZT_ARGS="--dns-upstream $UPSTREAM_IP"
MESH_LOG_LEVEL="info,dns=debug"
MESH_EXTRA_SERVICES='{"name": "external", "namespace": "default", "hostname": "api.external.test",
     "vips": ["/198.19.0.20"], "ports": {"443": 443}},
    {"name": "db", "namespace": "default", "hostname": "db.upstream.test",
     "vips": ["/198.19.0.30"], "ports": {"5432": 8080}},'
# A ServiceEntry with DNS resolution: its workload has a hostname and no IP.
MESH_EXTRA_WORKLOADS='{"uid": "c1//v1/ServiceEntry/default/db", "name": "db", "namespace": "default",
     "hostname": "db.upstream.test", "workloadIps": [], "protocol": "TCP",
     "services": {"default/db.upstream.test": {"5432": 8080}}},'
mesh_up dns
client=$(zt_ns_pod 1 client)
client2=$(zt_ns_pod 1 client2)
# DNS_KEEP_LOGS=DIR keeps both ztunnels' and dnsmasq's logs there.
trap '[ -n "${DNS_KEEP_LOGS:-}" ] && cp "$MESH_WORK"/*.log "$DNS_KEEP_LOGS"/; rm -rf "/etc/netns/$client"; mesh_down' EXIT
zt_pod_create 1 dnsup 53 || mesh_fail "upstream pod"
upstream=$(zt_ns_pod 1 dnsup)
dns_upstream_start "$upstream" "$MESH_WORK/upstream.log" "$UPSTREAM_IP" || mesh_fail "dnsmasq"

# The pod's resolv.conf as the kubelet writes it: cluster DNS and the namespace's search list.
mkdir -p "/etc/netns/$client"
cat >"/etc/netns/$client/resolv.conf" <<CONF
nameserver $UPSTREAM_IP
search default.svc.cluster.local svc.cluster.local cluster.local
options ndots:5
CONF

failures=0
fail() {
    echo "  FAIL  $*"
    failures=$((failures + 1))
}
# ask EXPECTED DIG-ARGS...: dig +short from the client pod (to cluster DNS unless the arguments
# say otherwise) must print EXPECTED (lines sorted, joined by spaces).
ask() {
    local expected=$1 got
    shift
    got=$(zt_in "$client" dig +time=6 +tries=1 +short "$@" | sort | xargs)
    if [ "$got" = "$expected" ]; then
        echo "  ok    dig $* -> $got"
    else
        fail "dig $*: expected '$expected', got '$got'"
    fi
}
status() {
    local expected=$1 got
    shift
    got=$(zt_in "$client" dig +time=6 +tries=1 "$@" | sed -n 's/.*status: \([A-Z]*\),.*/\1/p')
    [ "$got" = "$expected" ] && echo "  ok    dig $* -> $got" ||
        fail "dig $*: expected status $expected, got '$got'"
}
# listeners NS: the DNS sockets on 15053 in NS, as "udp tcp" counts (one per worker and address).
listeners() {
    echo "$(zt_in "$1" ss -Hlun 'sport = :15053' | wc -l) $(zt_in "$1" ss -Hltn 'sport = :15053' | wc -l)"
}

echo "the proxy's sockets in each captured pod (2 workers x 127.0.0.1 and ::1)"
for ns in "$client" "$client2"; do
    got=$(listeners "$ns")
    [ "$got" = "4 4" ] && echo "  ok    ${ns##*-}: UDP and TCP on 15053 ($got)" ||
        fail "${ns##*-}: 15053 sockets '$got', want '4 4'"
done
got=$(listeners "$(zt_ns_pod 1 plain)")
[ "$got" = "0 0" ] && echo "  ok    uncaptured pod: none" || fail "uncaptured pod has $got"

echo "mesh names, through the redirect of port 53 (dnsmasq does not know them)"
ask 198.19.0.10 server.default.svc.cluster.local
ask 198.19.0.10 +tcp server.default.svc.cluster.local
ask 198.19.0.10 server
ask 198.19.0.10 server.default
ask 198.19.0.10 server.default.svc
ask 198.19.0.10 +search server
ask 198.19.0.20 api.external.test
ask 198.19.0.10 @127.0.0.1 -p 15053 server.default.svc.cluster.local
ask 198.19.0.10 @::1 -p 15053 +tcp server.default.svc.cluster.local

echo "other names are forwarded to dnsmasq from the pod"
ask 198.19.50.1 www.upstream.test
ask 2001:db8:50::1 +tcp www.upstream.test AAAA
status NXDOMAIN nowhere.upstream.test
tc=$(zt_in "$client" dig +ignore +time=6 +tries=1 big.upstream.test | grep '^;; flags')
case $tc in
    *" tc"*) echo "  ok    big answer over UDP has TC" ;;
    *) fail "big answer over UDP has no TC: $tc" ;;
esac
count=$(zt_in "$client" dig +time=6 +tries=1 +short big.upstream.test | wc -l)
[ "$count" -eq 100 ] && echo "  ok    dig retried over TCP: 100 records" ||
    fail "big answer after the TCP retry: $count records"

echo "glibc's resolver in the pod (getent hosts)"
got=$(zt_in "$client" timeout 10 getent hosts server | awk '{print $1}' | xargs)
[ "$got" = 198.19.0.10 ] && echo "  ok    getent hosts server -> $got" || fail "getent hosts server: '$got'"
got=$(zt_in "$client" timeout 10 getent hosts api.external.test | awk '{print $1}' | xargs)
[ "$got" = 198.19.0.20 ] && echo "  ok    getent hosts api.external.test -> $got" ||
    fail "getent hosts api.external.test: '$got'"
got=$(zt_in "$client" timeout 10 getent hosts www.upstream.test | awk '{print $1}' | xargs)
[ "$got" = 2001:db8:50::1 ] && echo "  ok    getent hosts www.upstream.test -> $got" ||
    fail "getent hosts www.upstream.test: '$got'"
if zt_in "$client" timeout 10 getent hosts nowhere.upstream.test >/dev/null; then
    fail "getent hosts nowhere.upstream.test resolved"
else
    echo "  ok    getent hosts nowhere.upstream.test: not found"
fi

echo "metrics and the dns log from the pods' traffic"
m=$(mesh_metrics 1)
# (The mesh's workloads have no canonical name or revision: those labels say "unknown".)
for pattern in \
    '^istio_dns_requests_total\{request_query_type="a",request_protocol="udp",source_canonical_service="unknown",source_canonical_revision="unknown"\} [1-9]' \
    '^istio_dns_requests_total\{request_query_type="a",request_protocol="tcp",.*\} [1-9]' \
    '^istio_dns_requests_total\{request_query_type="aaaa",request_protocol="udp",.*\} [1-9]' \
    '^istio_dns_upstream_requests_total\{request_query_type="a",request_protocol="udp",.*\} [1-9]' \
    '^istio_dns_upstream_request_duration_seconds_bucket\{request_query_type="a",request_protocol="udp",.*le="5.0"\} [1-9]'; do
    echo "$m" | grep >/dev/null -E "$pattern" && echo "  ok    /metrics has $pattern" ||
        fail "/metrics lacks $pattern: $(echo "$m" | grep dns | head -n 5)"
done
mesh_wait_log 1 'dns.*src.workload="client" src.namespace="default" query="A" domain="server.default.svc.cluster.local." result="success"' &&
    echo "  ok    dns log record" || fail "no dns log record"

echo "a connection to a hostname-only workload, resolved on demand"
# First a client that sends a small request and half-closes while the name is being resolved:
# dnsmasq is stopped (SIGSTOP) until the FIN has surely arrived. io_uring reports that FIN as
# POLLRDHUP, which must not count as a client gone. Then a bigger transfer, from the cache.
kill -STOP "$DNS_UPSTREAM_PID"
mesh_xfer 1 client 198.19.0.30:5432 16 >"$MESH_WORK/half-closed.json" &
xfer=$!
sleep 0.5
kill -CONT "$DNS_UPSTREAM_PID"
wait "$xfer" && echo "  ok    half-closed while resolving: $(cat "$MESH_WORK/half-closed.json")" ||
    fail "half-closed client to the hostname-only workload: $(cat "$MESH_WORK/half-closed.json")"
out=$(mesh_xfer 1 client 198.19.0.30:5432 65536) || fail "transfer to the hostname-only workload: $out"
echo "  ok    $out"
grep -Eq '"peer": "(::ffff:)?198.18.1.2"' "$MESH_WORK/peers-plainsrv.log" &&
    echo "  ok    plainsrv (db.upstream.test) served the client" ||
    fail "plainsrv saw $(cat "$MESH_WORK/peers-plainsrv.log")"
mesh_metrics 1 | grep >/dev/null -E '^istio_on_demand_dns_total\{.*source_principal="spiffe://cluster.local/ns/default/sa/client".*hostname="db.upstream.test"\} 2$' &&
    echo "  ok    istio_on_demand_dns_total counted it" ||
    fail "no istio_on_demand_dns_total: $(mesh_metrics 1 | grep on_demand)"

echo "a removed pod's DNS listeners go with it"
MESH_NODE1_PODS="{\"uid\": \"c1//v1/Pod/default/client\", \"netns\": \"$(zt_ns_path "$client")\"}"
applied=$(grep -c 'config applied' "$MESH_WORK/zt1.log")
mesh_config '[]'
for _ in $(seq 100); do
    [ "$(grep -c 'config applied' "$MESH_WORK/zt1.log")" -gt "$applied" ] && break
    sleep 0.05
done
gone=0
for _ in $(seq 100); do
    [ "$(listeners "$client2")" = "0 0" ] && { gone=1; break; }
    sleep 0.05
done
[ "$gone" = 1 ] && echo "  ok    client2: nothing on 15053" || fail "client2 still has $(listeners "$client2")"
ask 198.19.0.10 server.default.svc.cluster.local

echo "DNS capture off (ISTIO_META_DNS_CAPTURE=false)"
mesh_zt_restart 1 ISTIO_META_DNS_CAPTURE=false || mesh_fail "restart"
got=$(listeners "$client")
[ "$got" = "0 0" ] && echo "  ok    client: nothing on 15053" || fail "client has $got with DNS off"
mesh_metrics 1 | grep >/dev/null '^istio_dns_' && fail "DNS metrics with DNS off" ||
    echo "  ok    no DNS metrics"

[ "$failures" = 0 ] || mesh_fail "$failures DNS case(s)"
echo "PASS"
