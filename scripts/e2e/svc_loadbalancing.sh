#!/usr/bin/env bash
# svc_loadbalancing.sh: a service with two HBONE backends, server1 on the client's node and server
# on the other node (ztunnel's service_loadbalancing). A captured client connects to the service
# VIP 198.19.0.10:80: one connection reaches exactly one backend, on the target port 8080, with
# the client's own IP; 50 more reach both backends. Every transfer is byte-exact. The client's
# ztunnel labels its source metrics with the destination service, and its per-backend
# destination_principal counts equal what each backend application saw; each backend's ztunnel
# reports reporter="destination" with the same service labels and counts.
# timeout: 120
set -euo pipefail
. "$(dirname "$0")/lib/mesh.sh"
MESH_EXTRA_CAPTURED="1:server1:5"
MESH_EXTRA_WORKLOADS='{"uid": "c1//v1/Pod/default/server1", "name": "server1", "namespace": "default",
     "serviceAccount": "server1", "workloadIps": ["198.18.1.5", "2001:db8:1::5"],
     "protocol": "HBONE", "node": "node1",
     "services": {"default/server.default.svc.cluster.local": {"80": 8080}}},'
mesh_up svclb

vip=198.19.0.10:80
svc='destination_service="server.default.svc.cluster.local" destination_service_name="server" destination_service_namespace="default"'
sa=spiffe://cluster.local/ns/default/sa
lines() { if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi; }
hits() { # the per-backend connection counts the applications logged
    echo "$(lines "$MESH_WORK/peers-server1.log") $(lines "$MESH_WORK/peers-server.log")"
}
# metric_sum N METRIC 'LABEL="VALUE"'...: the sum of node N's METRIC series carrying every label.
metric_sum() {
    local n=$1 name=$2
    shift 2
    mesh_metrics "$n" | awk -v name="$name{" -v want="$*" '
        BEGIN { k = split(want, w, " ") }
        index($0, name) == 1 { for (i = 1; i <= k; i++) if (!index($0, w[i])) next; s += $NF }
        END { print s + 0 }'
}
opened() { # N REPORTER BACKEND: connections opened towards BACKEND, with the service labels
    # shellcheck disable=SC2086
    metric_sum "$1" istio_tcp_connections_opened_total "reporter=\"$2\"" $svc \
        "destination_principal=\"$sa/$3\"" "source_principal=\"$sa/client\""
}

# One connection: exactly one backend.
out=$(mesh_xfer 1 client "$vip" 65536) || mesh_fail "first transfer: $out"
read -r h1 h2 < <(hits)
[ $((h1 + h2)) = 1 ] || mesh_fail "one connection reached $h1 (server1) + $h2 (server) backends"
echo "first connection: server1=$h1 server=$h2"

# 50 more: both backends (a 2^-49 chance of a false failure with a fair pick).
for i in $(seq 50); do
    out=$(mesh_xfer 1 client "$vip" 16384) || mesh_fail "transfer $i: $out"
done
read -r h1 h2 < <(hits)
echo "after 51 connections: server1=$h1 server=$h2"
[ $((h1 + h2)) = 51 ] || mesh_fail "51 connections, backends saw $((h1 + h2))"
[ "$h1" -ge 1 ] && [ "$h2" -ge 1 ] || mesh_fail "not both backends: server1=$h1 server=$h2"
for b in server1 server; do
    n=$(grep -Ecv '"peer": "(::ffff:)?198.18.1.2"' "$MESH_WORK/peers-$b.log" || true)
    [ "$n" = 0 ] || mesh_fail "$b saw a source other than the client: $(cat "$MESH_WORK/peers-$b.log")"
done

# Metrics: the connections are counted once each, per backend, with the service labels.
sleep 0.3
c1=$(opened 1 source server1)
c2=$(opened 1 source server)
[ "$c1" = "$h1" ] && [ "$c2" = "$h2" ] ||
    mesh_fail "node1 source counts server1=$c1 server=$c2, applications saw $h1/$h2: $(mesh_metrics 1 | grep opened_total)"
d1=$(opened 1 destination server1)
d2=$(opened 2 destination server)
[ "$d1" = "$h1" ] || mesh_fail "node1 destination count $d1 for server1, want $h1: $(mesh_metrics 1 | grep opened_total)"
[ "$d2" = "$h2" ] || mesh_fail "node2 destination count $d2 for server, want $h2: $(mesh_metrics 2 | grep opened_total)"
[ "$(opened 2 destination server1)" = 0 ] || mesh_fail "node2 counted server1's connections"
for i in $(seq 50); do # closes are counted when ztunnel's sockets finish, just after the client's
    [ "$(metric_sum 1 istio_tcp_connections_closed_total 'reporter="source"')" = 51 ] && break
    [ "$i" -lt 50 ] || mesh_fail "node1 closed != 51 after 5 s"
    sleep 0.1
done

# Access logs name the service and the backend that took each connection.
mesh_wait_log 1 'connection complete.*dst.hbone_addr=198.18.1.5:8080.*dst.service="?server.default.svc.cluster.local' ||
    mesh_fail "node1 access log for server1"
mesh_wait_log 1 'connection complete.*dst.hbone_addr=198.18.2.2:8080.*dst.service="?server.default.svc.cluster.local' ||
    mesh_fail "node1 access log for server"
mesh_wait_log 2 'connection complete.*direction="inbound"' || mesh_fail "node2 access log"
echo "service load balancing: ok"
